"""``probe.solver: sklearn``: the probe stage on scikit-learn's LogisticRegression
(pipeline.probing.reference.fit_probe), on a tiny real-format store; and the default solver's results
recording nothing new."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from test_layer_stats import stage_root

from pipeline.config import ConfigError, Params, validate
from pipeline.layout import Layout
from pipeline.probing.linear import LinearProbe
from pipeline.probing.reference import fit_probe
from pipeline.records import LayerResult
from pipeline.stages.probe import SEEDS_VARY, SEEDS_VARY_SKLEARN, probe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def with_solver(params: Params, solver: str) -> Params:
    return params.model_copy(update={"probe": params.probe.model_copy(update={"solver": solver})})


def toy(seed: int = 0, n: int = 300, layers: int = 2, dim: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """``X float32 [n, layers, dim]`` (layer 1 separates 3 classes, layer 0 weakly) and ``y int [n]``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, layers, dim)) * np.array([2.0, 0.5])[:layers, None] + 1.5
    X[np.arange(n), :, y] += np.array([0.5, 3.0])[:layers]
    return X.astype(np.float32), y


def test_fit_probe_is_sklearns_estimator_in_raw_space() -> None:
    """The probe's logits on raw inputs equal sklearn's on the standardised ones, layer by layer, for the chosen C."""
    X, y = toy()
    probe, history = fit_probe(X[:200], y[:200], X[200:250], y[200:250], Cs=(0.1, 1.0), max_iter=200)
    logits = probe.decision_function(X[250:])  # [words, layers, classes]
    for k in range(X.shape[1]):
        scaler = StandardScaler().fit(X[:200, k])
        ref = LogisticRegression(C=history["C"][k], max_iter=200).fit(scaler.transform(X[:200, k]), y[:200])
        np.testing.assert_allclose(logits[:, k], ref.decision_function(scaler.transform(X[250:, k])), atol=2e-3)
    assert history["best_epoch"] == [(0.1, 1.0).index(c) + 1 for c in history["C"]]
    assert np.asarray(history["dev_accuracy"]).shape == np.asarray(history["train_loss"]).shape == (2, 2)
    assert probe.score(X[250:], y[250:])[1] > 0.9


def test_sklearn_solver_runs_the_whole_probe_stage(tmp_path) -> None:  # noqa: ANN001
    params, root, st = stage_root(tmp_path)
    params = with_solver(params, "sklearn")
    r = LayerResult.read(probe(params, root, "minilm", "base", "pos-wsj"))
    assert r.seed0.params["solver"] == "sklearn" and r.provenance.config["solver"] == "sklearn"
    assert r.seeds_vary == SEEDS_VARY_SKLEARN
    correct = r.correct()  # [layers, words], averaged over seeds: one deterministic fit serves every seed
    assert set(np.unique(correct)) <= {0.0, 1.0} and not r.std.any()
    saved = LinearProbe.load(Layout.of(params, root).results.probe_dir("minilm", "base", "pos-wsj"))
    X_test, y_test = st.split("test")
    np.testing.assert_array_equal(saved.correct(X_test, y_test), correct == 1)
    assert saved.training is not None and saved.training["params"]["estimator"].endswith("LogisticRegression")
    # layers 1+ encode the tag: sklearn finds it, as our solver does
    assert min(r.mean[1:]) > 0.9 > r.mean[0]
    assert r.control is not None and r.control.params["solver"] == "sklearn"


def test_the_default_solver_records_no_solver_key() -> None:
    """Results of the default solver read exactly as before the option existed (committed results unchanged)."""
    p = Params().probe
    assert p.solver == "ours" and "solver" not in p.provenance()
    assert p.provenance() == {k: v for k, v in p.model_dump(mode="json").items() if k not in ("solver", "precision")}
    assert p.precision == "fp32"  # like the solver, probe.precision is recorded only when not the default
    bf16 = Params.model_validate({"probe": {"precision": "bf16"}}).probe.provenance()
    assert bf16["precision"] == "bf16"
    assert with_solver(Params(), "sklearn").probe.provenance()["solver"] == "sklearn"
    assert SEEDS_VARY != SEEDS_VARY_SKLEARN


def test_an_unknown_solver_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="solver"):
        validate({"probe": {"solver": "liblinear"}}, "params.yaml")


def test_bf16_probe_matmuls_train_float32_probes_that_score_like_float32_ones() -> None:
    """probe.precision bf16: the fitted weights stay float32, the training record says bf16, and on a learnable
    synthetic task the bf16-trained probe scores within a point of the float32 one on every layer."""
    import numpy as np

    from pipeline.probing.solver import SolverConfig, fit

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((6, 3, 32)).astype(np.float32)
    y = rng.integers(0, 6, 3000)
    X = (centers[y] + 1.5 * rng.standard_normal((3000, 3, 32))).astype(np.float16)
    tr, te = slice(0, 2400), slice(2400, None)
    scores, weights = {}, {}
    for precision in ("fp32", "bf16"):
        probe, _ = fit(X[tr], y[tr], X[te], y[te], config=SolverConfig(epochs=5, precision=precision, seed=1))
        assert probe.weights.dtype == np.float32 and probe.bias.dtype == np.float32
        assert probe.training["params"].get("precision", "fp32") == precision
        scores[precision] = np.asarray(probe.score(X[te], y[te]))
        weights[precision] = probe.weights
    assert not np.array_equal(weights["fp32"], weights["bf16"])  # the bf16 path ran (its rounding moves the weights)
    assert scores["fp32"].min() > 0.5  # learnable, so the comparison means something
    assert np.abs(scores["bf16"] - scores["fp32"]).max() <= 0.01
