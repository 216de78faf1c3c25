"""Training linear probes: elastic-net multinomial logistic regression, every probe layer at once.

The weights of all probe layers form one tensor ``W: float [probe_layers, probe_dim, classes]`` and one
batched matmul (``torch.baddbmm``) computes every layer's logits, so one optimizer step updates all layer
probes. Per layer the loss is exactly NeuroX's (``neurox.interpretation.linear_probe._train_probe``)::

    mean cross-entropy + l1 * sum|W_l| + l2 * ||W_l||_2        (L2 *norm*, not squared)

with the penalty on the weights of the *raw* activations, added once per mini-batch step and no penalty
on the bias, so the default lambdas mean what they mean in NeuroX whatever the batch size. The per-layer
losses are summed, so layers never interact (Adam is element-wise): :func:`elastic_net_grad`.

Solver (measured on MiniLM/WSJ POS, see benchmarks/README-probe.md): :class:`Adam` from zero weights,
batches of 256 rows, lr 1e-2 with cosine decay (:func:`cosine_lr`), 10 epochs, the best dev epoch kept
per layer (:class:`EpochSelector`, with optional ``patience``). Full-batch L-BFGS was not faster: each
iteration costs an epoch of compute and it needs dozens.

``standardize=True`` standardises inputs per (layer, neuron) on the training rows. It is a change of
variables only: the penalty stays on the raw-space weights ``W_std / scale``, so the objective is still
NeuroX's; the fitted probe holds the raw-space weights. It is off by default: it was slower and no more
accurate on dev.

Data streams from the float16 memmap in row chunks; when the float32 copy fits ``memory_budget_mb`` it is
kept resident (on the device) for all epochs. Deterministic on CPU for a fixed seed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

from pipeline.config import ProbeParams
from pipeline.probing.inputs import ProbeInputError, check_finite, check_X, check_y, row_chunks
from pipeline.probing.linear import LinearProbe, class_names, encode_labels, torch_device
from pipeline.probing.views import PerLayer, View

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------- settings
#: The probe settings' one source of defaults (``probe:`` in params.yaml).
_DEFAULTS = ProbeParams()


@dataclass(frozen=True)
class SolverConfig:
    """How to train: elastic-net lambdas, Adam with ``lr`` over ``epochs`` of ``batch_size`` rows, ``seed``.

    ``lr_schedule``: ``"cosine"`` decay or ``"constant"``; ``select_epoch``: keep per layer the epoch with
    the best dev accuracy (the last one without dev data); ``patience``: stop once no layer has improved
    on dev for that many epochs (``None``: never); ``memory_budget_mb``: float32 rows kept at once;
    ``device``: where to train (``None``: CUDA when available); ``progress``: a tqdm bar; ``precision``:
    ``"bf16"`` runs the training matmuls on bfloat16 inputs and weights (float32 accumulation, master weights,
    loss, optimiser and the fitted probe stay float32; fast on CPUs with AMX/AVX-512 BF16).
    """

    l1: float = _DEFAULTS.l1
    l2: float = _DEFAULTS.l2
    epochs: int = _DEFAULTS.epochs
    batch_size: int = _DEFAULTS.batch_size
    lr: float = _DEFAULTS.lr
    seed: int = 0
    standardize: bool = False
    lr_schedule: str = "cosine"
    select_epoch: bool = True
    patience: int | None = None
    memory_budget_mb: float = 2048.0
    precision: str = "fp32"
    device: str | None = field(default=None, compare=False)
    progress: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        for name, kind in (("l1", float), ("l2", float), ("epochs", int), ("batch_size", int), ("lr", float),
                           ("seed", int), ("standardize", bool), ("select_epoch", bool),
                           ("memory_budget_mb", float)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        if self.patience is not None:
            object.__setattr__(self, "patience", int(self.patience))
        if self.l1 < 0 or self.l2 < 0 or not math.isfinite(self.l1 + self.l2):
            raise ProbeInputError(f"l1={self.l1} and l2={self.l2} must be finite and >= 0.")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ProbeInputError(f"epochs={self.epochs}, batch_size={self.batch_size} and lr={self.lr} "
                                  "must all be positive.")
        if self.patience is not None and self.patience < 1:
            raise ProbeInputError(f"patience={self.patience} must be >= 1 epoch (or None: no early stop).")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ProbeInputError(f"lr_schedule={self.lr_schedule!r}; use 'cosine' or 'constant'.")
        if self.precision not in ("fp32", "bf16"):
            raise ProbeInputError(f"precision={self.precision!r}; use 'fp32' or 'bf16'.")

    def to_dict(self) -> dict[str, Any]:
        """The settings that shape a result (JSON-friendly; without ``device`` and ``progress``)."""
        d = asdict(self)
        del d["device"], d["progress"]
        if d["precision"] == "fp32":  # results of the default read exactly as before the option existed
            del d["precision"]
        return d


@dataclass
class FitHistory:
    """What happened during :func:`fit` (JSON-friendly via :meth:`to_dict`)."""

    dev_accuracy: list[list[float]] = field(default_factory=list)  # [epochs][layers]
    train_loss: list[list[float]] = field(default_factory=list)  # [epochs][layers], mean CE
    best_epoch: list[int] = field(default_factory=list)  # [layers], 1-based
    seconds: float = 0.0
    resident: bool = True
    n_train: int = 0
    dev_correct: list[list[int]] = field(default_factory=list)  # [epochs][layers], dev words right (not in JSON)
    n_dev: int = 0

    def kept_dev_accuracy(self) -> np.ndarray:
        """Dev accuracy ``float64 [layers]`` of the weights :func:`fit` returned (each layer's kept epoch), the
        value ``probe.score(X_dev, y_dev)`` would recompute, from the counts taken while training."""
        if not self.dev_correct or self.n_dev < 1:
            raise ProbeInputError("no dev accuracy was recorded; fit with X_dev and y_dev.")
        kept = [self.dev_correct[e - 1][layer] for layer, e in enumerate(self.best_epoch)]
        return np.asarray(kept, dtype=np.float64) / self.n_dev

    def to_dict(self, timings: bool = True) -> dict[str, Any]:
        """The history as JSON; ``timings=False`` leaves out ``seconds`` (for files a re-run must not change)."""
        out = {"dev_accuracy": self.dev_accuracy, "train_loss": self.train_loss, "best_epoch": self.best_epoch,
               "seconds": self.seconds, "resident": self.resident, "n_train": self.n_train}
        if not timings:
            del out["seconds"]
        return out


# ----------------------------------------------------------------------------------- pieces
def elastic_net_grad(xb: torch.Tensor, yb: torch.Tensor, W: torch.Tensor, b: torch.Tensor, l1: float, l2: float,
                     inv: torch.Tensor | None = None, eye: torch.Tensor | None = None) -> torch.Tensor:
    """Write the gradient of the per-layer loss sum into ``W.grad`` / ``b.grad``; return CE sums ``[layers]``.

    ``xb: float [layers, n, dim]`` (standardised when ``inv`` is given), ``yb: int [n]`` class positions,
    ``W: float [layers, dim, classes]``, ``b: float [layers, 1, classes]``, both with ``.grad`` allocated.
    The loss per layer is NeuroX's: mean cross-entropy + ``l1 * sum|W_raw|`` + ``l2 * ||W_raw||_2`` with
    ``W_raw = W * inv`` (``inv: float [layers, dim, 1]``, 1 / the input scale; ``None``: inputs are raw).
    ``eye``: the identity ``[classes, classes]`` (pass it to avoid rebuilding it every step).
    """
    n = xb.shape[1]
    if eye is None:
        eye = torch.eye(W.shape[2], device=W.device)
    low = xb.dtype == torch.bfloat16  # bf16 matmuls, float32 everything else
    z = torch.bmm(xb, W.detach().to(torch.bfloat16)).float().add_(b) if low else torch.baddbmm(b, xb, W)  # [Lp, n, C]
    logp = torch.log_softmax(z, dim=-1)
    onehot = eye[yb]  # [n, C]
    ce = -(logp * onehot).sum((1, 2))  # [Lp]
    g = logp.exp_().sub_(onehot).div_(n)  # softmax - onehot, averaged
    if low:
        W.grad.copy_(torch.bmm(xb.transpose(1, 2), g.to(torch.bfloat16)))
    else:
        torch.bmm(xb.transpose(1, 2), g, out=W.grad)
    torch.sum(g, dim=1, keepdim=True, out=b.grad)
    if inv is None:  # raw inputs: d(l1 |W|_1 + l2 ||W||_2)/dW, subgradient 0 at W = 0
        w = W.detach()
        if l1:
            W.grad.add_(torch.sign(w), alpha=l1)
        if l2:
            norm = torch.linalg.vector_norm(w, dim=(1, 2), keepdim=True)
            W.grad.add_(w / norm.clamp_min(1e-30), alpha=l2)
    elif l1 or l2:
        Wr = W.detach() * inv  # raw-space weights [Lp, Dp, C]
        if l1:
            W.grad.add_(torch.sign(Wr).mul_(inv), alpha=l1)
        if l2:
            norm = torch.linalg.vector_norm(Wr, dim=(1, 2), keepdim=True)
            # d||W_raw||/dW_std = W_raw * inv / ||W_raw||
            W.grad.add_(Wr.mul_(inv).div_(norm.clamp_min_(1e-30)), alpha=l2)
    return ce.detach()


class Adam:
    """Adam with torch's defaults (as NeuroX uses), in place on ``params`` using their ``.grad``.

    Written out (a handful of in-place ops) rather than ``torch.optim.Adam`` because constructing
    the latter imports ``torch._dynamo``, about a second per process, which is most of a probe fit.
    Set :attr:`lr` between steps to schedule the learning rate.
    """

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter from its ``.grad``."""
        self.t += 1
        b1, b2 = self.betas
        bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            g = p.grad
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / math.sqrt(bc2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bc1)


def cosine_lr(lr: float, step: int, total: int) -> float:
    """Learning rate at ``step`` of ``total`` steps, decaying from ``lr`` to 0 along half a cosine."""
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / total))


