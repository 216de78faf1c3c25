"""Layer-wise linear probes: elastic-net multinomial logistic regression, all layers at once.

One probe per layer, trained together: the weights of all layers form one tensor
``W: float [layers, dim, classes]`` and one batched matmul (``torch.baddbmm``) computes every
layer's logits, so one optimizer step updates all layer probes. Per layer the loss is exactly
NeuroX's (``neurox.interpretation.linear_probe._train_probe``)::

    mean cross-entropy + l1 * sum|W_l| + l2 * ||W_l||_2        (L2 *norm*, not squared)

with the penalty on the weights of the *raw* activations, added once per mini-batch step and
no penalty on the bias, so the default lambdas mean what they mean in NeuroX whatever the
batch size. The per-layer losses are summed, so layers never interact (Adam is element-wise).

Solver (measured on MiniLM/WSJ POS, see benchmarks/README-probe.md): Adam from zero weights,
batches of 256 rows, lr 1e-2 with cosine decay, 10 epochs, the best dev epoch kept per layer.
Full-batch L-BFGS was not faster: each iteration costs an epoch of compute and it needs dozens.

``standardize=True`` standardises inputs per (layer, neuron) on the training rows. It is a
change of variables only: the penalty stays on the raw-space weights ``W_std / scale``, so the
objective is still NeuroX's; the stats are saved with the probe and applied at predict time.
It is off by default: it was slower and no more accurate on dev. ``coef_``/``intercept_``
are always the raw-space weights.

Data streams from the float16 memmap in row chunks; when the float32 copy fits
``memory_budget_mb`` it is kept resident (on the device) for all epochs. Epochs are selected
per layer on dev accuracy when dev data is given. Deterministic on CPU for a fixed seed.

The same class serves the neuron-level analysis: ``layout="concat"`` treats all layers'
neurons as one layer of ``layers * dim`` neurons (the "oracle"), ``neurons=`` restricts it to a
subset of those neurons, and ``predict(..., zero_neurons=...)`` ablates neurons.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.atomic import atomic_dir
from pipeline.errors import LingShiftError
from pipeline.provenance import library_versions

log = logging.getLogger(__name__)

PROBE_FORMAT = 1
WEIGHTS_FILE = "probe.safetensors"
META_FILE = "probe.json"


class ProbeInputError(LingShiftError, ValueError):
    """Bad input to a probe (shapes, labels, NaN); the message names the problem and the fix."""


class NotFittedError(LingShiftError, AttributeError):
    """A probe was used before ``fit`` (or ``load``)."""


# ----------------------------------------------------------------------------------- input
def _check_X(X: Any, name: str = "X") -> np.ndarray:
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


def _check_y(y: Any, n_rows: int, name: str = "y") -> np.ndarray:
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


# ----------------------------------------------------------------------------------- views
@dataclass(frozen=True)
class _View:
    """How a probe reads ``X [words, layers, dim]``: per layer, or all neurons concatenated.

    ``neurons`` (concat only) selects columns of the ``layers * dim`` concatenation.
    Output of :meth:`chunk`: float32 ``[probe_layers, n, probe_dim]``.
    """

    layout: str  # "layers" | "concat"
    n_layers: int  # layers the probe reads (after ``layers`` selection)
    dim: int
    neurons: np.ndarray | None = None
    layers: np.ndarray | None = None  # input layers read (None: all)

    @property
    def probe_layers(self) -> int:
        return self.n_layers if self.layout == "layers" else 1

    @property
    def probe_dim(self) -> int:
        if self.layout == "layers":
            return self.dim
        return self.n_layers * self.dim if self.neurons is None else len(self.neurons)

    def chunk(self, X: np.ndarray, rows: slice | np.ndarray, zero: np.ndarray | None = None,
              perm: torch.Tensor | None = None) -> torch.Tensor:
        """Rows of X as float32 ``[probe_layers, n, probe_dim]`` (a fresh, writable tensor).

        ``perm`` reorders the rows (applied to the float16 copy, before conversion);
        ``zero`` sets these columns (probe input positions) to 0.
        """
        block = X[rows].transpose(1, 0, 2)  # [L, n, D]: a view for slices of the store's memmap
        if self.layers is not None:
            block = block[self.layers]
        lm = np.ascontiguousarray(block)  # contiguous reads of the layer-major store
        if np.may_share_memory(lm, X):  # no copy was made: never let torch write into the caller's array
            lm = lm.copy()
        t = torch.from_numpy(lm)
        if perm is not None:
            t = t[:, perm]
        if self.layout == "layers":
            out = t.to(torch.float32)
        else:
            flat = t.permute(1, 0, 2).reshape(1, t.shape[1], self.n_layers * self.dim)
            if self.neurons is not None:
                flat = flat[:, :, torch.from_numpy(self.neurons)]
            out = flat.to(torch.float32)
        out = out.contiguous()
        if zero is not None and len(zero):
            if self.layout == "layers":
                raise ProbeInputError("zero_neurons needs a probe with layout='concat' (neuron ids over all layers).")
            out[:, :, torch.from_numpy(zero)] = 0.0
        return out


def _check_finite(c: torch.Tensor, rows: torch.Tensor | None, offset: int, name: str = "X") -> None:
    """Raise if a chunk ``[Lp, n, Dp]`` holds NaN/inf, naming the first bad (layer, row, neuron)."""
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


def _row_chunks(n: int, chunk_rows: int) -> list[slice]:
    return [slice(a, min(a + chunk_rows, n)) for a in range(0, n, chunk_rows)]


# ----------------------------------------------------------------------------------- probes
@dataclass
class FitHistory:
    """What happened during ``fit`` (JSON-friendly via :meth:`to_dict`)."""

    dev_accuracy: list[list[float]] = field(default_factory=list)  # [epochs][layers]
    train_loss: list[list[float]] = field(default_factory=list)  # [epochs][layers], mean CE
    best_epoch: list[int] = field(default_factory=list)  # [layers], 1-based
    seconds: float = 0.0
    resident: bool = True
    n_train: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly, without ``seconds``: a run fact, which would change a saved probe's bytes."""
        return {"dev_accuracy": self.dev_accuracy, "train_loss": self.train_loss, "best_epoch": self.best_epoch,
                "resident": self.resident, "n_train": self.n_train}


