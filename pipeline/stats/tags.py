"""Per-tag precision, recall and F1 of probe predictions, and which tags lose most after fine-tuning.

The scores are scikit-learn's: ``precision_recall_fscore_support(average=None, zero_division=0)`` (a tag
never predicted has precision 0, a tag absent from gold has recall 0, and F1 is 0 where precision + recall
is 0) and ``confusion_matrix`` over every label id, per row of predictions (e.g. per layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from pipeline.errors import LingShiftError


class TagInputError(LingShiftError, ValueError):
    """Bad input to the per-tag scores (shapes, label ids out of range)."""


@dataclass(frozen=True)
class TagScores:
    """Per-tag scores: ``precision``, ``recall``, ``f1`` ``float [..., labels]``; ``support`` ``int [labels]``
    (gold count per tag); ``predicted`` ``int [..., labels]`` (predicted count per tag); ``confusion``
    ``int [..., labels, labels]`` (gold tag by predicted tag)."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    predicted: np.ndarray
    confusion: np.ndarray


def _ids(a: Any, name: str, n_labels: int | None) -> np.ndarray:
    """Integer label ids as int64, checked non-negative and below ``n_labels``."""
    x = np.asarray(a)
    if x.size and not np.issubdtype(x.dtype, np.integer):
        raise TagInputError(f"{name} has dtype {x.dtype}; expected integer label ids.")
    x = x.astype(np.int64)
    if x.size and (x.min() < 0 or (n_labels is not None and x.max() >= n_labels)):
        raise TagInputError(f"{name} holds label ids outside 0..{'n_labels-1' if n_labels is None else n_labels - 1}.")
    return x


def per_tag_scores(predicted: Any, gold: Any, n_labels: int | None = None) -> TagScores:
    """Per-tag precision/recall/F1 of ``predicted`` ``int [..., words]`` (e.g. ``[layers, words]``) against
    ``gold`` ``int [words]``; ``n_labels`` defaults to one more than the largest id seen."""
    g = _ids(gold, "gold", n_labels)
    p = _ids(predicted, "predicted", n_labels)
    if g.ndim != 1 or g.size == 0 or p.ndim == 0 or p.shape[-1] != g.shape[0]:
        raise TagInputError(f"predicted has shape {p.shape} and gold {g.shape}; expected predicted [..., words] "
                            "and gold [words] with at least one word.")
    n = int(n_labels) if n_labels is not None else int(max(g.max(), p.max())) + 1
    lead, labels = p.shape[:-1], np.arange(n)
    flat = p.reshape(-1, g.shape[0])
    prf = np.zeros((3, flat.shape[0], n))
    confusion = np.zeros((flat.shape[0], n, n), dtype=np.int64)
    for i, row in enumerate(flat):
        prf[:, i] = precision_recall_fscore_support(g, row, labels=labels, average=None, zero_division=0)[:3]
        confusion[i] = confusion_matrix(g, row, labels=labels)
    precision, recall, f1 = (x.reshape(*lead, n) for x in prf)
    return TagScores(precision, recall, f1, np.bincount(g, minlength=n), confusion.sum(axis=1).reshape(*lead, n),
                     confusion.reshape(*lead, n, n))


def f1_deltas(base_predicted: Any, finetuned_predicted: Any, gold: Any, n_labels: int) -> np.ndarray:
    """Per-tag F1 change, fine-tuned minus base, ``float [..., labels]``.

    base_predicted: ``int [layers, words]``; finetuned_predicted: ``int [layers, words]`` or
    ``int [seeds, layers, words]`` (F1 averaged over the seeds); gold: ``int [words]``.
    """
    b = per_tag_scores(base_predicted, gold, n_labels).f1
    f = per_tag_scores(finetuned_predicted, gold, n_labels).f1
    if f.ndim == b.ndim + 1:
        f = f.mean(axis=0)
    if f.shape != b.shape:
        raise TagInputError(f"base and fine-tuned predictions give F1 of shapes {b.shape} and {f.shape}; expected "
                            "the same layers (fine-tuned may add a leading seeds axis).")
    return f - b


def rank_tag_losses(base_f1: Any, finetuned_f1: Any, support: Any, label_names: Sequence[str],
                    min_support: int = 1) -> list[dict[str, Any]]:
    """Tags ordered by F1 change, largest loss first (ties by tag name).

    base_f1, finetuned_f1: ``float [labels]`` (one layer, or a mean over layers); support: ``int [labels]``.
    Tags with fewer than ``min_support`` gold words are left out. Each row: ``tag``, ``label_id``,
    ``support``, ``f1_base``, ``f1_finetuned``, ``delta``.
    """
    b, f = np.asarray(base_f1, dtype=np.float64), np.asarray(finetuned_f1, dtype=np.float64)
    s = np.asarray(support)
    n = len(label_names)
    if not b.shape == f.shape == s.shape == (n,):
        raise TagInputError(f"base_f1 {b.shape}, finetuned_f1 {f.shape}, support {s.shape} and {n} label names "
                            "disagree; expected one value per tag.")
    rows = [{"tag": str(label_names[i]), "label_id": i, "support": int(s[i]), "f1_base": float(b[i]),
             "f1_finetuned": float(f[i]), "delta": float(f[i] - b[i])} for i in range(n) if s[i] >= min_support]
    return sorted(rows, key=lambda r: (r["delta"], r["tag"]))
