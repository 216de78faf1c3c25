"""Batched neuron subsets: Subsets view, per-seed batched fits, masked grid scan, rankings, salience inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.probing.batched import batch_orders, fit_seeds
from pipeline.probing.inputs import ProbeInputError
from pipeline.probing.solver import SolverConfig, fit
from pipeline.probing.subsets import (
    ablation_accuracy,
    ablation_accuracy_seeds,
    grid_points,
    grid_scan,
    nested_fit,
    neuron_std,
    oracle_seeds,
    random_subset_accuracy,
    ranking_agreement,
    raw_ranking,
    standardised_ranking,
    subsample_rows,
)
from pipeline.probing.views import Ablated, Concat, Subsets, view_from_json
from pipeline.stats.salience import ablation_salience, random_subsets, selection_salience

FAST = SolverConfig(epochs=6, batch_size=64, lr=1e-2)
PLANTED = np.array([5, 17, 23, 31])  # 4 informative neurons among 4 layers x 10 dims

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def planted(n: int, seed: int, informative: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``X [n, 4, 10]`` of noise, ``y [n]`` of 3 classes; planted neuron ``j`` marks class ``j % 3`` (noisily)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 40)).astype(np.float32)
    if informative:
        X[:, PLANTED] += 2.5 * (y[:, None] == np.arange(len(PLANTED)) % 3)
    return X.reshape(n, 4, 10), y


@pytest.fixture(scope="module")
def data() -> dict:
    (X, y), (Xd, yd), (Xt, yt) = planted(1200, 0), planted(400, 1), planted(400, 2)
    return {"X": X, "y": y, "Xd": Xd, "yd": yd, "Xt": Xt, "yt": yt}


def test_subsets_view_shapes_json_and_validation(data: dict) -> None:
    sets = random_subsets(40, 5, 7, seed=0)
    v = Subsets(sets)
    assert v.shape(4, 10) == (7, 5) and v.layer_ids(4) == list(range(7))
    c = v.chunk(data["X"], slice(0, 30))
    assert c.shape == (7, 30, 5) and c.dtype == torch.float32
    flat = data["X"][:30].reshape(30, 40)
    np.testing.assert_array_equal(c[3].numpy(), flat[:, sets[3]])
    again = view_from_json(v.to_json())
    assert isinstance(again, Subsets) and np.array_equal(again.sets, sets)
    assert v.chunk_rows(4, 10, 10**6, 1.0) == 2**20 // (4 * 7 * 5 + 8 * 40)
    with pytest.raises(ProbeInputError, match="outside"):
        Subsets([[0, 40]]).shape(4, 10)
    with pytest.raises(ProbeInputError, match="n_sets, k"):
        Subsets(np.zeros((0, 3), dtype=np.int64))


def test_batched_subsets_equal_single_fits(data: dict) -> None:
    sets = random_subsets(40, 6, 5, seed=1)
    joint, _ = fit(data["X"], data["y"], data["Xd"], data["yd"], view=Subsets(sets), config=FAST)
    for s in range(len(sets)):
        alone, _ = fit(data["X"], data["y"], data["Xd"], data["yd"], view=Concat(sets[s]), config=FAST)
        np.testing.assert_allclose(joint.weights[s], alone.weights[0], rtol=1e-4, atol=1e-6)


def test_oracle_seeds_equal_one_fit_per_seed(data: dict) -> None:
    probes = oracle_seeds(data["X"], data["y"], data["Xd"], data["yd"], [0, 3], config=FAST)
    assert len(probes) == 2 and probes[0].weights.shape == (1, 40, 3)
    for p, seed in zip(probes, [0, 3], strict=True):
        alone, _ = fit(data["X"], data["y"], data["Xd"], data["yd"], view=Concat(),
                       config=SolverConfig(epochs=6, batch_size=64, lr=1e-2, seed=seed))
        np.testing.assert_allclose(p.weights, alone.weights, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(p.bias, alone.bias, rtol=1e-4, atol=1e-6)
        assert p.score(data["Xt"], data["yt"])[0] == alone.score(data["Xt"], data["yt"])[0]
    assert not np.allclose(probes[0].weights, probes[1].weights)


def test_masked_grid_equals_gathered_grid(data: dict) -> None:
    order = np.random.default_rng(5).permutation(40)
    ks = [3, 8, 20]
    res = nested_fit(data["X"], data["y"], data["Xd"], data["yd"], order, ks, [0, 2], FAST)
    assert res["dev"].shape == (3, 2) and res["weights"].shape == (3, 2, 20, 3)
    for g, k in enumerate(ks):
        assert not res["weights"][g, :, k:].any()  # masked weights never leave 0
        for s, seed in enumerate([0, 2]):
            alone, _ = fit(data["X"], data["y"], data["Xd"], data["yd"], view=Concat(order[:k]),
                           config=SolverConfig(epochs=6, batch_size=64, lr=1e-2, seed=seed))
            np.testing.assert_allclose(res["weights"][g, s, :k], alone.weights[0], rtol=1e-4, atol=1e-6)
            assert res["dev"][g, s] == pytest.approx(alone.score(data["Xd"], data["yd"])[0], abs=1e-6)


def test_batch_orders_cover_every_row_once_per_epoch() -> None:
    orders = batch_orders(130, 32, 3, seed=4)
    assert len(orders) == 3 and all(len(e) == 5 for e in orders)
    for epoch in orders:
        assert sorted(torch.cat(epoch).tolist()) == list(range(130))
    assert any(not torch.equal(a, b) for a, b in zip(orders[0], orders[1], strict=True))  # reshuffled per epoch


def test_planted_set_is_found_and_salient(data: dict) -> None:
    oracle = oracle_seeds(data["X"], data["y"], data["Xd"], data["yd"], [0], config=FAST)[0]
    ranking = raw_ranking(oracle.weights[0])
    assert set(ranking[:4].tolist()) == set(PLANTED.tolist())
    rnd = random_subset_accuracy(data["X"], data["y"], data["Xd"], data["yd"], data["Xt"], data["yt"], 4,
                                 n_random=100, seed=0, config=FAST, topk=ranking[:4])
    assert rnd["sets"].shape == (100, 4) and rnd["test"].shape == (100,)
    assert selection_salience(rnd["topk"]["test"], rnd["test"])["salient"] is True
    top_abl = ablation_accuracy(oracle, data["Xt"], data["yt"], np.sort(ranking[:4])[None])[0]
    rnd_abl = ablation_accuracy(oracle, data["Xt"], data["yt"], rnd["sets"])
    assert ablation_salience(top_abl, rnd_abl)["salient"] is True
    assert top_abl < 0.45  # all class information gone: about chance (1/3)


def test_a_ranking_of_pure_noise_is_not_salient() -> None:
    (X, y), (Xd, yd), (Xt, yt) = (planted(1200, s, informative=False) for s in (0, 1, 2))
    oracle = oracle_seeds(X, y, Xd, yd, [0], config=FAST)[0]
    ranking = raw_ranking(oracle.weights[0])
    rnd = random_subset_accuracy(X, y, Xd, yd, Xt, yt, 4, n_random=100, seed=0, config=FAST, topk=ranking[:4])
    assert selection_salience(rnd["topk"]["test"], rnd["test"])["salient"] is False
    top_abl = ablation_accuracy(oracle, Xt, yt, np.sort(ranking[:4])[None])[0]
    assert ablation_salience(top_abl, ablation_accuracy(oracle, Xt, yt, rnd["sets"]))["salient"] is False


def test_ablation_accuracy_equals_the_ablated_view(data: dict) -> None:
    oracle = oracle_seeds(data["X"], data["y"], data["Xd"], data["yd"], [1], config=FAST)[0]
    sets = random_subsets(40, 7, 12, seed=3)
    fast = ablation_accuracy(oracle, data["Xt"], data["yt"], sets)
    slow = [oracle.with_view(Ablated(oracle.view, s)).score(data["Xt"], data["yt"])[0] for s in sets]
    np.testing.assert_allclose(fast, slow, atol=1.5 / len(data["yt"]))  # at most a near-tie word apart
    with pytest.raises(ProbeInputError, match="oracle over all neurons"):
        ablation_accuracy(oracle.with_view(Ablated(oracle.view, [0])), data["Xt"], data["yt"], sets)


def test_ablation_over_seeds_equals_one_call_per_seed(data: dict) -> None:
    oracles = oracle_seeds(data["X"], data["y"], data["Xd"], data["yd"], [0, 1, 2], config=FAST)
    own = np.stack([np.sort(raw_ranking(o.weights[0])[:6]) for o in oracles])  # each oracle's top-6
    shared = random_subsets(40, 6, 20, seed=4)
    both = ablation_accuracy_seeds(oracles, data["Xt"], data["yt"], own, shared)
    assert both.shape == (3, 21)
    for p, o in enumerate(oracles):  # exactly: the same logits, whichever oracle shares the gathered inputs
        alone = ablation_accuracy(o, data["Xt"], data["yt"], np.concatenate([own[p:p + 1], shared]))
        assert np.array_equal(both[p], alone)
    assert np.array_equal(ablation_accuracy_seeds(oracles, data["Xt"], data["yt"], None, shared), both[:, 1:])
    assert both[:, 0].max() < both[:, 1:].mean()  # the planted neurons' ablation hurts more than random sets'
    with pytest.raises(ProbeInputError, match="one set of k=6 per oracle"):
        ablation_accuracy_seeds(oracles, data["Xt"], data["yt"], own[:2], shared)
    with pytest.raises(ProbeInputError, match="ids in 0..39"):
        ablation_accuracy_seeds(oracles, data["Xt"], data["yt"], own, shared + 40)


def test_subsets_chunk_applies_the_row_permutation(data: dict) -> None:
    sets = random_subsets(40, 9, 4, seed=2)
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(0))
    c = Subsets(sets).chunk(data["X"], slice(10, 60), perm=perm)
    flat = data["X"][10:60].reshape(50, 40)[perm.numpy()]
    for s in range(len(sets)):
        assert np.array_equal(c[s].numpy(), flat[:, sets[s]])
    assert c.is_contiguous() and c.dtype == torch.float32


def test_grid_scan_smallest_reaching_point_curve_and_spread(data: dict) -> None:
    oracle = oracle_seeds(data["X"], data["y"], data["Xd"], data["yd"], [0, 1, 2], config=FAST)
    target = 0.99 * float(np.mean([p.score(data["Xd"], data["yd"])[0] for p in oracle]))
    ranking = raw_ranking(oracle[0].weights[0])
    grid = [1, 2, 3, 4, 5, 6, 8, 10, 20, 40]
    out = grid_scan(data["X"], data["y"], data["Xd"], data["yd"], ranking, target, seeds=(0, 1, 2), grid=grid,
                    block=3, config=FAST)
    means = [p["dev_mean"] for p in out["curve"]]
    assert out["reached"] is True and out["scanned"] % 3 == 0 and out["scanned"] < len(grid)
    assert out["k"] == next(p["k"] for p in out["curve"] if p["dev_mean"] >= target)
    assert out["k"] >= 4 and max(means[:-3], default=0.0) < target  # earlier blocks never reached
    for p in out["curve"]:
        assert p["dev_mean"] == pytest.approx(np.mean(p["dev"])) and p["dev_std"] == pytest.approx(np.std(p["dev"]))
    assert len(out["seed_k"]) == 3
    again = grid_scan(data["X"], data["y"], data["Xd"], data["yd"], ranking, target, seeds=(0, 1, 2), grid=grid,
                      block=3, config=FAST)
    assert again == out  # deterministic


def test_grid_points_every_percent() -> None:
    g = grid_points(2688)
    assert len(g) == 100 and g[0] == 27 and g[-1] == 2688 and (np.diff(g) > 0).all()
    assert grid_points(50).tolist() == list(range(1, 51))
    assert grid_points(10, 0.25).tolist() == [3, 5, 8, 10]
    with pytest.raises(ProbeInputError):
        grid_points(10, 0.0)


def test_rankings_standardised_is_scale_free_and_agreement() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(20, 3)).astype(np.float32)
    std = rng.uniform(0.5, 2.0, 20)
    a = rng.uniform(1.0, 10.0, 20)  # neuron j's activations scaled by a_j: its weights shrink by a_j
    np.testing.assert_array_equal(standardised_ranking(w / a[:, None], std * a), standardised_ranking(w, std))
    np.testing.assert_array_equal(standardised_ranking(w, np.ones(20)), raw_ranking(w))
    agree = ranking_agreement([0, 1, 2, 15, 4], [2, 19, 0, 3, 5], 3, dim=10, n_layers=2)
    assert agree["overlap"] == pytest.approx(2 / 3)
    assert agree["mean_layer_a"] == 0.0 and agree["mean_layer_b"] == pytest.approx(1 / 3)
    with pytest.raises(ProbeInputError):
        ranking_agreement([0, 1], [1, 0], 3, dim=10, n_layers=1)
    with pytest.raises(ProbeInputError, match="one value per neuron"):
        standardised_ranking(w, np.ones(3))


def test_neuron_std_and_subsample_rows(data: dict) -> None:
    X = data["X"]
    np.testing.assert_allclose(neuron_std(X, memory_budget_mb=0.01), X.reshape(len(X), 40).std(0), rtol=1e-5)
    r = subsample_rows(1000, 100, seed=2)
    assert r.shape == (100,) and (np.diff(r) > 0).all() and r.max() < 1000
    np.testing.assert_array_equal(r, subsample_rows(1000, 100, seed=2))
    assert subsample_rows(50, None).tolist() == list(range(50)) and len(subsample_rows(50, 80)) == 50


def test_fit_seeds_refuses_bad_input() -> None:
    c, y = torch.zeros(2, 10, 4), torch.zeros(10, dtype=torch.int64)
    with pytest.raises(ProbeInputError, match="mask"):
        fit_seeds(c, y, 2, [0], mask=torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ProbeInputError, match="one shared input"):
        fit_seeds(c, y, 2, [0], n_probes=3)
    with pytest.raises(ProbeInputError, match="standardize"):
        fit_seeds(c, y, 2, [0], config=SolverConfig(standardize=True))
    with pytest.raises(ProbeInputError, match="seeds"):
        fit_seeds(c, y, 2, [])
