"""Bootstrap intervals (shared resamples across layers, paired deltas) and seed repeats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.stats.bootstrap import (
    UncertaintyInputError,
    accuracy_over_seeds,
    bootstrap_ci,
    bootstrap_counts,
    bootstrap_replicates,
    over_seeds,
    paired_bootstrap,
)


def test_counts_are_resamples_and_reproducible() -> None:
    a = np.concatenate(list(bootstrap_counts(50, n_boot=450, seed=7, chunk=200)))
    b = np.concatenate(list(bootstrap_counts(50, n_boot=450, seed=7, chunk=200)))
    assert a.shape == (450, 50) and (a.sum(1) == 50).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, np.concatenate(list(bootstrap_counts(50, n_boot=450, seed=8))))


def test_ci_brackets_accuracy_and_narrows_with_more_words() -> None:
    rng = np.random.default_rng(0)
    small = rng.random((2, 200)) < 0.8
    large = rng.random((2, 5000)) < 0.8
    ci_s, ci_l = bootstrap_ci(small, seed=1), bootstrap_ci(large, seed=1)
    for ci in (ci_s, ci_l):
        assert all(lo <= a <= hi for lo, a, hi in zip(ci["ci_low"], ci["accuracy"], ci["ci_high"], strict=True))
    width = lambda ci: np.subtract(ci["ci_high"], ci["ci_low"])  # noqa: E731
    assert (width(ci_l) < width(ci_s) / 3).all()
    assert bootstrap_ci(small, seed=1) == ci_s


def test_all_correct_gives_degenerate_interval() -> None:
    ci = bootstrap_ci(np.ones(30, dtype=bool), n_boot=100)
    assert ci["ci_low"] == [1.0] and ci["ci_high"] == [1.0]


def test_same_resamples_for_every_layer() -> None:
    row = np.random.default_rng(2).random(300) < 0.6
    ci = bootstrap_ci(np.stack([row, row, ~row]), n_boot=300, seed=3)
    assert ci["ci_low"][0] == ci["ci_low"][1] and ci["ci_high"][0] == ci["ci_high"][1]
    assert ci["ci_low"][2] == pytest.approx(1 - ci["ci_high"][0])  # complement, same resamples


def test_paired_bootstrap() -> None:
    rng = np.random.default_rng(4)
    a = rng.random((3, 1000)) < 0.7
    same = paired_bootstrap(a, a)
    assert same["delta"] == [0.0] * 3 and same["ci_low"] == [0.0] * 3 and same["ci_high"] == [0.0] * 3
    b = a.copy()
    b[:, :100] = True  # b fixes some of a's errors and never loses a word
    res = paired_bootstrap(a, b, seed=5)
    assert all(lo > 0 for lo in res["ci_low"]) and res["p_le_0"] == [0.0] * 3
    unpaired_width = 2 * 1.96 * np.sqrt(0.7 * 0.3 / 1000) * np.sqrt(2)
    assert (np.subtract(res["ci_high"], res["ci_low"]) < unpaired_width).all()  # pairing removes shared noise
    with pytest.raises(UncertaintyInputError, match="same layers and words"):
        paired_bootstrap(a, a[:, :10])


def test_over_seeds() -> None:
    res = over_seeds(lambda s: [0.5 + s / 10, 0.9], seeds=(0, 1, 2))
    assert res["mean"] == pytest.approx([0.6, 0.9])
    assert res["std"] == pytest.approx([0.1, 0.0])
    assert res["per_seed"][2] == pytest.approx([0.7, 0.9])
    with pytest.raises(UncertaintyInputError, match="seeds is empty"):
        over_seeds(lambda s: [1.0], seeds=())
    with pytest.raises(UncertaintyInputError, match="shape"):
        bootstrap_ci(np.zeros((2, 0)))


def test_accuracy_over_seeds() -> None:
    rng = np.random.default_rng(6)
    correct = rng.random((3, 2, 400)) < np.array([0.6, 0.9])[None, :, None]
    res = accuracy_over_seeds(correct, n_boot=100, seed=2)
    json.dumps(res)
    acc = correct.mean(-1)
    assert res["per_seed"] == acc.tolist()
    assert res["mean"] == pytest.approx(acc.mean(0).tolist()) and res["std"] == pytest.approx(acc.std(0, ddof=1))
    assert res["bootstrap"] == bootstrap_ci(correct.mean(0), n_boot=100, seed=2)  # over the seed-averaged words
    assert accuracy_over_seeds(correct[:1], n_boot=10)["std"] == [0.0, 0.0]
    with pytest.raises(UncertaintyInputError, match="seeds, layers, words"):
        accuracy_over_seeds(correct[0])


def test_bootstrap_replicates_share_resamples() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((3, 50)) < 0.7
    ra, rb = bootstrap_replicates([a, a], n_boot=64, seed=5)
    assert ra.shape == (64, 3)
    np.testing.assert_array_equal(ra, rb)  # same words resampled for both -> identical replicates
    (rc,) = bootstrap_replicates([a], n_boot=64, seed=5)
    np.testing.assert_array_equal(ra, rc)  # and reproducible from the seed
    with pytest.raises(UncertaintyInputError, match="different numbers of words"):
        bootstrap_replicates([a, a[:, :10]])
