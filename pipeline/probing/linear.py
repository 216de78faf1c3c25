"""The fitted linear probe: raw-space weights, prediction, scoring, saving and loading.

A :class:`LinearProbe` is what training (:func:`pipeline.probing.solver.fit`) returns and all that a
user of a trained probe (the API) needs: ``weights: float [probe_layers, probe_dim, classes]`` and
``bias: float [probe_layers, classes]`` on the *raw* activations, the classes with their names, and the
:mod:`view <pipeline.probing.views>` that turns ``X [words, layers, dim]`` into its input. Logits are
``bias + view(X) @ weights``, one batched matmul over all probe layers.

Saved as ``probe.safetensors`` (arrays) and ``probe.json`` (everything else); no pickle anywhere.
Format 2 stores the raw-space weights; format 1 (the former ``LayerProbes``, which kept standardised
weights with their mean and scale) still loads, converted to raw space.

This module imports neither the solver nor transformers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.atomic import atomic_dir
from pipeline.errors import LingShiftError
from pipeline.probing.inputs import ProbeInputError, check_finite, check_X, check_y, row_chunks
from pipeline.probing.views import Concat, PerLayer, View, view_from_json
from pipeline.provenance import library_versions

log = logging.getLogger(__name__)

PROBE_FORMAT = 2
KIND = "lingshift.LinearProbe"
WEIGHTS_FILE = "probe.safetensors"
META_FILE = "probe.json"
_V1_KIND = "lingshift.LayerProbes"


def class_names(classes: np.ndarray, label_names: Sequence[str] | None) -> tuple[list[str], list[str] | None]:
    """Names of ``classes`` and the full id -> name list they index (``None`` for string labels).

    ``classes``: sorted training labels, class ids (ints) or strings; ``label_names``: the name of every
    class id (e.g. a store's ``label_names``), or ``None`` to name ids by their number.
    """
    if classes.dtype.kind in "US" or label_names is None:
        return [str(c) for c in classes], None
    names = list(label_names)
    if classes.min() < 0 or classes.max() >= len(names):
        raise ProbeInputError(f"y holds class ids up to {classes.max()} but label_names has {len(names)} "
                              "names; pass the store's label_names.")
    return [names[int(c)] for c in classes], names


def encode_labels(classes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Labels ``[words]`` -> positions ``int [words]`` in the sorted ``classes``; labels not in it -> -1."""
    pos = np.searchsorted(classes, y)
    pos = np.clip(pos, 0, len(classes) - 1)
    ok = classes[pos] == y
    return np.where(ok, pos, -1).astype(np.int64)


def torch_device(device: str | torch.device | None) -> torch.device:
    """``device``, or CUDA when available and ``None`` was asked for, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(eq=False)
class LinearProbe:
    """A fitted multinomial logistic-regression probe per probe layer, on raw activations.

    ``X``: ``float [words, layers, dim]`` (float16 memmaps welcome) or ``[words, dim]`` for one layer,
    of the ``n_layers_in x dim_in`` inputs it was fitted on; ``view`` says how it reads them.
    ``classes``: the sorted training labels (ids or strings); ``label_names``: their names;
    ``all_label_names``: the id -> name list the ids index (to name labels never seen in training).
    ``memory_budget_mb`` bounds the rows converted to float32 at once; ``device`` runs the matmuls
    (``None``: CUDA when available). ``training``: what fitted it (settings and history), informational.
    """

    weights: np.ndarray  # float32 [probe_layers, probe_dim, classes]
    bias: np.ndarray  # float32 [probe_layers, classes]
    classes: np.ndarray
    label_names: list[str]
    layer_ids: list[Any]
    view: View
    n_layers_in: int
    dim_in: int
    all_label_names: list[str] | None = None
    memory_budget_mb: float = 2048.0
    device: str | torch.device | None = None
    training: dict[str, Any] | None = None

    # --------------------------------------------------------------- reading inputs
    def with_view(self, view: View) -> LinearProbe:
        """The same weights reading ``X`` through another ``view`` of the same shape (e.g. :class:`Ablated`)."""
        if view.shape(self.n_layers_in, self.dim_in) != self.view.shape(self.n_layers_in, self.dim_in):
            raise ProbeInputError(f"view {view.to_json()} gives inputs of another shape than the probe's "
                                  f"{self.view.to_json()}; use a view over the same neurons.")
        return replace(self, view=view)

    def _check_X(self, X: Any) -> np.ndarray:
        X = check_X(X)
        if (X.shape[1], X.shape[2]) != (self.n_layers_in, self.dim_in):
            raise ProbeInputError(
                f"X has {X.shape[1]} layer(s) x {X.shape[2]} dims but the probe was fit on "
                f"{self.n_layers_in} x {self.dim_in}; pass activations of the same model and layers.")
        return X

    def encode(self, y: np.ndarray) -> np.ndarray:
        """Labels ``[words]`` -> class positions ``int [words]`` in ``classes``; labels never trained -> -1."""
        return encode_labels(self.classes, y)

    def _name_of(self, v: Any) -> str:
        names = self.all_label_names
        if names is not None and isinstance(v, (int, np.integer)) and 0 <= int(v) < len(names):
            return names[int(v)]
        return str(v)

    def _logit_chunks(self, X: np.ndarray) -> Iterator[tuple[slice, torch.Tensor]]:
        """Logits ``[probe_layers, n, classes]`` chunk by chunk (CPU tensors)."""
        dev = torch_device(self.device)
        W = torch.from_numpy(self.weights).to(dev)
        b = torch.from_numpy(self.bias)[:, None].to(dev)
        n_rows = self.view.chunk_rows(self.n_layers_in, self.dim_in, X.shape[0], self.memory_budget_mb)
        with torch.no_grad():
            for sl in row_chunks(X.shape[0], n_rows):
                c = self.view.chunk(X, sl)
                check_finite(c, None, sl.start)
                c = c.to(dev)
                yield sl, torch.baddbmm(b, c, W).cpu()

    # --------------------------------------------------------------- prediction
    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``float [words, probe_layers, classes]``."""
        X = self._check_X(X)
        out = np.empty((X.shape[0], self.weights.shape[0], len(self.classes)), dtype=np.float32)
        for sl, z in self._logit_chunks(X):
            out[sl] = z.permute(1, 0, 2).numpy()
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``float [words, probe_layers, classes]`` (columns follow ``classes``)."""
        X = self._check_X(X)
        out = np.empty((X.shape[0], self.weights.shape[0], len(self.classes)), dtype=np.float32)
        for sl, z in self._logit_chunks(X):
            out[sl] = torch.softmax(z, -1).permute(1, 0, 2).numpy()
        return out

    def predict_index(self, X: Any) -> np.ndarray:
        """Predicted class positions ``int [words, probe_layers]`` into ``classes``."""
        X = self._check_X(X)
        out = np.empty((X.shape[0], self.weights.shape[0]), dtype=np.int64)
        for sl, z in self._logit_chunks(X):
            out[sl] = z.argmax(-1).T.numpy()
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels ``[words, probe_layers]`` (values from ``classes``)."""
        return self.classes[self.predict_index(X)]

    def correct(self, X: Any, y: Any) -> np.ndarray:
        """Per-word correctness ``bool [probe_layers, words]``; a label unseen in training is wrong."""
        X = self._check_X(X)
        y = check_y(y, X.shape[0])
        return (self.predict_index(X) == self.encode(y)[:, None]).T

    def score(self, X: Any, y: Any) -> np.ndarray:
        """Accuracy per probe layer ``float [probe_layers]`` (unseen labels count as errors)."""
        return self.correct(X, y).mean(axis=1)

    def evaluate(self, X: Any, y: Any) -> dict[str, Any]:
        """JSON-friendly per-layer accuracy, with the count of words whose label was never trained."""
        X = self._check_X(X)
        y = check_y(y, X.shape[0])
        corr = self.correct(X, y)
        unseen_mask = self.encode(y) < 0
        unseen = sorted({self._name_of(v) for v in np.unique(y[unseen_mask])})
        if unseen_mask.any():
            log.warning("%d of %d words carry labels never seen in training (%s); they count as errors",
                        int(unseen_mask.sum()), len(y), ", ".join(unseen))
        return {
            "layers": self.layer_ids,
            "accuracy": [float(a) for a in corr.mean(axis=1)],
            "n_words": int(len(y)),
            "n_unseen_label_words": int(unseen_mask.sum()),
            "unseen_labels": unseen,
            "label_names": self.label_names,
        }

    # --------------------------------------------------------------- persistence
    def save(self, path: Path) -> None:
        """Write ``path/probe.safetensors`` (arrays) and ``path/probe.json`` (everything else), atomically."""
        from safetensors.numpy import save_file

        tensors = {"weights": self.weights, "bias": self.bias}
        int_classes = self.classes.dtype.kind in "iu"
        if int_classes:
            tensors["classes"] = self.classes.astype(np.int64)
        meta = {
            "format": PROBE_FORMAT,
            "kind": KIND,
            "view": self.view.to_json(),
            "classes": None if int_classes else [str(c) for c in self.classes],
            "label_names": self.label_names,
            "all_label_names": self.all_label_names,
            "layer_ids": self.layer_ids,
            "n_layers_in": self.n_layers_in,
            "dim_in": self.dim_in,
            "memory_budget_mb": self.memory_budget_mb,
            "training": self.training,
            "versions": library_versions(),
        }
        with atomic_dir(Path(path)) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / WEIGHTS_FILE))
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, device: str | torch.device | None = None) -> LinearProbe:
        """Read a probe written by :meth:`save` (format 2) or by the former ``LayerProbes`` (format 1)."""
        from safetensors.numpy import load_file

        path = Path(path)
        if not (path / WEIGHTS_FILE).is_file() or not (path / META_FILE).is_file():
            raise LingShiftError(f"no saved probe at {path} ({WEIGHTS_FILE} and {META_FILE} expected)",
                                 "Train and save the probe first.")
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        arr = load_file(str(path / WEIGHTS_FILE))
        if meta.get("format") == 1 and meta.get("kind") == _V1_KIND:
            return _from_format_1(meta, arr, device)
        if meta.get("format") != PROBE_FORMAT or meta.get("kind") != KIND:
            raise LingShiftError(f"{path}: not a LingShift probe of format {PROBE_FORMAT} (or 1)",
                                 "Re-train the probe.")
        return cls(
            weights=arr["weights"], bias=arr["bias"],
            classes=arr["classes"] if meta["classes"] is None else np.asarray(meta["classes"]),
            label_names=meta["label_names"], layer_ids=meta["layer_ids"], view=view_from_json(meta["view"]),
            n_layers_in=int(meta["n_layers_in"]), dim_in=int(meta["dim_in"]),
            all_label_names=meta.get("all_label_names"), memory_budget_mb=float(meta["memory_budget_mb"]),
            device=device, training=meta.get("training"))


