"""Verdicts from intervals, aggregation over independent units, minimal detectable effect."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import LingShiftError
from pipeline.stats.verdicts import Direction, Verdict, decide, min_detectable_effect

S, C, INC, NA = Verdict.SUPPORTED, Verdict.CONTRADICTED, Verdict.INCONCLUSIVE, Verdict.NOT_APPLICABLE


@pytest.mark.parametrize(("interval", "direction", "expected"), [
    ((0.2, 0.5), "above", S), ((-0.5, -0.1), "above", C), ((-0.1, 0.1), "above", INC),
    ((0.0, 0.3), "above", INC), ((-0.3, 0.0), "above", C),   # touching t: not wholly above; wholly <= t
    ((-0.5, -0.1), "below", S), ((0.2, 0.5), "below", C), ((-0.1, 0.1), "below", INC),
    ((-0.3, 0.0), "below", INC), ((0.0, 0.3), "below", C),
    (None, "above", NA),
])
def test_decide(interval, direction, expected):
    assert decide(interval, 0.0, direction) is expected


def test_decide_threshold_and_enum_direction():
    assert decide((9.0, 11.0), 10.0, Direction.ABOVE) is INC
    assert decide((10.5, 11.0), 10.0, Direction.ABOVE) is S
    assert str(S) == "SUPPORTED"


@pytest.mark.parametrize("bad", [((1.0, 0.0), 0.0, "above"), ((float("nan"), 1.0), 0.0, "above"),
                                 ((0.0, 1.0), 0.0, "sideways")])
def test_decide_bad_input(bad):
    with pytest.raises(LingShiftError):
        decide(*bad)


def test_min_detectable_effect():
    rng = np.random.default_rng(0)
    reps = rng.normal(5.0, 1.0, size=(20000, 3)) * np.array([1.0, 2.0, 0.5])
    mde = min_detectable_effect(reps)
    assert mde.shape == (3,)
    np.testing.assert_allclose(mde, 1.96 * np.array([1.0, 2.0, 0.5]), rtol=0.03)
    assert min_detectable_effect(interval=(1.0, 3.0)) == 1.0
    # asymmetric: the larger tail decides
    skew = np.concatenate([np.zeros(900), np.full(100, 10.0)])
    assert min_detectable_effect(skew) == pytest.approx(9.0)
    assert isinstance(min_detectable_effect(reps[:, 0]), float)


@pytest.mark.parametrize("kwargs", [{}, {"replicates": [1.0, 2.0], "interval": (0, 1)}, {"interval": (2.0, 1.0)},
                                    {"replicates": [1.0]}, {"replicates": [1.0, np.nan]},
                                    {"replicates": [1.0, 2.0], "alpha": 1.5}])
def test_min_detectable_effect_bad_input(kwargs):
    with pytest.raises(LingShiftError):
        min_detectable_effect(**kwargs)
