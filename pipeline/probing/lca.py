"""Linguistic Correlation Analysis (Dalvi et al. 2019), the neuron-level analysis, as NeuroX does it.

- the **oracle**: one probe on all layers' neurons concatenated (``layers * dim`` inputs;
  neuron ``i`` is dimension ``i % dim`` of layer ``i // dim``);
- **ranking**: :func:`top_neurons` and :func:`neuron_ordering` reproduce NeuroX 1.0.9's
  ``get_top_neurons`` / ``get_neuron_ordering`` exactly, down to tie handling (the same
  ``np.argsort(...)[::-1]``, float32 sums and threshold arithmetic) and the order of neurons
  inside one percentage step (NeuroX takes them from a Python ``set``; we build the same sets
  from the same insertion sequence, so the list is identical, not just the chunks);
- the **minimal set**: the smallest top-k of the ordering whose retrained probe reaches
  ``ratio`` (default 0.99, relative) of the oracle's dev accuracy, found by binary search over k
  (O(log n) retrains instead of n; assumes dev accuracy is non-decreasing in k, which holds up to
  noise for a ranking by weight mass; :func:`smallest_k` documents and tests this);
- its per-layer distribution, random and bottom-k baselines of the same size, and ablation
  (the oracle scored with the selected neurons' raw activations set to 0).

Probes read the activations through :mod:`pipeline.probing.views` (:class:`Concat`, :class:`Ablated`)
and are trained by :func:`pipeline.probing.solver.fit`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from pipeline.config import NeuronParams
from pipeline.probing.inputs import ProbeInputError
from pipeline.probing.linear import LinearProbe
from pipeline.probing.solver import SolverConfig, fit
from pipeline.probing.views import Ablated, Concat

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


def _union_in_set_order(orders: list[np.ndarray], counts_row: np.ndarray) -> np.ndarray:
    """NeuroX's ``np.array(list(set of per-class prefixes added class by class)))``."""
    seq = np.concatenate([o[:k] for o, k in zip(orders, counts_row, strict=True)])
    return np.array(list(set(seq.tolist())), dtype=np.int64)


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
    return _union_in_set_order(orders, counts[0]), per_class


