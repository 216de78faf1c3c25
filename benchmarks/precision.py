"""bfloat16 against float32 on the CPU, side by side in one process: extraction speed, and every layer's probe
accuracy when the probes read activations extracted each way.

For each model (MiniLM; MPNet too with ``--models minilm,mpnet`` once ``python -m pipeline resources --fetch
--all`` has fetched it) on the ``pos-wsj`` splits:

1. the bare batched forward with hidden states (the floor of ``benchmarks/bench_extract.py``) in float32 and
   under ``torch.autocast("cpu", dtype=torch.bfloat16)``, in interleaved rounds (best of each);
2. word vectors (last sub-word, stored as float16 as the pipeline stores them) of train, dev and test, both
   ways. Each is checked to be exactly :func:`pipeline.extract.extract_array`'s with ``mixed_precision`` "no"
   and "bf16" (``extract.mixed_precision``), so both sides are the pipeline's extraction;
3. the layer probes (:func:`pipeline.probing.solver.fit`, the offline profile's probe settings, each seed of
   ``--seeds``) trained and tested on each set of vectors: the per-layer test accuracy, mean over seeds, and
   the difference bfloat16 minus float32 in points, with the largest absolute difference; and a third run,
   ``bf16_all``: the bfloat16 vectors with the probe's training matmuls in bfloat16 too (``probe.precision:
   bf16``), what the offline-full profile runs;
4. the probe training time per seed on each.

Usage: ``python benchmarks/precision.py [--models minilm,mpnet] [--rounds 3] [--seeds 0,1,2]
[--out benchmarks/results/precision.json]``. Needs a CPU with native bfloat16 (AVX-512 BF16 or AMX) for a
meaningful speed figure; elsewhere it says so and measures anyway (autocast then emulates bfloat16, slowly).
Keep the machine otherwise idle.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import models  # noqa: E402
from pipeline.data import LoadContext, load_probe_splits  # noqa: E402
from pipeline.extract import extract_array  # noqa: E402
from pipeline.precision import cpu_has_bf16  # noqa: E402
from pipeline.probing.solver import SolverConfig, fit  # noqa: E402
from pipeline.provenance import cpu_model, library_versions  # noqa: E402

log = logging.getLogger("precision")


def forward_words(tok: Any, model: Any, sents: list[list[str]], bf16: bool, batch_size: int = 32) -> np.ndarray:
    """Word vectors float16 ``[words, layers, dim]`` (last sub-word of each word), batches sorted by length, the
    forward in float32 or under bfloat16 autocast."""
    lens = [len(ids) for ids in tok(sents, is_split_into_words=True)["input_ids"]]
    order = sorted(range(len(sents)), key=lens.__getitem__)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sents])])
    out: np.ndarray | None = None
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            enc = tok([sents[i] for i in idx], is_split_into_words=True, padding=True, truncation=True,
                      return_tensors="pt", split_special_tokens=True)
            hidden = model(**{k: v for k, v in enc.items() if k in ("input_ids", "attention_mask",
                                                                     "token_type_ids")}).hidden_states
            rows, flat = [], []
            for j, i in enumerate(idx):
                last: dict[int, int] = {}
                for t, wid in enumerate(enc.word_ids(j)):
                    if wid is not None:
                        last[wid] = t
                for wid, t in sorted(last.items()):
                    rows.append(offsets[i] + wid)
                    flat.append(j * enc["input_ids"].shape[1] + t)
            picked = torch.stack([h.reshape(-1, h.shape[-1])[flat] for h in hidden]).float().to(torch.float16)
            if out is None:
                out = np.empty((int(offsets[-1]), picked.shape[0], picked.shape[2]), dtype=np.float16)
            out[np.asarray(rows)] = picked.permute(1, 0, 2).numpy()
    assert out is not None
    return out


def bare_forward(tok: Any, model: Any, sents: list[list[str]], bf16: bool, batch_size: int = 32) -> float:
    """Seconds of the floor: tokenise, sort by length, batched forward with hidden states, nothing kept."""
    t0 = time.perf_counter()
    lens = [len(ids) for ids in tok(sents, is_split_into_words=True)["input_ids"]]
    order = sorted(range(len(sents)), key=lens.__getitem__)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for b in range(0, len(order), batch_size):
            enc = tok([sents[i] for i in order[b:b + batch_size]], is_split_into_words=True, padding=True,
                      return_tensors="pt")
            model(**enc, output_hidden_states=True)
    return time.perf_counter() - t0


def probe_layers(X: dict[str, np.ndarray], y: dict[str, np.ndarray], seeds: list[int],
                 precision: str = "fp32") -> tuple[np.ndarray, float]:
    """Test accuracy per layer ``[layers]`` (mean over ``seeds``) and seconds per seed of the probe training
    (its matmuls in ``precision``)."""
    from pipeline.config import ProbeParams

    p = ProbeParams()
    accs, secs = [], []
    for seed in seeds:
        cfg = SolverConfig(l1=p.l1, l2=p.l2, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, seed=seed,
                           precision=precision)
        t0 = time.perf_counter()
        probe, _ = fit(X["train"], y["train"], X["dev"], y["dev"], config=cfg)
        secs.append(time.perf_counter() - t0)
        accs.append(probe.score(X["test"], y["test"]))  # [layers]
    return np.mean(accs, axis=0), float(np.median(secs))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("pipeline").setLevel(logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="minilm")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--sentences", type=int, help="at most this many sentences per split (a smoke run)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    native = cpu_has_bf16()
    if not native:
        log.warning("this CPU has no native bfloat16 (AVX-512 BF16 / AMX): the speed figures say little")
    with tempfile.TemporaryDirectory() as tmp:
        splits = load_probe_splits("pos-wsj", LoadContext(cache=None, corpora_dir=Path(tmp)))
        parts = {k: list(v.sentences)[:args.sentences or None] for k, v in splits.items()}
        sents = {k: [list(s.words) for s in v] for k, v in parts.items()}
        names = sorted({t for v in parts.values() for s in v for t in s.labels})
        y = {k: np.asarray([names.index(t) for s in v for t in s.labels]) for k, v in parts.items()}
        everything = [s for k in ("train", "dev", "test") for s in sents[k]]
        n_words = sum(map(len, everything))
        result: dict[str, Any] = {"cpu": cpu_model(), "native_bf16": native, "torch_threads": torch.get_num_threads(),
                                  "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
                                  "versions": library_versions(), "date": time.strftime("%Y-%m-%d"),
                                  "corpus": f"pos-wsj: {n_words} words, {len(everything)} sentences "
                                            f"(train {len(y['train'])}, dev {len(y['dev'])}, test {len(y['test'])})",
                                  "probe_seeds": seeds, "models": {}}
        for name in args.models.split(","):
            tok, model = models.load(models.materialise(name, Path(tmp) / name), "cpu")
            bare_forward(tok, model, everything[:64], False)
            bare_forward(tok, model, everything[:64], True)  # warm-up both
            t = {"fp32": [], "bf16": []}
            for r in range(args.rounds):
                for kind in ("fp32", "bf16"):
                    t[kind].append(bare_forward(tok, model, everything, kind == "bf16"))
                log.info("%s round %d: bare forward fp32 %.1f s, bf16 %.1f s", name, r + 1, t["fp32"][-1],
                         t["bf16"][-1])
            X = {kind: {k: forward_words(tok, model, sents[k], kind == "bf16") for k in sents}
                 for kind in ("fp32", "bf16")}
            ref = extract_array(tok, model, sents["test"]).astype(np.float16)
            same = bool(np.array_equal(ref, X["fp32"]["test"]))
            ref16 = extract_array(tok, model, sents["test"], mixed_precision="bf16").astype(np.float16)
            same16 = bool(np.array_equal(ref16, X["bf16"]["test"]))
            log.info("%s: vectors identical to pipeline.extract.extract_array's: float32 %s, bf16 %s", name, same,
                     same16)
            acc, probe_s = {}, {}
            for kind, vectors, precision in (("fp32", "fp32", "fp32"), ("bf16", "bf16", "fp32"),
                                             ("bf16_all", "bf16", "bf16")):
                acc[kind], probe_s[kind] = probe_layers(X[vectors], y, seeds, precision)
                log.info("%s %s: test accuracy per layer %s (%.1f s per seed)", name, kind,
                         " ".join(f"{a:.4f}" for a in acc[kind]), probe_s[kind])
            diff = (acc["bf16"] - acc["fp32"]) * 100
            diff_all = (acc["bf16_all"] - acc["fp32"]) * 100
            vec_diff = np.abs(X["bf16"]["test"].astype(np.float32) - X["fp32"]["test"].astype(np.float32))
            scale = np.abs(X["fp32"]["test"].astype(np.float32)).mean()
            result["models"][name] = {
                "layers": int(acc["fp32"].shape[0]), "words": n_words,
                "bare_forward_s": {k: [round(v, 2) for v in vs] for k, vs in t.items()},
                "words_per_s": {k: round(n_words / min(vs)) for k, vs in t.items()},
                "speedup_bf16": round(min(t["fp32"]) / min(t["bf16"]), 3),
                "fp32_vectors_equal_pipeline_extraction": same,
                "bf16_vectors_equal_pipeline_extraction": same16,
                "vector_mean_abs_diff_relative": round(float(vec_diff.mean() / scale), 5),
                "test_accuracy_fp32": [round(float(a), 5) for a in acc["fp32"]],
                "test_accuracy_bf16": [round(float(a), 5) for a in acc["bf16"]],
                "diff_points_bf16_minus_fp32": [round(float(d), 3) for d in diff],
                "max_abs_diff_points": round(float(np.abs(diff).max()), 3),
                "within_0_3_points": bool(np.abs(diff).max() <= 0.3),
                "test_accuracy_bf16_all": [round(float(a), 5) for a in acc["bf16_all"]],
                "diff_points_bf16_all_minus_fp32": [round(float(d), 3) for d in diff_all],
                "max_abs_diff_points_bf16_all": round(float(np.abs(diff_all).max()), 3),
                "within_0_3_points_bf16_all": bool(np.abs(diff_all).max() <= 0.3),
                "probe_seconds_per_seed": {k: round(v, 2) for k, v in probe_s.items()},
            }
            log.info("%s: bf16 forward %.2fx float32's; largest layer difference %.2f points", name,
                     result["models"][name]["speedup_bf16"], float(np.abs(diff).max()))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result["models"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
