"""Sentence-task metrics (accuracy, F1, Pearson/Spearman, MSE) and the majority-class baseline."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.data.spec import SentenceTask
from pipeline.data.types import SentenceSplit


def _rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank), as ``scipy.stats.rankdata``."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def _f1(pred: np.ndarray, gold: np.ndarray, k: int) -> float:
    tp = float(((pred == k) & (gold == k)).sum())
    fp = float(((pred == k) & (gold != k)).sum())
    fn = float(((pred != k) & (gold == k)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0


def compute_metrics(task: SentenceTask, predictions: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """The task's metrics: ``predictions`` are label ids (classification) or scores (regression), ``[examples]``."""
    predictions = np.asarray(predictions).reshape(-1)
    gold = np.asarray(gold).reshape(-1)
    out: dict[str, float] = {}
    if task.kind == "regression":
        p, g = predictions.astype(np.float64), gold.astype(np.float64)
        out["pearson"] = _pearson(p, g)
        out["spearman"] = _pearson(_rankdata(p), _rankdata(g))
        out["mse"] = float(((p - g) ** 2).mean())
        return out
    out["accuracy"] = float((predictions == gold).mean())
    out["macro_f1"] = float(np.mean([_f1(predictions, gold, k) for k in range(len(task.label_names))]))
    if task.positive_label is not None:
        out["f1"] = _f1(predictions, gold, task.label_id(task.positive_label))
    return out


def majority_baseline(task: SentenceTask, train: SentenceSplit, split: SentenceSplit) -> dict[str, float] | None:
    """Metrics of always predicting train's most frequent label (ties: first in sorted order); None for regression."""
    if task.kind == "regression":
        return None
    counts = train.label_counts()
    top = max(task.label_names, key=lambda lab: (counts.get(lab, 0), -task.label_names.index(lab)))
    gold = np.array([task.label_id(x) for x in split.labels])
    scores: dict[str, Any] = compute_metrics(task, np.full(len(gold), task.label_id(top)), gold)
    return {"label": top, **scores}
