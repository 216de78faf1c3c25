"""LCA: NeuroX ranking on a hand-checked example, minimal-set search vs exhaustive, analysis."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.probing.inputs import ProbeInputError
from pipeline.probing.lca import layer_distribution, neuron_ordering, oracle_probe, top_neurons
from pipeline.probing.linear import LinearProbe
from pipeline.probing.solver import SolverConfig
from pipeline.probing.views import Concat

FAST = SolverConfig(epochs=8, batch_size=64, lr=1e-2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# 5 neurons x 2 classes; each class's |w| sums to 1 and has no ties, signs mixed.
# class 0 by |w|: n0 .55, n2 .30, n1 .10, n4 .04, n3 .01 -> cumulative .55 .85 .95 .99 1
# class 1 by |w|: n3 .65, n1 .23, n4 .09, n2 .025, n0 .005 -> cumulative .65 .88 .97 .995 1
HAND_W = np.array([[0.55, -0.005], [-0.10, 0.23], [0.30, 0.025], [-0.01, -0.65], [0.04, 0.09]], dtype=np.float32)


def test_top_neurons_hand_checked() -> None:
    union, per_class = top_neurons(HAND_W, 0.7, class_names=["NN", "VB"])
    # NN needs n0 (.55) + n2 (.85 >= .7); VB needs n3 (.65) + n1 (.88 >= .7)
    assert per_class["NN"].tolist() == [0, 2] and per_class["VB"].tolist() == [3, 1]
    assert sorted(union.tolist()) == [0, 1, 2, 3]
    union0, per0 = top_neurons(HAND_W, 0.0)
    assert per0[0].tolist() == [0] and per0[1].tolist() == [3]  # at 0% each class keeps its top neuron
    _, per1 = top_neurons(HAND_W, 1.0)
    assert sorted(per1[0].tolist()) == [0, 1, 2, 3, 4]


def test_neuron_ordering_hand_checked() -> None:
    ordering, cutoffs = neuron_ordering(HAND_W, search_stride=10)
    # p = 0..0.5: {n0, n3}; 0.6: + n2 (class 0 passes .55); 0.7: + n1 (class 1 passes .65);
    # 0.9: + n4 (class 0 .85 < .9, class 1 .88 < .9); 1.0: nothing new
    assert ordering.tolist() == [0, 3, 2, 1, 4]
    assert cutoffs == [2, 2, 2, 2, 2, 2, 3, 4, 4, 5, 5]


def test_ordering_is_a_permutation_and_starts_with_each_class_top() -> None:
    rng = np.random.default_rng(1)
    W = rng.normal(size=(200, 7)).astype(np.float32)
    ordering, cutoffs = neuron_ordering(W)
    assert sorted(ordering.tolist()) == list(range(200))
    assert cutoffs[-1] == 200 and all(a <= b for a, b in zip(cutoffs, cutoffs[1:], strict=False))
    tops = set(np.abs(W).argmax(0).tolist())
    assert set(ordering[: cutoffs[0]].tolist()) == tops


def neurox_ordering(W: np.ndarray, search_stride: int = 100) -> tuple[list[int], list[int]]:
    """NeuroX 1.0.9's ``get_top_neurons`` / ``get_neuron_ordering`` transcribed literally (every prefix neuron
    added to the union set one by one, repeats included), for the hand-free parity tests below."""
    A = np.abs(np.ascontiguousarray(W.T, dtype=np.float32))
    ordering: list[int] = []
    considered: set[int] = set()
    cutoffs = []
    for i in range(search_stride + 1):
        union: set[int] = set()
        for c in range(A.shape[0]):
            total_mass = np.sum(A[c, :])
            sort_idx = np.argsort(A[c, :])[::-1]
            cum_sums = np.cumsum(A[c, sort_idx])
            unselected = np.where(cum_sums >= total_mass * (i / search_stride))[0]
            selected = np.arange(cum_sums.shape[0]) if unselected.shape[0] == 0 else np.arange(unselected[0] + 1)
            for t in sort_idx[selected]:
                union.add(int(t))
        new = set(list(union)).difference(considered)
        ordering = ordering + list(new)
        considered = considered.union(new)
        cutoffs.append(len(ordering))
    return ordering, cutoffs


@pytest.mark.parametrize("shape, ties", [((60, 3), True), ((384, 44), False), ((700, 9), True),
                                         ((2688, 41), False), ((2688, 41), True)])
def test_ordering_and_union_equal_neurox_set_order(shape: tuple[int, int], ties: bool) -> None:
    """Not just the same neurons per step: the same order inside each step (NeuroX's set iteration order)."""
    W = np.random.default_rng(shape[0] + ties).standard_normal(shape).astype(np.float32)
    if ties:  # many exactly equal |w| (and zeros)
        W = (np.round(W * 2) / 2).astype(np.float32)
    ordering, cutoffs = neuron_ordering(W, search_stride=25)
    ref, ref_cutoffs = neurox_ordering(W, search_stride=25)
    assert ordering.tolist() == ref and cutoffs == ref_cutoffs
    A = np.abs(W.T)
    for pct in (0.0, 0.4, 0.93, 1.0):
        union, per_class = top_neurons(W, pct)
        ref_union: set[int] = set()
        for c in range(A.shape[0]):
            ref_union.update(int(t) for t in per_class[c])
        assert union.tolist() == list(ref_union)


def test_ranking_rejects_bad_weights() -> None:
    with pytest.raises(ProbeInputError, match="neurons, classes"):
        neuron_ordering(np.zeros(5))
    with pytest.raises(ProbeInputError, match="NaN"):
        neuron_ordering(np.array([[np.nan, 1.0], [0.0, 1.0]]))


def blob_task(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """[n, 2 layers, 4 dims]: 4 classes = the signs of neurons 1 and 6; every other neuron is noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    X = rng.normal(0, 1, (n, 2, 4))
    X[:, 0, 1] = np.where(y & 1, 3.0, -3.0) + 0.3 * rng.normal(size=n)
    X[:, 1, 2] = np.where(y & 2, 3.0, -3.0) + 0.3 * rng.normal(size=n)
    return X.astype(np.float16), y


@pytest.fixture(scope="module")
def blobs4() -> dict[str, np.ndarray]:
    X, y = blob_task(900)
    return {"X": X[:600], "y": y[:600], "Xd": X[600:750], "yd": y[600:750], "Xt": X[750:], "yt": y[750:]}


def test_layer_distribution() -> None:
    d = layer_distribution([0, 1, 5, 9, 10, 11], dim=4, n_layers=3)
    assert d["counts"] == [2, 1, 3]
    assert d["fractions"] == pytest.approx([2 / 6, 1 / 6, 3 / 6])
    assert d["mean_layer"] == pytest.approx((0 * 2 + 1 * 1 + 2 * 3) / 6)


def test_oracle_is_one_layer_over_all_neurons(blobs4: dict) -> None:
    p = oracle_probe(blobs4["X"], blobs4["y"], config=FAST)
    assert isinstance(p, LinearProbe) and p.weights.shape == (1, 8, 4) and p.layer_ids == ["all"]
    assert isinstance(p.view, Concat) and p.view.neurons is None
