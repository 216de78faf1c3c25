"""Linear probes: accuracy on toy tasks, the solver's pieces, views, save/load, validation, the probe stage."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.errors import LingShiftError
from pipeline.probing.inputs import ProbeInputError
from pipeline.probing.linear import LinearProbe
from pipeline.probing.solver import (
    Adam,
    EpochSelector,
    SolverConfig,
    cosine_lr,
    elastic_net_grad,
    fit,
    select_lambdas,
)
from pipeline.probing.views import Ablated, Concat, PerLayer
from pipeline.stages.probe import layer_probe, majority_baseline, seed_correct
from pipeline.stats.resample import accuracy_over_seeds
from pipeline.store import ActivationStore, ActivationWriter

FAST = SolverConfig(epochs=8, batch_size=64, lr=1e-2)


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
def fitted(toy: dict[str, np.ndarray]) -> LinearProbe:
    return fit(toy["X"], toy["y"], toy["Xd"], toy["yd"], config=FAST)[0]


# ----------------------------------------------------------------------------------- fitting
def test_separable_layers_reach_100_percent_noise_layer_near_chance(fitted: LinearProbe, toy: dict) -> None:
    acc = fitted.score(toy["Xt"], toy["yt"])
    assert acc.shape == (3,)
    assert acc[1] >= 0.99 and acc[2] >= 0.99
    assert acc[0] < 0.6  # layer 0 is noise: 3 classes -> about 1/3


def test_shapes_and_probabilities(fitted: LinearProbe, toy: dict) -> None:
    proba = fitted.predict_proba(toy["Xt"])
    assert proba.shape == (len(toy["Xt"]), 3, 3)
    np.testing.assert_allclose(proba.sum(-1), 1.0, rtol=1e-5)
    pred = fitted.predict(toy["Xt"])
    assert pred.shape == (len(toy["Xt"]), 3)
    np.testing.assert_array_equal(pred, fitted.classes[proba.argmax(-1)])
    assert fitted.weights.shape == (3, 6, 3) and fitted.bias.shape == (3, 3)


def test_raw_space_weights_give_the_logits(fitted: LinearProbe, toy: dict) -> None:
    X = toy["Xt"].astype(np.float32)
    logits = np.einsum("nld,ldc->nlc", X, fitted.weights) + fitted.bias
    np.testing.assert_allclose(logits, fitted.decision_function(toy["Xt"]), rtol=1e-4, atol=1e-4)


def test_each_layer_equals_a_probe_trained_alone(toy: dict) -> None:
    """Batching layers changes nothing: layer k of the joint fit == a fit on layer k only."""
    joint, _ = fit(toy["X"], toy["y"], config=FAST)
    alone, _ = fit(toy["X"], toy["y"], view=PerLayer((2,)), config=FAST)
    np.testing.assert_allclose(joint.weights[2], alone.weights[0], rtol=1e-4, atol=1e-6)
    assert alone.layer_ids == [2]


def test_same_seed_same_weights_other_seed_differs(toy: dict) -> None:
    a, _ = fit(toy["X"], toy["y"], toy["Xd"], toy["yd"], config=replace(FAST, seed=3))
    b, _ = fit(toy["X"], toy["y"], toy["Xd"], toy["yd"], config=replace(FAST, seed=3))
    c, _ = fit(toy["X"], toy["y"], toy["Xd"], toy["yd"], config=replace(FAST, seed=4))
    np.testing.assert_array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, c.weights)


@pytest.mark.parametrize("standardize", [False, True])
def test_elastic_net_shrinks_weights(toy: dict, standardize: bool) -> None:
    """More l1 -> smaller sum|W| and more near-zero weights; more l2 -> smaller ||W||_2."""
    def weights(l1: float, l2: float) -> np.ndarray:
        cfg = SolverConfig(l1=l1, l2=l2, standardize=standardize, epochs=15, batch_size=64, lr=1e-2,
                           select_epoch=False)
        return fit(toy["X"], toy["y"], config=cfg)[0].weights

    lambdas = (0.0, 1e-2, 1e-1)
    w = [weights(l1, 0.0) for l1 in lambdas]
    sums = [np.abs(wi).sum() for wi in w]
    assert sums[0] > sums[1] > sums[2]
    near_zero = [(np.abs(wi) < 1e-3).sum() for wi in w]
    assert near_zero[0] < near_zero[1] < near_zero[2]
    assert np.abs(w[2][0]).max() < 1e-3  # the noise layer's weights are all driven to ~0
    norms = [np.linalg.norm(weights(0.0, l2)[1]) for l2 in lambdas]
    assert norms[0] > norms[1] > norms[2]


def test_standardised_fit_gives_a_raw_space_probe(toy: dict) -> None:
    """Standardising is a change of variables inside training: the probe reads raw activations."""
    p, _ = fit(toy["X"], toy["y"], toy["Xd"], toy["yd"], config=replace(FAST, standardize=True))
    assert p.score(toy["Xt"], toy["yt"])[1:].min() >= 0.99
    assert p.training is not None and p.training["params"]["standardize"] is True
    X = toy["Xt"].astype(np.float32)
    logits = np.einsum("nld,ldc->nlc", X, p.weights) + p.bias
    np.testing.assert_allclose(logits, p.decision_function(toy["Xt"]), rtol=1e-3, atol=1e-3)


def test_dev_selects_an_epoch_per_layer(toy: dict) -> None:
    p, h = fit(toy["X"], toy["y"], toy["Xd"], toy["yd"], config=FAST)
    assert len(h.dev_accuracy) == FAST.epochs and len(h.dev_accuracy[0]) == 3
    for k, e in enumerate(h.best_epoch):
        assert 1 <= e <= FAST.epochs
        assert h.dev_accuracy[e - 1][k] == max(row[k] for row in h.dev_accuracy)
    best = [h.dev_accuracy[e - 1][k] for k, e in enumerate(h.best_epoch)]
    assert p.score(toy["Xd"], toy["yd"]) == pytest.approx(best)


@pytest.mark.parametrize("settings", [{}, {"select_epoch": False}, {"patience": 1}, {"memory_budget_mb": 0.01}])
def test_kept_dev_accuracy_is_the_returned_probes_dev_score(toy: dict, settings: dict) -> None:
    p, h = fit(toy["X"], toy["y"], toy["Xd"], toy["yd"], config=replace(FAST, **settings))
    kept = h.kept_dev_accuracy()
    assert kept.dtype == np.float64 and kept.shape == (3,)
    assert np.array_equal(kept, p.score(toy["Xd"], toy["yd"]))  # exactly: the same count over the same words
    assert "dev_correct" not in h.to_dict() and "n_dev" not in h.to_dict()  # the written history is unchanged
    _, no_dev = fit(toy["X"], toy["y"], config=FAST)
    with pytest.raises(ProbeInputError, match="no dev accuracy"):
        no_dev.kept_dev_accuracy()


def test_streaming_chunks_match_resident_quality(toy: dict) -> None:
    """A memory budget far below the data forces chunked streaming; the result is as good."""
    p, h = fit(toy["X"], toy["y"], toy["Xd"], toy["yd"], config=replace(FAST, memory_budget_mb=0.01))
    assert not h.resident
    assert p.score(toy["Xt"], toy["yt"])[1:].min() >= 0.99


def test_single_layer_2d_input(toy: dict) -> None:
    p, _ = fit(toy["X"][:, 1], toy["y"], config=FAST)
    assert p.score(toy["Xt"][:, 1], toy["yt"])[0] >= 0.99


def test_select_lambdas_on_dev(toy: dict) -> None:
    best, report = select_lambdas(toy["X"], toy["y"], toy["Xd"], toy["yd"], grid=[(1.0, 1.0), (1e-5, 1e-5)],
                                  config=FAST)
    json.dumps(report)
    assert [g["l1"] for g in report["grid"]] == [1.0, 1e-5]
    assert report["chosen"] == {"l1": 1e-5, "l2": 1e-5}  # a crushing penalty loses on dev
    assert best.training is not None and best.training["params"]["l1"] == 1e-5
    assert best.score(toy["Xt"], toy["yt"])[1:].min() >= 0.99
    with pytest.raises(ProbeInputError, match="grid is empty"):
        select_lambdas(toy["X"], toy["y"], toy["Xd"], toy["yd"], grid=[])


def test_patience_stops_when_no_layer_improves_on_dev(toy: dict) -> None:
    _, h = fit(toy["X"][:, 1:], toy["y"], toy["Xd"][:, 1:], toy["yd"],
               config=SolverConfig(epochs=40, batch_size=64, lr=1e-2, patience=2))
    ran = len(h.dev_accuracy)
    assert ran < 40
    assert ran - max(h.best_epoch) == 2
    with pytest.raises(ProbeInputError, match="patience"):
        SolverConfig(patience=0)


# ----------------------------------------------------------------------------------- solver pieces
@pytest.mark.parametrize("standardize", [False, True])
def test_gradient_is_neurox_loss(standardize: bool) -> None:
    """Our hand-written gradient == autograd of NeuroX's per-layer loss on raw-space weights:
    mean cross-entropy + l1 * sum|W| + l2 * sqrt(sum W^2), summed over layers."""
    torch.manual_seed(0)
    L, n, D, C = 3, 20, 5, 4
    x_raw = torch.randn(L, n, D) * 2 + 1
    yb = torch.randint(0, C, (n,))
    if standardize:
        mean, scale = x_raw.mean(1, keepdim=True), x_raw.std(1, keepdim=True)
        inv = (1 / scale).transpose(1, 2)
    else:
        mean, scale, inv = torch.zeros(L, 1, D), torch.ones(L, 1, D), None
    xs = (x_raw - mean) / scale
    W = torch.randn(L, D, C)
    b = torch.randn(L, 1, C)
    W.grad, b.grad = torch.zeros_like(W), torch.zeros_like(b)
    ce = elastic_net_grad(xs, yb, W, b, 0.03, 0.07, inv)

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


def test_adam_equals_torch_adam() -> None:
    """The hand-written Adam takes the same steps as ``torch.optim.Adam`` with its defaults."""
    torch.manual_seed(1)
    ours = torch.randn(4, 3)
    ref = ours.clone().requires_grad_(True)
    ours.grad = torch.zeros_like(ours)
    opt, ref_opt = Adam([ours], lr=0.05), torch.optim.Adam([ref], lr=0.05)
    for step in range(5):
        g = torch.randn(4, 3) * (step + 1)
        ours.grad.copy_(g)
        ref.grad = g.clone()
        opt.step()
        ref_opt.step()
    torch.testing.assert_close(ours, ref.detach(), rtol=1e-5, atol=1e-6)


def test_cosine_lr_decays_from_lr_to_zero() -> None:
    assert cosine_lr(0.01, 0, 100) == 0.01
    assert cosine_lr(0.01, 50, 100) == pytest.approx(0.005)
    assert cosine_lr(0.01, 100, 100) == pytest.approx(0.0, abs=1e-12)
    steps = [cosine_lr(0.01, s, 100) for s in range(101)]
    assert all(a >= b for a, b in zip(steps, steps[1:], strict=False))


def test_epoch_selector_keeps_each_layers_best_epoch_and_stops_with_patience() -> None:
    W, b = torch.zeros(2, 3, 4), torch.zeros(2, 1, 4)
    sel = EpochSelector(W, b, epochs=10, patience=2)
    history = [(0.5, 0.2), (0.7, 0.1), (0.6, 0.3), (0.6, 0.3)]  # layer 0 best at epoch 2, layer 1 at epoch 3
    stops = []
    for epoch, acc in enumerate(history):
        W.fill_(epoch)
        b.fill_(-epoch)
        stops.append(sel.update(epoch, torch.tensor(acc), W, b))
    assert sel.best_epoch == [2, 3]
    assert (sel.best_W[0] == 1).all() and (sel.best_W[1] == 2).all() and (sel.best_b[1] == -2).all()
    assert stops == [False, False, False, False]  # epoch 4: only 1 epoch since layer 1 improved
    assert sel.update(4, torch.tensor([0.1, 0.1]), W, b)  # 2 epochs without improvement: stop


# ----------------------------------------------------------------------------------- views
def test_zeroing_neurons_equals_zeroed_input(toy: dict) -> None:
    p, _ = fit(toy["X"], toy["y"], view=Concat(), config=FAST)
    zero = np.array([6, 7, 8, 15])
    Xz = toy["Xt"].reshape(len(toy["Xt"]), -1).copy()
    Xz[:, zero] = 0
    ablated = p.with_view(Ablated(p.view, zero))
    np.testing.assert_array_equal(ablated.predict(toy["Xt"]), p.predict(Xz.reshape(toy["Xt"].shape)))
    gone = p.with_view(Ablated(p.view, np.arange(6, 18)))
    assert gone.score(toy["Xt"], toy["yt"])[0] < 0.6  # informative layers gone
    assert p.score(toy["Xt"], toy["yt"])[0] >= 0.99  # the probe itself still reads every neuron


def test_ablation_of_a_neuron_subset_zeroes_only_neurons_it_reads(toy: dict) -> None:
    p, _ = fit(toy["X"], toy["y"], view=Concat([7, 8, 9, 13, 14]), config=FAST)
    Xz = toy["Xt"].reshape(len(toy["Xt"]), -1).copy()
    Xz[:, [8, 13]] = 0
    ablated = p.with_view(Ablated(p.view, [0, 8, 13]))  # neuron 0 is not read: nothing to zero
    np.testing.assert_array_equal(ablated.predict(toy["Xt"]), p.predict(Xz.reshape(toy["Xt"].shape)))


def test_views_shapes_and_ids() -> None:
    assert PerLayer().shape(3, 6) == (3, 6) and PerLayer().layer_ids(3) == [0, 1, 2]
    assert PerLayer((2,)).shape(3, 6) == (1, 6) and PerLayer((2,)).layer_ids(3) == [2]
    assert Concat().shape(3, 6) == (1, 18) and Concat().layer_ids(3) == ["all"]
    assert Concat([1, 5]).shape(3, 6) == (1, 2)
    X = np.arange(2 * 3 * 4, dtype=np.float16).reshape(2, 3, 4)
    np.testing.assert_array_equal(Concat().chunk(X, slice(0, 2)).numpy()[0], X.reshape(2, 12))
    np.testing.assert_array_equal(PerLayer((1,)).chunk(X, slice(0, 2)).numpy()[0], X[:, 1])
    np.testing.assert_array_equal(Ablated(Concat([2, 3]), [3]).chunk(X, slice(0, 2)).numpy()[0],
                                  np.stack([X[:, 0, 2], 0 * X[:, 0, 3]], axis=1))
    assert X[0, 0, 3] == 3  # the caller's array is never written


def test_view_validation(toy: dict, fitted: LinearProbe) -> None:
    with pytest.raises(ProbeInputError, match="outside 0..17"):
        fit(toy["X"], toy["y"], view=Concat([3, 18]), config=FAST)
    with pytest.raises(ProbeInputError, match="empty"):
        fit(toy["X"], toy["y"], view=Concat([]), config=FAST)
    with pytest.raises(ProbeInputError, match="0..2"):
        fit(toy["X"], toy["y"], view=PerLayer((3,)), config=FAST)
    with pytest.raises(ProbeInputError, match="Concat view"):
        Ablated(PerLayer(), [1])
    with pytest.raises(ProbeInputError, match="another shape"):
        fitted.with_view(Concat())


# ----------------------------------------------------------------------------------- save and load
def test_save_load_identical_predictions(tmp_path: Path, fitted: LinearProbe, toy: dict) -> None:
    fitted.save(tmp_path / "probe")
    assert sorted(f.name for f in (tmp_path / "probe").iterdir()) == ["probe.json", "probe.safetensors"]
    meta = json.loads((tmp_path / "probe" / "probe.json").read_text())
    assert meta["format"] == 2 and meta["training"]["params"]["l1"] == FAST.l1
    assert meta["training"]["params"]["seed"] == FAST.seed and "torch" in meta["versions"]
    back = LinearProbe.load(tmp_path / "probe")
    np.testing.assert_array_equal(back.predict(toy["Xt"]), fitted.predict(toy["Xt"]))
    np.testing.assert_array_equal(back.predict_proba(toy["Xt"]), fitted.predict_proba(toy["Xt"]))
    assert back.layer_ids == fitted.layer_ids and back.label_names == fitted.label_names


def test_save_load_concat_subset_with_string_labels(tmp_path: Path, toy: dict) -> None:
    names = np.array(["DET", "NOUN", "VERB"])
    p, _ = fit(toy["X"], names[toy["y"]], view=Concat([7, 8, 9, 13, 14]), config=FAST)
    p.save(tmp_path / "p")
    back = LinearProbe.load(tmp_path / "p")
    assert list(back.classes) == ["DET", "NOUN", "VERB"] and back.label_names == ["DET", "NOUN", "VERB"]
    assert isinstance(back.view, Concat) and back.view.neurons.tolist() == [7, 8, 9, 13, 14]
    np.testing.assert_array_equal(back.predict(toy["Xt"]), p.predict(toy["Xt"]))
    assert back.predict(toy["Xt"]).shape == (len(toy["Xt"]), 1)


@pytest.mark.parametrize("standardized", [False, True])
def test_format_1_probes_still_load(tmp_path: Path, toy: dict, standardized: bool) -> None:
    """A probe saved by the former ``LayerProbes`` (standardised weights with mean and scale) loads in raw space."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    coef_std = rng.normal(size=(3, 6, 4)).astype(np.float32)
    intercept_std = rng.normal(size=(3, 4)).astype(np.float32)
    mean = rng.normal(size=(3, 6)).astype(np.float32) if standardized else np.zeros((3, 6), np.float32)
    scale = rng.uniform(0.5, 2, (3, 6)).astype(np.float32) if standardized else np.ones((3, 6), np.float32)
    (tmp_path / "old").mkdir()
    save_file({"coef_std": coef_std, "intercept_std": intercept_std, "mean": mean, "scale": scale,
               "classes": np.array([0, 1, 2, 5])}, str(tmp_path / "old" / "probe.safetensors"))
    meta = {"format": 1, "kind": "lingshift.LayerProbes", "standardized": standardized,
            "params": {"l1": 1e-5, "layout": "layers", "layers": None, "memory_budget_mb": 2048.0},
            "classes": None, "label_names": ["A", "B", "C", "F"], "all_label_names": list("ABCDEF"),
            "layer_ids": [0, 1, 2], "n_layers_in": 3, "dim_in": 6, "history": None}
    (tmp_path / "old" / "probe.json").write_text(json.dumps(meta))
    p = LinearProbe.load(tmp_path / "old")
    X = toy["Xt"].astype(np.float32)
    old_logits = np.einsum("nld,ldc->nlc", (X - mean) / scale, coef_std) + intercept_std
    np.testing.assert_allclose(p.decision_function(toy["Xt"]), old_logits, rtol=1e-4, atol=1e-4)
    if not standardized:
        np.testing.assert_array_equal(p.weights, coef_std)
    assert p.evaluate(toy["Xt"], np.full(len(X), 4))["unseen_labels"] == ["E"]
    (tmp_path / "old" / "probe.json").write_text(json.dumps({**meta, "format": 7}))
    with pytest.raises(LingShiftError, match="not a LingShift probe"):
        LinearProbe.load(tmp_path / "old")


