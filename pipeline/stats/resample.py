"""Sentence-level (cluster) bootstrap of word accuracies, paired and hierarchical versions.

Words of one sentence are correlated, so the resampling unit is the sentence (:data:`BOOTSTRAP_UNIT`).
Per-word correctness ``float [..., words]`` (0/1, or fractions such as a seed average) is first summed per
sentence; a replicate draws ``n_sentences`` sentences with replacement (multinomial counts over the
sentences) and scores the ratio estimator ``sum(correct) / sum(words)`` of the resampled sentences.
Replicates are computed in chunks of counts ``[chunk, sentences]`` so memory stays bounded; the random
stream does not depend on the chunk size (sums may differ in the last bits). Everything is seeded
(:func:`numpy.random.default_rng`).

The hierarchical bootstrap adds fine-tuning seeds as the outer level: each replicate first resamples the
``S`` seeds with replacement, then the test sentences, and scores the seed-averaged delta
(fine-tuned minus base).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from pipeline.errors import LingShiftError

#: The unit the bootstrap resamples; record it next to every interval (``bootstrap_unit``).
BOOTSTRAP_UNIT = "sentence"

#: Count matrices of at most this many cells are held at once (``chunk * n_sentences``).
MAX_CHUNK_CELLS = 4_000_000


class ResampleInputError(LingShiftError, ValueError):
    """Bad input to a bootstrap (shapes, empty data, bad sentence ids or parameters)."""


def _check_params(n_boot: int, alpha: float | None = None) -> None:
    """Reject a non-positive replicate count or an ``alpha`` outside (0, 1)."""
    if int(n_boot) != n_boot or n_boot < 1:
        raise ResampleInputError(f"n_boot={n_boot!r} must be a positive integer.", "Use e.g. n_boot=1000.")
    if alpha is not None and not 0 < alpha < 1:
        raise ResampleInputError(f"alpha={alpha!r} must lie strictly between 0 and 1.", "Use alpha=0.05 for 95%.")


def _as_correct(correct: Any, name: str) -> np.ndarray:
    """Per-word correctness ``[..., words]`` as float64, checked finite and non-empty."""
    c = np.asarray(correct, dtype=np.float64)
    if c.ndim == 0 or c.shape[-1] == 0:
        raise ResampleInputError(f"{name} has shape {c.shape}; expected per-word correctness [..., words] "
                                 "with at least one word.")
    if not np.isfinite(c).all():
        raise ResampleInputError(f"{name} holds NaN or infinite values; expected correctness in [0, 1].")
    return c


def sentence_totals(correct: Any, sentence_ids: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum per-word correctness per sentence.

    correct: ``float [..., words]``; sentence_ids: ``int [words]`` (any integers, need not be sorted or
    contiguous). Returns ``(sums float [..., sentences], n_words float [sentences], ids int [sentences])``
    with sentences in ascending id order.
    """
    c = _as_correct(correct, "correct")
    sid = np.asarray(sentence_ids)
    if sid.ndim != 1 or sid.shape[0] != c.shape[-1]:
        raise ResampleInputError(f"sentence_ids has shape {sid.shape}; expected one id per word, "
                                 f"[{c.shape[-1]}].", "Pass the store's sentence ids of the same split.")
    if not np.issubdtype(sid.dtype, np.integer):
        raise ResampleInputError(f"sentence_ids has dtype {sid.dtype}; expected integers.")
    ids, inv = np.unique(sid, return_inverse=True)
    n_s = ids.shape[0]
    lead = c.shape[:-1]
    flat = c.reshape(-1, c.shape[-1])
    offsets = (np.arange(flat.shape[0], dtype=np.int64) * n_s)[:, None]
    sums = np.bincount((inv[None, :] + offsets).ravel(), weights=flat.ravel(), minlength=flat.shape[0] * n_s)
    n_words = np.bincount(inv, minlength=n_s).astype(np.float64)
    return sums.reshape(*lead, n_s), n_words, ids


