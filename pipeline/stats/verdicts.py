"""Verdicts decided from intervals, and the effect an interval resolves.

A claim says a statistic lies above (or below) a threshold ``t``. Its claim side is the open half-line
(``> t`` for :attr:`Direction.ABOVE`, ``< t`` for :attr:`Direction.BELOW`), the other side is the closed
rest. A unit's verdict is SUPPORTED only if its whole interval lies on the claim side, CONTRADICTED only if
the whole interval lies on the other side, INCONCLUSIVE otherwise, and NOT_APPLICABLE where the statistic
does not exist for the unit (no interval). How unit verdicts combine over independent units is the claims
specification's rule (claims.yaml P5, P6), implemented in :mod:`pipeline.analysis.units`.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

import numpy as np

from pipeline.errors import LingShiftError


class VerdictInputError(LingShiftError, ValueError):
    """Bad input to a verdict (NaN bounds, reversed interval, unknown rule)."""


class Verdict(StrEnum):
    """The four verdicts a claim (or one unit of it) can get."""

    SUPPORTED = "SUPPORTED"
    CONTRADICTED = "CONTRADICTED"
    INCONCLUSIVE = "INCONCLUSIVE"
    NOT_APPLICABLE = "NOT_APPLICABLE"


class Direction(StrEnum):
    """Which side of the threshold the claim puts the statistic on."""

    ABOVE = "above"
    BELOW = "below"


def _enum(cls: type[Any], value: Any) -> Any:
    """``cls(value)``, with an unknown value reported as a :class:`VerdictInputError` naming the options."""
    try:
        return cls(value)
    except ValueError:
        options = ", ".join(repr(m.value) for m in cls)
        raise VerdictInputError(f"{value!r} is not a {cls.__name__}; expected one of {options}.") from None


def decide(interval: tuple[float, float] | None, threshold: float, direction: Direction | str) -> Verdict:
    """Verdict of one unit from its interval ``(low, high)`` (``None``: not applicable), see module doc."""
    d = _enum(Direction, direction)
    if interval is None:
        return Verdict.NOT_APPLICABLE
    lo, hi = (float(v) for v in interval)
    if math.isnan(lo) or math.isnan(hi) or math.isnan(float(threshold)):
        raise VerdictInputError(f"interval ({lo}, {hi}) or threshold {threshold} is NaN; a verdict needs numbers.",
                                "Pass None as the interval where the statistic does not exist.")
    if lo > hi:
        raise VerdictInputError(f"interval ({lo}, {hi}) has its low bound above its high bound.")
    t = float(threshold)
    if d is Direction.ABOVE:
        return Verdict.SUPPORTED if lo > t else Verdict.CONTRADICTED if hi <= t else Verdict.INCONCLUSIVE
    return Verdict.SUPPORTED if hi < t else Verdict.CONTRADICTED if lo >= t else Verdict.INCONCLUSIVE


def min_detectable_effect(replicates: Any = None, *, interval: tuple[float, float] | None = None,
                          alpha: float = 0.05) -> Any:
    """The smallest effect (distance from the threshold) that an interval of this precision resolves.

    From bootstrap ``replicates`` ``float [n_boot, ...]``: centre them on their mean (the null-centred
    distribution, as if the true effect were 0) and take its ``alpha/2`` and ``1 - alpha/2`` quantiles
    ``q_lo < 0 < q_hi``. An estimate ``e`` gives the interval ``[e + q_lo, e + q_hi]``, which excludes the
    threshold once ``e > -q_lo`` (or ``e < -q_hi``); the result is ``max(-q_lo, q_hi)``, the effect resolved
    in either direction (half the interval's width for a symmetric distribution). From an ``interval``
    ``(low, high)`` alone: half its width. Returns a float, or ``float [...]`` for replicates with extra axes.

    A true effect of exactly this size is resolved about half of the time; a conventional 80%-power
    minimal detectable effect is about 1.43 times larger (``(z_0.975 + z_0.8) / z_0.975``).
    """
    if (replicates is None) == (interval is None):
        raise VerdictInputError("pass exactly one of replicates or interval.")
    if not 0 < alpha < 1:
        raise VerdictInputError(f"alpha={alpha!r} must lie strictly between 0 and 1.")
    if interval is not None:
        lo, hi = (float(v) for v in interval)
        if not lo <= hi:
            raise VerdictInputError(f"interval ({lo}, {hi}) is reversed or NaN.")
        return (hi - lo) / 2
    r = np.asarray(replicates, dtype=np.float64)
    if r.ndim == 0 or r.shape[0] < 2 or not np.isfinite(r).all():
        raise VerdictInputError(f"replicates has shape {r.shape} or non-finite values; expected finite "
                                "[n_boot, ...] with n_boot >= 2.")
    q_lo, q_hi = np.quantile(r - r.mean(axis=0), [alpha / 2, 1 - alpha / 2], axis=0)
    out = np.maximum(-q_lo, q_hi)
    return float(out) if out.ndim == 0 else out
