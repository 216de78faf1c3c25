"""Which tags lose most F1 after fine-tuning: per-tag F1 of a base and a fine-tuned layer result compared,
at the top layers (report table) and per layer (report heatmap).

Both results (or each fine-tuning seed's result, averaged) carry the seed-0 probe's per-tag F1 on the
same test words (``LayerResult.per_tag``); tags are matched by name. The top layers are the top third of
the transformer layers (claims.yaml: the last ``round(L / 3)`` of layers 1..L; the embedding layer 0 is
never in it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.records import LayerResult

#: Tags with fewer gold test words than this are left out of rankings (their F1 moves by whole words).
MIN_SUPPORT = 20


def top_third(layers: tuple[int, ...] | list[int]) -> list[int]:
    """Positions (into ``layers``) of the top third of the transformer layers: the last ``round(L / 3)``
    (at least one) of layers 1..L, where layer 0 is the embeddings."""
    n = len(layers) - 1
    k = max(1, round(n / 3)) if n > 0 else 1
    return list(range(len(layers)))[-k:]


@dataclass(frozen=True)
class TagLosses:
    """F1 change per tag, fine-tuned minus base: ``delta`` ``float [layers, tags]`` (F1 points in [0, 1]),
    ``tags`` and ``support`` ``int [tags]`` in the base result's order; ``ranked``: rows of
    :func:`pipeline.stats.tags.rank_tag_losses` at the top layers (largest loss first, enough support)."""

    layers: tuple[int, ...]
    tags: tuple[str, ...]
    support: np.ndarray
    delta: np.ndarray
    top_layers: tuple[int, ...]
    ranked: list[dict[str, Any]]


def _aligned_f1(result: LayerResult, tags: tuple[str, ...]) -> np.ndarray:
    """``result``'s per-tag F1 ``float [layers, tags]`` in the order of ``tags``; a tag the result's store
    lacks has no predictions there: F1 0 (as :mod:`pipeline.stats.tags` scores it)."""
    where = {t: i for i, t in enumerate(result.per_tag.labels)}
    f_all = result.per_tag.f1_array()
    return np.stack([f_all[:, where[t]] if t in where else np.zeros(f_all.shape[0]) for t in tags], axis=1)


def tag_losses(base: LayerResult, finetuned: LayerResult | Sequence[LayerResult],
               min_support: int = MIN_SUPPORT) -> TagLosses:
    """Per-tag F1 of ``finetuned`` against ``base`` (same model, task and test words), by layer and at the
    top layers (mean F1 over the top third, then ranked by loss). Several fine-tuned results (one per
    fine-tuning seed) are averaged: F1 per tag and layer, mean over seeds."""
    from pipeline.stats.tags import rank_tag_losses

    fts = [finetuned] if isinstance(finetuned, LayerResult) else list(finetuned)
    if not fts:
        raise ValueError("tag_losses needs at least one fine-tuned result")
    tags = tuple(base.per_tag.labels)
    b = base.per_tag.f1_array()
    f = np.mean([_aligned_f1(r, tags) for r in fts], axis=0)
    support = np.asarray(base.per_tag.support, dtype=np.int64)
    top = top_third(base.layers)
    ranked = rank_tag_losses(b[top].mean(0), f[top].mean(0), support, tags, min_support=min_support)
    return TagLosses(tuple(base.layers), tags, support, f - b, tuple(base.layers[i] for i in top), ranked)


__all__ = ["MIN_SUPPORT", "TagLosses", "tag_losses", "top_third"]
