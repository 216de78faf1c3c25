"""Salience gate for a neuron ranking: does the ranked top-k carry more than any k neurons would?

Two tests against ``N`` random k-subsets of the same neurons (drawn by :func:`random_subsets`):

- selection: a probe on the top-k scores above the random sets' upper bound;
- ablation: zeroing the top-k lowers accuracy below the random ablations' lower bound.

The bounds are the ``alpha/2`` and ``1 - alpha/2`` quantiles of the ``N`` random accuracies (where a random
set's accuracy falls), stored as ``ci_low`` and ``ci_high``; the interval of the random *mean* (normal
approximation, much narrower) is stored too, as ``mean_ci_low`` and ``mean_ci_high``.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np

from pipeline.errors import LingShiftError

#: The fewest random sets the issue accepts for a salience block.
MIN_RANDOM_SETS = 100


class SalienceInputError(LingShiftError, ValueError):
    """Bad input to the salience gate (too few or non-finite random accuracies, bad k)."""


def random_subsets(n_neurons: int, k: int, n_random: int, seed: int = 0) -> np.ndarray:
    """``n_random`` random k-subsets of neuron ids ``0..n_neurons-1``: ``int [n_random, k]``, each row
    distinct ids in ascending order; deterministic for a ``seed``."""
    if not 1 <= k <= n_neurons or n_random < 1:
        raise SalienceInputError(f"cannot draw {n_random} subsets of size k={k} from {n_neurons} neurons.",
                                 "Need 1 <= k <= n_neurons and n_random >= 1.")
    keys = np.random.default_rng(seed).random((n_random, n_neurons))
    return np.sort(np.argsort(keys, axis=1, kind="stable")[:, :k], axis=1).astype(np.int64)


def _block(topk: float, random_acc: Any, higher: bool, alpha: float, what: str) -> dict[str, Any]:
    """The salience block for a top-k result that is salient if above (``higher``) or below the random
    accuracies' quantile interval."""
    if not 0 < alpha < 1:
        raise SalienceInputError(f"alpha={alpha!r} must lie strictly between 0 and 1.")
    r = np.asarray(random_acc, dtype=np.float64)
    if r.ndim != 1 or r.shape[0] < 2 or not np.isfinite(r).all() or not np.isfinite(topk):
        raise SalienceInputError(f"random accuracies have shape {r.shape} (or a non-finite value); expected "
                                 f"[n_random] with n_random >= 2 and a finite top-k accuracy.",
                                 f"Score at least {MIN_RANDOM_SETS} random k-sets.")
    lo, hi = (float(v) for v in np.quantile(r, [alpha / 2, 1 - alpha / 2]))
    mean = float(r.mean())
    half = NormalDist().inv_cdf(1 - alpha / 2) * float(r.std(ddof=1)) / np.sqrt(r.shape[0])
    t = float(topk)
    salient = t > hi if higher else t < lo
    bound, side = (hi, "above") if higher else (lo, "below")
    q = 100 * (1 - alpha / 2) if higher else 100 * alpha / 2
    reason = (f"{what} of the top-k ({t:.4f}) is {'' if salient else 'not '}{side} the {q:g}% quantile of "
              f"{r.shape[0]} random k-sets ({bound:.4f})")
    return {"n_random": int(r.shape[0]), "topk_accuracy": t,
            "random_accuracy": {"mean": mean, "ci_low": lo, "ci_high": hi,
                                "mean_ci_low": mean - half, "mean_ci_high": mean + half},
            "alpha": float(alpha), "salient": bool(salient), "reason": reason}


def selection_salience(topk_accuracy: float, random_accuracies: Any, alpha: float = 0.05) -> dict[str, Any]:
    """Salience of a selection: accuracy of a probe on the top-k against probes on random k-sets
    (``float [n_random]``). Salient if the top-k scores above the random sets' ``1 - alpha/2`` quantile.

    Returns ``{n_random, topk_accuracy, random_accuracy: {mean, ci_low, ci_high, mean_ci_low, mean_ci_high},
    alpha, salient, reason}``.
    """
    return _block(topk_accuracy, random_accuracies, True, alpha, "accuracy")


def ablation_salience(topk_ablated_accuracy: float, random_ablated_accuracies: Any,
                      alpha: float = 0.05) -> dict[str, Any]:
    """Salience of an ablation: accuracy with the top-k zeroed against accuracy with random k-sets zeroed
    (``float [n_random]``). Salient if zeroing the top-k leaves accuracy below the random ablations'
    ``alpha/2`` quantile (it hurts more). Same dict shape as :func:`selection_salience`."""
    return _block(topk_ablated_accuracy, random_ablated_accuracies, False, alpha, "ablated accuracy")


def salience_gate(selection: dict[str, Any], ablation: dict[str, Any]) -> dict[str, Any]:
    """Both tests together: ``{salient, reason}``; the ranking is salient only if both blocks are."""
    ok = bool(selection["salient"] and ablation["salient"])
    return {"salient": ok, "reason": f"{selection['reason']}; {ablation['reason']}"}
