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
    # NeuroX needs class ids 0..C-1 over the training labels; unseen test labels -> -1 (always wrong).
    train_classes = np.unique(y[rows["train"]])
    remap = -np.ones(len(store.label_names), dtype=np.int64)
    remap[train_classes] = np.arange(len(train_classes))
    y_nx = {s: remap[y[r]] for s, r in rows.items()}
    layers_f32 = [{s: np.asarray(store.layer(k)[r], dtype=np.float32) for s, r in rows.items()}
                  for k in range(store.n_layers)]
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


if __name__ == "__main__":
    raise SystemExit(main())
