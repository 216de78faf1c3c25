"""Bootstrap intervals (shared resamples across layers, paired deltas) and seed repeats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.store import ActivationStore, ActivationWriter
from pipeline.uncertainty import (
    UncertaintyInputError,
    bootstrap_ci,
    bootstrap_counts,
    compare_stores,
    over_seeds,
    paired_bootstrap,
    probe_with_uncertainty,
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



def write_store(path: Path, X: np.ndarray, y: np.ndarray, names: list[str], words: int = 10) -> ActivationStore:
    """A real-format store of ``X: [n, layers, dim]``; sentences of ``words`` words, splits 60/20/20 %."""
    n = len(y)
    n_sent = n // words
    with ActivationWriter(path, n, X.shape[1], X.shape[2]) as w:
        w.write_rows(np.arange(n), X.astype(np.float16))
        w.commit(np.arange(0, n + 1, words), [["w"] * words] * n_sent, y, names,
                 {"train": (0, n_sent * 6 // 10), "dev": (n_sent * 6 // 10, n_sent * 8 // 10),
                  "test": (n_sent * 8 // 10, n_sent)}, {})
    return ActivationStore(path)


def test_store_level_seed_repeats_and_paired_comparison(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 3, n)
    centers = rng.normal(0, 4, (3, 4))

    def acts(signal: float) -> np.ndarray:
        X = rng.normal(0, 1, (n, 2, 4))
        X[:, 1] += signal * centers[y]  # layer 1 carries the label with strength ``signal``
        return X

    base = write_store(tmp_path / "base", acts(1.0), y, ["A", "B", "C"])
    tuned = write_store(tmp_path / "tuned", acts(0.1), y, ["A", "B", "C"])
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fast = dict(epochs=5, batch_size=64, lr=1e-2)
        res = probe_with_uncertainty(base, seeds=(0, 1), n_boot=200, **fast)
        cmp = compare_stores(base, tuned, seeds=(0, 1), n_boot=200, **fast)
    finally:
        torch.set_num_threads(before)
    json.dumps(res)
    json.dumps(cmp)
    assert len(res["per_seed"]) == 2 and res["layers"] == [0, 1]
    assert res["bootstrap"]["ci_low"][1] <= res["mean"][1] <= res["bootstrap"]["ci_high"][1]
    assert res["mean"][1] > 0.9
    assert cmp["ci_high"][1] < 0  # the "fine-tuned" store (weak signal) lost accuracy in layer 1
    other = write_store(tmp_path / "other", acts(1.0)[:200], y[:200], ["A", "B", "C"])
    with pytest.raises(UncertaintyInputError, match="same test words"):
        compare_stores(base, other)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_trained_probe_stands_in_for_its_seed(tmp_path: Path) -> None:
    from pipeline.probe import LayerProbes, probe_store

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    X = rng.normal(0, 1, (300, 2, 4))
    X[:, 1] += rng.normal(0, 3, (3, 4))[y]
    st = write_store(tmp_path / "s", X, y, ["A", "B", "C"])
    fast = dict(epochs=4, batch_size=64, lr=1e-2)
    seed0, _ = probe_store(st, seed=0, **fast)
    plain = probe_with_uncertainty(st, seeds=(0, 1), n_boot=100, **fast)
    assert probe_with_uncertainty(st, seeds=(0, 1), n_boot=100, trained=seed0, **fast) == plain
    r = {s: st.split_rows(s) for s in ("train", "dev", "test")}
    weak = LayerProbes(seed=0, epochs=1, batch_size=64, lr=1e-4)
    weak.fit(st.activations[r["train"]], st.labels[r["train"]], label_names=st.label_names)
    used = probe_with_uncertainty(st, seeds=(0, 1), n_boot=100, trained=weak, **fast)
    np.testing.assert_allclose(used["per_seed"][0], weak.score(st.activations[r["test"]], st.labels[r["test"]]))
    assert used["per_seed"][1] == plain["per_seed"][1]


def test_bootstrap_replicates_share_resamples() -> None:
    from pipeline.uncertainty import UncertaintyInputError, bootstrap_replicates

    rng = np.random.default_rng(0)
    a = rng.random((3, 50)) < 0.7
    ra, rb = bootstrap_replicates([a, a], n_boot=64, seed=5)
    assert ra.shape == (64, 3)
    np.testing.assert_array_equal(ra, rb)  # same words resampled for both -> identical replicates
    (rc,) = bootstrap_replicates([a], n_boot=64, seed=5)
    np.testing.assert_array_equal(ra, rc)  # and reproducible from the seed
    with pytest.raises(UncertaintyInputError, match="different numbers of words"):
        bootstrap_replicates([a, a[:, :10]])
