"""Training many probes of one input at once, each probe seed with its own batch order, with weight masks.

:func:`pipeline.probing.solver.fit` batches probe layers that share one batch order (one seed). The neuron
analysis also needs probes that differ only in their seed (the oracle over seeds, the grid scan averaged
over seeds) and probes that read nested prefixes of one neuron ranking (the grid scan). :func:`fit_seeds`
trains the grid ``[probes, seeds]`` as one batched program:

- the inputs ``c: float [V, N, D]`` are resident, with ``V == 1`` (every probe reads the same input) or
  ``V == probes``;
- seed ``s`` draws its batch order with the same generator calls as :func:`~pipeline.probing.solver.fit`
  on resident data, so probe ``(p, s)`` follows exactly the batches of ``fit(..., seed=s)``; at each step
  every seed's batch rows are gathered (a short last batch is padded with rows of weight 0);
- ``mask: bool [probes, D]`` keeps weights outside a probe's inputs at 0: their gradient is zeroed, so Adam
  never moves them and the penalty (``sign(0) = 0``, a zero adds nothing to the L2 norm) never sees them.
  A masked probe is the probe trained on the gathered unmasked inputs alone (up to float rounding).

The loss, optimizer, learning-rate schedule and dev-epoch selection are the solver's (raw inputs only:
``standardize`` is not supported here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pipeline.probing.inputs import ProbeInputError
from pipeline.probing.solver import Adam, EpochSelector, SolverConfig, cosine_lr


@dataclass
class SeedFit:
    """Result of :func:`fit_seeds`: raw-space weights ``W: float [probes, seeds, D, classes]``, bias
    ``b: float [probes, seeds, classes]``, dev accuracy of the kept epoch ``dev: float [probes, seeds]``
    (``None`` without dev data) and the kept epoch ``best_epoch: int [probes, seeds]`` (1-based)."""

    W: torch.Tensor
    b: torch.Tensor
    dev: torch.Tensor | None
    best_epoch: list[list[int]]


def batch_orders(n: int, batch_size: int, epochs: int, seed: int) -> list[list[torch.Tensor]]:
    """Row indices of every batch, ``[epochs][steps] -> int [rows]``, as :func:`solver.fit` visits them
    on ``n`` resident rows with ``seed`` (one row permutation, batch order reshuffled every epoch)."""
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    n_b = math.ceil(n / batch_size)
    out = []
    for _ in range(epochs):
        torch.randperm(1, generator=gen)  # fit's chunk order (one resident chunk): same generator calls
        order = torch.randperm(n_b, generator=gen).tolist()
        out.append([perm[bi * batch_size:(bi + 1) * batch_size] for bi in order])
    return out


def _logits(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Logits ``[P, S, n, C]`` of inputs ``x: [V, S, n, D]`` (``V`` is 1 or ``P``), ``W: [P, S, D, C]``,
    ``b: [P, S, 1, C]``. A shared input (``V == 1``) makes one wide matmul per seed over all probes."""
    P, S, D, C = W.shape
    if x.shape[0] == P:
        return torch.matmul(x, W) + b
    Wr = W.permute(1, 2, 0, 3).reshape(S, D, P * C)
    z = torch.bmm(x[0], Wr).view(S, x.shape[2], P, C).permute(2, 0, 1, 3)
    return z + b


