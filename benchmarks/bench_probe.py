"""Probe benchmark: LingShift's all-layer probes vs NeuroX 1.0.9, side by side in one run.

On one activation store (the MiniLM WSJ POS task: 7 layers x 384), using the store's
train/dev/test splits:

(a) ours: :func:`pipeline.probing.solver.fit` trains all layers together, from the float16
    memmap (conversion included in the time), dev used only to pick the epoch per layer;
    timed ``--repeats`` times, interleaved with the NeuroX runs, median reported;
(b) NeuroX ``train_logistic_regression_probe``, one layer at a time on float32 arrays already in
    RAM (conversion not timed), with its defaults (l1 = l2 = 0) and with l1 = l2 = 1e-5;
(c) per-layer test accuracy of each (labels unseen in training count as errors for both),
    the speed ratio, and a paired bootstrap CI of ours - NeuroX per layer;
(d) LCA: our ``neuron_ordering`` vs NeuroX's ``get_neuron_ordering`` on identical weights
    (our oracle's and NeuroX's own last-layer probe), equality and time.

Run in the benchmark environment (NeuroX installed with --no-deps)::

    python benchmarks/bench_probe.py --store /tmp/lingshift-acts/minilm/base/pos-wsj \\
        --out benchmarks/results/probe.json

The script runs both tools in one process, under one ``OMP_WAIT_POLICY``; benchmarks/probe_fair.py gives each
tool its own best one. As pytest-benchmark tests (``pytest --benchmark-only benchmarks``, on this checkout's
``activations/minilm/base/pos-wsj``), with ratios from interleaved rounds in ``extra_info``:

- ``test_probe_all_layers``: ours on all 7 layers, each round after a dense reference workload of the same
  size (per epoch, the logits and gradient products as two full-batch ``bmm`` on float32 already in RAM; no
  batching, optimiser or dev scoring): ``ratio_vs_dense_epochs`` = reference / ours (medians);
- ``test_probe_vs_neurox`` (skipped without NeuroX): ours on the first ``LINGSHIFT_BENCH_NEUROX_LAYERS``
  layers (default 2), each round after NeuroX (defaults) on the same layers: ``ratio_vs_neurox`` = NeuroX / ours.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.atomic import write_json  # noqa: E402
from pipeline.probing.lca import neuron_ordering, oracle_probe  # noqa: E402
from pipeline.probing.linear import LinearProbe  # noqa: E402
from pipeline.probing.solver import FitHistory, SolverConfig, fit  # noqa: E402
from pipeline.probing.views import PerLayer  # noqa: E402
from pipeline.provenance import cpu_model, library_versions  # noqa: E402
from pipeline.stats.resample import paired_cluster_bootstrap, percentile_interval  # noqa: E402
from pipeline.store import ActivationStore  # noqa: E402

log = logging.getLogger("bench_probe")



def loadavg() -> list[float]:
    with contextlib.suppress(OSError):
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    return []


@contextlib.contextmanager
def quiet() -> Any:
    """Silence NeuroX's prints and tqdm bars (they still run, as for a user)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def run_ours(acts: np.ndarray, y: np.ndarray, rows: dict[str, slice],
             config: SolverConfig) -> tuple[float, LinearProbe, FitHistory]:
    """Fit all layer probes from the memmap; wall seconds include reading and converting float16."""
    t0 = time.perf_counter()
    probe, history = fit(acts[rows["train"]], y[rows["train"]], acts[rows["dev"]], y[rows["dev"]], config=config)
    return time.perf_counter() - t0, probe, history


def neurox_inputs(store: Any, rows: dict[str, np.ndarray], n_layers: int | None = None
                  ) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """What NeuroX's probe takes from ``store``: ``(train classes, labels per split remapped to 0..C-1 over the
    training labels (an unseen test label -> -1, always wrong), float32 activations [words, dim] per layer and
    split)`` for the first ``n_layers`` layers (all when None)."""
    y = store.labels.astype(np.int64)
    train_classes = np.unique(y[rows["train"]])
    remap = -np.ones(len(store.label_names), dtype=np.int64)
    remap[train_classes] = np.arange(len(train_classes))
    y_nx = {s: remap[y[r]] for s, r in rows.items()}
    layers = [{s: np.asarray(store.layer(k)[r], dtype=np.float32) for s, r in rows.items()}
              for k in range(store.n_layers if n_layers is None else n_layers)]
    return train_classes, y_nx, layers


