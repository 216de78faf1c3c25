"""Units and aggregation under claims.yaml: thirds, resolution (P3), within-verdicts, P5 groups, P6."""

from __future__ import annotations

import pytest

from pipeline.analysis.units import all_of, claim_verdict, decide_within, group_verdict, resolution, thirds
from pipeline.stats.verdicts import Verdict

S, C, INC, N = Verdict.SUPPORTED, Verdict.CONTRADICTED, Verdict.INCONCLUSIVE, Verdict.NOT_APPLICABLE


def test_thirds() -> None:
    assert thirds(7) == ([1, 2], [5, 6])
    assert thirds(13) == ([1, 2, 3, 4], [9, 10, 11, 12])
    with pytest.raises(ValueError):
        thirds(3)


def test_resolution_matches_claims_yaml() -> None:
    assert resolution(2495) == pytest.approx(1.96, abs=0.005)   # the offline WSJ sample
    assert resolution(47000) == pytest.approx(0.45, abs=0.005)  # a paper-sized POS test set


@pytest.mark.parametrize(("ci", "verdict"), [((-0.5, 0.9), S), ((1.0, 2.0), C), ((-3.0, -1.0), C),
                                             ((0.5, 1.5), INC), ((-1.0, 0.0), INC)])
def test_decide_within(ci: tuple[float, float], verdict: Verdict) -> None:
    assert decide_within(ci, 1.0) is verdict


def test_all_of() -> None:
    assert all_of([S, S]) is S and all_of([S, INC]) is INC and all_of([S, C]) is C and all_of([S, N]) is N


@pytest.mark.parametrize(("members", "verdict"), [([S, S], S), ([C, C], C), ([S, C], INC), ([S, INC], INC),
                                                  ([S, N], S), ([N, N], N)])
def test_group_verdict(members: list[Verdict], verdict: Verdict) -> None:
    assert group_verdict(members) is verdict


def test_claim_verdict_counts_groups_not_units() -> None:
    """Two SUPPORTED units in one group and one CONTRADICTED unit alone: 1 of 2 groups each way."""
    out = claim_verdict({"a1": S, "a2": S, "b": C}, {"a1": "A", "a2": "A", "b": "B"})
    assert out.groups == {"A": S, "B": C} and out.members == {"A": ["a1", "a2"], "B": ["b"]}
    assert out.verdict is INC and "disagree" in out.reason


@pytest.mark.parametrize(("groups", "verdict", "why"), [
    ([S, S, INC], S, "more than half SUPPORTED"),
    ([S, S, C], INC, "disagree"),
    ([C, C, INC], C, "more than half CONTRADICTED"),
    ([S, INC], INC, "do not resolve"),
    ([N, N], N, "no independent unit"),
    ([S, N], S, "1 of 1"),
])
def test_claim_verdict_p6(groups: list[Verdict], verdict: Verdict, why: str) -> None:
    names = {f"u{i}": v for i, v in enumerate(groups)}
    out = claim_verdict(names, {n: n for n in names})
    assert out.verdict is verdict and why in out.reason