def _input_grad(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``x^T g`` per probe ``[P, S, D, C]`` from ``x: [V, S, n, D]`` and ``g: [P, S, n, C]``."""
    P, S, n, C = g.shape
    if x.shape[0] == P:
        return torch.matmul(x.transpose(-1, -2), g)
    gr = g.permute(1, 2, 0, 3).reshape(S, n, P * C)
    return torch.bmm(x[0].transpose(1, 2), gr).view(S, -1, P, C).permute(2, 0, 1, 3)


def _accuracy(data: list[tuple[torch.Tensor, torch.Tensor]], W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Accuracy ``float [probes, seeds]`` on ``(c [V, n, D], y [n])`` chunks."""
    correct = torch.zeros(W.shape[:2], device=W.device)
    n = 0
    with torch.no_grad():
        for c, yy in data:
            pred = _logits(c[:, None].expand(-1, W.shape[1], -1, -1), W, b[:, :, None]).argmax(-1)  # [P, S, n]
            correct += (pred == yy).sum(-1).float()
            n += c.shape[1]
    return correct / n


def fit_seeds(c: torch.Tensor, y: torch.Tensor, n_classes: int, seeds: Sequence[int], *,
              n_probes: int | None = None, mask: torch.Tensor | None = None,
              dev_data: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
              config: SolverConfig | None = None) -> SeedFit:
    """Train ``[probes, seeds]`` probes on resident inputs ``c: float [V, N, D]`` with labels ``y: int [N]``
    (class positions ``0..n_classes-1``); ``dev_data``: ``(c_dev [V, n, D], y_dev [n])`` chunks choosing the
    epoch per probe. ``n_probes`` defaults to ``V``; with ``V == 1`` all probes read the same input.
    ``mask: bool [probes, D]``: which inputs each probe may use (default all). ``config.seed`` is ignored:
    ``seeds`` are the seeds. Everything runs on ``c``'s device."""
    cfg = SolverConfig() if config is None else config
    if cfg.standardize:
        raise ProbeInputError("fit_seeds trains on raw inputs; set standardize=False.")
    if c.ndim != 3 or y.ndim != 1 or c.shape[1] != y.shape[0]:
        raise ProbeInputError(f"c has shape {tuple(c.shape)} and y {tuple(y.shape)}; expected [V, N, D] and [N].")
    V, N, D = c.shape
    P = V if n_probes is None else int(n_probes)
    if V not in (1, P):
        raise ProbeInputError(f"{V} inputs for {P} probes; pass one input per probe or one shared input.")
    if mask is not None and tuple(mask.shape) != (P, D):
        raise ProbeInputError(f"mask has shape {tuple(mask.shape)}; expected [probes, D] = [{P}, {D}].")
    if not seeds:
        raise ProbeInputError("seeds is empty; pass at least one probe seed.")
    S, C, dev = len(seeds), int(n_classes), c.device
    bs = cfg.batch_size
    orders = [batch_orders(N, bs, cfg.epochs, int(s)) for s in seeds]
    W = torch.zeros(P, S, D, C, device=dev)
    b = torch.zeros(P, S, 1, C, device=dev)
    W.grad = torch.zeros_like(W)
    b.grad = torch.zeros_like(b)
    gmask = None if mask is None else mask.to(dev, torch.float32)[:, None, :, None]  # [P, 1, D, 1]
    opt = Adam([W, b], cfg.lr)
    selector = EpochSelector(W.view(P * S, D, C), b.view(P * S, 1, C), cfg.epochs, cfg.patience)
    n_b = math.ceil(N / bs)
    total = cfg.epochs * n_b
    eye = torch.eye(C, device=dev)
    step = 0
    for epoch in range(cfg.epochs):
        for t in range(n_b):
            rows = [orders[s][epoch][t] for s in range(S)]
            sizes = torch.tensor([len(r) for r in rows], device=dev, dtype=torch.float32)
            idx = torch.zeros(S, bs, dtype=torch.int64)
            valid = torch.zeros(S, bs, device=dev)
            for s, r in enumerate(rows):
                idx[s, :len(r)] = r
                valid[s, :len(r)] = 1.0
            idx = idx.to(dev)
            xb = c[:, idx]  # [V, S, bs, D]
            onehot = eye[y[idx]] * valid[:, :, None]  # [S, bs, C]; padded rows carry no label
            z = _logits(xb, W.detach(), b.detach())  # [P, S, bs, C]
            g = torch.log_softmax(z, dim=-1).exp_().mul_(valid[:, :, None]).sub_(onehot).div_(sizes[:, None, None])
            W.grad.copy_(_input_grad(xb, g))
            torch.sum(g, dim=2, keepdim=True, out=b.grad)
            w = W.detach()
            if cfg.l1:
                W.grad.add_(torch.sign(w), alpha=cfg.l1)
            if cfg.l2:
                norm = torch.linalg.vector_norm(w, dim=(2, 3), keepdim=True)
                W.grad.add_(w / norm.clamp_min(1e-30), alpha=cfg.l2)
            if gmask is not None:
                W.grad.mul_(gmask)
            if cfg.lr_schedule == "cosine":
                opt.lr = cosine_lr(cfg.lr, step, total)
            opt.step()
            step += 1
        if dev_data is not None and cfg.select_epoch:
            acc = _accuracy(dev_data, W.detach(), b.detach()[:, :, 0])
            if selector.update(epoch, acc.flatten(), W.view(P * S, D, C), b.view(P * S, 1, C)):
                break
    if dev_data is not None and cfg.select_epoch:
        W_out, b_out = selector.best_W.view(P, S, D, C), selector.best_b.view(P, S, C)
        best = [selector.best_epoch[p * S:(p + 1) * S] for p in range(P)]
    else:
        W_out, b_out = W.detach().clone(), b.detach()[:, :, 0].clone()
        best = [[cfg.epochs] * S for _ in range(P)]
    acc_out = None if dev_data is None else _accuracy(dev_data, W_out, b_out)
    return SeedFit(W_out, b_out, acc_out, best)


__all__ = ["SeedFit", "batch_orders", "fit_seeds"]
