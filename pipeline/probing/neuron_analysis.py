"""The salience-gated neuron analysis of one store: what the neurons stage records.

One recipe (a seeded subsample of ``train_words`` training words, ``epochs`` epochs, best dev epoch kept) for
every probe, all batched by :mod:`pipeline.probing.subsets`:

1. the oracle over ``oracle_seeds``; per seed two neuron rankings, raw ``|w|`` and standardised ``|w| x std``;
2. the minimal set by a grid scan on the seed-0 raw ranking (target: ``ratio`` x the oracles' mean dev
   accuracy), capped at ``grid_max_share`` of the neurons;
3. C5's statistic: per oracle seed and ranking, the top-k's mean layer and count per layer;
4. the salience gate: probes retrained on each seed's top-k against ``n_random`` random k-sets, and each
   seed's oracle with its top-k zeroed against the random k-sets zeroed (test accuracy, mean over seeds);
5. the legacy blocks of oracle seed 0 (ordering, minimal set, random/bottom baselines, ablation).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from pipeline.config import NeuronParams
from pipeline.probing.inputs import ProbeInputError
from pipeline.probing.lca import layer_distribution, neuron_ordering
from pipeline.probing.solver import SolverConfig
from pipeline.probing.subsets import (
    ablation_accuracy,
    ablation_accuracy_seeds,
    grid_points,
    grid_scan,
    neuron_std,
    oracle_seeds,
    ranking_agreement,
    standardised_ranking,
    subsample_rows,
    subset_accuracy,
)
from pipeline.stats.salience import ablation_salience, random_subsets, salience_gate, selection_salience

log = logging.getLogger(__name__)


def scan_grid(n_neurons: int, step: float, max_share: float) -> np.ndarray:
    """Grid sizes ``int [points]`` of the minimal-set scan: every ``step`` of the neurons up to
    ``ceil(max_share * n_neurons)`` (at least the first grid point)."""
    pts = grid_points(n_neurons, step)
    cap = math.ceil(max_share * n_neurons - 1e-9)
    kept = pts[pts <= cap]
    return kept if len(kept) else pts[:1]


def _layers(rankings: Sequence[np.ndarray], k: int, dim: int, n_layers: int) -> dict[str, Any]:
    """Mean layer ``[seeds]`` and counts ``[seeds][layers]`` of each ranking's top-k."""
    spread = [layer_distribution(r[:k], dim, n_layers) for r in rankings]
    return {"mean_layer": [s["mean_layer"] for s in spread], "counts": [s["counts"] for s in spread]}


def _verdict(sel: dict[str, Any], abl: dict[str, Any]) -> str:
    """``reason`` of the gate: which test failed (or that both passed), with both tests' reasons."""
    gate = salience_gate(sel, abl)
    failed = [name for name, b in (("selection", sel), ("ablation", abl)) if not b["salient"]]
    head = "salient: selection and ablation both pass" if not failed else \
        f"not salient: {' and '.join(failed)} failed"
    return f"{head} ({gate['reason']})"


