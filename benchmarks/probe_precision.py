"""Probe training in float32 against bf16 matmuls (``probe.precision``), side by side in one process.

Synthetic float16 activations shaped like MPNet's (13 layers x 768) and 30,000 training words, with 45 classes
(the PTB tagset's size) and 300 (about the raw Brown tagset's), train :func:`pipeline.probing.solver.fit` for one
epoch each way, in interleaved rounds (best of each). What it shows: where the bf16 matmuls pay (many classes: the
matmuls dominate) and where they do not (few classes: the per-step element-wise work dominates). The accuracy
side of bf16 is measured on real data by ``benchmarks/precision.py``.

Usage: ``python benchmarks/probe_precision.py [--rounds 3] [--out benchmarks/results/probe_precision.json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.precision import cpu_has_bf16  # noqa: E402
from pipeline.probing.solver import SolverConfig, fit  # noqa: E402
from pipeline.provenance import cpu_model, library_versions  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--words", type=int, default=30_000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.words, 13, 768), dtype=np.float32).astype(np.float16)
    out = {"cpu": cpu_model(), "native_bf16": cpu_has_bf16(), "torch_threads": torch.get_num_threads(),
           "versions": library_versions(), "date": time.strftime("%Y-%m-%d"),
           "shape": f"{args.words} words x 13 layers x 768, 1 epoch, batch 256", "classes": {}}
    for classes in (45, 300):
        y = rng.integers(0, classes, args.words)
        secs: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for _ in range(args.rounds):
            for precision in secs:
                t0 = time.perf_counter()
                fit(X, y, config=SolverConfig(epochs=1, precision=precision))
                secs[precision].append(time.perf_counter() - t0)
        best = {k: min(v) for k, v in secs.items()}
        out["classes"][str(classes)] = {"seconds": {k: [round(s, 2) for s in v] for k, v in secs.items()},
                                        "speedup_bf16": round(best["fp32"] / best["bf16"], 2)}
        print(f"{classes} classes: fp32 {best['fp32']:.2f} s, bf16 {best['bf16']:.2f} s "
              f"({best['fp32'] / best['bf16']:.2f}x)", flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
