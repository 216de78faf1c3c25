"""Views: how a probe reads activations ``X [words, layers, dim]``.

A view turns rows of ``X`` into the probe's input, float32 ``[probe_layers, rows, probe_dim]``:

- :class:`PerLayer`: one probe per layer, all layers (or the selected ones) batched together;
  ``PerLayer((k,))`` is a probe of layer ``k`` alone;
- :class:`Concat`: one probe over every layer's neurons concatenated (``layers * dim`` inputs; neuron
  ``i`` is dimension ``i % dim`` of layer ``i // dim``), the "oracle" of the neuron analysis, or over a
  subset of those neurons (``Concat(neurons=ids)``);
- :class:`Ablated`: another view with some neurons' raw activations set to 0 (an input transform, as
  NeuroX's ``zero_out_activations_remove_neurons``);
- :class:`Subsets`: many probes at once, probe ``s`` reading the neuron subset ``sets[s]`` of the all-layer
  concatenation (random k-sets of the salience gate), batched as the solver batches layers.

The caller builds the view and hands it to the solver (training) or the fitted probe (prediction).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pipeline.probing.inputs import ProbeInputError


def _rows_layer_major(X: np.ndarray, rows: slice | np.ndarray, layers: np.ndarray | None,
                      perm: torch.Tensor | None) -> torch.Tensor:
    """Rows of X as a fresh float16/float32 tensor ``[layers, n, dim]`` (still X's dtype).

    ``layers`` selects input layers; ``perm`` reorders the rows (applied before any conversion).
    """
    block = X[rows].transpose(1, 0, 2)  # [L, n, D]: a view for slices of the store's memmap
    if layers is not None:
        block = block[layers]
    lm = np.ascontiguousarray(block)  # contiguous reads of the layer-major store
    if np.may_share_memory(lm, X):  # no copy was made: never let torch write into the caller's array
        lm = lm.copy()
    t = torch.from_numpy(lm)
    if perm is not None:
        t = torch.index_select(t, 1, perm)  # a plain copy, faster than t[:, perm]
    return t


class View(ABC):
    """How a probe reads ``X [words, layers, dim]``; subclasses say which inputs each probe layer sees."""

    @abstractmethod
    def shape(self, n_layers: int, dim: int) -> tuple[int, int]:
        """``(probe_layers, probe_dim)`` for inputs of ``n_layers x dim``; raises if the view does not fit them."""

    @abstractmethod
    def layer_ids(self, n_layers: int) -> list[Any]:
        """Names of the probe layers (input layer ids, or ``["all"]`` for one probe over all layers)."""

    @abstractmethod
    def read_layers(self, n_layers: int) -> int:
        """How many input layers a chunk reads."""

    @abstractmethod
    def chunk(self, X: np.ndarray, rows: slice | np.ndarray, perm: torch.Tensor | None = None) -> torch.Tensor:
        """Rows of ``X`` as a fresh, writable float32 ``[probe_layers, n, probe_dim]`` tensor.

        ``perm`` reorders the rows (applied to the float16 copy, before conversion).
        """

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """JSON-friendly description (``layout``, ``layers``, ``neurons``), read back by :func:`view_from_json`."""

    def chunk_rows(self, n_layers: int, dim: int, n: int, memory_budget_mb: float) -> int:
        """Rows per chunk so that one chunk (float32 copy + float16 copy and its permutation) fits the budget."""
        probe_layers, probe_dim = self.shape(n_layers, dim)
        row_bytes = 4 * probe_layers * probe_dim + 4 * self.read_layers(n_layers) * dim
        return max(1, min(n, int(memory_budget_mb * 2**20 // row_bytes)))


@dataclass(frozen=True, eq=False)
class PerLayer(View):
    """One probe per layer, trained and applied together: ``[layers, n, dim]``.

    ``layers``: input layer ids to probe (default: all); ``PerLayer((k,))`` probes layer ``k`` alone.
    """

    layers: Sequence[int] | None = None

    def __post_init__(self) -> None:
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(k) for k in self.layers))

    def _layer_index(self) -> np.ndarray | None:
        return None if self.layers is None else np.asarray(self.layers, dtype=np.int64)

    def shape(self, n_layers: int, dim: int) -> tuple[int, int]:
        if self.layers is not None and (len(self.layers) == 0 or min(self.layers) < 0
                                        or max(self.layers) >= n_layers):
            raise ProbeInputError(f"layers={list(self.layers)} must be non-empty ids in 0..{n_layers - 1}.")
        return self.read_layers(n_layers), dim

    def layer_ids(self, n_layers: int) -> list[Any]:
        return list(range(n_layers)) if self.layers is None else list(self.layers)

    def read_layers(self, n_layers: int) -> int:
        return n_layers if self.layers is None else len(self.layers)

    def chunk(self, X: np.ndarray, rows: slice | np.ndarray, perm: torch.Tensor | None = None) -> torch.Tensor:
        t = _rows_layer_major(X, rows, self._layer_index(), perm)
        return t.to(torch.float32).contiguous()

    def to_json(self) -> dict[str, Any]:
        return {"layout": "layers", "layers": None if self.layers is None else list(self.layers), "neurons": None}


@dataclass(frozen=True, eq=False)
class Concat(View):
    """One probe over all layers' neurons concatenated: ``[1, n, layers * dim]``.

    ``neurons``: ids into that concatenation to keep (default: all), e.g. a minimal set of the neuron analysis.
    """

    neurons: Sequence[int] | np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.neurons is not None:
            object.__setattr__(self, "neurons", np.asarray(self.neurons, dtype=np.int64))

    def shape(self, n_layers: int, dim: int) -> tuple[int, int]:
        n_all = n_layers * dim
        if self.neurons is None:
            return 1, n_all
        if len(self.neurons) == 0:
            raise ProbeInputError("neurons= is empty; select at least one neuron.")
        if self.neurons.min() < 0 or self.neurons.max() >= n_all:
            raise ProbeInputError(f"neurons= holds ids outside 0..{n_all - 1} (layers * dim = {n_layers} * {dim}).")
        return 1, len(self.neurons)

    def layer_ids(self, n_layers: int) -> list[Any]:
        return ["all"]

    def read_layers(self, n_layers: int) -> int:
        return n_layers

    def chunk(self, X: np.ndarray, rows: slice | np.ndarray, perm: torch.Tensor | None = None) -> torch.Tensor:
        t = _rows_layer_major(X, rows, None, perm)
        flat = t.permute(1, 0, 2).reshape(1, t.shape[1], t.shape[0] * t.shape[2])
        if self.neurons is not None:
            flat = torch.index_select(flat, 2, torch.from_numpy(self.neurons))
        return flat.to(torch.float32).contiguous()

    def positions(self, neurons: np.ndarray) -> np.ndarray:
        """Columns of this view's input holding the all-layer neuron ids ``neurons`` (ids it drops are skipped)."""
        if self.neurons is None:
            return neurons
        lookup = {int(n): i for i, n in enumerate(self.neurons)}
        return np.asarray([lookup[int(n)] for n in neurons if int(n) in lookup], dtype=np.int64)

    def to_json(self) -> dict[str, Any]:
        return {"layout": "concat", "layers": None,
                "neurons": None if self.neurons is None else self.neurons.tolist()}


@dataclass(frozen=True, eq=False)
class Ablated(View):
    """``base`` with the raw activations of ``neurons`` (ids over the all-layer concatenation) set to 0."""

    base: View
    neurons: Sequence[int] | np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.base, Concat):
            raise ProbeInputError("ablation needs a probe over the all-layer concatenation (a Concat view): "
                                  "its neuron ids count over all layers.")
        object.__setattr__(self, "neurons", np.asarray(self.neurons, dtype=np.int64))

    def shape(self, n_layers: int, dim: int) -> tuple[int, int]:
        n_all = n_layers * dim
        if len(self.neurons) and (self.neurons.min() < 0 or self.neurons.max() >= n_all):
            raise ProbeInputError(f"ablated neurons hold ids outside 0..{n_all - 1} "
                                  f"(layers * dim = {n_layers} * {dim}).")
        return self.base.shape(n_layers, dim)

    def layer_ids(self, n_layers: int) -> list[Any]:
        return self.base.layer_ids(n_layers)

    def read_layers(self, n_layers: int) -> int:
        return self.base.read_layers(n_layers)

    def chunk(self, X: np.ndarray, rows: slice | np.ndarray, perm: torch.Tensor | None = None) -> torch.Tensor:
        out = self.base.chunk(X, rows, perm)
        assert isinstance(self.base, Concat)
        zero = self.base.positions(self.neurons)
        if len(zero):
            out[:, :, torch.from_numpy(zero)] = 0.0
        return out

    def to_json(self) -> dict[str, Any]:
        return {"layout": "ablated", "base": self.base.to_json(), "neurons": self.neurons.tolist()}


