"""Units and their verdicts under claims.yaml: layer thirds, a test set's resolution (P3), a two-sided
"within" verdict, and the aggregation of unit verdicts into independent groups (P5) and a claim (P6)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.stats.verdicts import Verdict

Z_95 = 1.96


def thirds(n_layers: int) -> tuple[list[int], list[int]]:
    """(lowest-third, top-third) transformer layer indices for a model with ``n_layers`` incl. embeddings."""
    L = n_layers - 1
    if L < 3:
        raise ValueError(f"{L} transformer layers are too few to split into thirds")
    m = max(1, round(L / 3))
    return list(range(1, m + 1)), list(range(L - m + 1, L + 1))


def resolution(n_words: int) -> float:
    """P3: ``r(n) = 100 * 1.96 * sqrt(0.25 / n)`` accuracy points, the worst-case 95% half-width of one
    accuracy over ``n_words`` independent test words."""
    if n_words < 1:
        raise ValueError(f"a test set of {n_words} words has no resolution")
    return 100 * Z_95 * math.sqrt(0.25 / n_words)


def decide_within(interval: tuple[float, float], limit: float) -> Verdict:
    """Verdict of "the statistic lies within ``+-limit``": SUPPORTED if the interval lies inside
    ``(-limit, limit)``, CONTRADICTED if it lies wholly outside ``[-limit, limit]`` on one side."""
    lo, hi = (float(v) for v in interval)
    if -limit < lo and hi < limit:
        return Verdict.SUPPORTED
    if lo >= limit or hi <= -limit:
        return Verdict.CONTRADICTED
    return Verdict.INCONCLUSIVE


def all_of(verdicts: Sequence[Verdict]) -> Verdict:
    """Parts that must all hold (e.g. C2's low and top): SUPPORTED if all are, CONTRADICTED if any is,
    NOT_APPLICABLE if any is, else INCONCLUSIVE."""
    if any(v is Verdict.NOT_APPLICABLE for v in verdicts):
        return Verdict.NOT_APPLICABLE
    if any(v is Verdict.CONTRADICTED for v in verdicts):
        return Verdict.CONTRADICTED
    return Verdict.SUPPORTED if all(v is Verdict.SUPPORTED for v in verdicts) else Verdict.INCONCLUSIVE


def group_verdict(members: Sequence[Verdict]) -> Verdict:
    """P5: an independence group is SUPPORTED (CONTRADICTED) only if all its applicable members are;
    NOT_APPLICABLE if none is applicable; otherwise INCONCLUSIVE."""
    applicable = [v for v in members if v is not Verdict.NOT_APPLICABLE]
    if not applicable:
        return Verdict.NOT_APPLICABLE
    for v in (Verdict.SUPPORTED, Verdict.CONTRADICTED):
        if all(x is v for x in applicable):
            return v
    return Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class ClaimOutcome:
    """A claim's verdict over its independent units, the groups' verdicts and members, and why."""

    verdict: Verdict
    groups: dict[str, Verdict]
    members: dict[str, list[str]]
    reason: str


def claim_verdict(unit_verdicts: Mapping[str, Verdict], unit_group: Mapping[str, str]) -> ClaimOutcome:
    """P6 over the independence groups of ``unit_verdicts`` (unit name -> verdict; ``unit_group``: unit
    name -> group). SUPPORTED when more than half of the applicable groups are SUPPORTED and none is
    CONTRADICTED; CONTRADICTED the other way round; NOT_APPLICABLE when no group is applicable; otherwise
    INCONCLUSIVE, with a reason that says whether the groups disagree or lack resolution."""
    members: dict[str, list[str]] = {}
    for unit in unit_verdicts:
        members.setdefault(unit_group[unit], []).append(unit)
    groups = {g: group_verdict([unit_verdicts[u] for u in us]) for g, us in members.items()}
    applicable = [v for v in groups.values() if v is not Verdict.NOT_APPLICABLE]
    n = len(applicable)
    n_sup = sum(v is Verdict.SUPPORTED for v in applicable)
    n_con = sum(v is Verdict.CONTRADICTED for v in applicable)
    counts = (f"{n_sup} of {n} independent units SUPPORTED, {n_con} CONTRADICTED, {n - n_sup - n_con} "
              f"INCONCLUSIVE")
    if n == 0:
        return ClaimOutcome(Verdict.NOT_APPLICABLE, groups, members, "no independent unit can be tested")
    if n_sup * 2 > n and n_con == 0:
        verdict, why = Verdict.SUPPORTED, "more than half SUPPORTED, none CONTRADICTED"
    elif n_con * 2 > n and n_sup == 0:
        verdict, why = Verdict.CONTRADICTED, "more than half CONTRADICTED, none SUPPORTED"
    elif n_sup and n_con:
        verdict, why = Verdict.INCONCLUSIVE, "the units disagree"
    else:
        verdict, why = Verdict.INCONCLUSIVE, "the intervals do not resolve the threshold"
    return ClaimOutcome(verdict, groups, members, f"{counts}: {why}")