def test_the_fitted_probe_imports_neither_the_solver_nor_transformers() -> None:
    """What the API loads stays light: the fitted probe without the training code or transformers."""
    import subprocess
    import sys

    code = ("import sys, pipeline.probing.linear; "
            "print(sorted(m for m in ('pipeline.probing.solver', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------------- validation
def test_unseen_test_label_is_an_error_and_reported(fitted: LinearProbe, toy: dict, caplog) -> None:
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
        fit(X, y)


def test_nan_activations_are_refused_with_location(toy: dict) -> None:
    X = toy["X"].copy()
    X[17, 2, 4] = np.nan
    with pytest.raises(ProbeInputError, match=r"X contains NaN \(probe layer 2, row 17, neuron 4\)"):
        fit(X, toy["y"], config=FAST)
    X[17, 2, 4] = np.inf
    with pytest.raises(ProbeInputError, match="infinity"):
        fit(X, toy["y"], config=replace(FAST, memory_budget_mb=0.01))


def test_predict_and_settings_validation(fitted: LinearProbe, toy: dict) -> None:
    with pytest.raises(ProbeInputError, match="fit on 3 x 6"):
        fitted.predict(np.zeros((5, 2, 6), np.float16))
    with pytest.raises(ProbeInputError, match="X_dev and y_dev"):
        fit(toy["X"], toy["y"], toy["Xd"])
    with pytest.raises(ProbeInputError, match="must be finite"):
        SolverConfig(l1=-1)
    with pytest.raises(ProbeInputError, match="lr_schedule"):
        SolverConfig(lr_schedule="step")


# ----------------------------------------------------------------------------------- the probe stage
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


def test_layer_probe_of_a_store_reports_json(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store")
    probe, res = layer_probe(store, FAST)
    json.dumps(res)
    assert res["label_names"] == ["A", "B", "C"] and res["test"]["layers"] == [0, 1, 2]
    assert min(res["test"]["accuracy"][1:]) >= 0.99
    assert res["params"]["layout"] == "layers" and res["params"]["epochs"] == FAST.epochs
    assert res["test"]["accuracy"] == probe.score(*store.split("test")).tolist()
    sub, _ = fit(*store.split("train"), *store.split("dev"), view=PerLayer((2,)), config=FAST)
    assert sub.evaluate(*store.split("test"))["layers"] == [2]
    assert sub.score(*store.split("test"))[0] == pytest.approx(res["test"]["accuracy"][2], abs=0.02)
    base = majority_baseline(store)
    assert base["label"] in ("A", "B", "C") and 0 < base["test_accuracy"] < 0.6


def test_seed_repeats_on_a_store(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store")
    cfg = SolverConfig(epochs=5, batch_size=64, lr=1e-2)
    correct = seed_correct(store, [0, 1], cfg)
    assert correct.shape == (2, 3, 100) and correct.dtype == bool
    res = accuracy_over_seeds(correct, store.sentence_ids("test"), n_boot=200)
    assert len(res["per_seed"]) == 2
    assert res["bootstrap"]["ci_low"][1] <= res["mean"][1] <= res["bootstrap"]["ci_high"][1]
    assert res["mean"][1] > 0.9


def test_a_trained_probe_stands_in_for_its_seed(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store")
    cfg = SolverConfig(epochs=4, batch_size=64, lr=1e-2, seed=0)
    seed0, _ = layer_probe(store, cfg)
    plain = seed_correct(store, [0, 1], cfg)
    np.testing.assert_array_equal(seed_correct(store, [0, 1], cfg, trained=seed0), plain)
    weak, _ = fit(*store.split("train"), config=SolverConfig(seed=0, epochs=1, batch_size=64, lr=1e-4),
                  label_names=store.label_names)
    used = seed_correct(store, [0, 1], cfg, trained=weak)
    np.testing.assert_array_equal(used[0], weak.correct(*store.split("test")))
    np.testing.assert_array_equal(used[1], plain[1])
    assert not np.array_equal(used[0], plain[0])
