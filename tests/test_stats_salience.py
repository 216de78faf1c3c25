"""Salience gate: top-k against random k-sets (selection and ablation), random subsets."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import LingShiftError
from pipeline.stats.salience import (
    MIN_RANDOM_SETS,
    ablation_salience,
    random_subsets,
    salience_gate,
    selection_salience,
)


def test_random_subsets():
    s = random_subsets(2688, 50, 200, seed=3)
    assert s.shape == (200, 50) and s.dtype == np.int64
    assert all(len(set(row)) == 50 for row in s.tolist())
    assert (np.diff(s, axis=1) > 0).all() and s.min() >= 0 and s.max() < 2688
    np.testing.assert_array_equal(s, random_subsets(2688, 50, 200, seed=3))
    assert not np.array_equal(s, random_subsets(2688, 50, 200, seed=4))
    # every neuron about equally likely
    counts = np.bincount(random_subsets(20, 5, 4000, seed=0).ravel(), minlength=20)
    assert counts.min() > 0.85 * 1000 and counts.max() < 1.15 * 1000
    assert random_subsets(7, 7, 2).tolist() == [list(range(7))] * 2


def test_selection_block_shape_and_decision():
    rnd = np.linspace(0.90, 0.94, MIN_RANDOM_SETS)
    block = selection_salience(0.95, rnd)
    assert set(block) >= {"n_random", "topk_accuracy", "random_accuracy", "salient"}
    assert set(block["random_accuracy"]) >= {"mean", "ci_low", "ci_high"}
    assert block["n_random"] == 100 and block["salient"] is True and block["topk_accuracy"] == 0.95
    ra = block["random_accuracy"]
    assert ra["ci_low"] == pytest.approx(np.quantile(rnd, 0.025)) and ra["ci_high"] == pytest.approx(
        np.quantile(rnd, 0.975))
    assert ra["ci_low"] < ra["mean_ci_low"] < ra["mean"] < ra["mean_ci_high"] < ra["ci_high"]
    # the POS case: a top-k below the random mean is not salient
    assert selection_salience(0.9238, np.full(100, 0.9311) + np.linspace(-1e-3, 1e-3, 100))["salient"] is False
    # above the mean but inside the random spread: not salient either
    assert selection_salience(0.935, rnd)["salient"] is False


def test_ablation_block_and_gate():
    rnd = np.linspace(0.9220, 0.9250, 100)
    hurt = ablation_salience(0.900, rnd)
    assert hurt["salient"] is True and "below" in hurt["reason"]
    assert ablation_salience(0.9210, rnd)["salient"] is True
    assert ablation_salience(0.9230, rnd)["salient"] is False  # zeroing top-k hurts no more than random
    sel = selection_salience(0.95, np.linspace(0.90, 0.94, 100))
    assert salience_gate(sel, hurt)["salient"] is True
    gate = salience_gate(sel, ablation_salience(0.9230, rnd))
    assert gate["salient"] is False and "not below" in gate["reason"]


@pytest.mark.parametrize("call", [
    lambda: random_subsets(10, 11, 5),
    lambda: random_subsets(10, 0, 5),
    lambda: random_subsets(10, 3, 0),
    lambda: selection_salience(0.9, [0.5]),
    lambda: selection_salience(0.9, [[0.5, 0.6]]),
    lambda: selection_salience(float("nan"), [0.5, 0.6]),
    lambda: ablation_salience(0.9, [0.5, np.inf]),
    lambda: selection_salience(0.9, [0.5, 0.6], alpha=1.0),
])
def test_bad_input(call):
    with pytest.raises(LingShiftError):
        call()
