"""Layer probes: accuracy on toy tasks, the elastic-net penalty, save/load, validation, stores."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.probe import LayerProbes, NotFittedError, ProbeInputError, probe_store
from pipeline.store import ActivationStore, ActivationWriter

FAST = dict(epochs=8, batch_size=64, lr=1e-2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def blobs(n: int, n_layers: int = 3, dim: int = 6, classes: int = 3, seed: int = 0,
          informative: tuple[int, ...] = (1, 2)) -> tuple[np.ndarray, np.ndarray]:
    """X: float16 [n, layers, dim]; y: [n]. Layers in ``informative`` separate the classes
    linearly with a wide margin; the others are pure noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = rng.normal(0, 1, (n, n_layers, dim))
    centers = rng.normal(0, 1, (classes, dim))
    centers *= 8 / np.linalg.norm(centers, axis=1, keepdims=True)
    for k in informative:
        X[:, k] = 0.3 * X[:, k] + centers[y]
    return X.astype(np.float16), y


@pytest.fixture(scope="module")
def toy() -> dict[str, np.ndarray]:
    X, y = blobs(900)
    return {"X": X[:600], "y": y[:600], "Xd": X[600:750], "yd": y[600:750], "Xt": X[750:], "yt": y[750:]}


@pytest.fixture(scope="module")
def fitted(toy: dict[str, np.ndarray]) -> LayerProbes:
    return LayerProbes(**FAST).fit(toy["X"], toy["y"], toy["Xd"], toy["yd"])


def test_separable_layers_reach_100_percent_noise_layer_near_chance(fitted: LayerProbes, toy: dict) -> None:
    acc = fitted.score(toy["Xt"], toy["yt"])
    assert acc.shape == (3,)
    assert acc[1] >= 0.99 and acc[2] >= 0.99
    assert acc[0] < 0.6  # layer 0 is noise: 3 classes -> about 1/3


def test_shapes_and_probabilities(fitted: LayerProbes, toy: dict) -> None:
    proba = fitted.predict_proba(toy["Xt"])
    assert proba.shape == (len(toy["Xt"]), 3, 3)
    np.testing.assert_allclose(proba.sum(-1), 1.0, rtol=1e-5)
    pred = fitted.predict(toy["Xt"])
    assert pred.shape == (len(toy["Xt"]), 3)
    np.testing.assert_array_equal(pred, fitted.classes_[proba.argmax(-1)])
    assert fitted.coef_.shape == (3, 6, 3) and fitted.intercept_.shape == (3, 3)


def test_each_layer_equals_a_probe_trained_alone(toy: dict) -> None:
    """Batching layers changes nothing: layer k of the joint fit == a fit on layer k only."""
    joint = LayerProbes(**FAST).fit(toy["X"], toy["y"])
    alone = LayerProbes(layers=[2], **FAST).fit(toy["X"], toy["y"])
    np.testing.assert_allclose(joint.coef_[2], alone.coef_[0], rtol=1e-4, atol=1e-6)
    assert alone.layer_ids_ == [2]


def test_same_seed_same_weights_other_seed_differs(toy: dict) -> None:
    a = LayerProbes(seed=3, **FAST).fit(toy["X"], toy["y"], toy["Xd"], toy["yd"])
    b = LayerProbes(seed=3, **FAST).fit(toy["X"], toy["y"], toy["Xd"], toy["yd"])
    c = LayerProbes(seed=4, **FAST).fit(toy["X"], toy["y"], toy["Xd"], toy["yd"])
    np.testing.assert_array_equal(a.coef_std_, b.coef_std_)
    assert not np.array_equal(a.coef_std_, c.coef_std_)