class EpochSelector:
    """Keeps, per probe layer, the weights of the epoch with the best dev accuracy; says when to stop early.

    ``W: float [layers, dim, classes]`` and ``b: float [layers, 1, classes]`` are the weights being trained;
    call :meth:`update` after every epoch with that epoch's dev accuracy ``float [layers]``.
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, epochs: int, patience: int | None = None) -> None:
        self.best_acc = torch.full((W.shape[0],), -1.0, device=W.device)
        self.best_W, self.best_b = W.detach().clone(), b.detach().clone()
        self.best_epoch = [epochs] * W.shape[0]  # 1-based
        self.patience = patience

    def update(self, epoch: int, acc: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> bool:
        """Record epoch ``epoch`` (0-based); True when no layer improved for ``patience`` epochs (stop)."""
        better = acc > self.best_acc
        self.best_acc = torch.where(better, acc, self.best_acc)
        self.best_W[better] = W.detach()[better]
        self.best_b[better] = b.detach()[better]
        for i in better.nonzero().flatten().tolist():
            self.best_epoch[i] = epoch + 1
        return self.patience is not None and epoch + 1 - max(self.best_epoch) >= self.patience


def dev_correct(data: list[tuple[torch.Tensor, torch.Tensor]], W: torch.Tensor,
                b: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Words predicted right per layer ``float [layers]`` (whole numbers) of weights ``W``, ``b`` on prepared
    ``(x [layers, n, dim], y [n])`` chunks, and the number of words."""
    correct = torch.zeros(W.shape[0], device=W.device)
    n = 0
    with torch.no_grad():
        for c, yy in data:
            low = c.dtype == torch.bfloat16
            pred = (torch.bmm(c, W.to(torch.bfloat16)).float().add_(b) if low else torch.baddbmm(b, c, W)).argmax(-1)
            correct += (pred == yy).sum(1).float()
            n += c.shape[1]
    return correct, n