class LayerProbes:
    """Elastic-net multinomial logistic regression probes for every layer, trained together.

    Scikit-learn-like: ``fit(X, y, X_dev, y_dev)``, ``predict``, ``predict_proba``, ``score``.
    ``X: [words, layers, dim]`` (float16 memmaps welcome) or ``[words, dim]`` for one layer;
    ``y: [words]`` class ids or label strings. ``classes_`` are the sorted training labels.

    Solver: Adam on mini-batches of ``batch_size`` rows (all layers per step), learning rate
    ``lr`` with cosine decay over ``epochs``; per layer the epoch with the best dev accuracy is
    kept (the last one without dev data); ``patience`` stops early once no layer has improved on
    dev for that many epochs. ``layout="concat"`` makes one probe over all neurons
    (``layers * dim``), optionally restricted to ``neurons`` (ids into that concatenation).
    """

    def __init__(
        self,
        l1: float = 1e-5,
        l2: float = 1e-5,
        epochs: int = 10,
        batch_size: int = 256,
        lr: float = 1e-2,
        seed: int = 0,
        device: str | torch.device | None = None,
        standardize: bool = False,
        lr_schedule: str = "cosine",
        select_epoch: bool = True,
        patience: int | None = None,
        memory_budget_mb: float = 2048.0,
        layout: str = "layers",
        layers: Sequence[int] | np.ndarray | None = None,
        neurons: Sequence[int] | np.ndarray | None = None,
        progress: bool = False,
    ) -> None:
        self.l1, self.l2 = float(l1), float(l2)
        self.epochs, self.batch_size, self.lr, self.seed = int(epochs), int(batch_size), float(lr), int(seed)
        self.device = device
        self.standardize, self.lr_schedule, self.select_epoch = bool(standardize), lr_schedule, bool(select_epoch)
        self.patience = None if patience is None else int(patience)
        self.memory_budget_mb = float(memory_budget_mb)
        self.layout = layout
        self.layers = None if layers is None else np.asarray(layers, dtype=np.int64)
        self.neurons = None if neurons is None else np.asarray(neurons, dtype=np.int64)
        self.progress = progress
        if self.l1 < 0 or self.l2 < 0 or not math.isfinite(self.l1 + self.l2):
            raise ProbeInputError(f"l1={l1} and l2={l2} must be finite and >= 0.")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ProbeInputError(f"epochs={epochs}, batch_size={batch_size} and lr={lr} must all be positive.")
        if layout not in ("layers", "concat"):
            raise ProbeInputError(f"layout={layout!r}; use 'layers' (one probe per layer) or 'concat' (all neurons).")
        if self.neurons is not None and layout != "concat":
            raise ProbeInputError("neurons= selects neurons of the all-layer concatenation; "
                                  "use it with layout='concat'.")
        if self.patience is not None and self.patience < 1:
            raise ProbeInputError(f"patience={patience} must be >= 1 epoch (or None: no early stop).")
        if lr_schedule not in ("cosine", "constant"):
            raise ProbeInputError(f"lr_schedule={lr_schedule!r}; use 'cosine' or 'constant'.")

    # --------------------------------------------------------------- helpers
    def get_params(self) -> dict[str, Any]:
        """Hyperparameters (JSON-friendly), as passed to ``__init__``."""
        return {"l1": self.l1, "l2": self.l2, "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "seed": self.seed, "standardize": self.standardize, "lr_schedule": self.lr_schedule,
                "select_epoch": self.select_epoch, "patience": self.patience,
                "memory_budget_mb": self.memory_budget_mb, "layout": self.layout,
                "layers": None if self.layers is None else self.layers.tolist(),
                "neurons": None if self.neurons is None else self.neurons.tolist()}

    def _device(self) -> torch.device:
        if self.device is not None:
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _make_view(self, X: np.ndarray) -> _View:
        L, D = X.shape[1], X.shape[2]
        if self.layers is not None:
            if len(self.layers) == 0 or self.layers.min() < 0 or self.layers.max() >= L:
                raise ProbeInputError(f"layers={self.layers.tolist()} must be non-empty ids in 0..{L - 1}.")
            L = len(self.layers)
        if self.neurons is not None:
            n_all = L * D
            if len(self.neurons) == 0:
                raise ProbeInputError("neurons= is empty; select at least one neuron.")
            if self.neurons.min() < 0 or self.neurons.max() >= n_all:
                raise ProbeInputError(f"neurons= holds ids outside 0..{n_all - 1} (layers * dim = {L} * {D}).")
        return _View(self.layout, L, D, self.neurons, self.layers)

    def _chunk_rows(self, view: _View, n: int) -> int:
        # float32 chunk + float16 copy (+ its permuted copy) per row
        row_bytes = 4 * view.probe_layers * view.probe_dim + 4 * view.n_layers * view.dim
        return max(1, min(n, int(self.memory_budget_mb * 2**20 // row_bytes)))

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_std_"):
            raise NotFittedError("this LayerProbes is not fitted yet; call fit(X, y) or LayerProbes.load(path) first.")

    def _check_predict_X(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = _check_X(X)
        if (X.shape[1], X.shape[2]) != (self.n_layers_in_, self.dim_in_):
            raise ProbeInputError(
                f"X has {X.shape[1]} layer(s) x {X.shape[2]} dims but the probe was fit on "
                f"{self.n_layers_in_} x {self.dim_in_}; pass activations of the same model and layers.")
        return X

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Labels -> class positions in ``classes_``; labels never seen in training -> -1."""
        pos = np.searchsorted(self.classes_, y)
        pos = np.clip(pos, 0, len(self.classes_) - 1)
        ok = self.classes_[pos] == y
        return np.where(ok, pos, -1).astype(np.int64)

    # --------------------------------------------------------------- statistics
    def _stats(self, X: np.ndarray, view: _View, chunks: list[slice]) -> tuple[torch.Tensor, torch.Tensor]:
        """Streaming mean and scale ``[probe_layers, 1, probe_dim]`` over the rows; checks for NaN."""
        Lp, Dp = view.probe_layers, view.probe_dim
        s1 = torch.zeros(Lp, 1, Dp, dtype=torch.float64)
        s2 = torch.zeros(Lp, 1, Dp, dtype=torch.float64)
        n = 0
        shift = None
        for sl in chunks:
            c = view.chunk(X, sl)
            _check_finite(c, None, sl.start)
            if not self.standardize:
                continue
            if shift is None:  # shifted sums keep the float64 accumulation accurate
                shift = c[:, :1].double()
            d = c.double() - shift
            s1 += d.sum(1, keepdim=True)
            s2 += (d * d).sum(1, keepdim=True)
            n += c.shape[1]
        if not self.standardize:
            return torch.zeros(Lp, 1, Dp), torch.ones(Lp, 1, Dp)
        mean_d = s1 / n
        return self._finish_stats((mean_d + shift).float(), (s2 / n - mean_d**2).clamp_min(0).sqrt().float())

    def _stats_resident(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and scale of an in-memory chunk ``[Lp, n, Dp]``."""
        Lp, _, Dp = c.shape
        if not self.standardize:
            return torch.zeros(Lp, 1, Dp), torch.ones(Lp, 1, Dp)
        var, mean = torch.var_mean(c.double(), dim=1, keepdim=True, correction=0)
        return self._finish_stats(mean.float(), var.sqrt().float())

    @staticmethod
    def _finish_stats(mean: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Constant neurons get scale 1 (as scikit-learn's StandardScaler)."""
        scale = torch.where(scale < 1e-6 * scale.amax().clamp_min(1e-30), torch.ones_like(scale), scale)
        return mean, scale

    # --------------------------------------------------------------- fit
    def fit(
        self,
        X: Any,
        y: Any,
        X_dev: Any | None = None,
        y_dev: Any | None = None,
        *,
        layer_ids: Sequence[Any] | None = None,
        label_names: Sequence[str] | None = None,
    ) -> LayerProbes:
        """Train all layer probes on ``X: float [words, layers, dim]``, ``y: [words]``.

        With ``X_dev``/``y_dev`` the epoch is chosen per layer on dev accuracy (the only use of
        dev). ``layer_ids`` names the layers (default 0..layers-1); ``label_names`` maps integer
        class ids to names (e.g. the store's ``label_names``) for reports.
        """
        X = _check_X(X)
        y = _check_y(y, X.shape[0])
        classes = np.unique(y)
        if len(classes) < 2:
            raise ProbeInputError(f"y contains only one class ({classes[0]!r}); a probe needs at least two classes.")
        have_dev = X_dev is not None or y_dev is not None
        if have_dev:
            if X_dev is None or y_dev is None:
                raise ProbeInputError("pass both X_dev and y_dev (or neither).")
            X_dev = _check_X(X_dev, "X_dev")
            y_dev = _check_y(y_dev, X_dev.shape[0], "y_dev")
            if X_dev.shape[1:] != X.shape[1:]:
                raise ProbeInputError(f"X_dev has layers x dim {X_dev.shape[1:]} but X has {X.shape[1:]}; "
                                      "use activations of the same model for dev.")
        self.classes_ = classes
        self.n_layers_in_, self.dim_in_ = int(X.shape[1]), int(X.shape[2])
        view = self._make_view(X)
        self.view_ = view
        if layer_ids is None:
            sel = list(range(X.shape[1])) if self.layers is None else self.layers.tolist()
            layer_ids = sel if view.layout == "layers" else ["all"]
        self.layer_ids_ = list(layer_ids)
        if len(self.layer_ids_) != view.probe_layers:
            raise ProbeInputError(f"layer_ids has {len(self.layer_ids_)} names for {view.probe_layers} probe layer(s).")
        self.label_names_ = self._names(label_names)
        dev = self._device()
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(self.seed)  # the only randomness (weights start at 0)

        N = X.shape[0]
        chunks = _row_chunks(N, self._chunk_rows(view, N))
        resident = len(chunks) == 1
        y_all = torch.from_numpy(self._encode(y))
        # One fixed row permutation per chunk (drawn once); batch order reshuffled every epoch.
        perms = [torch.randperm(sl.stop - sl.start, generator=gen) for sl in chunks]
        cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        if resident:  # read and convert the training rows once, already permuted
            c = view.chunk(X, chunks[0], perm=perms[0])
            _check_finite(c, perms[0], 0)
            mean, scale = self._stats_resident(c)
            if self.standardize:
                c.sub_(mean).div_(scale)
            cache[0] = (c.to(dev), y_all[perms[0]].to(dev))
            del c
        else:
            mean, scale = self._stats(X, view, chunks)
        mean_d, scale_d = mean.to(dev), scale.to(dev)
        # [Lp, Dp, 1]: W_raw = W_std * inv (None: inputs are raw, W is the raw-space weight)
        inv = (1.0 / scale).transpose(1, 2).to(dev) if self.standardize else None

        def load(ci: int) -> tuple[torch.Tensor, torch.Tensor]:
            if ci in cache:
                return cache[ci]
            sl, p = chunks[ci], perms[ci]
            c = view.chunk(X, sl, perm=p).to(dev)
            if self.standardize:
                c.sub_(mean_d).div_(scale_d)
            return c, y_all[sl][p].to(dev)

        Lp, Dp, C = view.probe_layers, view.probe_dim, len(classes)
        W = torch.zeros(Lp, Dp, C, device=dev)
        b = torch.zeros(Lp, 1, C, device=dev)
        W.grad = torch.zeros_like(W)
        b.grad = torch.zeros_like(b)
        opt = _Adam([W, b], self.lr)
        dev_data = self._prepare_eval(X_dev, y_dev, view, mean_d, scale_d, dev) if have_dev else None
        best_acc = torch.full((Lp,), -1.0, device=dev)
        best_W, best_b = W.detach().clone(), b.detach().clone()
        best_epoch = [self.epochs] * Lp
        hist = FitHistory(resident=resident, n_train=N)
        steps_per_epoch = sum(math.ceil((sl.stop - sl.start) / self.batch_size) for sl in chunks)
        total = self.epochs * steps_per_epoch
        step = 0
        eye = torch.eye(C, device=dev)
        bar = _progress(self.progress, total, "probe")
        for epoch in range(self.epochs):
            loss_sum = torch.zeros(Lp, dtype=torch.float64, device=dev)
            for ci in torch.randperm(len(chunks), generator=gen).tolist():
                Xc, yc = load(ci)
                n_c = Xc.shape[1]
                n_b = math.ceil(n_c / self.batch_size)
                for bi in torch.randperm(n_b, generator=gen).tolist():
                    s0 = bi * self.batch_size
                    xb, yb = Xc[:, s0:s0 + self.batch_size], yc[s0:s0 + self.batch_size]
                    if self.lr_schedule == "cosine":
                        opt.lr = self.lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
                    loss_sum += self._grad_step(xb, yb, W, b, inv, eye).double()
                    opt.step()
                    step += 1
                    bar.update(1)
            hist.train_loss.append((loss_sum / N).tolist())
            if dev_data is not None:
                acc = self._accuracy_t(dev_data, W, b)
                hist.dev_accuracy.append(acc.tolist())
                if self.select_epoch:
                    better = acc > best_acc
                    best_acc = torch.where(better, acc, best_acc)
                    best_W[better] = W.detach()[better]
                    best_b[better] = b.detach()[better]
                    for i in better.nonzero().flatten().tolist():
                        best_epoch[i] = epoch + 1
                    if self.patience is not None and epoch + 1 - max(best_epoch) >= self.patience:
                        log.info("early stop after epoch %d: no layer improved on dev for %d epochs",
                                 epoch + 1, self.patience)
                        break
        bar.close()
        if dev_data is not None and self.select_epoch:
            W, b = best_W, best_b
        self.coef_std_ = W.detach().cpu().numpy()
        self.intercept_std_ = b.detach()[:, 0].cpu().numpy()
        self.mean_ = mean[:, 0].numpy()
        self.scale_ = scale[:, 0].numpy()
        hist.best_epoch = best_epoch
        hist.seconds = time.perf_counter() - t0
        self.history_ = hist
        log.info("trained %d probe layer(s) x %d neurons x %d classes on %d words in %.2fs",
                 Lp, Dp, C, N, hist.seconds)
        return self

    def _grad_step(self, xb: torch.Tensor, yb: torch.Tensor, W: torch.Tensor, b: torch.Tensor,
                   inv: torch.Tensor | None, eye: torch.Tensor) -> torch.Tensor:
        """Write the gradient of the per-layer loss sum into ``W.grad``/``b.grad``; return CE sums [Lp]."""
        n = xb.shape[1]
        z = torch.baddbmm(b, xb, W)  # [Lp, n, C]
        logp = torch.log_softmax(z, dim=-1)
        onehot = eye[yb]  # [n, C]
        ce = -(logp * onehot).sum((1, 2))  # [Lp]
        g = logp.exp_().sub_(onehot).div_(n)  # softmax - onehot, averaged
        torch.bmm(xb.transpose(1, 2), g, out=W.grad)
        torch.sum(g, dim=1, keepdim=True, out=b.grad)
        if inv is None:  # raw inputs: d(l1 |W|_1 + l2 ||W||_2)/dW, subgradient 0 at W = 0
            w = W.detach()
            if self.l1:
                W.grad.add_(torch.sign(w), alpha=self.l1)
            if self.l2:
                norm = torch.linalg.vector_norm(w, dim=(1, 2), keepdim=True)
                W.grad.add_(w / norm.clamp_min(1e-30), alpha=self.l2)
        elif self.l1 or self.l2:
            Wr = W.detach() * inv  # raw-space weights [Lp, Dp, C]
            if self.l1:
                W.grad.add_(torch.sign(Wr).mul_(inv), alpha=self.l1)
            if self.l2:
                norm = torch.linalg.vector_norm(Wr, dim=(1, 2), keepdim=True)
                # d||W_raw||/dW_std = W_raw * inv / ||W_raw||
                W.grad.add_(Wr.mul_(inv).div_(norm.clamp_min_(1e-30)), alpha=self.l2)
        return ce.detach()

    # --------------------------------------------------------------- evaluation
    def _prepare_eval(self, X: np.ndarray, y: np.ndarray | None, view: _View, mean: torch.Tensor,
                      scale: torch.Tensor, dev: torch.device) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Standardised eval chunks (kept for per-epoch dev scoring)."""
        out = []
        yy = None if y is None else torch.from_numpy(self._encode(y))
        for sl in _row_chunks(X.shape[0], self._chunk_rows(view, X.shape[0])):
            c = view.chunk(X, sl)
            _check_finite(c, None, sl.start, "X_dev")
            c = c.to(dev)
            if self.standardize:
                c.sub_(mean).div_(scale)
            out.append((c, None if yy is None else yy[sl].to(dev)))
        return out

    @staticmethod
    def _accuracy_t(data: list[tuple[torch.Tensor, torch.Tensor | None]], W: torch.Tensor,
                    b: torch.Tensor) -> torch.Tensor:
        correct = torch.zeros(W.shape[0], device=W.device)
        n = 0
        with torch.no_grad():
            for c, yy in data:
                pred = torch.baddbmm(b, c, W).argmax(-1)
                correct += (pred == yy).sum(1).float()
                n += c.shape[1]
        return correct / n

    def _logit_chunks(self, X: np.ndarray,
                      zero_neurons: Sequence[int] | None = None) -> Iterator[tuple[slice, torch.Tensor]]:
        """Logits ``[probe_layers, n, classes]`` chunk by chunk (CPU tensors)."""
        self._check_fitted()
        view: _View = self.view_
        dev = self._device()
        W = torch.from_numpy(self.coef_std_).to(dev)
        b = torch.from_numpy(self.intercept_std_)[:, None].to(dev)
        mean = torch.from_numpy(self.mean_)[:, None].to(dev)
        scale = torch.from_numpy(self.scale_)[:, None].to(dev)
        zero = None if zero_neurons is None else _concat_positions(np.asarray(zero_neurons, dtype=np.int64), view)
        with torch.no_grad():
            for sl in _row_chunks(X.shape[0], self._chunk_rows(view, X.shape[0])):
                c = view.chunk(X, sl, zero=zero)
                _check_finite(c, None, sl.start)
                c = c.to(dev)
                if self.standardize:
                    c.sub_(mean).div_(scale)
                yield sl, torch.baddbmm(b, c, W).cpu()

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``float [words, probe_layers, classes]``."""
        X = self._check_predict_X(X)
        out = np.empty((X.shape[0], self.view_.probe_layers, len(self.classes_)), dtype=np.float32)
        for sl, z in self._logit_chunks(X):
            out[sl] = z.permute(1, 0, 2).numpy()
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``float [words, probe_layers, classes]`` (columns follow ``classes_``)."""
        X = self._check_predict_X(X)
        out = np.empty((X.shape[0], self.view_.probe_layers, len(self.classes_)), dtype=np.float32)
        for sl, z in self._logit_chunks(X):
            out[sl] = torch.softmax(z, -1).permute(1, 0, 2).numpy()
        return out

    def predict(self, X: Any, zero_neurons: Sequence[int] | None = None) -> np.ndarray:
        """Predicted labels ``[words, probe_layers]`` (values from ``classes_``).

        ``zero_neurons`` (concat layout): ids in the all-layer concatenation whose raw activations
        are set to 0 before predicting (ablation, as NeuroX's ``zero_out_activations_remove_neurons``).
        """
        idx = self.predict_index(X, zero_neurons)
        return self.classes_[idx]

    def predict_index(self, X: Any, zero_neurons: Sequence[int] | None = None) -> np.ndarray:
        """Predicted class positions ``int [words, probe_layers]`` into ``classes_``."""
        X = self._check_predict_X(X)
        out = np.empty((X.shape[0], self.view_.probe_layers), dtype=np.int64)
        for sl, z in self._logit_chunks(X, zero_neurons):
            out[sl] = z.argmax(-1).T.numpy()
        return out

    def correct(self, X: Any, y: Any, zero_neurons: Sequence[int] | None = None) -> np.ndarray:
        """Per-word correctness ``bool [probe_layers, words]``; a label unseen in training is wrong."""
        X = self._check_predict_X(X)
        y = _check_y(y, X.shape[0])
        enc = self._encode(y)
        return (self.predict_index(X, zero_neurons) == enc[:, None]).T

    def score(self, X: Any, y: Any, zero_neurons: Sequence[int] | None = None) -> np.ndarray:
        """Accuracy per probe layer ``float [probe_layers]`` (unseen labels count as errors)."""
        return self.correct(X, y, zero_neurons).mean(axis=1)

    def evaluate(self, X: Any, y: Any, zero_neurons: Sequence[int] | None = None) -> dict[str, Any]:
        """JSON-friendly per-layer accuracy, with the count of words whose label was never trained."""
        X = self._check_predict_X(X)
        y = _check_y(y, X.shape[0])
        corr = self.correct(X, y, zero_neurons)
        unseen_mask = self._encode(y) < 0
        unseen = sorted({self._name_of(v) for v in np.unique(y[unseen_mask])})
        if unseen_mask.any():
            log.warning("%d of %d words carry labels never seen in training (%s); they count as errors",
                        int(unseen_mask.sum()), len(y), ", ".join(unseen))
        return {
            "layers": self.layer_ids_,
            "accuracy": [float(a) for a in corr.mean(axis=1)],
            "n_words": int(len(y)),
            "n_unseen_label_words": int(unseen_mask.sum()),
            "unseen_labels": unseen,
            "label_names": self.label_names_,
        }

    # --------------------------------------------------------------- raw-space weights
    @property
    def coef_(self) -> np.ndarray:
        """Raw-space weights ``float [probe_layers, probe_dim, classes]`` (as NeuroX's, transposed)."""
        self._check_fitted()
        return self.coef_std_ / self.scale_[:, :, None]

    @property
    def intercept_(self) -> np.ndarray:
        """Raw-space bias ``float [probe_layers, classes]``."""
        self._check_fitted()
        return self.intercept_std_ - np.einsum("ld,ldc->lc", self.mean_ / self.scale_, self.coef_std_)

    def _names(self, label_names: Sequence[str] | None) -> list[str]:
        self._all_label_names: list[str] | None = None
        if self.classes_.dtype.kind in "US":
            return [str(c) for c in self.classes_]
        if label_names is None:
            return [str(c) for c in self.classes_]
        names = list(label_names)
        if self.classes_.min() < 0 or self.classes_.max() >= len(names):
            raise ProbeInputError(f"y holds class ids up to {self.classes_.max()} but label_names has {len(names)} "
                                  "names; pass the store's label_names.")
        self._all_label_names = names
        return [names[int(c)] for c in self.classes_]

    def _name_of(self, v: Any) -> str:
        names = getattr(self, "_all_label_names", None)
        if names is not None and isinstance(v, (int, np.integer)) and 0 <= int(v) < len(names):
            return names[int(v)]
        return str(v)

    # --------------------------------------------------------------- persistence
    def save(self, path: Path) -> None:
        """Write ``path/probe.safetensors`` (arrays) and ``path/probe.json`` (everything else), atomically."""
        from safetensors.numpy import save_file

        self._check_fitted()
        tensors = {"coef_std": self.coef_std_, "intercept_std": self.intercept_std_, "mean": self.mean_,
                   "scale": self.scale_}
        if self.classes_.dtype.kind in "iu":
            tensors["classes"] = self.classes_.astype(np.int64)
        if self.neurons is not None:
            tensors["neurons"] = self.neurons
        meta = {
            "format": PROBE_FORMAT,
            "kind": "lingshift.LayerProbes",
            "params": {k: v for k, v in self.get_params().items() if k != "neurons"},
            "classes": None if self.classes_.dtype.kind in "iu" else [str(c) for c in self.classes_],
            "label_names": self.label_names_,
            "all_label_names": getattr(self, "_all_label_names", None),
            "layer_ids": self.layer_ids_,
            "n_layers_in": self.n_layers_in_,
            "dim_in": self.dim_in_,
            "standardized": self.standardize,
            "history": self.history_.to_dict() if hasattr(self, "history_") else None,
            "versions": library_versions(),
        }
        with atomic_dir(Path(path)) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / WEIGHTS_FILE))
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, device: str | torch.device | None = None) -> LayerProbes:
        """Read a probe written by :meth:`save` (no pickle anywhere)."""
        from safetensors.numpy import load_file

        path = Path(path)
        if not (path / WEIGHTS_FILE).is_file() or not (path / META_FILE).is_file():
            raise LingShiftError(f"no saved probe at {path} ({WEIGHTS_FILE} and {META_FILE} expected)",
                                 "Train and save the probe first.")
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        if meta.get("format") != PROBE_FORMAT or meta.get("kind") != "lingshift.LayerProbes":
            raise LingShiftError(f"{path}: not a LingShift probe of format {PROBE_FORMAT}", "Re-train the probe.")
        arr = load_file(str(path / WEIGHTS_FILE))
        params = dict(meta["params"])
        params["neurons"] = arr.get("neurons")
        params["layers"] = meta["params"].get("layers")
        params["device"] = device
        self = cls(**params)
        self.coef_std_ = arr["coef_std"]
        self.intercept_std_ = arr["intercept_std"]
        self.mean_ = arr["mean"]
        self.scale_ = arr["scale"]
        self.classes_ = arr["classes"] if meta["classes"] is None else np.asarray(meta["classes"])
        self.label_names_ = meta["label_names"]
        if meta.get("all_label_names") is not None:
            self._all_label_names = meta["all_label_names"]
        self.layer_ids_ = meta["layer_ids"]
        self.n_layers_in_, self.dim_in_ = int(meta["n_layers_in"]), int(meta["dim_in"])
        n_read = self.n_layers_in_ if self.layers is None else len(self.layers)
        self.view_ = _View(self.layout, n_read, self.dim_in_, self.neurons, self.layers)
        if meta.get("history"):
            h = meta["history"]
            self.history_ = FitHistory(h["dev_accuracy"], h["train_loss"], h["best_epoch"], h.get("seconds", 0.0),
                                       h["resident"], h["n_train"])
        return self


def _concat_positions(neurons: np.ndarray, view: _View) -> np.ndarray:
    """Map all-layer neuron ids to columns of the probe's (possibly neuron-selected) input."""
    if view.neurons is None:
        return neurons
    lookup = {int(n): i for i, n in enumerate(view.neurons)}
    return np.asarray([lookup[int(n)] for n in neurons if int(n) in lookup], dtype=np.int64)


class _Adam:
    """Adam with torch's defaults (as NeuroX uses), in place on ``params`` using their ``.grad``.

    Written out (a handful of in-place ops) rather than ``torch.optim.Adam`` because constructing
    the latter imports ``torch._dynamo``, about a second per process, which is most of a probe fit.
    """

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            g = p.grad
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / math.sqrt(bc2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bc1)


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


def select_lambdas(
    X: Any, y: Any, X_dev: Any, y_dev: Any,
    grid: Sequence[tuple[float, float]] = ((1e-5, 1e-5), (1e-4, 1e-4), (1e-3, 1e-3)),
    **params: Any,
) -> tuple[LayerProbes, dict[str, Any]]:
    """Fit one probe per ``(l1, l2)`` in ``grid``; keep the one with the best mean dev accuracy.

    Dev decides (epochs inside each fit, then lambdas); test is never looked at. Returns the
    chosen probe and a JSON-friendly table of per-layer dev accuracy for every grid point.
    """
    if not grid:
        raise ProbeInputError("grid is empty; pass at least one (l1, l2) pair.")
    table, best, best_score = [], None, -1.0
    for l1, l2 in grid:
        probe = LayerProbes(l1=l1, l2=l2, **params).fit(X, y, X_dev, y_dev)
        dev = probe.score(X_dev, y_dev)
        table.append({"l1": float(l1), "l2": float(l2), "dev_accuracy": dev.tolist()})
        if dev.mean() > best_score:  # ties keep the earlier grid point
            best, best_score = probe, float(dev.mean())
    assert best is not None
    return best, {"grid": table, "chosen": {"l1": best.l1, "l2": best.l2}, "criterion": "mean dev accuracy"}


# ----------------------------------------------------------------------------------- stores
def probe_store(store: Any, *, layers: Sequence[int] | None = None,
                **params: Any) -> tuple[LayerProbes, dict[str, Any]]:
    """Train layer probes on a store's train split, select on dev, report test (JSON-friendly).

    ``store``: an :class:`pipeline.store.ActivationStore`; ``layers``: subset of layer ids.
    """
    acts = store.activations  # [words, layers, dim] view on the layer-major memmap: nothing read yet
    rows = {s: store.split_rows(s) for s in ("train", "dev", "test")}
    probe = LayerProbes(layers=layers, **params)
    probe.fit(acts[rows["train"]], store.labels[rows["train"]], acts[rows["dev"]], store.labels[rows["dev"]],
              label_names=store.label_names)
    res = {
        "params": probe.get_params(),
        "label_names": list(store.label_names),
        "train_label_names": probe.label_names_,
        "dev": probe.evaluate(acts[rows["dev"]], store.labels[rows["dev"]]),
        "test": probe.evaluate(acts[rows["test"]], store.labels[rows["test"]]),
        "history": probe.history_.to_dict(),
        "standardized": probe.standardize,
    }
    return probe, res
