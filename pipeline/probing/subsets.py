"""Neuron subsets for the salience-gated neuron analysis: many small probes, batched.

Inputs are activations ``X: float [words, layers, dim]``; neuron ``i`` of the all-layer concatenation is
dimension ``i % dim`` of layer ``i // dim``. Everything here batches what LCA used to do one probe at a time:

- :func:`oracle_seeds`: the oracle (one probe over all neurons) for several probe seeds as one program;
- :func:`raw_ranking`, :func:`standardised_ranking`, :func:`neuron_std`, :func:`ranking_agreement`: neuron
  rankings by ``|w|`` (NeuroX's ordering) on raw and on standardised activations, and how far two agree;
- :func:`random_subset_accuracy`: probes retrained on ``n_random`` random k-sets (and the top-k, in the same
  batch, so both follow one recipe) via the :class:`~pipeline.probing.views.Subsets` view;
- :func:`ablation_accuracy`: a fitted oracle scored with each k-set zeroed, all sets in one forward per chunk
  (:func:`ablation_accuracy_seeds`: several oracles, the inputs read and gathered once for all);
- :func:`grid_scan`: the minimal set by a grid scan over k (not bisection: dev accuracy is not monotone in
  k), probes retrained on nested top-k prefixes for several seeds at once (:func:`~pipeline.probing.batched.
  fit_seeds` with weight masks);
- :func:`subsample_rows`: a seeded training-word subsample that keeps these probes within the time budget.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from pipeline.probing.batched import fit_seeds
from pipeline.probing.inputs import ProbeInputError, check_X, check_y, row_chunks
from pipeline.probing.lca import layer_distribution, neuron_ordering
from pipeline.probing.linear import LinearProbe, class_names, encode_labels, torch_device
from pipeline.probing.solver import SolverConfig, fit
from pipeline.probing.views import Concat, Subsets, View
from pipeline.stats.salience import random_subsets

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------- inputs
def subsample_rows(n_words: int, max_words: int | None, seed: int = 0) -> np.ndarray:
    """Ascending row ids ``int [min(n_words, max_words)]``: all rows, or a seeded uniform subsample of them."""
    if max_words is None or max_words >= n_words:
        return np.arange(n_words, dtype=np.int64)
    if max_words < 1:
        raise ProbeInputError(f"max_words={max_words} must be >= 1 (or None: all training words).")
    return np.sort(np.random.default_rng(seed).choice(n_words, size=max_words, replace=False)).astype(np.int64)


def _resident(X: np.ndarray, view: View, dev: torch.device) -> torch.Tensor:
    """All rows of ``X`` through ``view``: ``float [probe_layers, words, probe_dim]`` on ``dev``."""
    return view.chunk(X, slice(0, X.shape[0])).to(dev)


def _classes(y: np.ndarray) -> np.ndarray:
    classes = np.unique(y)
    if len(classes) < 2:
        raise ProbeInputError(f"y contains only one class ({classes[0]!r}); a probe needs at least two classes.")
    return classes


# ----------------------------------------------------------------------------------- oracle
def oracle_seeds(X: Any, y: Any, X_dev: Any, y_dev: Any, seeds: Sequence[int], *,
                 label_names: Sequence[str] | None = None,
                 config: SolverConfig | None = None) -> list[LinearProbe]:
    """The oracle (one probe over all ``layers * dim`` neurons, a :class:`Concat` view) for every seed in
    ``seeds``, trained as one batched program (seeds as the batch axis, each with its own batch order, the
    order :func:`~pipeline.probing.solver.fit` uses for that seed). Returns one probe per seed, whose
    ``weights[0]: float [layers * dim, classes]`` are raw-space. ``X: float [words, layers, dim]``."""
    cfg = SolverConfig() if config is None else config
    X, X_dev = check_X(X), check_X(X_dev, "X_dev")
    y, y_dev = check_y(y, X.shape[0]), check_y(y_dev, X_dev.shape[0], "y_dev")
    classes = _classes(y)
    names, all_names = class_names(classes, label_names)
    dev = torch_device(cfg.device)
    view = Concat()
    c = _resident(X, view, dev)
    dev_data = [(_resident(X_dev, view, dev), torch.from_numpy(encode_labels(classes, y_dev)).to(dev))]
    res = fit_seeds(c, torch.from_numpy(encode_labels(classes, y)).to(dev), len(classes), list(seeds),
                    dev_data=dev_data, config=cfg)
    n_layers, dim = int(X.shape[1]), int(X.shape[2])
    out = []
    for s, seed in enumerate(seeds):
        training = {"params": {**replace(cfg, seed=int(seed)).to_dict(), **view.to_json()},
                    "history": {"best_epoch": [res.best_epoch[0][s]], "n_train": int(X.shape[0])}}
        out.append(LinearProbe(res.W[0, s][None].cpu().numpy(), res.b[0, s][None].cpu().numpy(), classes, names,
                               ["all"], view, n_layers, dim, all_names, cfg.memory_budget_mb, cfg.device,
                               training=training))
    return out


# ----------------------------------------------------------------------------------- rankings
def neuron_std(X: Any, memory_budget_mb: float = 512.0) -> np.ndarray:
    """Standard deviation of every neuron of the concatenation over the rows of ``X: [words, layers, dim]``:
    ``float [layers * dim]`` (float64 sums, streamed in row chunks)."""
    X = check_X(X)
    n, L, D = X.shape
    rows = max(1, int(memory_budget_mb * 2**20 // (16 * D)))
    out = np.empty((L, D))
    for layer in range(L):  # one layer at a time: contiguous reads of the layer-major store
        s1, s2 = np.zeros(D), np.zeros(D)
        shift = X[0, layer].astype(np.float64)
        for sl in row_chunks(n, rows):
            d = X[sl, layer].astype(np.float64) - shift
            s1 += d.sum(0)
            s2 += (d * d).sum(0)
        m = s1 / n
        out[layer] = np.sqrt(np.clip(s2 / n - m * m, 0.0, None))
    return out.reshape(L * D)


def raw_ranking(weights: Any, search_stride: int = 100) -> np.ndarray:
    """Neurons by importance, most important first: NeuroX's ordering of ``|w|`` of raw-space oracle weights
    ``float [neurons, classes]`` (as LCA ranks today). Returns ``int [neurons]``."""
    return neuron_ordering(weights, search_stride)[0]


def standardised_ranking(weights: Any, std: Any, search_stride: int = 100) -> np.ndarray:
    """Neurons by ``|w| * std``: the ordering of the weights the oracle would have on standardised inputs
    (``std: float [neurons]``, from :func:`neuron_std` on the training rows), so a layer whose activations are
    merely scaled up does not look less important. Returns ``int [neurons]``."""
    w = np.asarray(weights, dtype=np.float64)
    s = np.asarray(std, dtype=np.float64)
    if s.shape != (w.shape[0],):
        raise ProbeInputError(f"std has shape {s.shape}; expected one value per neuron ({w.shape[0]},).")
    return neuron_ordering((w * s[:, None]).astype(np.float32), search_stride)[0]


def ranking_agreement(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray, k: int, dim: int,
                      n_layers: int) -> dict[str, Any]:
    """How far two rankings ``int [neurons]`` agree on their top-``k``: ``overlap`` (shared neurons / k) and
    the mean layer of each top-k (``mean_layer_a``, ``mean_layer_b``, and their difference ``b - a``)."""
    if not 1 <= k <= min(len(a), len(b)):
        raise ProbeInputError(f"k={k} must lie in 1..{min(len(a), len(b))}.")
    ta, tb = np.asarray(a[:k], dtype=np.int64), np.asarray(b[:k], dtype=np.int64)
    la = layer_distribution(ta, dim, n_layers)["mean_layer"]
    lb = layer_distribution(tb, dim, n_layers)["mean_layer"]
    return {"k": int(k), "overlap": len(np.intersect1d(ta, tb)) / k, "mean_layer_a": la, "mean_layer_b": lb,
            "mean_layer_diff": lb - la}


# ----------------------------------------------------------------------------------- random k-sets
def subset_accuracy(X: Any, y: Any, X_dev: Any, y_dev: Any, X_test: Any, y_test: Any, sets: Any, *,
                    config: SolverConfig | None = None) -> dict[str, np.ndarray]:
    """Retrain one probe per row of ``sets: int [n_sets, k]`` (one batched :func:`fit` on a :class:`Subsets`
    view, dev choosing each probe's epoch); returns ``{"dev": float [n_sets], "test": float [n_sets]}``. Dev
    accuracy is the one measured while choosing the epoch (not predicted again)."""
    probe, hist = fit(X, y, X_dev, y_dev, view=Subsets(sets), config=config)
    return {"dev": hist.kept_dev_accuracy(), "test": probe.score(X_test, y_test)}


def random_subset_accuracy(X: Any, y: Any, X_dev: Any, y_dev: Any, X_test: Any, y_test: Any, k: int,
                           n_random: int = 100, seed: int = 0, config: SolverConfig | None = None,
                           topk: Sequence[int] | np.ndarray | None = None) -> dict[str, Any]:
    """Accuracy of probes retrained on ``n_random`` random k-sets (:func:`pipeline.stats.salience.random_subsets`
    with ``seed``) of the ``layers * dim`` neurons, all in one batched fit. With ``topk`` (``k`` neuron ids)
    the top-k probe is trained in the same batch (same seed, batch order and epochs: one recipe for both).

    Returns ``{"sets": int [n_random, k], "dev": float [n_random], "test": float [n_random]}`` plus
    ``"topk": {"dev", "test"}`` when ``topk`` is given.
    """
    X = check_X(X)
    n = X.shape[1] * X.shape[2]
    sets = random_subsets(n, k, n_random, seed)
    rows = sets
    if topk is not None:
        top = np.sort(np.asarray(topk, dtype=np.int64))
        if top.shape != (k,):
            raise ProbeInputError(f"topk has {top.shape[0]} neurons; expected k={k}.")
        rows = np.concatenate([top[None], sets])
    acc = subset_accuracy(X, y, X_dev, y_dev, X_test, y_test, rows, config=config)
    off = 0 if topk is None else 1
    out: dict[str, Any] = {"sets": sets, "dev": acc["dev"][off:], "test": acc["test"][off:]}
    if topk is not None:
        out["topk"] = {"dev": float(acc["dev"][0]), "test": float(acc["test"][0])}
    return out


def _check_oracle(probe: LinearProbe, X: np.ndarray) -> None:
    if not isinstance(probe.view, Concat) or probe.view.neurons is not None or probe.weights.shape[0] != 1:
        raise ProbeInputError("ablation_accuracy needs an oracle over all neurons (a Concat view without neurons=).")
    if (X.shape[1], X.shape[2]) != (probe.n_layers_in, probe.dim_in):
        raise ProbeInputError(f"X has {X.shape[1]} layer(s) x {X.shape[2]} dims but the probe was fit on "
                              f"{probe.n_layers_in} x {probe.dim_in}; pass activations of the same model.")


def _check_sets(sets: Any, n_all: int, what: str = "sets") -> np.ndarray:
    sets = np.asarray(sets, dtype=np.int64)
    if sets.ndim != 2 or sets.size == 0 or sets.min() < 0 or sets.max() >= n_all:
        raise ProbeInputError(f"{what} has shape {sets.shape}; expected int [n_sets, k] with ids in 0..{n_all - 1}.")
    return sets


def ablation_accuracy(probe: LinearProbe, X: Any, y: Any, sets: Any) -> np.ndarray:
    """Accuracy ``float [n_sets]`` of a fitted oracle (a probe over all neurons, :class:`Concat` view) on
    ``X: [words, layers, dim]`` when the neurons of each row of ``sets: int [n_sets, k]`` are zeroed, as
    NeuroX ablates (no retraining). One forward per row chunk serves every set: the logits of set ``s`` are
    the full logits minus the zeroed neurons' share ``x[:, sets[s]] @ W[sets[s]]``."""
    return ablation_accuracy_seeds([probe], X, y, None, sets)[0]


def ablation_accuracy_seeds(probes: Sequence[LinearProbe], X: Any, y: Any, own: Any, shared: Any) -> np.ndarray:
    """:func:`ablation_accuracy` of several oracles (e.g. one per seed) on the same ``X: [words, layers, dim]``:
    oracle ``p`` is scored with its own set ``own[p]`` (``int [probes, k]``, e.g. its top-k; ``None``: none)
    zeroed, then with each of the ``shared: int [n_sets, k]`` sets zeroed. The activations are read, and every
    set's neurons gathered, once for all oracles. Returns ``float [probes, 1 + n_sets]`` (``[probes, n_sets]``
    without ``own``)."""
    if not probes:
        raise ProbeInputError("probes is empty; pass at least one oracle.")
    X = check_X(X)
    for probe in probes:
        _check_oracle(probe, X)
    y = check_y(y, X.shape[0])
    first = probes[0]
    n_all = first.weights.shape[1]
    shared = _check_sets(shared, n_all)
    P, k = len(probes), shared.shape[1]
    if own is not None:
        own = _check_sets(own, n_all, "own")
        if own.shape != (P, k):
            raise ProbeInputError(f"own has shape {own.shape}; expected one set of k={k} per oracle, ({P}, {k}).")
    sets = shared if own is None else np.concatenate([own, shared])  # [S, k]: own sets first
    S, off = sets.shape[0], 0 if own is None else P
    dev = torch_device(first.device)
    idx = torch.from_numpy(sets).to(dev)
    oracles = []  # per oracle: W [n_all, C], b [C], W of its sets [(1 +) n_sets, k, C], class positions of y
    for p, probe in enumerate(probes):
        W = torch.from_numpy(probe.weights[0]).to(dev)
        Ws = [W[idx[off:]]] if own is None else [W[idx[p:p + 1]], W[idx[off:]]]
        oracles.append((W, torch.from_numpy(probe.bias[0]).to(dev), Ws, torch.from_numpy(probe.encode(y)).to(dev)))
    rows = max(1, int(first.memory_budget_mb * 2**20 // (4 * (S * k + 3 * n_all))))
    correct = torch.zeros(P, shared.shape[0] + (own is not None), device=dev)
    with torch.no_grad():
        for sl in row_chunks(X.shape[0], rows):
            c = first.view.chunk(X, sl)[0].to(dev)  # [n, n_all], the same input for every oracle
            g = torch.index_select(c, 1, idx.flatten()).view(c.shape[0], S, k).transpose(0, 1)  # [S, n, k]
            for p, (W, b, Ws, y_pos) in enumerate(oracles):
                z = torch.addmm(b, c, W)[None]  # [1, n, C]
                xs = [g[off:]] if own is None else [g[p:p + 1], g[off:]]
                pred = torch.cat([(z - torch.bmm(x, w)).argmax(-1) for x, w in zip(xs, Ws, strict=True)])
                correct[p] += (pred == y_pos[sl]).sum(1).float()  # pred: [(1 +) n_sets, n]
    return (correct / X.shape[0]).cpu().numpy()


# ----------------------------------------------------------------------------------- grid scan
def grid_points(n_neurons: int, step: float = 0.01) -> np.ndarray:
    """Candidate sizes ``int [points]``: ``ceil(p * n_neurons)`` for p = step, 2 step, ..., 1 (distinct)."""
    if not 0 < step <= 1:
        raise ProbeInputError(f"step={step} must be a share of the neurons in (0, 1].")
    m = int(round(1 / step))
    ks = [min(n_neurons, max(1, math.ceil(i * n_neurons / m - 1e-9))) for i in range(1, m + 1)]
    return np.unique(np.asarray(ks, dtype=np.int64))


def nested_fit(X: Any, y: Any, X_dev: Any, y_dev: Any, ordering: Any, ks: Sequence[int],
               seeds: Sequence[int], config: SolverConfig | None = None) -> dict[str, Any]:
    """Probes retrained on the top-``k`` prefixes of ``ordering`` for every ``k`` in ``ks`` and every seed, as one
    batched program: the inputs are the top-``max(ks)`` neurons in ranking order, and each probe's weights
    beyond its ``k`` are held at 0 by a mask. Returns ``{"dev": float [len(ks), seeds], "weights": float
    [len(ks), seeds, max(ks), classes]}`` (weight row ``j`` belongs to neuron ``ordering[j]``)."""
    cfg = SolverConfig() if config is None else config
    X, X_dev = check_X(X), check_X(X_dev, "X_dev")
    y, y_dev = check_y(y, X.shape[0]), check_y(y_dev, X_dev.shape[0], "y_dev")
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1 or max(ks) > len(ordering):
        raise ProbeInputError(f"ks={ks} must be sizes in 1..{len(ordering)}.")
    classes = _classes(y)
    dev = torch_device(cfg.device)
    k_max = max(ks)
    view = Concat(np.asarray(ordering[:k_max], dtype=np.int64))
    c = _resident(X, view, dev)
    dev_data = [(_resident(X_dev, view, dev), torch.from_numpy(encode_labels(classes, y_dev)).to(dev))]
    mask = torch.arange(k_max)[None, :] < torch.tensor(ks)[:, None]  # [G, k_max]
    res = fit_seeds(c, torch.from_numpy(encode_labels(classes, y)).to(dev), len(classes), list(seeds),
                    n_probes=len(ks), mask=mask, dev_data=dev_data, config=cfg)
    assert res.dev is not None
    return {"dev": res.dev.cpu().numpy(), "weights": res.W.cpu().numpy()}


def grid_scan(X: Any, y: Any, X_dev: Any, y_dev: Any, ordering: Any, target: float, *,
              seeds: Sequence[int] = (0, 1, 2), grid: Sequence[int] | None = None, block: int = 10,
              config: SolverConfig | None = None) -> dict[str, Any]:
    """The minimal set: the smallest grid point ``k`` whose top-k probe, retrained and averaged over ``seeds``,
    reaches ``target`` dev accuracy (e.g. ratio * the oracle's mean dev accuracy over seeds).

    ``grid``: ascending candidate sizes (default :func:`grid_points`, every 1% of the neurons). The grid is
    scanned in blocks of ``block`` points from small k upward (one :func:`nested_fit` per block), stopping
    after the first block holding a reaching k. Returns ``{"k", "reached", "target", "curve": [{k, dev_mean,
    dev_std, dev}], "seed_k": [each seed's own smallest reaching k in the scanned curve, or None],
    "k_spread": {min, max} (None if a seed did not reach), "scanned": points trained}``.
    """
    if block < 1:
        raise ProbeInputError(f"block={block} must be >= 1 grid points.")
    n = len(ordering)
    pts = grid_points(n) if grid is None else np.asarray(sorted({int(k) for k in grid}), dtype=np.int64)
    curve: list[dict[str, Any]] = []
    k_found = None
    for i in range(0, len(pts), block):
        ks = pts[i:i + block].tolist()
        dev = nested_fit(X, y, X_dev, y_dev, ordering, ks, seeds, config)["dev"]  # [G, S]
        for j, k in enumerate(ks):
            curve.append({"k": int(k), "dev_mean": float(dev[j].mean()), "dev_std": float(dev[j].std()),
                          "dev": [float(v) for v in dev[j]]})
        log.info("grid scan: k %d..%d, best mean dev %.4f (target %.4f)", ks[0], ks[-1],
                 max(p["dev_mean"] for p in curve[-len(ks):]), target)
        reach = [p["k"] for p in curve if p["dev_mean"] >= target]
        if reach:
            k_found = reach[0]
            break
    seed_k: list[int | None] = []
    for s in range(len(seeds)):
        hit = [p["k"] for p in curve if p["dev"][s] >= target]
        seed_k.append(hit[0] if hit else None)
    known = [k for k in seed_k if k is not None]
    spread = {"min": min(known), "max": max(known)} if known and len(known) == len(seed_k) else None
    return {"k": k_found if k_found is not None else int(pts[-1]), "reached": k_found is not None,
            "target": float(target), "curve": curve, "seed_k": seed_k, "k_spread": spread,
            "scanned": len(curve)}


__all__ = ["subsample_rows", "oracle_seeds", "neuron_std", "raw_ranking", "standardised_ranking",
           "ranking_agreement", "subset_accuracy", "random_subset_accuracy", "ablation_accuracy",
           "ablation_accuracy_seeds",
           "grid_points", "nested_fit", "grid_scan"]