def dev_accuracy(data: list[tuple[torch.Tensor, torch.Tensor]], W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Accuracy per layer ``float [layers]`` of weights ``W``, ``b`` on prepared ``(x [layers, n, dim], y [n])``."""
    correct, n = dev_correct(data, W, b)
    return correct / n


# ----------------------------------------------------------------------------------- statistics
def _finish_stats(mean: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Constant neurons get scale 1 (as scikit-learn's StandardScaler)."""
    scale = torch.where(scale < 1e-6 * scale.amax().clamp_min(1e-30), torch.ones_like(scale), scale)
    return mean, scale


def _stats(X: np.ndarray, view: View, chunks: list[slice], shape: tuple[int, int],
           standardize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Streaming mean and scale ``[probe_layers, 1, probe_dim]`` over the rows; checks for NaN."""
    Lp, Dp = shape
    s1 = torch.zeros(Lp, 1, Dp, dtype=torch.float64)
    s2 = torch.zeros(Lp, 1, Dp, dtype=torch.float64)
    n = 0
    shift = None
    for sl in chunks:
        c = view.chunk(X, sl)
        check_finite(c, None, sl.start)
        if not standardize:
            continue
        if shift is None:  # shifted sums keep the float64 accumulation accurate
            shift = c[:, :1].double()
        d = c.double() - shift
        s1 += d.sum(1, keepdim=True)
        s2 += (d * d).sum(1, keepdim=True)
        n += c.shape[1]
    if not standardize:
        return torch.zeros(Lp, 1, Dp), torch.ones(Lp, 1, Dp)
    mean_d = s1 / n
    return _finish_stats((mean_d + shift).float(), (s2 / n - mean_d**2).clamp_min(0).sqrt().float())


def _stats_resident(c: torch.Tensor, standardize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and scale of an in-memory chunk ``[Lp, n, Dp]``."""
    Lp, _, Dp = c.shape
    if not standardize:
        return torch.zeros(Lp, 1, Dp), torch.ones(Lp, 1, Dp)
    var, mean = torch.var_mean(c.double(), dim=1, keepdim=True, correction=0)
    return _finish_stats(mean.float(), var.sqrt().float())


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(enabled: bool, total: int, desc: str) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False)


# ----------------------------------------------------------------------------------- fit
def fit(
    X: Any,
    y: Any,
    X_dev: Any | None = None,
    y_dev: Any | None = None,
    *,
    view: View | None = None,
    config: SolverConfig | None = None,
    layer_ids: Sequence[Any] | None = None,
    label_names: Sequence[str] | None = None,
) -> tuple[LinearProbe, FitHistory]:
    """Train probes on ``X: float [words, layers, dim]`` (or ``[words, dim]``), ``y: [words]`` (ids or strings).

    ``view`` says what each probe reads (default :class:`PerLayer`: one probe per layer); ``config`` how
    to train. With ``X_dev``/``y_dev`` the epoch is chosen per layer on dev accuracy (the only use of dev).
    ``layer_ids`` names the probe layers (default: the view's); ``label_names`` maps integer class ids to
    names (e.g. the store's ``label_names``) for reports. Returns the fitted probe and its history.
    """
    view = PerLayer() if view is None else view
    cfg = SolverConfig() if config is None else config
    X = check_X(X)
    y = check_y(y, X.shape[0])
    classes = np.unique(y)
    if len(classes) < 2:
        raise ProbeInputError(f"y contains only one class ({classes[0]!r}); a probe needs at least two classes.")
    have_dev = X_dev is not None or y_dev is not None
    if have_dev:
        if X_dev is None or y_dev is None:
            raise ProbeInputError("pass both X_dev and y_dev (or neither).")
        X_dev = check_X(X_dev, "X_dev")
        y_dev = check_y(y_dev, X_dev.shape[0], "y_dev")
        if X_dev.shape[1:] != X.shape[1:]:
            raise ProbeInputError(f"X_dev has layers x dim {X_dev.shape[1:]} but X has {X.shape[1:]}; "
                                  "use activations of the same model for dev.")
    n_layers_in, dim_in = int(X.shape[1]), int(X.shape[2])
    Lp, Dp = view.shape(n_layers_in, dim_in)
    layer_ids = view.layer_ids(n_layers_in) if layer_ids is None else list(layer_ids)
    if len(layer_ids) != Lp:
        raise ProbeInputError(f"layer_ids has {len(layer_ids)} names for {Lp} probe layer(s).")
    names, all_names = class_names(classes, label_names)
    dev = torch_device(cfg.device)
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)  # the only randomness (weights start at 0)

    low = torch.bfloat16 if cfg.precision == "bf16" else torch.float32  # the dtype the training rows are kept in
    N = X.shape[0]
    chunks = row_chunks(N, view.chunk_rows(n_layers_in, dim_in, N, cfg.memory_budget_mb))
    resident = len(chunks) == 1
    y_all = torch.from_numpy(encode_labels(classes, y))
    # One fixed row permutation per chunk (drawn once); batch order reshuffled every epoch.
    perms = [torch.randperm(sl.stop - sl.start, generator=gen) for sl in chunks]
    cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    if resident:  # read and convert the training rows once, already permuted
        c = view.chunk(X, chunks[0], perm=perms[0])
        check_finite(c, perms[0], 0)
        mean, scale = _stats_resident(c, cfg.standardize)
        if cfg.standardize:
            c.sub_(mean).div_(scale)
        cache[0] = (c.to(dev, dtype=low), y_all[perms[0]].to(dev))
        del c
    else:
        mean, scale = _stats(X, view, chunks, (Lp, Dp), cfg.standardize)
    mean_d, scale_d = mean.to(dev), scale.to(dev)
    # [Lp, Dp, 1]: W_raw = W_std * inv (None: inputs are raw, W is the raw-space weight)
    inv = (1.0 / scale).transpose(1, 2).to(dev) if cfg.standardize else None

    def load(ci: int) -> tuple[torch.Tensor, torch.Tensor]:
        if ci in cache:
            return cache[ci]
        sl, p = chunks[ci], perms[ci]
        c = view.chunk(X, sl, perm=p).to(dev)
        if cfg.standardize:
            c.sub_(mean_d).div_(scale_d)
        return c.to(low), y_all[sl][p].to(dev)

    C = len(classes)
    W = torch.zeros(Lp, Dp, C, device=dev)
    b = torch.zeros(Lp, 1, C, device=dev)
    W.grad = torch.zeros_like(W)
    b.grad = torch.zeros_like(b)
    opt = Adam([W, b], cfg.lr)
    dev_data = None
    if have_dev:
        dev_data = _prepare_eval(X_dev, encode_labels(classes, y_dev), view, mean_d, scale_d, cfg, dev)
    selector = EpochSelector(W, b, cfg.epochs, cfg.patience)
    hist = FitHistory(resident=resident, n_train=N)
    steps_per_epoch = sum(math.ceil((sl.stop - sl.start) / cfg.batch_size) for sl in chunks)
    total = cfg.epochs * steps_per_epoch
    step = 0
    eye = torch.eye(C, device=dev)
    bar = _progress(cfg.progress, total, "probe")
    for epoch in range(cfg.epochs):
        loss_sum = torch.zeros(Lp, dtype=torch.float64, device=dev)
        for ci in torch.randperm(len(chunks), generator=gen).tolist():
            Xc, yc = load(ci)
            n_c = Xc.shape[1]
            n_b = math.ceil(n_c / cfg.batch_size)
            for bi in torch.randperm(n_b, generator=gen).tolist():
                s0 = bi * cfg.batch_size
                xb, yb = Xc[:, s0:s0 + cfg.batch_size], yc[s0:s0 + cfg.batch_size]
                if cfg.lr_schedule == "cosine":
                    opt.lr = cosine_lr(cfg.lr, step, total)
                loss_sum += elastic_net_grad(xb, yb, W, b, cfg.l1, cfg.l2, inv, eye).double()
                opt.step()
                step += 1
                bar.update(1)
        hist.train_loss.append((loss_sum / N).tolist())
        if dev_data is not None:
            correct, hist.n_dev = dev_correct(dev_data, W, b)
            acc = correct / hist.n_dev
            hist.dev_accuracy.append(acc.tolist())
            hist.dev_correct.append([int(v) for v in correct.tolist()])
            if cfg.select_epoch and selector.update(epoch, acc, W, b):
                log.info("early stop after epoch %d: no layer improved on dev for %d epochs", epoch + 1, cfg.patience)
                break
    bar.close()
    if dev_data is not None and cfg.select_epoch:
        W, b = selector.best_W, selector.best_b
    coef_std = W.detach().cpu().numpy()
    intercept_std = b.detach()[:, 0].cpu().numpy()
    if cfg.standardize:  # back to raw space: W_raw = W_std / scale, b_raw = b_std - (mean / scale) @ W_std
        mean_np, scale_np = mean[:, 0].numpy(), scale[:, 0].numpy()
        weights = coef_std / scale_np[:, :, None]
        bias = intercept_std - np.einsum("ld,ldc->lc", mean_np / scale_np, coef_std)
    else:
        weights, bias = coef_std, intercept_std
    hist.best_epoch = selector.best_epoch
    hist.seconds = time.perf_counter() - t0
    probe = LinearProbe(weights, bias, classes, names, layer_ids, view, n_layers_in, dim_in, all_names,
                        cfg.memory_budget_mb, cfg.device,
                        training={"params": {**cfg.to_dict(), **view.to_json()},
                                  "history": hist.to_dict(timings=False)})
    log.info("trained %d probe layer(s) x %d neurons x %d classes on %d words in %.2fs", Lp, Dp, C, N, hist.seconds)
    return probe, hist


