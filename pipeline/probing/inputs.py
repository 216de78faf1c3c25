"""Validation of what a probe reads: activations ``X [words, layers, dim]``, labels ``y [words]``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pipeline.errors import LingShiftError


class ProbeInputError(LingShiftError, ValueError):
    """Bad input to a probe (shapes, labels, NaN); the message names the problem and the fix."""


def check_X(X: Any, name: str = "X") -> np.ndarray:
    """Return X as an array ``[words, layers, dim]``; a 2-D ``[words, dim]`` is one layer."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if X.ndim == 2:
        X = X[:, None, :]
    if X.ndim != 3:
        raise ProbeInputError(
            f"{name} has {X.ndim} dimension(s) with shape {tuple(X.shape)}; expected [words, layers, dim] "
            "(or [words, dim] for a single layer).")
    if X.shape[0] == 0 or X.shape[1] == 0 or X.shape[2] == 0:
        raise ProbeInputError(f"{name} is empty (shape {tuple(X.shape)}); pass at least one word with activations.")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise ProbeInputError(f"{name} has dtype {X.dtype}; expected floating-point activations.")
    return X


def check_y(y: Any, n_rows: int, name: str = "y") -> np.ndarray:
    """Return y as a 1-D array of ``n_rows`` labels (ints or strings)."""
    y = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
    if y.ndim != 1:
        raise ProbeInputError(f"{name} has shape {tuple(y.shape)}; expected one label per word, shape [words].")
    if len(y) != n_rows:
        raise ProbeInputError(f"X{name[1:]} has {n_rows} words but {name} has {len(y)} labels; "
                              "pass one label per word row.")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ProbeInputError(f"{name} holds non-integer floats; pass class ids (ints) or label strings.")
        y = y.astype(np.int64)
    return y


def check_finite(c: torch.Tensor, rows: torch.Tensor | None, offset: int, name: str = "X") -> None:
    """Raise if a chunk ``float [probe_layers, n, probe_dim]`` holds NaN/inf, naming the first bad
    (layer, row, neuron); ``rows`` maps chunk rows back to input rows (a permutation), ``offset`` is the
    chunk's first input row."""
    if torch.isfinite(c.sum()):  # a float16-sourced sum cannot overflow: non-finite iff NaN/inf inside
        return
    bad_mask = ~torch.isfinite(c)
    if not bad_mask.any():
        return
    bad = bad_mask.nonzero()[0].tolist()
    row = int(rows[bad[1]]) if rows is not None else bad[1]
    what = "NaN" if torch.isnan(c).any() else "infinity"
    raise ProbeInputError(f"{name} contains {what} (probe layer {bad[0]}, row {offset + row}, neuron {bad[2]}); "
                          "re-extract the activations or drop those words.")


def row_chunks(n: int, chunk_rows: int) -> list[slice]:
    """``n`` rows cut into consecutive slices of at most ``chunk_rows`` rows."""
    return [slice(a, min(a + chunk_rows, n)) for a in range(0, n, chunk_rows)]