@dataclass(frozen=True, eq=False)
class Subsets(View):
    """Many probes over the all-layer concatenation, probe ``s`` reading neurons ``sets[s]``: ``[n_sets, n, k]``.

    ``sets: int [n_sets, k]`` (equal k; ids over the concatenation, neuron ``i`` is dimension ``i % dim`` of
    layer ``i // dim``). Rows are gathered once per chunk; :meth:`View.chunk_rows` keeps the float32 chunk
    (``n_sets * rows * k * 4`` bytes) within the solver's memory budget. Probe ``s`` is trained exactly as a
    :class:`Concat` probe on ``sets[s]`` would be (the probes of a batch never interact).
    """

    sets: Sequence[Sequence[int]] | np.ndarray

    def __post_init__(self) -> None:
        sets = np.asarray(self.sets, dtype=np.int64)
        if sets.ndim != 2 or sets.shape[0] == 0 or sets.shape[1] == 0:
            raise ProbeInputError(f"sets has shape {sets.shape}; expected a non-empty int [n_sets, k] "
                                  "(every subset of the same size k).")
        object.__setattr__(self, "sets", sets)

    def shape(self, n_layers: int, dim: int) -> tuple[int, int]:
        n_all = n_layers * dim
        if self.sets.min() < 0 or self.sets.max() >= n_all:
            raise ProbeInputError(f"sets hold ids outside 0..{n_all - 1} (layers * dim = {n_layers} * {dim}).")
        return int(self.sets.shape[0]), int(self.sets.shape[1])

    def layer_ids(self, n_layers: int) -> list[Any]:
        return list(range(self.sets.shape[0]))

    def read_layers(self, n_layers: int) -> int:
        return n_layers

    def chunk_rows(self, n_layers: int, dim: int, n: int, memory_budget_mb: float) -> int:
        """Rows per chunk so that the gathered float32 chunk, the float32 row copy it is gathered from and
        the float16 reads fit the budget."""
        n_sets, k = self.shape(n_layers, dim)
        row_bytes = 4 * n_sets * k + 8 * n_layers * dim
        return max(1, min(n, int(memory_budget_mb * 2**20 // row_bytes)))

    def chunk(self, X: np.ndarray, rows: slice | np.ndarray, perm: torch.Tensor | None = None) -> torch.Tensor:
        t = _rows_layer_major(X, rows, None, perm)
        n = t.shape[1]
        flat = t.permute(1, 0, 2).reshape(n, t.shape[0] * t.shape[2]).to(torch.float32)  # [n, layers * dim]
        n_sets, k = self.sets.shape
        idx = torch.from_numpy(self.sets)[:, None, :].expand(n_sets, n, k)
        # one gather for all sets, from the row block seen n_sets times (an expanded view, no copy)
        return torch.gather(flat[None].expand(n_sets, n, flat.shape[1]), 2, idx)

    def to_json(self) -> dict[str, Any]:
        return {"layout": "subsets", "layers": None, "neurons": self.sets.tolist()}


def view_from_json(d: dict[str, Any]) -> View:
    """The view described by :meth:`View.to_json`."""
    layout = d.get("layout")
    if layout == "layers":
        return PerLayer(d.get("layers"))
    if layout == "concat":
        return Concat(d.get("neurons"))
    if layout == "ablated":
        return Ablated(view_from_json(d["base"]), d["neurons"])
    if layout == "subsets":
        return Subsets(d["neurons"])
    raise ProbeInputError(f"unknown view layout {layout!r}; expected 'layers', 'concat', 'ablated' or 'subsets'.")
