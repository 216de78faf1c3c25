"""The scikit-learn reference probe (pipeline.probing.reference) and the solver's parity with it.

The parity test is an integration test on the real offline WSJ store ``activations/minilm/base/pos-wsj``
(made by ``dvc repro``; skipped without it) against the committed ``results/layers/minilm/base/pos-wsj.json``.
What it takes: all 19,947 training words, the 7 layers, C from {0.01, 0.1} on dev along a warm-started path,
10 L-BFGS iterations per C, 2 worker processes: about 14 s of fitting, 20 s with imports, on 2 busy cores
(measured: benchmarks/README-probe.md, "scikit-learn reference"). The shortened path moves the reference by
at most 0.7 points from a converged fit (same section); the largest gap to our solver was 1.03 points in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from pipeline.probing.inputs import ProbeInputError
from pipeline.probing.reference import reference_accuracies
from pipeline.records import LayerResult
from pipeline.store import ActivationStore, ActivationWriter, StoreError

ROOT = Path(__file__).resolve().parents[1]
WSJ_STORE = ROOT / "activations" / "minilm" / "base" / "pos-wsj"
WSJ_RESULT = ROOT / "results" / "layers" / "minilm" / "base" / "pos-wsj.json"
TOLERANCE = 0.015  # accuracy, per layer
FAST = {"Cs": (0.01, 0.1), "max_iter": 10, "n_jobs": 2}  # the parity test's settings (see the docstring)


def disagreements(ours: Sequence[float], reference: Sequence[float], tolerance: float = TOLERANCE) -> list[str]:
    """One line per layer whose accuracies differ by more than ``tolerance``."""
    assert len(ours) == len(reference), f"{len(ours)} layers in our result, {len(reference)} in the reference"
    return [f"layer {k}: ours {a:.4f}, sklearn {b:.4f} ({(a - b) * 100:+.2f} points)"
            for k, (a, b) in enumerate(zip(ours, reference)) if abs(a - b) > tolerance]


# -- hermetic: a small store written here ---------------------------------------------------------------
def write_store(path: Path, seed: int = 0) -> Path:
    """A 3-layer store of 3 tags: layer 0 is noise, layer 2 separates the tags, layer 1 in between."""
    rng = np.random.default_rng(seed)
    n_sent, per_sent, dim, names = 90, 6, 8, ["A", "B", "C"]
    n = n_sent * per_sent
    labels = rng.integers(0, 3, n)
    centres = rng.normal(size=(3, dim)) * 3
    acts = np.stack([rng.normal(size=(n, dim)),
                     0.3 * centres[labels] + rng.normal(size=(n, dim)),
                     centres[labels] + 0.5 * rng.normal(size=(n, dim))], axis=1)
    words = [[f"w{i * per_sent + j}" for j in range(per_sent)] for i in range(n_sent)]
    with ActivationWriter(path, n, 3, dim) as w:
        w.write_rows(np.arange(n), acts.astype(np.float32))
        w.commit(np.arange(0, n + 1, per_sent), words, labels, names,
                 {"train": (0, 60), "dev": (60, 75), "test": (75, 90)}, {"model": "toy", "task": "toy"})
    return path


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_store(tmp_path_factory.mktemp("reference") / "store")


def test_reference_finds_the_informative_layer(toy_store: Path) -> None:
    out = reference_accuracies(toy_store, Cs=(0.1, 1.0))
    assert out["layers"] == [0, 1, 2] and out["n_train_words"] == 360
    test = np.asarray(out["test_accuracy"])
    assert test[2] > 0.95 and test[0] < 0.6 and test[0] < test[1] < test[2]
    assert all(c in (0.1, 1.0) for c in out["C"])
    assert np.allclose([max(row) for row in out["dev_by_C"]], out["dev_accuracy"])


def test_reference_options(toy_store: Path) -> None:
    sub = reference_accuracies(ActivationStore(toy_store), layers=[2], Cs=(1.0,), max_train_words=50)
    assert sub["layers"] == [2] and sub["n_train_words"] == 50 and sub["C"] == [1.0]
    shuffled = reference_accuracies(toy_store, layers=[2], Cs=(1.0,), shuffle_train_labels=True)
    assert shuffled["test_accuracy"][0] < 0.6  # the tags carry no signal any more


@pytest.mark.parametrize("kwargs, message", [
    ({"Cs": ()}, "at least one finite C"),
    ({"Cs": (0.1, -1.0)}, "at least one finite C"),
    ({"max_iter": 0}, "max_iter=0"),
    ({"max_train_words": 1}, "max_train_words=1"),
    ({"n_jobs": 0}, "n_jobs=0"),
])
def test_reference_rejects_bad_settings(toy_store: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ProbeInputError, match=message):
        reference_accuracies(toy_store, **kwargs)


def test_reference_names_the_valid_layers(toy_store: Path) -> None:
    with pytest.raises(StoreError, match=r"layers 0\.\.2"):
        reference_accuracies(toy_store, layers=[3])


# -- integration: the real WSJ store against the committed results ---------------------------------------
@pytest.fixture(scope="module")
def wsj() -> tuple[ActivationStore, LayerResult]:
    if not (WSJ_STORE / "meta.json").is_file():
        pytest.skip("no activation store at activations/minilm/base/pos-wsj: run `dvc repro` (or `make repro`) "
                    "to extract it, then rerun this test")
    store, result = ActivationStore(WSJ_STORE), LayerResult.read(WSJ_RESULT)
    s = result.store
    if (s.n_words, s.n_layers, s.dim, s.splits) != (store.n_words, store.n_layers, store.dim, store.splits):
        pytest.skip("activations/minilm/base/pos-wsj is not the store results/layers/minilm/base/pos-wsj.json "
                    "was computed from: run `dvc repro` to bring them in line")
    return store, result


@pytest.mark.integration
@pytest.mark.slow
def test_solver_agrees_with_sklearn_layer_by_layer(wsj: tuple[ActivationStore, LayerResult]) -> None:
    store, result = wsj
    ref = reference_accuracies(store, layers=list(result.layers), **FAST)
    bad = disagreements(result.mean.tolist(), ref["test_accuracy"])
    assert not bad, "the probe stage's test accuracy (mean over seeds) and the sklearn reference differ by more " \
                    f"than {TOLERANCE * 100:.1f} points:\n  " + "\n  ".join(bad)


@pytest.mark.integration
def test_parity_check_catches_a_broken_reference(wsj: tuple[ActivationStore, LayerResult]) -> None:
    """The comparison above can fail: a reference trained on shuffled tags disagrees (one layer, a few s)."""
    store, result = wsj
    ref = reference_accuracies(store, layers=[3], Cs=(0.1,), max_iter=3, shuffle_train_labels=True)
    assert disagreements(result.mean[[3]].tolist(), ref["test_accuracy"])
