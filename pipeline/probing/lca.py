"""Linguistic Correlation Analysis (Dalvi et al. 2019), the neuron-level analysis, as NeuroX does it.

- the **oracle**: one probe on all layers' neurons concatenated (``layers * dim`` inputs;
  neuron ``i`` is dimension ``i % dim`` of layer ``i // dim``);
- **ranking**: :func:`top_neurons` and :func:`neuron_ordering` reproduce NeuroX 1.0.9's
  ``get_top_neurons`` / ``get_neuron_ordering`` exactly, down to tie handling (the same
  ``np.argsort(...)[::-1]``, float32 sums and threshold arithmetic) and the order of neurons
  inside one percentage step (NeuroX takes them from a Python ``set``; we build the same sets
  from the same insertion sequence less its repeats, which leave a set unchanged, so the list is
  identical, not just the chunks);
- the **minimal set** is found by a grid scan, not here: :func:`pipeline.probing.subsets.grid_scan`
  (dev accuracy is not monotone in k, so a bisection over k would be wrong), driven by
  :mod:`pipeline.probing.neuron_analysis` with the salience gate;
- the per-layer distribution of a neuron set (:func:`layer_distribution`).

Probes read the activations through :mod:`pipeline.probing.views` (:class:`Concat`)
and are trained by :func:`pipeline.probing.solver.fit`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.config import NeuronParams
from pipeline.probing.inputs import ProbeInputError
from pipeline.probing.linear import LinearProbe
from pipeline.probing.solver import SolverConfig, fit
from pipeline.probing.views import Concat

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------- ranking
def _abs_class_major(weights: Any) -> np.ndarray:
    """``|W|`` as C-contiguous float32 ``[classes, neurons]`` from ``W: [neurons, classes]``."""
    w = np.asarray(weights)
    if w.ndim != 2 or w.shape[0] == 0 or w.shape[1] == 0:
        raise ProbeInputError(f"weights have shape {w.shape}; expected [neurons, classes] "
                              "(e.g. probe.coef_[0] of an oracle probe).")
    if not np.all(np.isfinite(w)):
        raise ProbeInputError("weights contain NaN or infinity; retrain the probe.")
    return np.abs(np.ascontiguousarray(w.T, dtype=np.float32))


def _class_prefixes(A: np.ndarray, percentages: Sequence[float]) -> tuple[list[np.ndarray], np.ndarray]:
    """Per class: neurons by decreasing |w| (NeuroX's argsort) and prefix sizes per percentage.

    A: float32 ``[classes, neurons]``. Returns (sort_idx per class, counts ``int [percentages, classes]``).
    """
    n = A.shape[1]
    orders, counts = [], np.empty((len(percentages), A.shape[0]), dtype=np.int64)
    for c in range(A.shape[0]):
        total_mass = np.sum(A[c, :])
        sort_idx = np.argsort(A[c, :])[::-1]
        cum_sums = np.cumsum(A[c, sort_idx])  # float32, non-decreasing: searchsorted == first ">="
        for i, p in enumerate(percentages):
            first = int(np.searchsorted(cum_sums, total_mass * p, side="left"))
            counts[i, c] = n if first >= n else first + 1
        orders.append(sort_idx)
    return orders, counts


class _Prefixes:
    """The per-class |w|-sorted prefixes of :func:`_class_prefixes`, for building their union quickly.

    ``orders``: per class the neurons by decreasing |w| (``classes x int [neurons]``). NeuroX adds the
    prefixes' neurons to a Python ``set`` class by class; a neuron already in the set changes nothing (not
    even the table's size), so the set, and its iteration order, is the one built from each neuron's *first*
    occurrence in that sequence alone. :meth:`first_occurrences` finds those with numpy.
    """

    def __init__(self, orders: list[np.ndarray]) -> None:
        n_classes, n = len(orders), len(orders[0])
        self.rank = np.empty((n_classes, n), dtype=np.int64)  # rank[c, j]: position of neuron j in class c
        for c, o in enumerate(orders):
            self.rank[c, o] = np.arange(n)
        self.n = n

    def first_occurrences(self, counts_row: np.ndarray) -> np.ndarray:
        """Distinct neurons of the concatenated prefixes ``orders[c][:counts_row[c]]`` (c = 0, 1, ...), in the
        order of their first occurrence: ``int [distinct]``."""
        inside = self.rank < np.asarray(counts_row)[:, None]  # [classes, neurons]
        first_class = inside.argmax(0)  # the earliest class whose prefix holds the neuron
        cols = np.arange(self.n)
        taken = inside[first_class, cols]
        key = first_class * self.n + self.rank[first_class, cols]  # position in the concatenation, per class
        ids = np.flatnonzero(taken)
        return ids[np.argsort(key[ids], kind="stable")]

    def union_in_set_order(self, counts_row: np.ndarray) -> list[int]:
        """NeuroX's ``list(set of per-class prefixes added class by class))``: ``[distinct]`` neuron ids."""
        return list(set(self.first_occurrences(counts_row).tolist()))


def top_neurons(weights: Any, percentage: float,
                class_names: Sequence[str] | None = None) -> tuple[np.ndarray, dict[Any, np.ndarray]]:
    """NeuroX ``get_top_neurons``: per class the smallest |w|-sorted prefix with ``percentage`` of its mass.

    weights: float ``[neurons, classes]``. Returns (union of all classes' neurons, in NeuroX's
    set order; ``{class name or index: neuron ids}``).
    """
    A = _abs_class_major(weights)
    orders, counts = _class_prefixes(A, [percentage])
    names = list(class_names) if class_names is not None else list(range(A.shape[0]))
    per_class = {names[c]: orders[c][: counts[0, c]] for c in range(A.shape[0])}
    return np.array(_Prefixes(orders).union_in_set_order(counts[0]), dtype=np.int64), per_class


def neuron_ordering(weights: Any, search_stride: int = NeuronParams().search_stride) -> tuple[np.ndarray, list[int]]:
    """NeuroX ``get_neuron_ordering``: global ordering from sweeping the weight-mass share.

    weights: float ``[neurons, classes]`` (classes in ``class_to_idx`` order). Top neurons are
    taken at shares ``p / search_stride`` for p = 0..search_stride; each step appends the
    neurons it adds. Returns (ordering ``int [neurons]``, cutoffs: ordering length after each step).
    The new neurons of a step come from NeuroX's own set operations (their order is the sets'); a step with
    the previous step's prefix sizes adds nothing and is skipped.
    """
    if search_stride < 1:
        raise ProbeInputError(f"search_stride={search_stride} must be >= 1.")
    A = _abs_class_major(weights)
    percentages = [p / search_stride for p in range(search_stride + 1)]
    orders, counts = _class_prefixes(A, percentages)
    prefixes = _Prefixes(orders)
    considered: set[int] = set()
    ordering: list[int] = []
    cutoffs: list[int] = []
    for i in range(len(percentages)):
        if i == 0 or not np.array_equal(counts[i], counts[i - 1]):
            local = prefixes.union_in_set_order(counts[i])
            new = set(local).difference(considered)
            ordering.extend(new)
            considered = considered.union(new)
        cutoffs.append(len(ordering))
    return np.asarray(ordering, dtype=np.int64), cutoffs


def layer_distribution(neurons: Sequence[int], dim: int, n_layers: int) -> dict[str, Any]:
    """How selected neuron ids (over the all-layer concatenation) spread over layers."""
    ids = np.asarray(neurons, dtype=np.int64)
    counts = np.bincount(ids // dim, minlength=n_layers) if len(ids) else np.zeros(n_layers, dtype=np.int64)
    total = max(int(counts.sum()), 1)
    mean_layer = float((np.arange(n_layers) * counts).sum() / total) if len(ids) else float("nan")
    return {"counts": counts.tolist(), "fractions": (counts / total).tolist(), "mean_layer": mean_layer}


# ----------------------------------------------------------------------------------- minimal set
def oracle_probe(X: Any, y: Any, X_dev: Any = None, y_dev: Any = None, *, neurons: Sequence[int] | None = None,
                 label_names: Sequence[str] | None = None, config: SolverConfig | None = None) -> LinearProbe:
    """Fit one probe on all layers' neurons concatenated (optionally only ``neurons``).

    X: float ``[words, layers, dim]``; the probe's ``weights[0]`` are ``[layers*dim, classes]``.
    """
    probe, _ = fit(X, y, X_dev, y_dev, view=Concat(neurons), config=config, label_names=label_names)
    return probe
