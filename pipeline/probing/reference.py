"""A reference probe on scikit-learn's ``LogisticRegression``: the textbook estimator our solver is checked against.

Per layer of an activation store, one multinomial logistic regression (L2 penalty, ``lbfgs``; for more than
two classes lbfgs always fits the multinomial loss) on the training words, with ``C`` chosen on dev accuracy
from a small grid. The grid is fitted as a regularisation path, as ``LogisticRegressionCV`` does: from the
smallest ``C`` up, each fit warm-started from the previous one, ``max_iter`` L-BFGS iterations per ``C``.
Test accuracy is computed once, for the chosen ``C``; words whose tag never occurs in training count as
errors, as in the probe stage.

Inputs are standardised per neuron on the training words (``StandardScaler``) by default, so one ``C`` grid
fits every layer and L-BFGS converges in few iterations. The project's solver trains on the raw activations
(``SolverConfig.standardize=False``) with NeuroX's tiny elastic net and the best dev epoch: the two estimators
differ, and the parity test (tests/test_reference_probe.py) asks that they agree within 1.5 points per layer.

:func:`fit_probe` fits the same estimator on every layer of in-memory arrays and returns a
:class:`~pipeline.probing.linear.LinearProbe` (standardisation folded into raw-space weights): the probe stage
uses it with ``probe.solver: sklearn`` in params.yaml. Measured numbers: benchmarks/README-probe.md, section
"scikit-learn reference".
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from pipeline.probing.inputs import ProbeInputError, check_X, check_y
from pipeline.probing.linear import LinearProbe, class_names
from pipeline.probing.views import PerLayer
from pipeline.store import ActivationStore

log = logging.getLogger(__name__)

#: The default ``C`` grid (inverse L2 strength on standardised inputs), smallest first.
DEFAULT_CS: tuple[float, ...] = (0.01, 0.1, 1.0)


def _check_settings(Cs: Sequence[float], max_iter: int, max_train_words: int | None, n_jobs: int) -> list[float]:
    """The grid sorted ascending; raises :class:`ProbeInputError` naming a bad setting."""
    grid = sorted(float(c) for c in Cs)
    if not grid or not all(np.isfinite(c) and c > 0 for c in grid):
        raise ProbeInputError(f"Cs={list(Cs)}: pass at least one finite C > 0 (inverse L2 strength).")
    if max_iter < 1:
        raise ProbeInputError(f"max_iter={max_iter}: pass at least 1 L-BFGS iteration per C.")
    if max_train_words is not None and max_train_words < 2:
        raise ProbeInputError(f"max_train_words={max_train_words}: pass None (all) or at least 2 words.")
    if n_jobs == 0:
        raise ProbeInputError("n_jobs=0: pass a number of worker processes (1: in this process, -1: all cores).")
    return grid


def _train_rows(store: ActivationStore, max_train_words: int | None, seed: int) -> np.ndarray:
    """Row indices ``int [n]`` of the training words used (all, or a sorted seeded subsample)."""
    rows = np.arange(store.split_rows("train").start, store.split_rows("train").stop)
    if max_train_words is not None and max_train_words < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_train_words, replace=False))
    return rows


def _fit_path(X_train: np.ndarray, y_train: np.ndarray, X_dev: np.ndarray, y_dev: np.ndarray, grid: list[float],
              max_iter: int, standardize: bool, tol: float, train_loss: bool = False) -> dict[str, Any]:
    """One layer's warm-started path over ``grid`` on ``X: float32 [words, dim]``; the best ``C`` on dev wins
    (ties keep the smaller). Returns the chosen ``model``, the ``scaler`` (or ``None``), ``dev_by_C``, ``n_iter``
    and, with ``train_loss``, ``train_loss_by_C`` (mean cross-entropy on the training words after each ``C``)."""
    from sklearn.metrics import log_loss

    scaler = StandardScaler().fit(X_train) if standardize else None
    if scaler is not None:
        X_train, X_dev = scaler.transform(X_train), scaler.transform(X_dev)
    model = LogisticRegression(max_iter=max_iter, tol=tol, warm_start=True)  # L2 (the default), lbfgs
    dev_by_c, n_iter, losses, best, best_dev = [], [], [], None, -1.0
    for C in grid:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # recorded as n_iter == max_iter instead
            model.set_params(C=C).fit(X_train, y_train)
        acc = float(model.score(X_dev, y_dev))
        dev_by_c.append(acc)
        n_iter.append(int(model.n_iter_[0]))
        if train_loss:
            losses.append(float(log_loss(y_train, model.predict_proba(X_train), labels=model.classes_)))
        if acc > best_dev:
            best, best_dev = copy.deepcopy(model), acc
    assert best is not None
    return {"model": best, "scaler": scaler, "dev_accuracy": best_dev, "dev_by_C": dev_by_c, "n_iter": n_iter,
            "train_loss_by_C": losses}


def _fit_layer(path: Path, layer: int, train_rows: np.ndarray, train_labels: np.ndarray, grid: list[float],
               max_iter: int, standardize: bool, tol: float) -> dict[str, Any]:
    """Fit one layer's path over ``grid`` and score it; runs in a worker (reopens the store from ``path``)."""
    store = ActivationStore(path)
    block = store.layer(layer)  # float16 memmap [words, dim]
    dev, test = store.split_rows("dev"), store.split_rows("test")
    X_train = np.asarray(block[train_rows], dtype=np.float32)
    X_dev, X_test = np.asarray(block[dev], dtype=np.float32), np.asarray(block[test], dtype=np.float32)
    f = _fit_path(X_train, train_labels, X_dev, store.labels[dev], grid, max_iter, standardize, tol)
    if f["scaler"] is not None:
        X_test = f["scaler"].transform(X_test)
    return {"C": f["model"].C, "dev_accuracy": f["dev_accuracy"],
            "test_accuracy": float(f["model"].score(X_test, store.labels[test])),
            "dev_by_C": f["dev_by_C"], "n_iter": f["n_iter"]}