def _prepare_eval(X: np.ndarray, y_pos: np.ndarray, view: View, mean: torch.Tensor, scale: torch.Tensor,
                  cfg: SolverConfig, dev: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Standardised dev chunks ``(x [layers, n, dim], y [n])`` on ``dev``, kept for per-epoch scoring.

    ``y_pos``: class positions ``int [words]`` (-1 for labels never trained)."""
    out = []
    yy = torch.from_numpy(y_pos)
    n_rows = view.chunk_rows(X.shape[1], X.shape[2], X.shape[0], cfg.memory_budget_mb)
    for sl in row_chunks(X.shape[0], n_rows):
        c = view.chunk(X, sl)
        check_finite(c, None, sl.start, "X_dev")
        c = c.to(dev)
        if cfg.standardize:
            c.sub_(mean).div_(scale)
        out.append((c.to(torch.bfloat16) if cfg.precision == "bf16" else c, yy[sl].to(dev)))
    return out


def select_lambdas(
    X: Any, y: Any, X_dev: Any, y_dev: Any,
    grid: Sequence[tuple[float, float]] = ((1e-5, 1e-5), (1e-4, 1e-4), (1e-3, 1e-3)),
    *,
    view: View | None = None,
    config: SolverConfig | None = None,
) -> tuple[LinearProbe, dict[str, Any]]:
    """Fit one probe per ``(l1, l2)`` in ``grid``; keep the one with the best mean dev accuracy.

    Dev decides (epochs inside each fit, then lambdas); test is never looked at. Returns the
    chosen probe and a JSON-friendly table of per-layer dev accuracy for every grid point.
    """
    if not grid:
        raise ProbeInputError("grid is empty; pass at least one (l1, l2) pair.")
    cfg = SolverConfig() if config is None else config
    table, best, best_cfg, best_score = [], None, cfg, -1.0
    for l1, l2 in grid:
        point = replace(cfg, l1=l1, l2=l2)
        probe, _ = fit(X, y, X_dev, y_dev, view=view, config=point)
        dev = probe.score(X_dev, y_dev)
        table.append({"l1": float(l1), "l2": float(l2), "dev_accuracy": dev.tolist()})
        if dev.mean() > best_score:  # ties keep the earlier grid point
            best, best_cfg, best_score = probe, point, float(dev.mean())
    assert best is not None
    return best, {"grid": table, "chosen": {"l1": best_cfg.l1, "l2": best_cfg.l2}, "criterion": "mean dev accuracy"}