@pytest.mark.parametrize("standardize", [False, True])
def test_elastic_net_shrinks_weights(toy: dict, standardize: bool) -> None:
    """More l1 -> smaller sum|W| and more near-zero weights; more l2 -> smaller ||W||_2."""
    def fit(l1: float, l2: float) -> np.ndarray:
        return LayerProbes(l1=l1, l2=l2, standardize=standardize, epochs=15, batch_size=64, lr=1e-2,
                           select_epoch=False).fit(toy["X"], toy["y"]).coef_

    lambdas = (0.0, 1e-2, 1e-1)
    w = [fit(l1, 0.0) for l1 in lambdas]
    sums = [np.abs(wi).sum() for wi in w]
    assert sums[0] > sums[1] > sums[2]
    near_zero = [(np.abs(wi) < 1e-3).sum() for wi in w]
    assert near_zero[0] < near_zero[1] < near_zero[2]
    assert np.abs(w[2][0]).max() < 1e-3  # the noise layer's weights are all driven to ~0
    norms = [np.linalg.norm(fit(0.0, l2)[1]) for l2 in lambdas]
    assert norms[0] > norms[1] > norms[2]


@pytest.mark.parametrize("standardize", [False, True])
def test_gradient_is_neurox_loss(standardize: bool) -> None:
    """Our hand-written gradient == autograd of NeuroX's per-layer loss on raw-space weights:
    mean cross-entropy + l1 * sum|W| + l2 * sqrt(sum W^2), summed over layers."""
    torch.manual_seed(0)
    L, n, D, C = 3, 20, 5, 4
    x_raw = torch.randn(L, n, D) * 2 + 1
    yb = torch.randint(0, C, (n,))
    probe = LayerProbes(l1=0.03, l2=0.07, standardize=standardize)
    if standardize:
        mean, scale = x_raw.mean(1, keepdim=True), x_raw.std(1, keepdim=True)
        inv = (1 / scale).transpose(1, 2)
    else:
        mean, scale, inv = torch.zeros(L, 1, D), torch.ones(L, 1, D), None
    xs = (x_raw - mean) / scale
    W = torch.randn(L, D, C)
    b = torch.randn(L, 1, C)
    W.grad, b.grad = torch.zeros_like(W), torch.zeros_like(b)
    ce = probe._grad_step(xs, yb, W, b, inv, torch.eye(C))

    Wa, ba = W.clone().requires_grad_(True), b.clone().requires_grad_(True)
    Wraw = Wa / scale.transpose(1, 2)
    loss = 0
    for k in range(L):
        logits = xs[k] @ Wa[k] + ba[k]
        loss = loss + torch.nn.functional.cross_entropy(logits, yb) + 0.03 * Wraw[k].abs().sum() \
            + 0.07 * torch.sqrt(Wraw[k].pow(2).sum())
    loss.backward()
    torch.testing.assert_close(W.grad, Wa.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(b.grad, ba.grad, rtol=1e-4, atol=1e-6)
    ce_ref = torch.stack([torch.nn.functional.cross_entropy(xs[k] @ W[k] + b[k], yb, reduction="sum")
                          for k in range(L)])
    torch.testing.assert_close(ce, ce_ref, rtol=1e-4, atol=1e-4)


def test_standardised_probe_predicts_from_raw_inputs(toy: dict) -> None:
    p = LayerProbes(standardize=True, **FAST).fit(toy["X"], toy["y"], toy["Xd"], toy["yd"])
    assert p.score(toy["Xt"], toy["yt"])[1:].min() >= 0.99
    X = toy["Xt"].astype(np.float32)
    logits = np.einsum("nld,ldc->nlc", X, p.coef_) + p.intercept_  # raw-space weights reproduce the logits
    np.testing.assert_allclose(logits, p.decision_function(toy["Xt"]), rtol=1e-3, atol=1e-3)


def test_dev_selects_an_epoch_per_layer(toy: dict) -> None:
    p = LayerProbes(**FAST).fit(toy["X"], toy["y"], toy["Xd"], toy["yd"])
    h = p.history_
    assert len(h.dev_accuracy) == FAST["epochs"] and len(h.dev_accuracy[0]) == 3
    for k, e in enumerate(h.best_epoch):
        assert 1 <= e <= FAST["epochs"]
        assert h.dev_accuracy[e - 1][k] == max(row[k] for row in h.dev_accuracy)
    best = [h.dev_accuracy[e - 1][k] for k, e in enumerate(h.best_epoch)]
    assert p.score(toy["Xd"], toy["yd"]) == pytest.approx(best)


def test_streaming_chunks_match_resident_quality(toy: dict) -> None:
    """A memory budget far below the data forces chunked streaming; the result is as good."""
    p = LayerProbes(memory_budget_mb=0.01, **FAST).fit(toy["X"], toy["y"], toy["Xd"], toy["yd"])
    assert not p.history_.resident
    assert p.score(toy["Xt"], toy["yt"])[1:].min() >= 0.99


def test_save_load_identical_predictions(tmp_path: Path, fitted: LayerProbes, toy: dict) -> None:
    fitted.save(tmp_path / "probe")
    assert sorted(f.name for f in (tmp_path / "probe").iterdir()) == ["probe.json", "probe.safetensors"]
    meta = json.loads((tmp_path / "probe" / "probe.json").read_text())
    assert meta["params"]["l1"] == fitted.l1 and meta["params"]["seed"] == fitted.seed
    assert "torch" in meta["versions"]
    back = LayerProbes.load(tmp_path / "probe")
    np.testing.assert_array_equal(back.predict(toy["Xt"]), fitted.predict(toy["Xt"]))
    np.testing.assert_array_equal(back.predict_proba(toy["Xt"]), fitted.predict_proba(toy["Xt"]))
    assert back.layer_ids_ == fitted.layer_ids_


def test_save_load_concat_subset_with_string_labels(tmp_path: Path, toy: dict) -> None:
    names = np.array(["DET", "NOUN", "VERB"])
    p = LayerProbes(layout="concat", neurons=[7, 8, 9, 13, 14], **FAST).fit(toy["X"], names[toy["y"]])
    p.save(tmp_path / "p")
    back = LayerProbes.load(tmp_path / "p")
    assert list(back.classes_) == ["DET", "NOUN", "VERB"] and back.label_names_ == ["DET", "NOUN", "VERB"]
    np.testing.assert_array_equal(back.predict(toy["Xt"]), p.predict(toy["Xt"]))
    assert back.predict(toy["Xt"]).shape == (len(toy["Xt"]), 1)


def test_zeroing_neurons_equals_zeroed_input(toy: dict) -> None:
    p = LayerProbes(layout="concat", **FAST).fit(toy["X"], toy["y"])
    zero = np.array([6, 7, 8, 15])
    Xz = toy["Xt"].reshape(len(toy["Xt"]), -1).copy()
    Xz[:, zero] = 0
    np.testing.assert_array_equal(p.predict(toy["Xt"], zero_neurons=zero), p.predict(Xz.reshape(toy["Xt"].shape)))
    assert p.score(toy["Xt"], toy["yt"], zero_neurons=np.arange(6, 18))[0] < 0.6  # informative layers gone


def test_single_layer_2d_input(toy: dict) -> None:
    p = LayerProbes(**FAST).fit(toy["X"][:, 1], toy["y"])
    assert p.score(toy["Xt"][:, 1], toy["yt"])[0] >= 0.99


def test_unseen_test_label_is_an_error_and_reported(fitted: LayerProbes, toy: dict, caplog) -> None:
    y = toy["yt"].copy()
    y[:10] = 7  # a class the probe never saw
    with caplog.at_level(logging.WARNING):
        res = fitted.evaluate(toy["Xt"], y)
    assert res["n_unseen_label_words"] == 10 and res["unseen_labels"] == ["7"]
    acc = fitted.score(toy["Xt"], y)
    assert acc[1] == pytest.approx(fitted.correct(toy["Xt"], toy["yt"])[1, 10:].sum() / len(y))
    assert "never seen in training" in caplog.text
    json.dumps(res)


@pytest.mark.parametrize("X, y, message", [
    (np.zeros((4, 2, 3, 5)), np.array([0, 1, 0, 1]), "4 dimension"),
    (np.zeros(4), np.array([0, 1, 0, 1]), "1 dimension"),
    (np.zeros((4, 2, 3)), np.array([0, 1, 0]), "4 words but y has 3"),
    (np.zeros((4, 2, 3)), np.array([1, 1, 1, 1]), "only one class"),
    (np.zeros((4, 2, 3)), np.zeros((4, 2)), "one label per word"),
    (np.zeros((0, 2, 3)), np.array([]), "empty"),
])
def test_bad_input_names_the_problem(X: np.ndarray, y: np.ndarray, message: str) -> None:
    with pytest.raises(ProbeInputError, match=message):
        LayerProbes().fit(X, y)


def test_nan_activations_are_refused_with_location(toy: dict) -> None:
    X = toy["X"].copy()
    X[17, 2, 4] = np.nan
    with pytest.raises(ProbeInputError, match=r"X contains NaN \(probe layer 2, row 17, neuron 4\)"):
        LayerProbes(**FAST).fit(X, toy["y"])
    X[17, 2, 4] = np.inf
    with pytest.raises(ProbeInputError, match="infinity"):
        LayerProbes(memory_budget_mb=0.01, **FAST).fit(X, toy["y"])


def test_predict_validation(fitted: LayerProbes, toy: dict) -> None:
    with pytest.raises(ProbeInputError, match="fit on 3 x 6"):
        fitted.predict(np.zeros((5, 2, 6), np.float16))
    with pytest.raises(NotFittedError, match="not fitted"):
        LayerProbes().predict(toy["Xt"])
    with pytest.raises(ProbeInputError, match="X_dev and y_dev"):
        LayerProbes().fit(toy["X"], toy["y"], toy["Xd"])
    with pytest.raises(ProbeInputError, match="layout='concat'"):
        LayerProbes(neurons=[1, 2])
    with pytest.raises(ProbeInputError, match="outside 0..17"):
        LayerProbes(layout="concat", neurons=[3, 18]).fit(toy["X"], toy["y"])
    with pytest.raises(ProbeInputError, match="must be finite"):
        LayerProbes(l1=-1)


def make_store(path: Path, n_sent: int = 60, words: int = 10, seed: int = 0) -> ActivationStore:
    """A small real-format store: 3 layers x 6 dims, labels from word types, splits 40/10/10."""
    X, y = blobs(n_sent * words, seed=seed)
    vocab = [f"w{i}" for i in range(40)]
    rng = np.random.default_rng(seed)
    sents = [[vocab[i] for i in rng.integers(0, 40, words)] for _ in range(n_sent)]
    with ActivationWriter(path, n_sent * words, 3, 6) as w:
        w.write_rows(np.arange(n_sent * words), X)
        w.commit(np.arange(0, n_sent * words + 1, words), sents, y, ["A", "B", "C"],
                 {"train": (0, 40), "dev": (40, 50), "test": (50, 60)}, {"model": "toy"})
    return ActivationStore(path)


def test_probe_store_reports_json(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store")
    probe, res = probe_store(store, **FAST)
    json.dumps(res)
    assert res["label_names"] == ["A", "B", "C"] and res["test"]["layers"] == [0, 1, 2]
    assert min(res["test"]["accuracy"][1:]) >= 0.99
    _, sub = probe_store(store, layers=[2], **FAST)
    assert sub["test"]["layers"] == [2]
    assert sub["test"]["accuracy"][0] == pytest.approx(res["test"]["accuracy"][2], abs=0.02)


def test_select_lambdas_on_dev(toy: dict) -> None:
    from pipeline.probe import select_lambdas

    best, report = select_lambdas(toy["X"], toy["y"], toy["Xd"], toy["yd"], grid=[(1.0, 1.0), (1e-5, 1e-5)], **FAST)
    json.dumps(report)
    assert [g["l1"] for g in report["grid"]] == [1.0, 1e-5]
    assert report["chosen"] == {"l1": 1e-5, "l2": 1e-5}  # a crushing penalty loses on dev
    assert best.l1 == 1e-5 and best.score(toy["Xt"], toy["yt"])[1:].min() >= 0.99
    with pytest.raises(ProbeInputError, match="grid is empty"):
        select_lambdas(toy["X"], toy["y"], toy["Xd"], toy["yd"], grid=[])


def test_patience_stops_when_no_layer_improves_on_dev(toy: dict) -> None:
    p = LayerProbes(epochs=40, batch_size=64, lr=1e-2, patience=2).fit(toy["X"][:, 1:], toy["y"],
                                                                       toy["Xd"][:, 1:], toy["yd"])
    ran = len(p.history_.dev_accuracy)
    assert ran < 40
    assert ran - max(p.history_.best_epoch) == 2
    with pytest.raises(ProbeInputError, match="patience"):
        LayerProbes(patience=0)