def run_neurox(lp: Any, layers: list[np.ndarray], y_nx: dict[str, np.ndarray], l1: float, l2: float) -> dict[str, Any]:
    """NeuroX one layer at a time; returns per-layer seconds, correctness on test, and the probes."""
    secs, correct, probes = [], [], []
    for k, X in enumerate(layers):
        torch.manual_seed(k)  # NeuroX has no seed argument; make its init reproducible
        t0 = time.perf_counter()
        with quiet():
            probe = lp.train_logistic_regression_probe(X["train"], y_nx["train"], lambda_l1=l1, lambda_l2=l2)
        secs.append(time.perf_counter() - t0)
        with torch.no_grad():
            pred = probe(torch.from_numpy(X["test"])).argmax(-1).numpy()
        correct.append(pred == y_nx["test"])
        probes.append(probe.cpu())
        log.info("neurox l1=%g layer %d: %.2fs test %.4f", l1, k, secs[-1], correct[-1].mean())
    return {"seconds": secs, "correct": np.array(correct), "probes": probes}


def ordering_parity(lp: Any, weights: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Our ordering vs NeuroX's on the same float32 weights ``[neurons, classes]``."""
    n, c = weights.shape
    probe = lp.LinearProbe(n, c)
    with torch.no_grad():
        probe.linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights.T)))
    class_to_idx = {name: i for i, name in enumerate(class_names)}
    t0 = time.perf_counter()
    with quiet():
        nx_order, nx_cut = lp.get_neuron_ordering(probe, class_to_idx)
    t_nx = time.perf_counter() - t0
    t0 = time.perf_counter()
    order, cut = neuron_ordering(weights)
    t_us = time.perf_counter() - t0
    return {"neurons": n, "classes": c, "equal": [int(i) for i in nx_order] == order.tolist() and nx_cut == cut,
            "neurox_seconds": t_nx, "ours_seconds": t_us}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True, type=Path, help="activation store (train/dev/test splits)")
    ap.add_argument("--out", required=True, type=Path, help="JSON results (written atomically)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of ours (median reported)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's)")
    ap.add_argument("--skip-neurox-defaults", action="store_true", help="only run NeuroX with l1 = l2 = 1e-5")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    import neurox
    import neurox.interpretation.linear_probe as lp

    store = ActivationStore(args.store)
    rows = {s: store.split_rows(s) for s in ("train", "dev", "test")}
    acts, y = store.activations, store.labels.astype(np.int64)
    train_classes, y_nx, layers_f32 = neurox_inputs(store, rows)
    ours_config = SolverConfig()
    ours_params = {**ours_config.to_dict(), **PerLayer().to_json()}
    load_before = loadavg()
    log.info("store %s: %d layers x %d, words train/dev/test %s, torch threads %d, load %s", args.store,
             store.n_layers, store.dim, [r.stop - r.start for r in rows.values()], torch.get_num_threads(), load_before)

    ours_times: list[float] = []
    t, probe, history = run_ours(acts, y, rows, ours_config)
    ours_times.append(t)
    log.info("ours: %.2fs", t)
    ours_correct = probe.correct(acts[rows["test"]], y[rows["test"]])
    runs: dict[str, dict[str, Any]] = {}
    configs = [("neurox_l1_l2_1e-5", 1e-5, 1e-5)]
    if not args.skip_neurox_defaults:
        configs.insert(0, ("neurox_defaults", 0.0, 0.0))
    deterministic = True
    for name, l1, l2 in configs:
        runs[name] = run_neurox(lp, layers_f32, y_nx, l1, l2)
        for _ in range(max(0, (args.repeats - 1) // len(configs))):
            t, p2, _ = run_ours(acts, y, rows, ours_config)
            ours_times.append(t)
            deterministic &= bool(np.array_equal(p2.weights, probe.weights))
            log.info("ours: %.2fs", t)
    while len(ours_times) < args.repeats:
        t, p2, _ = run_ours(acts, y, rows, ours_config)
        ours_times.append(t)
        deterministic &= bool(np.array_equal(p2.weights, probe.weights))
    ours_median = statistics.median(ours_times)

    # LCA ordering parity on identical weights: our oracle's, and NeuroX's own last-layer probe.
    t0 = time.perf_counter()
    oracle = oracle_probe(acts[rows["train"]], y[rows["train"]], acts[rows["dev"]], y[rows["dev"]])
    oracle_seconds = time.perf_counter() - t0
    class_names = [store.label_names[c] for c in train_classes]
    nx_last = runs["neurox_l1_l2_1e-5"]["probes"][-1]
    parity = {
        "our_oracle": ordering_parity(lp, np.ascontiguousarray(oracle.weights[0], dtype=np.float32), class_names),
        "neurox_last_layer_probe": ordering_parity(
            lp, np.ascontiguousarray(nx_last.linear.weight.detach().numpy().T), class_names),
    }

    ours_acc = ours_correct.mean(1)
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "store": str(args.store),
        "store_meta": {k: store.meta.get(k) for k in ("model", "variant", "task", "aggregation", "splits")},
        "words": {s: r.stop - r.start for s, r in rows.items()},
        "n_layers": store.n_layers, "dim": store.dim,
        "train_classes": len(train_classes), "label_names": list(store.label_names),
        "unseen_test_label_words": int((y_nx["test"] < 0).sum()),
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "loadavg_before": load_before, "loadavg_after": loadavg()},
        "versions": {**library_versions(), "neurox": getattr(neurox, "__version__", "1.0.9")},
        "ours": {"params": ours_params, "seconds_runs": ours_times, "seconds_median": ours_median,
                 "deterministic_across_runs": deterministic, "best_epoch": history.best_epoch,
                 "test_accuracy": ours_acc.tolist()},
        "oracle": {"seconds": oracle_seconds,
                   "test_accuracy": float(oracle.score(acts[rows["test"]], y[rows["test"]])[0])},
        "lca_ordering_parity": parity,
    }
    for name, l1, l2 in configs:
        r = runs[name]
        nx_acc = r["correct"].mean(1)
        # ours minus NeuroX per layer, resampling test sentences (the same ones for both)
        low, high = percentile_interval(paired_cluster_bootstrap(r["correct"], ours_correct, store.sentence_ids("test"),
                                                                 n_boot=2000, seed=0))
        total = float(sum(r["seconds"]))
        result[name] = {
            "l1": l1, "l2": l2, "epochs": 10, "batch_size": 32, "lr": 1e-3,
            "seconds_per_layer": r["seconds"], "seconds_total": total,
            "test_accuracy": nx_acc.tolist(),
            "ours_minus_neurox_points": (100 * (ours_acc - nx_acc)).tolist(),
            "ours_minus_neurox_ci95_points": [[100 * lo, 100 * hi]
                                              for lo, hi in zip(low, high, strict=True)],
            "speedup": total / ours_median,
            "within_0_5_points_or_better": bool(np.all(100 * (ours_acc - nx_acc) >= -0.5)),
        }
        log.info("%s: %.1fs total (%s) vs ours %.2fs -> %.1fx; acc nx %s ours %s", name, total,
                 " ".join(f"{s:.1f}" for s in r["seconds"]), ours_median, total / ours_median,
                 np.round(100 * nx_acc, 1), np.round(100 * ours_acc, 1))
    log.info("LCA ordering parity: %s", {k: v["equal"] for k, v in parity.items()})
    write_json(args.out, result)
    log.info("wrote %s", args.out)
    return 0


