"""Control tasks and selectivity (Hewitt & Liang 2019), which the paper and NeuroX lack.

A control task gives every word *type* one fixed random label, drawn from the task's empirical
label distribution. A probe can only solve it by memorising word identities, so
``selectivity = task accuracy - control accuracy`` (per layer) tells how much of a probe's
accuracy reflects the representation rather than the probe's own capacity.

The label of a type is a pure function of ``(seed, type, label distribution)``: a keyed hash
of the type gives a uniform number that picks a label by inverse CDF. So the same type gets
the same label in every split, in every order and in any subset of the corpus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.probing.inputs import ProbeInputError


def label_distribution(labels: Any, n_labels: int | None = None) -> np.ndarray:
    """Empirical distribution ``float [n_labels]`` of integer labels ``[words]``."""
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) == 0 or y.dtype.kind not in "iu" or y.min() < 0:
        raise ProbeInputError("labels must be a non-empty 1-D array of class ids >= 0.")
    counts = np.bincount(y, minlength=n_labels or 0).astype(np.float64)
    return counts / counts.sum()


def _type_uniform(word_type: str, seed: int) -> float:
    """A uniform number in [0, 1) determined by ``(seed, word_type)`` only."""
    h = hashlib.blake2b(word_type.encode("utf-8"), digest_size=8, key=str(int(seed)).encode("ascii")).digest()
    return int.from_bytes(h, "little") / 2.0**64


def control_labels(words: Sequence[str], distribution: Any, seed: int = 0, lowercase: bool = False) -> np.ndarray:
    """Control label ``int [words]`` per word: one fixed random label per word type.

    words: the word of each row (``store.flat_words()``); distribution: ``float [labels]``
    (e.g. :func:`label_distribution` of the training labels); ``lowercase`` folds case so
    ``The`` and ``the`` are one type (use it with uncased models).
    """
    p = np.asarray(distribution, dtype=np.float64)
    if p.ndim != 1 or len(p) == 0 or np.any(p < 0) or not np.isfinite(p).all() or p.sum() <= 0:
        raise ProbeInputError("distribution must be non-negative label frequencies with a positive sum.")
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    types = sorted(set((w.lower() if lowercase else w) for w in words))
    u = np.array([_type_uniform(t, seed) for t in types])
    # first label whose cdf exceeds u: a label of probability 0 (flat cdf step) is never picked
    lab = np.minimum(np.searchsorted(cdf, u, side="right"), len(p) - 1)
    table = dict(zip(types, lab.tolist(), strict=True))
    return np.array([table[w.lower() if lowercase else w] for w in words], dtype=np.int64)


def selectivity(task_accuracy: Sequence[float], control_accuracy: Sequence[float]) -> list[float]:
    """Per-layer ``task - control`` accuracy."""
    t, c = np.asarray(task_accuracy, dtype=np.float64), np.asarray(control_accuracy, dtype=np.float64)
    if t.shape != c.shape:
        raise ProbeInputError(f"task accuracies {t.shape} and control accuracies {c.shape} differ in length.")
    return (t - c).tolist()
