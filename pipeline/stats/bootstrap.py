"""Bootstrap intervals over test words and repeats over seeds, for per-word correctness of probes.

The bootstrap resamples *word indices* once per replicate and reuses them for every layer
(and, in the paired version, for both models), so per-layer intervals and base-vs-fine-tuned
deltas come from the same resamples. Everything is seeded and vectorised: replicate ``r`` of
an accuracy is ``counts[r] @ correct / n`` with ``counts[r]`` the multiplicities of the
resampled words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from pipeline.errors import LingShiftError


class UncertaintyInputError(LingShiftError, ValueError):
    """Bad input to a bootstrap or seed repeat."""


def _as_correct(correct: Any, name: str = "correct") -> np.ndarray:
    """``bool/0-1 [words]`` or ``[layers, words]`` -> float64 ``[layers, words]``."""
    c = np.asarray(correct)
    if c.ndim == 1:
        c = c[None]
    if c.ndim != 2 or c.shape[1] == 0:
        raise UncertaintyInputError(f"{name} has shape {c.shape}; expected per-word correctness [words] or "
                                    "[layers, words] with at least one word.")
    return c.astype(np.float64)


def bootstrap_counts(n_words: int, n_boot: int = 1000, seed: int = 0, chunk: int = 200) -> Iterator[np.ndarray]:
    """Yield resample multiplicities ``int [replicates, n_words]`` in chunks (seeded, reproducible).

    Equivalent to drawing ``n_words`` word indices with replacement per replicate.
    """
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        idx = rng.integers(0, n_words, size=(m, n_words))
        flat = (idx + (np.arange(m, dtype=np.int64) * n_words)[:, None]).ravel()
        yield np.bincount(flat, minlength=m * n_words).reshape(m, n_words).astype(np.float64)


def bootstrap_replicates(corrects: Sequence[Any], n_boot: int = 1000, seed: int = 0) -> list[np.ndarray]:
    """Bootstrap accuracies ``float [replicates, layers]`` of each correctness matrix ``[layers, words]``,
    all scored on the *same* resampled words (so any statistic across them is paired)."""
    cs = [_as_correct(c, f"corrects[{i}]") for i, c in enumerate(corrects)]
    if len({c.shape[1] for c in cs}) != 1:
        raise UncertaintyInputError(f"the correctness matrices cover different numbers of words "
                                    f"({sorted({c.shape[1] for c in cs})}); pairing needs the same test words.")
    return _replicates(cs, n_boot, seed)


def _replicates(corrects: Sequence[np.ndarray], n_boot: int, seed: int) -> list[np.ndarray]:
    """Bootstrap accuracies ``[replicates, layers]`` for each correctness matrix, same resamples."""
    n = corrects[0].shape[1]
    outs: list[list[np.ndarray]] = [[] for _ in corrects]
    for counts in bootstrap_counts(n, n_boot, seed):
        for o, c in zip(outs, corrects, strict=True):
            o.append(counts @ c.T / n)
    return [np.concatenate(o, axis=0) for o in outs]


def bootstrap_ci(correct: Any, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> dict[str, Any]:
    """Percentile bootstrap CI of accuracy per layer.

    correct: bool ``[layers, words]`` (or ``[words]``). Returns JSON-friendly lists per layer:
    ``accuracy``, ``ci_low``, ``ci_high``, plus ``n_boot``, ``alpha``, ``seed``.
    """
    c = _as_correct(correct)
    (reps,) = _replicates([c], n_boot, seed)
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2], axis=0)
    return {"accuracy": c.mean(1).tolist(), "ci_low": lo.tolist(), "ci_high": hi.tolist(),
            "n_words": int(c.shape[1]), "n_boot": int(n_boot), "alpha": float(alpha), "seed": int(seed)}


def paired_bootstrap(correct_a: Any, correct_b: Any, n_boot: int = 1000, alpha: float = 0.05,
                     seed: int = 0) -> dict[str, Any]:
    """Bootstrap CI of ``acc(b) - acc(a)`` per layer, both scored on the same resampled words.

    correct_a, correct_b: bool ``[layers, words]`` on the *same* words (e.g. base vs fine-tuned).
    ``p_le_0`` / ``p_ge_0``: share of replicates with delta <= 0 / >= 0 (one-sided evidence).
    """
    a, b = _as_correct(correct_a, "correct_a"), _as_correct(correct_b, "correct_b")
    if a.shape != b.shape:
        raise UncertaintyInputError(f"correct_a {a.shape} and correct_b {b.shape} differ; a paired bootstrap "
                                    "needs both scored on the same layers and words.")
    ra, rb = _replicates([a, b], n_boot, seed)
    d = rb - ra
    lo, hi = np.quantile(d, [alpha / 2, 1 - alpha / 2], axis=0)
    return {"delta": (b.mean(1) - a.mean(1)).tolist(), "ci_low": lo.tolist(), "ci_high": hi.tolist(),
            "p_le_0": (d <= 0).mean(0).tolist(), "p_ge_0": (d >= 0).mean(0).tolist(),
            "accuracy_a": a.mean(1).tolist(), "accuracy_b": b.mean(1).tolist(),
            "n_words": int(a.shape[1]), "n_boot": int(n_boot), "alpha": float(alpha), "seed": int(seed)}


def over_seeds(run: Callable[[int], Sequence[float]], seeds: Sequence[int] = (0, 1, 2)) -> dict[str, Any]:
    """Repeat ``run(seed) -> per-layer accuracies`` over ``seeds``; mean and sample std per layer.

    Example: ``over_seeds(lambda s: fit(X, y, Xd, yd, config=SolverConfig(seed=s))[0].score(Xt, yt))``.
    """
    if len(seeds) == 0:
        raise UncertaintyInputError("seeds is empty; pass at least one seed (default 0, 1, 2).")
    runs = np.asarray([np.asarray(run(int(s)), dtype=np.float64) for s in seeds])
    if runs.ndim == 1:
        runs = runs[:, None]
    std = runs.std(0, ddof=1) if len(seeds) > 1 else np.zeros(runs.shape[1])
    return {"seeds": [int(s) for s in seeds], "per_seed": runs.tolist(), "mean": runs.mean(0).tolist(),
            "std": std.tolist(), "min": runs.min(0).tolist(), "max": runs.max(0).tolist()}


def accuracy_over_seeds(correct: Any, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> dict[str, Any]:
    """Per-seed accuracy, its mean and sample std per layer, and a bootstrap CI over words of the
    seed-averaged accuracy (JSON-friendly).

    correct: bool ``[seeds, layers, words]``, the per-word correctness of each seed's probes on the same words.
    """
    c = np.asarray(correct)
    if c.ndim != 3 or c.shape[0] == 0:
        raise UncertaintyInputError(f"correct has shape {c.shape}; expected [seeds, layers, words] with at least "
                                    "one seed.")
    acc = c.mean(-1)  # [seeds, layers]
    ci = bootstrap_ci(c.mean(0), n_boot=n_boot, alpha=alpha, seed=seed)
    return {"per_seed": acc.tolist(), "mean": acc.mean(0).tolist(),
            "std": (acc.std(0, ddof=1) if len(c) > 1 else 0 * acc[0]).tolist(), "bootstrap": ci}