def analyse_neurons(X: Any, y: Any, X_dev: Any, y_dev: Any, X_test: Any, y_test: Any, *,
                    label_names: Sequence[str] | None = None, params: NeuronParams | None = None,
                    config: SolverConfig | None = None) -> dict[str, Any]:
    """The neuron analysis of ``X: float [words, layers, dim]`` splits (labels ``int [words]``) as the fields of
    a :class:`pipeline.records.NeuronResult` (without model/variant/task/provenance). ``config`` gives the
    probe settings (l1, l2, lr, batch size); its epochs and seed are replaced by ``params``'."""
    p = NeuronParams() if params is None else params
    cfg = replace(SolverConfig() if config is None else config, epochs=p.epochs, seed=p.seed)
    if getattr(X, "ndim", 3) != 3:
        raise ProbeInputError(f"X has {X.ndim} dimensions; the neuron analysis needs [words, layers, dim].")
    rows = subsample_rows(len(y), p.train_words, p.seed)
    Xs = np.asarray(X[rows], dtype=np.float32)
    ys = np.asarray(y)[rows]
    Xd, yd = np.asarray(X_dev, dtype=np.float32), np.asarray(y_dev)
    Xt, yt = np.asarray(X_test, dtype=np.float32), np.asarray(y_test)
    n_layers, dim = Xs.shape[1], Xs.shape[2]
    n = n_layers * dim
    seeds = [int(s) for s in p.oracle_seeds]

    # 1. oracles and rankings
    oracles = oracle_seeds(Xs, ys, Xd, yd, seeds, label_names=label_names, config=cfg)
    o_dev = [float(o.score(Xd, yd)[0]) for o in oracles]
    o_test = [float(o.score(Xt, yt)[0]) for o in oracles]
    std = neuron_std(Xs, cfg.memory_budget_mb)
    raw, cuts = zip(*(neuron_ordering(o.weights[0], p.search_stride) for o in oracles), strict=True)
    stz = [standardised_ranking(o.weights[0], std, p.search_stride) for o in oracles]
    log.info("neuron analysis: %d oracles on %d words, dev %s", len(seeds), len(rows),
             ", ".join(f"{a:.4f}" for a in o_dev))

    # 2. minimal set by grid scan on the seed-0 raw ranking
    oracle_dev = float(np.mean(o_dev))
    target = p.ratio * oracle_dev
    grid = scan_grid(n, p.grid_step, p.grid_max_share)
    scan = grid_scan(Xs, ys, Xd, yd, raw[0], target, seeds=p.grid_seeds, grid=grid.tolist(), block=p.grid_block,
                     config=cfg)
    k = int(scan["k"])

    # 3. C5: where each ranking's top-k lies, per oracle seed
    agree = [ranking_agreement(r, s, k, dim, n_layers) for r, s in zip(raw, stz, strict=True)]
    layer_shift = {
        "k": k, "oracle_seeds": seeds,
        "raw": _layers(raw, k, dim, n_layers), "standardised": _layers(stz, k, dim, n_layers),
        "agreement": {"overlap": float(np.mean([a["overlap"] for a in agree])),
                      "mean_layer_diff": float(np.mean([a["mean_layer_diff"] for a in agree])),
                      "overlap_per_seed": [float(a["overlap"]) for a in agree],
                      "mean_layer_diff_per_seed": [float(a["mean_layer_diff"]) for a in agree]},
    }

    # 4. salience: every seed's top-k and seed 0's bottom-k in one batch with the random k-sets
    S = len(seeds)
    tops = np.stack([np.sort(r[:k]) for r in raw])  # [seeds, k]
    bottom = np.sort(raw[0][n - k:])
    sets = random_subsets(n, k, p.n_random, p.seed)  # [n_random, k]
    acc = subset_accuracy(Xs, ys, Xd, yd, Xt, yt, np.concatenate([tops, bottom[None], sets]), config=cfg)
    top_test = [float(a) for a in acc["test"][:S]]
    rnd_test = acc["test"][S + 1:]
    sel = selection_salience(float(np.mean(top_test)), rnd_test, p.alpha)
    abl_all = ablation_accuracy_seeds(oracles, Xt, yt, tops, sets)  # [seeds, 1 + n_random]
    abl_top = [float(a) for a in abl_all[:, 0]]
    abl = ablation_salience(float(np.mean(abl_top)), abl_all[:, 1:].mean(0), p.alpha)
    reason = _verdict(sel, abl)
    log.info("neuron analysis: k=%d, %s", k, reason)

    def interval(b: dict[str, Any]) -> dict[str, float]:
        return {key: float(v) for key, v in b["random_accuracy"].items()}

    salience = {
        "n_random": int(p.n_random), "k": k, "alpha": float(p.alpha),
        "topk_accuracy": sel["topk_accuracy"], "topk_accuracy_per_seed": top_test,
        "random_accuracy": interval(sel), "selection_salient": bool(sel["salient"]),
        "salient": bool(sel["salient"] and abl["salient"]),
        "ablation": {"topk_accuracy": abl["topk_accuracy"], "topk_accuracy_per_seed": abl_top,
                     "random_accuracy": interval(abl), "salient": bool(abl["salient"]), "reason": abl["reason"]},
        "reason": reason, "recipe": {"train_words": int(len(rows)), "epochs": int(p.epochs)},
    }

    # 5. the legacy blocks, from oracle seed 0
    def scores(i: int) -> dict[str, float]:
        return {"dev": float(acc["dev"][i]), "test": float(acc["test"][i])}

    zero = {"dev": ablation_accuracy(oracles[0], Xd, yd, np.stack([tops[0], sets[0]])),
            "test": abl_all[0, [0, 1]]}
    selected = raw[0][:k]
    settings = {**cfg.to_dict(), **oracles[0].view.to_json()}
    return {
        "n_neurons": n, "n_layers": n_layers, "dim": dim, "label_names": oracles[0].label_names,
        "params": {**{k_: v for k_, v in settings.items() if k_ not in ("neurons", "layout")},
                   **p.model_dump(mode="json")},
        "oracle": {"dev": o_dev[0], "test": o_test[0]},
        "target_dev": target,
        "ordering": raw[0].tolist(), "cutoffs": list(cuts[0]),
        "minimal_set": {"k": k, "reached": bool(scan["reached"]),
                        "evaluated": {str(pt["k"]): pt["dev_mean"] for pt in scan["curve"]},
                        "neurons": selected.tolist(), "accuracy": scores(0),
                        "layers": layer_distribution(selected, dim, n_layers)},
        "baselines": {"random": {"neurons": sets[0].tolist(), "accuracy": scores(S + 1),
                                 "layers": layer_distribution(sets[0], dim, n_layers)},
                      "bottom": {"neurons": bottom.tolist(), "accuracy": scores(S),
                                 "layers": layer_distribution(bottom, dim, n_layers)}},
        "ablation": {"zero_selected": {"dev": float(zero["dev"][0]), "test": float(zero["test"][0])},
                     "zero_random": {"dev": float(zero["dev"][1]), "test": float(zero["test"][1])}},
        "oracle_seeds": {"seeds": seeds, "dev": o_dev, "test": o_test},
        "grid_scan": {"k": k, "reached": bool(scan["reached"]), "target": float(target), "ratio": float(p.ratio),
                      "oracle_dev": oracle_dev, "step": float(p.grid_step), "max_k": int(grid[-1]),
                      "seeds": [int(s) for s in p.grid_seeds],
                      "curve": [{"k": pt["k"], "dev_mean": pt["dev_mean"], "dev_std": pt["dev_std"]}
                                for pt in scan["curve"]],
                      "seed_k": scan["seed_k"], "k_spread": scan["k_spread"], "scanned": int(scan["scanned"])},
        "layer_shift": layer_shift,
        "salience": salience,
    }


__all__ = ["scan_grid", "analyse_neurons"]