def _chunk_size(n_units: int, n_boot: int, chunk: int | None) -> int:
    """Replicates per chunk: the caller's choice, else as many as fit in :data:`MAX_CHUNK_CELLS`."""
    if chunk is None:
        return max(1, min(n_boot, MAX_CHUNK_CELLS // max(n_units, 1)))
    if int(chunk) != chunk or chunk < 1:
        raise ResampleInputError(f"chunk={chunk!r} must be a positive integer.")
    return int(chunk)


def resample_counts(n_units: int, n_boot: int, rng: np.random.Generator,
                    chunk: int | None = None) -> Iterator[np.ndarray]:
    """Yield multiplicities ``float [replicates, n_units]`` of ``n_units`` units drawn with replacement.

    Each row is a multinomial draw of ``n_units`` over equally likely units (row sums equal ``n_units``);
    rows come in chunks of at most ``chunk`` and the stream of rows does not depend on ``chunk``.
    """
    _check_params(n_boot)
    if n_units < 1:
        raise ResampleInputError("there are no units to resample.")
    step = _chunk_size(n_units, n_boot, chunk)
    p = np.full(n_units, 1.0 / n_units)
    for start in range(0, n_boot, step):
        m = min(step, n_boot - start)
        yield rng.multinomial(n_units, p, size=m).astype(np.float64)


def _ratio_replicates(sums: list[np.ndarray], n_words: np.ndarray, n_boot: int, seed: int,
                      chunk: int | None) -> list[np.ndarray]:
    """Ratio-estimator replicates ``[n_boot, ...]`` of each sentence-sum array ``[..., sentences]``,
    every array scored on the same resampled sentences."""
    n_s = n_words.shape[0]
    flats = [s.reshape(-1, n_s) for s in sums]
    outs: list[list[np.ndarray]] = [[] for _ in sums]
    for counts in resample_counts(n_s, n_boot, np.random.default_rng(seed), chunk):
        den = counts @ n_words  # [m]
        for o, f in zip(outs, flats):
            o.append((counts @ f.T) / den[:, None])
    return [np.concatenate(o, axis=0).reshape(n_boot, *s.shape[:-1]) for o, s in zip(outs, sums)]


def cluster_bootstrap(correct: Any, sentence_ids: Any, n_boot: int = 1000, seed: int = 0,
                      chunk: int | None = None) -> np.ndarray:
    """Sentence-level bootstrap replicates of accuracy.

    correct: ``float [..., words]``; sentence_ids: ``int [words]``. Returns ``float [n_boot, ...]``:
    per replicate, ``sum(correct) / sum(words)`` over sentences drawn with replacement.
    """
    _check_params(n_boot)
    sums, n_words, _ = sentence_totals(correct, sentence_ids)
    return _ratio_replicates([sums], n_words, n_boot, seed, chunk)[0]


def paired_cluster_bootstrap(correct_a: Any, correct_b: Any, sentence_ids: Any, n_boot: int = 1000, seed: int = 0,
                             chunk: int | None = None) -> np.ndarray:
    """Sentence-level bootstrap replicates of ``acc(b) - acc(a)`` on the same words.

    correct_a, correct_b: ``float [..., words]`` of equal shape (e.g. base and fine-tuned per layer);
    both are scored on the same resampled sentences. Returns ``float [n_boot, ...]``.
    """
    a, b = _as_correct(correct_a, "correct_a"), _as_correct(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ResampleInputError(f"correct_a {a.shape} and correct_b {b.shape} differ; a paired bootstrap needs "
                                 "both scored on the same layers and words.")
    _check_params(n_boot)
    sa, n_words, _ = sentence_totals(a, sentence_ids)
    sb, _, _ = sentence_totals(b, sentence_ids)
    ra, rb = _ratio_replicates([sa, sb], n_words, n_boot, seed, chunk)
    return rb - ra


def hierarchical_bootstrap(finetuned: Any, base: Any, sentence_ids: Any, n_boot: int = 1000, seed: int = 0,
                           chunk: int | None = None) -> np.ndarray:
    """Two-level bootstrap replicates of the seed-averaged delta (fine-tuned minus base).

    finetuned: ``float [S, ..., words]``, one correctness array per fine-tuning seed (e.g.
    ``[S, layers, words]``, each possibly averaged over probe seeds); base: ``float [..., words]``
    (the base model has no fine-tuning seed). Each replicate resamples the ``S`` seeds with replacement,
    then the test sentences (the same sentences for every drawn seed and for the base), and returns
    ``mean over drawn seeds of acc(seed) - acc(base)``: ``float [n_boot, ...]``.

    The sentence draws use ``default_rng(seed)`` exactly as :func:`paired_cluster_bootstrap` does, and the
    seed draws an independent child stream, so with ``S == 1`` both give the same replicates.
    """
    ft, b = _as_correct(finetuned, "finetuned"), _as_correct(base, "base")
    if ft.ndim < 2 or ft.shape[1:] != b.shape:
        raise ResampleInputError(f"finetuned has shape {ft.shape} and base {b.shape}; expected finetuned "
                                 "[seeds, ..., words] and base [..., words] with the same trailing shape.")
    _check_params(n_boot)
    n_seeds = ft.shape[0]
    s_ft, n_words, _ = sentence_totals(ft, sentence_ids)  # [S, ..., n]
    s_b, _, _ = sentence_totals(b, sentence_ids)  # [..., n]
    n_s = n_words.shape[0]
    f_ft = s_ft.reshape(n_seeds, -1, n_s)  # [S, K, n]
    k = f_ft.shape[1]
    f_b = s_b.reshape(k, n_s)
    seed_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    p_seed = np.full(n_seeds, 1.0 / n_seeds)
    out = []
    for counts in resample_counts(n_s, n_boot, np.random.default_rng(seed), chunk):
        m = counts.shape[0]
        weights = seed_rng.multinomial(n_seeds, p_seed, size=m) / n_seeds  # [m, S]
        den = counts @ n_words  # [m]
        acc_ft = (counts @ f_ft.reshape(n_seeds * k, n_s).T).reshape(m, n_seeds, k) / den[:, None, None]
        acc_b = (counts @ f_b.T) / den[:, None]
        out.append(np.einsum("rs,rsk->rk", weights, acc_ft) - acc_b)
    return np.concatenate(out, axis=0).reshape(n_boot, *b.shape[:-1])


def percentile_interval(replicates: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval ``(low, high)``, each ``float [...]``, of replicates ``float [n_boot, ...]``:
    the ``alpha/2`` and ``1 - alpha/2`` quantiles over the first axis."""
    _check_params(1, alpha)
    r = np.asarray(replicates, dtype=np.float64)
    if r.ndim == 0 or r.shape[0] == 0:
        raise ResampleInputError(f"replicates has shape {r.shape}; expected [n_boot, ...] with n_boot >= 1.")
    lo, hi = np.quantile(r, [alpha / 2, 1 - alpha / 2], axis=0)
    return lo, hi


def interval_record(estimate: Any, replicates: Any, alpha: float = 0.05, seed: int | None = None) -> dict[str, Any]:
    """JSON-friendly interval: ``estimate``, ``ci_low``, ``ci_high`` (floats, or lists for ``[...]`` arrays),
    ``n_boot``, ``alpha``, ``seed`` and ``bootstrap_unit`` (:data:`BOOTSTRAP_UNIT`)."""
    lo, hi = percentile_interval(replicates, alpha)
    est = np.asarray(estimate, dtype=np.float64)
    if est.shape != lo.shape:
        raise ResampleInputError(f"estimate has shape {est.shape} but the replicates give intervals of shape "
                                 f"{lo.shape}.")
    return {"estimate": est.tolist(), "ci_low": lo.tolist(), "ci_high": hi.tolist(),
            "n_boot": int(np.asarray(replicates).shape[0]), "alpha": float(alpha),
            "seed": None if seed is None else int(seed), "bootstrap_unit": BOOTSTRAP_UNIT}


def accuracy_over_seeds(correct: np.ndarray, sentence_ids: np.ndarray, n_boot: int = 1000, alpha: float = 0.05,
                        seed: int = 0) -> dict[str, Any]:
    """Per-seed test accuracy, its mean and sample std per layer, and a sentence-level (cluster) bootstrap
    interval of the seed-averaged accuracy (JSON-friendly).

    correct: ``bool [seeds, layers, words]``, each seed's probes on the same test words; sentence_ids:
    ``int [words]``, the test sentence of each word (``ActivationStore.sentence_ids``).
    """
    c = np.asarray(correct)
    acc = c.mean(-1)  # [seeds, layers]
    averaged = c.mean(0)  # [layers, words]
    lo, hi = percentile_interval(cluster_bootstrap(averaged, sentence_ids, n_boot=n_boot, seed=seed), alpha)
    ci = {"accuracy": averaged.mean(1).tolist(), "ci_low": lo.tolist(), "ci_high": hi.tolist(),
          "n_words": int(c.shape[-1]), "n_sentences": int(np.unique(sentence_ids).shape[0]), "n_boot": int(n_boot),
          "alpha": float(alpha), "seed": int(seed), "bootstrap_unit": BOOTSTRAP_UNIT}
    return {"per_seed": acc.tolist(), "mean": acc.mean(0).tolist(),
            "std": (acc.std(0, ddof=1) if len(c) > 1 else 0 * acc[0]).tolist(), "bootstrap": ci}
