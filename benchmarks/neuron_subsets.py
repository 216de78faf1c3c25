"""Cost and first result of the batched neuron-subset machinery on one real store (see the subsets report).

Usage: PYTHONPATH=. python benchmarks/neuron_subsets.py STORE [--train-words N] [--epochs E] [--block G]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from pipeline.probing.solver import SolverConfig
from pipeline.probing.subsets import (
    ablation_accuracy,
    grid_scan,
    neuron_std,
    oracle_seeds,
    random_subset_accuracy,
    ranking_agreement,
    raw_ranking,
    standardised_ranking,
    subsample_rows,
)
from pipeline.stats.salience import ablation_salience, selection_salience
from pipeline.store import ActivationStore

log = logging.getLogger("bench")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("--train-words", type=int, default=None)
    ap.add_argument("--oracle-words", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--oracle-epochs", type=int, default=10)
    ap.add_argument("--block", type=int, default=10)
    ap.add_argument("--n-random", type=int, default=100)
    ap.add_argument("--k", type=int, default=None, help="k of the random sets (default: the grid scan's k)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    st = ActivationStore(a.store)
    (X, y), (Xd, yd), (Xt, yt) = st.split("train"), st.split("dev"), st.split("test")
    L, D = X.shape[1], X.shape[2]
    t = {}
    rows_o = subsample_rows(X.shape[0], a.oracle_words, 0)
    Xo, yo = np.asarray(X[rows_o]), y[rows_o]
    t0 = time.perf_counter()
    oracles = oracle_seeds(Xo, yo, Xd, yd, [0, 1, 2, 3, 4], config=SolverConfig(epochs=a.oracle_epochs))
    t["oracle_5_seeds"] = time.perf_counter() - t0
    odev = np.array([p.score(Xd, yd)[0] for p in oracles])
    otest = np.array([p.score(Xt, yt)[0] for p in oracles])
    t0 = time.perf_counter()
    std = neuron_std(X)
    raw = raw_ranking(oracles[0].weights[0])
    stdr = standardised_ranking(oracles[0].weights[0], std)
    t["rankings"] = time.perf_counter() - t0
    rows = subsample_rows(X.shape[0], a.train_words, 0)
    Xs, ys = np.asarray(X[rows]), y[rows]
    cfg = SolverConfig(epochs=a.epochs)
    t0 = time.perf_counter()
    scan = grid_scan(Xs, ys, Xd, yd, raw, 0.99 * float(odev.mean()), seeds=(0, 1, 2), block=a.block, config=cfg)
    t["grid_scan_3_seeds"] = time.perf_counter() - t0
    k = a.k or scan["k"]
    t0 = time.perf_counter()
    rnd = random_subset_accuracy(Xs, ys, Xd, yd, Xt, yt, k, a.n_random, seed=0, config=cfg, topk=raw[:k])
    t["random_sets_with_topk"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    abl_rnd = ablation_accuracy(oracles[0], Xt, yt, rnd["sets"])
    abl_top = float(ablation_accuracy(oracles[0], Xt, yt, np.sort(raw[:k])[None])[0])
    t["ablation"] = time.perf_counter() - t0
    agree = ranking_agreement(raw, stdr, k, D, L)
    out = {
        "store": str(a.store), "n_train": int(X.shape[0]), "train_words": len(rows), "oracle_words": len(rows_o),
        "epochs": a.epochs, "oracle_epochs": a.oracle_epochs, "block": a.block,
        "oracle_dev": odev.tolist(), "oracle_test": otest.tolist(),
        "grid": {kk: scan[kk] for kk in ("k", "reached", "target", "seed_k", "k_spread", "scanned")},
        "curve": [(p["k"], round(p["dev_mean"], 4), round(p["dev_std"], 4)) for p in scan["curve"]],
        "k": k, "agreement_raw_std": agree,
        "selection": selection_salience(rnd["topk"]["test"], rnd["test"]),
        "selection_dev": selection_salience(rnd["topk"]["dev"], rnd["dev"]),
        "ablation": ablation_salience(abl_top, abl_rnd),
        "seconds": {kk: round(v, 2) for kk, v in t.items()},
    }
    text = json.dumps(out, indent=1)
    log.info("%s", text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