REPO = Path(__file__).resolve().parents[1]
BENCH_STORE = REPO / "activations" / "minilm" / "base" / "pos-wsj"
PROBE_ROUNDS = int(os.environ.get("LINGSHIFT_BENCH_PROBE_ROUNDS", "5"))
NEUROX_ROUNDS = int(os.environ.get("LINGSHIFT_BENCH_NEUROX_ROUNDS", "3"))
NEUROX_LAYERS = int(os.environ.get("LINGSHIFT_BENCH_NEUROX_LAYERS", "2"))


@pytest.fixture(scope="module")
def wsj_store() -> ActivationStore:
    """This checkout's MiniLM WSJ POS store (make repro writes it)."""
    if not (BENCH_STORE / "meta.json").is_file():
        pytest.skip(f"needs the store {BENCH_STORE.relative_to(REPO)} (run: make repro)")
    return ActivationStore(BENCH_STORE)


def dense_epochs(X: torch.Tensor, n_classes: int, epochs: int) -> float:
    """Seconds for ``epochs`` x (logits + gradient) as full-batch ``bmm`` on ``X: float32 [layers, words, dim]``:
    a reference workload of the probes' size that times the machine, not a lower bound."""
    W = torch.zeros(X.shape[0], X.shape[2], n_classes)
    t0 = time.perf_counter()
    for _ in range(epochs):
        torch.bmm(X.transpose(1, 2), torch.bmm(X, W))
    return time.perf_counter() - t0


