"""Bootstrap replicates of the layer statistics the claims test (P2): sentence-level (cluster) for one
model, hierarchical (fine-tuning seeds, then sentences) for fine-tuned deltas.

Every function uses the same bootstrap ``seed``, so replicates computed on the same test sentences are
drawn on the same resampled sentences and can be combined replicate by replicate (C3, C4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.layout import Key
from pipeline.records import LayerResult, Results
from pipeline.stats.resample import hierarchical_bootstrap, paired_cluster_bootstrap, percentile_interval
from pipeline.stats.verdicts import min_detectable_effect
from pipeline.variants import seed_of, variant_of

ALPHA = 0.05


class NotComparable(ValueError):
    """Two results cannot be paired (different test words)."""


@dataclass(frozen=True)
class Pair:
    """A base layer result and the fine-tuned variant's results, one per fine-tuning seed."""

    base: LayerResult
    finetuned: tuple[LayerResult, ...]

    @property
    def model(self) -> str:
        return self.base.model

    @property
    def task(self) -> str:
        return self.base.task

    @property
    def variant(self) -> str:
        """The fine-tuned variant (the task), without the seed suffix of its checkpoints."""
        return variant_of(self.finetuned[0].variant)

    @property
    def seeds(self) -> list[int | None]:
        """The fine-tuning seed of each checkpoint in :attr:`finetuned`."""
        return [seed_of(r.variant) for r in self.finetuned]

    @property
    def n_seeds(self) -> int:
        return len(self.finetuned)


def finetune_seeds(res: Results, key: Key) -> tuple[LayerResult, ...]:
    """The layer results of every fine-tuning seed of ``key``'s variant (model, checkpoint or variant, task),
    in seed order: the checkpoints ``<variant>-seed<N>`` present (an unsuffixed name is one seed)."""
    m, v, t = key
    return tuple(res.seed_layers(m, variant_of(v), t))


def pairs(res: Results) -> list[Pair]:
    """(base, fine-tuned seeds) for every model, task and fine-tuned variant, checked to share test words."""
    out = []
    seen = set()
    for (m, v, t) in sorted(res.layers):
        base = res.layers.get((m, "base", t))
        key = (m, variant_of(v), t)
        if v == "base" or base is None or key in seen:
            continue
        seen.add(key)
        ft = finetune_seeds(res, (m, v, t))
        for r in ft:
            if r.test_words_sha256 != base.test_words_sha256:
                raise NotComparable(f"{m}/{r.variant}/{t} was not scored on the same test words as {m}/base/{t}; "
                                    "re-run both probe stages from the same data")
        out.append(Pair(base, ft))
    return out


def interval(reps: np.ndarray) -> tuple[float, float]:
    """95% percentile interval of replicates ``float [n_boot]``."""
    lo, hi = percentile_interval(reps, ALPHA)
    return float(lo), float(hi)


def mde(reps: np.ndarray) -> float:
    """The smallest effect the replicates ``float [n_boot]`` resolve (:func:`min_detectable_effect`)."""
    return float(min_detectable_effect(reps, alpha=ALPHA))


def missing_for_intervals(r: LayerResult) -> str | None:
    """Why ``r`` cannot give sentence-level intervals (no sentence lengths), or None."""
    if r.test_sentence_lengths is None:
        return (f"{'/'.join(r.key)} has no test_sentence_lengths (written before sentence-level intervals), so no "
                "sentence-level interval can be computed; re-run the probe stage")
    return None


def missing_lexical(r: LayerResult) -> str | None:
    """Why ``r`` has no lexical baseline to measure headroom against, or None."""
    if r.lexical_baseline is None:
        return f"{'/'.join(r.key)} has no lexical_baseline (written before it existed); re-run the probe stage"
    return None


def margin_replicates(base: LayerResult, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probe accuracy above the lexical baseline, in points: ``(estimate float [layers],
    replicates float [n_boot, layers])``, paired on resampled test sentences."""
    acc = base.correct()  # [layers, words]
    lex = np.broadcast_to(base.lexical_correct().astype(np.float64), acc.shape)
    reps = paired_cluster_bootstrap(lex, acc, base.sentence_ids(), n_boot, seed) * 100
    est = (base.mean - base.lexical_baseline.test_accuracy) * 100
    return est, reps


def delta_replicates(pair: Pair, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fine-tuned minus base accuracy per layer in points, averaged over fine-tuning seeds:
    ``(estimate float [layers], replicates float [n_boot, layers])`` from the hierarchical bootstrap
    (seeds, then sentences). With one seed the seed level adds nothing."""
    ft = np.stack([r.correct() for r in pair.finetuned])  # [S, layers, words]
    reps = hierarchical_bootstrap(ft, pair.base.correct(), pair.base.sentence_ids(), n_boot, seed) * 100
    est = (np.mean([r.mean for r in pair.finetuned], axis=0) - pair.base.mean) * 100
    return est, reps