def neuron_ordering(weights: Any, search_stride: int = NeuronParams().search_stride) -> tuple[np.ndarray, list[int]]:
    """NeuroX ``get_neuron_ordering``: global ordering from sweeping the weight-mass share.

    weights: float ``[neurons, classes]`` (classes in ``class_to_idx`` order). Top neurons are
    taken at shares ``p / search_stride`` for p = 0..search_stride; each step appends the
    neurons it adds. Returns (ordering ``int [neurons]``, cutoffs: ordering length after each step).
    """
    if search_stride < 1:
        raise ProbeInputError(f"search_stride={search_stride} must be >= 1.")
    A = _abs_class_major(weights)
    percentages = [p / search_stride for p in range(search_stride + 1)]
    orders, counts = _class_prefixes(A, percentages)
    considered: set[int] = set()
    ordering: list[int] = []
    cutoffs: list[int] = []
    for i in range(len(percentages)):
        local = _union_in_set_order(orders, counts[i]).tolist()
        new = set(local).difference(considered)
        ordering = ordering + list(new)
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
def smallest_k(accuracy_at: Callable[[int], float], target: float, candidates: Sequence[int]) -> dict[str, Any]:
    """Smallest ``k`` in sorted ``candidates`` with ``accuracy_at(k) >= target``, by binary search.

    Assumes ``accuracy_at`` is non-decreasing in k (more top-ranked neurons never hurt); then the
    result equals an exhaustive scan, with O(log n) calls. Results are memoised. If even the
    largest candidate misses the target it is returned with ``reached=False``.
    """
    cand = sorted(set(int(k) for k in candidates))
    if not cand or cand[0] < 1:
        raise ProbeInputError("candidates must be a non-empty list of neuron counts >= 1.")
    seen: dict[int, float] = {}

    def acc(i: int) -> float:
        k = cand[i]
        if k not in seen:
            seen[k] = float(accuracy_at(k))
            log.info("minimal set search: k=%d dev accuracy %.4f (target %.4f)", k, seen[k], target)
        return seen[k]

    lo, hi = 0, len(cand) - 1
    if acc(hi) < target:
        return {"k": cand[hi], "reached": False, "evaluated": {str(k): v for k, v in sorted(seen.items())}}
    while lo < hi:
        mid = (lo + hi) // 2
        if acc(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return {"k": cand[lo], "reached": True, "evaluated": {str(k): v for k, v in sorted(seen.items())}}


# ----------------------------------------------------------------------------------- analysis
def oracle_probe(X: Any, y: Any, X_dev: Any = None, y_dev: Any = None, *, neurons: Sequence[int] | None = None,
                 label_names: Sequence[str] | None = None, config: SolverConfig | None = None) -> LinearProbe:
    """Fit one probe on all layers' neurons concatenated (optionally only ``neurons``).

    X: float ``[words, layers, dim]``; the probe's ``weights[0]`` are ``[layers*dim, classes]``.
    """
    probe, _ = fit(X, y, X_dev, y_dev, view=Concat(neurons), config=config, label_names=label_names)
    return probe


def lca(
    X: Any, y: Any, X_dev: Any, y_dev: Any, X_test: Any, y_test: Any, *,
    label_names: Sequence[str] | None = None,
    ratio: float = NeuronParams().ratio,
    search_stride: int = NeuronParams().search_stride,
    candidates: Sequence[int] | None = None,
    seed: int = 0,
    config: SolverConfig | None = None,
) -> dict[str, Any]:
    """Full LCA on ``X: float [words, layers, dim]`` splits; JSON-friendly results.

    Oracle on all neurons -> NeuroX ordering of its raw-space weights -> minimal set (smallest
    top-k with dev accuracy >= ``ratio`` * oracle dev accuracy; ``candidates`` default 1..n) ->
    per-layer spread, random/bottom baselines of the same size, ablation of the selected neurons.
    ``config`` trains every probe (l1, l2, epochs, ...), with its seed replaced by ``seed``, which
    also draws the random baseline.
    """
    if not 0 < ratio <= 1:
        raise ProbeInputError(f"ratio={ratio} must be in (0, 1]: the share of the oracle's dev accuracy to keep.")
    Xa = np.asarray(X) if not isinstance(X, np.ndarray) else X
    if Xa.ndim != 3:
        raise ProbeInputError(f"X has {Xa.ndim} dimensions; LCA needs [words, layers, dim].")
    n_layers, dim = Xa.shape[1], Xa.shape[2]
    n = n_layers * dim
    cfg = replace(SolverConfig() if config is None else config, seed=seed)
    oracle = oracle_probe(X, y, X_dev, y_dev, label_names=label_names, config=cfg)
    oracle_dev = float(oracle.score(X_dev, y_dev)[0])
    oracle_test = float(oracle.score(X_test, y_test)[0])
    weights = oracle.weights[0]  # raw-space [neurons, classes], as NeuroX's probe weights
    ordering, cutoffs = neuron_ordering(weights, search_stride)
    target = ratio * oracle_dev

    def retrain(idx: np.ndarray) -> LinearProbe:
        return oracle_probe(X, y, X_dev, y_dev, neurons=np.sort(idx), label_names=label_names, config=cfg)

    probes: dict[int, LinearProbe] = {n: oracle}

    def dev_acc(k: int) -> float:
        if k not in probes:
            probes[k] = retrain(ordering[:k])
        return oracle_dev if k == n else float(probes[k].score(X_dev, y_dev)[0])

    search = smallest_k(dev_acc, target, candidates if candidates is not None else range(1, n + 1))
    k = search["k"]
    selected = ordering[:k]
    top = probes[k] if k in probes else retrain(selected)
    rng = np.random.default_rng(seed)
    random_idx = np.sort(rng.choice(n, size=k, replace=False))
    bottom_idx = ordering[n - k:]

    def scores(p: LinearProbe) -> dict[str, float]:
        return {"dev": float(p.score(X_dev, y_dev)[0]), "test": float(p.score(X_test, y_test)[0])}

    def ablated(neurons: np.ndarray) -> dict[str, float]:
        return scores(oracle.with_view(Ablated(oracle.view, neurons)))

    settings = {**cfg.to_dict(), **oracle.view.to_json()}
    res: dict[str, Any] = {
        "n_neurons": n, "n_layers": n_layers, "dim": dim,
        "label_names": oracle.label_names,
        "params": {**{k_: v for k_, v in settings.items() if k_ not in ("neurons", "layout")},
                   "ratio": ratio, "search_stride": search_stride},
        "oracle": {"dev": oracle_dev, "test": oracle_test},
        "target_dev": target,
        "ordering": ordering.tolist(),
        "cutoffs": cutoffs,
        "minimal_set": {
            "k": k, "reached": search["reached"], "evaluated": search["evaluated"],
            "neurons": selected.tolist(), "accuracy": scores(top),
            "layers": layer_distribution(selected, dim, n_layers),
        },
        "baselines": {
            "random": {"neurons": random_idx.tolist(),
                       "accuracy": scores(retrain(random_idx)) if k < n else scores(oracle),
                       "layers": layer_distribution(random_idx, dim, n_layers)},
            "bottom": {"neurons": bottom_idx.tolist(),
                       "accuracy": scores(retrain(bottom_idx)) if k < n else scores(oracle),
                       "layers": layer_distribution(bottom_idx, dim, n_layers)},
        },
        "ablation": {"zero_selected": ablated(selected), "zero_random": ablated(random_idx)},
    }
    return res


__all__ = ["top_neurons", "neuron_ordering", "layer_distribution", "smallest_k", "oracle_probe", "lca"]