def test_probe_all_layers(benchmark: Any, wsj_store: ActivationStore) -> None:
    """Ours on every layer (as the probe stage's seed-0 fit), interleaved with the dense reference workload."""
    st = wsj_store
    rows = {s: st.split_rows(s) for s in ("train", "dev")}
    acts, y = st.activations, st.labels.astype(np.int64)
    config = SolverConfig()
    X_dense = torch.from_numpy(np.ascontiguousarray(np.asarray(acts[rows["train"]], dtype=np.float32)
                                                    .transpose(1, 0, 2)))
    n_classes = len(np.unique(y[rows["train"]]))
    dense_s: list[float] = []

    def dense() -> None:  # setup: before every timed round, not timed
        dense_s.append(dense_epochs(X_dense, n_classes, config.epochs))

    def ours() -> None:
        run_ours(acts, y, rows, config)

    ours()  # warm-up (pytest-benchmark's warm-up rounds would run the setup too)
    benchmark.pedantic(ours, setup=dense, rounds=PROBE_ROUNDS, warmup_rounds=0, iterations=1)
    ours_med, dense_med = benchmark.stats.stats.median, statistics.median(dense_s)
    benchmark.extra_info.update({
        "layers": st.n_layers, "dim": st.dim, "train_words": rows["train"].stop - rows["train"].start,
        "torch_threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "dense_epochs_seconds": dense_s, "ratio_vs_dense_epochs": dense_med / ours_med,
    })


def test_probe_vs_neurox(benchmark: Any, wsj_store: ActivationStore) -> None:
    """Ours vs NeuroX's ``train_logistic_regression_probe`` (defaults) on the first layers, interleaved."""
    lp = pytest.importorskip("neurox.interpretation.linear_probe", reason="NeuroX is not installed (make bench-venv)")
    st = wsj_store
    k = min(NEUROX_LAYERS, st.n_layers)
    rows = {s: st.split_rows(s) for s in ("train", "dev", "test")}
    y = st.labels.astype(np.int64)
    acts = {s: np.asarray(st.activations[r][:, :k]) for s, r in rows.items()}  # float16 [words, k, dim]
    _, y_nx, layers_f32 = neurox_inputs(st, rows, k)
    nx_s: list[float] = []
    logging.getLogger("bench_probe").setLevel(logging.WARNING)

    def neurox() -> None:  # setup: before every timed round, not timed
        nx_s.append(float(sum(run_neurox(lp, layers_f32, y_nx, 0.0, 0.0)["seconds"])))

    def ours() -> None:
        fit(acts["train"], y[rows["train"]], acts["dev"], y[rows["dev"]], config=SolverConfig())

    ours()  # warm-up (pytest-benchmark's warm-up rounds would run the setup too)
    benchmark.pedantic(ours, setup=neurox, rounds=NEUROX_ROUNDS, warmup_rounds=0, iterations=1)
    ours_med, nx_med = benchmark.stats.stats.median, statistics.median(nx_s)
    benchmark.extra_info.update({
        "layers": k, "neurox": "1.0.9 defaults (l1 = l2 = 0, 10 epochs, batch 32, lr 1e-3)",
        "torch_threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "neurox_seconds": nx_s, "ratio_vs_neurox": nx_med / ours_med,
    })


if __name__ == "__main__":
    raise SystemExit(main())