def _from_format_1(meta: dict[str, Any], arr: dict[str, np.ndarray], device: str | torch.device | None) -> LinearProbe:
    """A ``LayerProbes`` save: standardised weights ``coef_std`` with ``mean``/``scale``, mapped to raw space
    (exactly: an unstandardised probe saved mean 0 and scale 1 and its weights are used as they are)."""
    p = meta["params"]
    coef_std, intercept_std, mean, scale = arr["coef_std"], arr["intercept_std"], arr["mean"], arr["scale"]
    if meta.get("standardized"):
        weights = coef_std / scale[:, :, None]
        bias = intercept_std - np.einsum("ld,ldc->lc", mean / scale, coef_std)
    else:
        weights, bias = coef_std, intercept_std
    view: View = Concat(arr.get("neurons")) if p.get("layout") == "concat" else PerLayer(p.get("layers"))
    return LinearProbe(
        weights=np.ascontiguousarray(weights, dtype=np.float32), bias=np.ascontiguousarray(bias, dtype=np.float32),
        classes=arr["classes"] if meta["classes"] is None else np.asarray(meta["classes"]),
        label_names=meta["label_names"], layer_ids=meta["layer_ids"], view=view,
        n_layers_in=int(meta["n_layers_in"]), dim_in=int(meta["dim_in"]),
        all_label_names=meta.get("all_label_names"), memory_budget_mb=float(p.get("memory_budget_mb", 2048.0)),
        device=device, training={"params": p, "history": meta.get("history")})