def _raw_space(fitted: dict[str, Any], classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chosen model's weights ``float32 [dim, classes]`` and bias ``[classes]`` on raw inputs (the scaler
    folded in), columns in the order of ``classes``."""
    model, scaler = fitted["model"], fitted["scaler"]
    if not np.array_equal(model.classes_, classes):
        raise ProbeInputError("a layer's fit saw other classes than the training labels; pass one y for all layers.")
    coef, bias = model.coef_.astype(np.float64), model.intercept_.astype(np.float64)  # [classes, dim], [classes]
    if scaler is not None:
        coef = coef / scaler.scale_
        bias = bias - coef @ scaler.mean_
    return coef.T.astype(np.float32), bias.astype(np.float32)


def fit_probe(
    X: Any,
    y: Any,
    X_dev: Any,
    y_dev: Any,
    *,
    Cs: Sequence[float] = DEFAULT_CS,
    max_iter: int = 100,
    standardize: bool = True,
    tol: float = 1e-4,
    label_names: Sequence[str] | None = None,
) -> tuple[LinearProbe, dict[str, Any]]:
    """The reference estimator on every layer of ``X: float [words, layers, dim]`` (float16 memmaps welcome),
    ``y: int [words]``, with ``C`` chosen per layer on ``X_dev``/``y_dev``, as a :class:`LinearProbe` (one probe
    per layer, raw-space weights, so prediction, saving and the API work as for the project's solver).

    Returns the probe and its history in the shape of :class:`~pipeline.probing.solver.FitHistory`'s
    ``to_dict()``: the path's steps (one per ``C``, smallest first) stand for epochs, ``best_epoch`` is the
    1-based step of the chosen ``C``; plus ``C``, ``Cs``, ``n_iter`` and ``seconds``.
    """
    grid = _check_settings(Cs, max_iter, None, 1)
    X, X_dev = check_X(X), check_X(X_dev, "X_dev")
    y, y_dev = check_y(y, X.shape[0]), check_y(y_dev, X_dev.shape[0], "y_dev")
    classes = np.unique(y)
    if len(classes) < 2:
        raise ProbeInputError(f"y contains only one class ({classes[0]!r}); a probe needs at least two classes.")
    names, all_names = class_names(classes, label_names)
    n_layers, dim = int(X.shape[1]), int(X.shape[2])
    t0 = time.perf_counter()
    W = np.empty((n_layers, dim, len(classes)), dtype=np.float32)
    b = np.empty((n_layers, len(classes)), dtype=np.float32)
    fits = []
    for k in range(n_layers):
        X_k = np.asarray(X[:, k], dtype=np.float32)
        fitted = _fit_path(X_k, y, np.asarray(X_dev[:, k], dtype=np.float32), y_dev, grid, max_iter, standardize,
                           tol, train_loss=True)
        W[k], b[k] = _raw_space(fitted, classes)
        fits.append(fitted)
        log.info("sklearn probe layer %d: C=%g dev %.4f (L-BFGS iterations per C: %s)", k, fitted["model"].C,
                 fitted["dev_accuracy"], fitted["n_iter"])
    seconds = time.perf_counter() - t0
    settings = {"solver": "sklearn", "estimator": "sklearn.linear_model.LogisticRegression", "penalty": "l2",
                "lbfgs_max_iter": max_iter, "tol": tol, "standardize": standardize, "Cs": grid}
    history = {
        "dev_accuracy": [[f["dev_by_C"][i] for f in fits] for i in range(len(grid))],
        "train_loss": [[f["train_loss_by_C"][i] for f in fits] for i in range(len(grid))],
        "best_epoch": [grid.index(f["model"].C) + 1 for f in fits],
        "seconds": seconds, "resident": True, "n_train": int(X.shape[0]),
        "C": [f["model"].C for f in fits], "Cs": grid, "n_iter": [f["n_iter"] for f in fits],
    }
    probe = LinearProbe(weights=W, bias=b, classes=classes, label_names=names, layer_ids=PerLayer().layer_ids(n_layers),
                        view=PerLayer(), n_layers_in=n_layers, dim_in=dim, all_label_names=all_names,
                        training={"params": settings, "history": history})
    return probe, history


def reference_accuracies(
    store: ActivationStore | Path | str,
    layers: Sequence[int] | None = None,
    *,
    Cs: Sequence[float] = DEFAULT_CS,
    max_iter: int = 100,
    standardize: bool = True,
    max_train_words: int | None = None,
    shuffle_train_labels: bool = False,
    seed: int = 0,
    tol: float = 1e-4,
    n_jobs: int = 1,
) -> dict[str, Any]:
    """Dev and test accuracy of the scikit-learn reference probe, per layer of ``store``.

    ``layers``: store layers (default all, 0 = embeddings); ``Cs``: the ``C`` grid chosen from on dev;
    ``max_iter``: L-BFGS iterations per ``C`` on the warm-started path; ``standardize``: per-neuron
    standardisation on the training words; ``max_train_words``: a seeded subsample of the training words
    (``None``: all); ``shuffle_train_labels``: permute the training labels (seeded), a control whose accuracy
    must collapse; ``n_jobs``: layers fitted in parallel worker processes (joblib).

    Returns a JSON-friendly dict: ``layers``, per layer ``C`` (chosen), ``dev_accuracy``, ``test_accuracy``,
    ``dev_by_C`` (``[layers][Cs]``) and ``n_iter`` (``[layers][Cs]``; equal to ``max_iter``: not converged),
    plus ``Cs``, ``n_train_words``, ``settings`` and ``seconds``.
    """
    grid = _check_settings(Cs, max_iter, max_train_words, n_jobs)
    store = store if isinstance(store, ActivationStore) else ActivationStore(Path(store))
    layer_list = list(range(store.n_layers)) if layers is None else [int(k) for k in layers]
    for k in layer_list:
        store.layer(k)  # raises StoreError naming the valid range
    rows = _train_rows(store, max_train_words, seed)
    labels = store.labels[rows]
    if shuffle_train_labels:
        labels = np.random.default_rng(seed).permutation(labels)
    if len(np.unique(labels)) < 2:
        raise ProbeInputError("the training words hold one tag only; a probe needs at least two classes.")
    t0 = time.perf_counter()
    jobs = (delayed(_fit_layer)(store.path, k, rows, labels, grid, max_iter, standardize, tol) for k in layer_list)
    fits = Parallel(n_jobs=n_jobs)(jobs)
    seconds = time.perf_counter() - t0
    for k, f in zip(layer_list, fits):
        log.info("layer %d: C=%g dev %.4f test %.4f (L-BFGS iterations per C: %s)",
                 k, f["C"], f["dev_accuracy"], f["test_accuracy"], f["n_iter"])
    return {
        "layers": layer_list,
        "C": [f["C"] for f in fits],
        "dev_accuracy": [f["dev_accuracy"] for f in fits],
        "test_accuracy": [f["test_accuracy"] for f in fits],
        "dev_by_C": [f["dev_by_C"] for f in fits],
        "n_iter": [f["n_iter"] for f in fits],
        "Cs": grid,
        "n_train_words": len(rows),
        "settings": {"estimator": "sklearn.linear_model.LogisticRegression", "penalty": "l2", "solver": "lbfgs",
                     "max_iter": max_iter, "tol": tol, "standardize": standardize,
                     "max_train_words": max_train_words, "shuffle_train_labels": shuffle_train_labels, "seed": seed},
        "seconds": seconds,
    }
