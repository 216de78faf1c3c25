"""Sentence-level (cluster) bootstrap: reference values, coverage under sentence effects, pairing, hierarchy."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import LingShiftError
from pipeline.stats.resample import (
    BOOTSTRAP_UNIT,
    cluster_bootstrap,
    hierarchical_bootstrap,
    interval_record,
    paired_cluster_bootstrap,
    percentile_interval,
    resample_counts,
    sentence_totals,
)


def clustered_data(rng: np.random.Generator, n_sent: int = 40, mean: float = 0.8, conc: float = 2.5):
    """Words correct with a per-sentence probability ~ Beta (mean ``mean``): strong sentence effects.
    Sentence lengths (3..13) are independent of the probability, so the true accuracy is ``mean``."""
    lengths = rng.integers(3, 14, n_sent)
    p = rng.beta(mean * conc, (1 - mean) * conc, n_sent)
    sid = np.repeat(np.arange(n_sent), lengths)
    return (rng.random(sid.shape[0]) < p[sid]).astype(float), sid


def test_sentence_totals():
    c = np.array([[1, 0, 1, 1, 0], [0, 0, 1, 1, 1]], dtype=float)
    sums, n, ids = sentence_totals(c, np.array([7, 3, 7, 3, 9]))
    assert ids.tolist() == [3, 7, 9] and n.tolist() == [2, 2, 1]
    assert sums.tolist() == [[1, 2, 0], [1, 1, 1]]


def test_replicates_match_plain_reference():
    rng = np.random.default_rng(3)
    c, sid = clustered_data(rng, n_sent=12)
    c = np.stack([c, 1 - c])  # [2, words]
    reps = cluster_bootstrap(c, sid, n_boot=50, seed=11)
    counts = np.concatenate(list(resample_counts(12, 50, np.random.default_rng(11))))
    for r in range(50):
        words = np.concatenate([np.flatnonzero(sid == s) for s in range(12) for _ in range(int(counts[r, s]))])
        np.testing.assert_allclose(reps[r], c[:, words].mean(axis=1), rtol=1e-12)


def test_one_word_sentences_equal_word_bootstrap():
    rng = np.random.default_rng(4)
    c = (rng.random(30) < 0.7).astype(float)
    ids = rng.permutation(30) + 100  # one word per sentence, ids shuffled and offset
    reps = cluster_bootstrap(c, ids, n_boot=40, seed=5)
    ordered = c[np.argsort(ids)]  # sentences in ascending id order
    counts = np.concatenate(list(resample_counts(30, 40, np.random.default_rng(5))))
    word_boot = np.array([ordered[np.repeat(np.arange(30), row.astype(int))].mean() for row in counts])
    np.testing.assert_allclose(reps, word_boot, rtol=1e-12)


def test_shapes_determinism_and_chunks():
    rng = np.random.default_rng(0)
    c, sid = clustered_data(rng)
    c3 = np.stack([np.stack([c, c[::-1]])] * 3)  # [3, 2, words]
    assert cluster_bootstrap(c, sid, n_boot=20).shape == (20,)
    assert cluster_bootstrap(c3, sid, n_boot=20).shape == (20, 3, 2)
    a = cluster_bootstrap(c3[0], sid, n_boot=64, seed=9)
    np.testing.assert_array_equal(a, cluster_bootstrap(c3[0], sid, n_boot=64, seed=9))
    for chunk in (1, 7, 64):
        np.testing.assert_array_equal(a, cluster_bootstrap(c3[0], sid, n_boot=64, seed=9, chunk=chunk))
    assert not np.array_equal(a, cluster_bootstrap(c3[0], sid, n_boot=64, seed=10))
    np.testing.assert_array_equal(a, cluster_bootstrap(c3[0].astype(bool), sid, n_boot=64, seed=9))  # bool input
    counts = np.concatenate(list(resample_counts(40, 10, np.random.default_rng(0), chunk=3)))
    assert counts.shape == (10, 40) and (counts.sum(axis=1) == 40).all()


def test_coverage_sentence_level_nominal_word_level_under():
    """400 simulated datasets (60 sentences of 3..13 words, per-sentence accuracy ~ Beta(2, 0.5), mean 0.8):
    the 95% sentence interval covers the true accuracy close to 95% of the time, the word-level one (each
    word its own unit) far less. Datasets share one sentence layout, so 100 of them go through one call."""
    rng = np.random.default_rng(0)
    sid = np.repeat(np.arange(60), rng.integers(3, 14, 60))
    hit_sent, hit_word = [], []
    for group in range(4):
        p = rng.beta(2.0, 0.5, (100, 60))
        c = (rng.random((100, sid.shape[0])) < p[:, sid]).astype(float)  # [datasets, words]
        lo, hi = percentile_interval(cluster_bootstrap(c, sid, n_boot=400, seed=group))
        hit_sent += list((lo <= 0.8) & (0.8 <= hi))
        lo, hi = percentile_interval(cluster_bootstrap(c, np.arange(sid.shape[0]), n_boot=400, seed=group))
        hit_word += list((lo <= 0.8) & (0.8 <= hi))
    cov_sent, cov_word = np.mean(hit_sent), np.mean(hit_word)
    assert 0.90 <= cov_sent <= 0.98, cov_sent
    assert cov_word <= 0.85, cov_word


def test_paired_is_difference_on_same_sentences():
    rng = np.random.default_rng(1)
    a, sid = clustered_data(rng)
    b = np.where(rng.random(a.shape[0]) < 0.1, 1 - a, a)
    d = paired_cluster_bootstrap(a, b, sid, n_boot=100, seed=3)
    np.testing.assert_allclose(d, cluster_bootstrap(b, sid, 100, 3) - cluster_bootstrap(a, sid, 100, 3), atol=1e-15)
    # pairing removes the shared sentence variance: narrower than unpaired
    unpaired = cluster_bootstrap(b, sid, 100, 3) - cluster_bootstrap(a, sid, 100, 4)
    assert d.std() < unpaired.std()


def test_hierarchical_single_seed_equals_paired():
    rng = np.random.default_rng(6)
    base, sid = clustered_data(rng)
    ft = np.stack([np.stack([base, 1 - base])])  # [1, 2, words]
    b2 = np.stack([base, base])
    h = hierarchical_bootstrap(ft, b2, sid, n_boot=80, seed=2)
    assert h.shape == (80, 2)
    np.testing.assert_allclose(h, paired_cluster_bootstrap(b2, ft[0], sid, n_boot=80, seed=2), atol=1e-15)
    # identical seeds: resampling them changes nothing
    np.testing.assert_allclose(hierarchical_bootstrap(np.repeat(ft, 4, axis=0), b2, sid, n_boot=80, seed=2), h,
                               atol=1e-12)


def test_hierarchical_resamples_seeds():
    """Per-seed accuracy constant over words: only the seed level varies, as a bootstrap of seed means."""
    n_words, levels = 200, np.array([0.70, 0.74, 0.80, 0.90, 0.86])
    sid = np.arange(n_words) // 5
    ft = np.broadcast_to(levels[:, None, None], (5, 1, n_words))
    base = np.full((1, n_words), 0.6)
    h = hierarchical_bootstrap(ft, base, sid, n_boot=4000, seed=0)[:, 0]
    assert np.isclose(h.mean(), levels.mean() - 0.6, atol=0.005)
    assert np.isclose(h.std(), levels.std() / np.sqrt(5), rtol=0.05)
    sentence_only = paired_cluster_bootstrap(base, ft.mean(axis=0), sid, n_boot=200, seed=0)
    assert np.ptp(sentence_only) < 1e-12 < np.ptp(h)
    # the random stream does not depend on the chunk size (sums may differ in the last bits)
    np.testing.assert_allclose(hierarchical_bootstrap(ft, base, sid, n_boot=50, seed=1),
                               hierarchical_bootstrap(ft, base, sid, n_boot=50, seed=1, chunk=3), atol=1e-12)


def test_interval_record():
    reps = np.random.default_rng(0).normal(size=(500, 3))
    rec = interval_record([0.0, 0.1, 0.2], reps, alpha=0.1, seed=4)
    lo, hi = percentile_interval(reps, 0.1)
    assert rec["ci_low"] == lo.tolist() and rec["ci_high"] == hi.tolist()
    assert rec["bootstrap_unit"] == BOOTSTRAP_UNIT == "sentence"
    assert rec["n_boot"] == 500 and rec["seed"] == 4 and rec["estimate"] == [0.0, 0.1, 0.2]


@pytest.mark.parametrize("call", [
    lambda: cluster_bootstrap(np.ones(5), np.arange(4)),                 # ids length
    lambda: cluster_bootstrap(np.ones(5), np.arange(5.0)),               # float ids
    lambda: cluster_bootstrap(np.array([1.0, np.nan]), np.arange(2)),    # NaN correctness
    lambda: cluster_bootstrap(np.ones(0), np.arange(0)),                 # no words
    lambda: cluster_bootstrap(np.ones(5), np.arange(5), n_boot=0),
    lambda: cluster_bootstrap(np.ones(5), np.arange(5), chunk=0),
    lambda: paired_cluster_bootstrap(np.ones(5), np.ones(4), np.arange(5)),
    lambda: hierarchical_bootstrap(np.ones((2, 3, 5)), np.ones((2, 5)), np.arange(5)),
    lambda: hierarchical_bootstrap(np.ones(5), np.ones(5), np.arange(5)),
    lambda: percentile_interval(np.ones((10, 2)), alpha=0.0),
    lambda: interval_record([0.0], np.ones((10, 2))),
])
def test_bad_input(call):
    with pytest.raises(LingShiftError):
        call()
