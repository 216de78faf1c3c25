"""The pipeline's small result files, read back as one collection (for claims, report, gate, API).

Layout under ``results/`` (all JSON, committed):
``layers/<model>/<variant>/<task>.json`` (probe stage), ``neurons/<model>/<variant>/<task>.json``
(neurons stage), ``finetune/<model>-<task>.json`` (finetune stage).

The probe stage also stores each test word's correctness so that base-vs-fine-tuned deltas can be
bootstrapped *paired* from the committed files alone: :func:`encode_correct` packs
``uint8 [layers, words]`` (how many of the seeds' probes tagged the word right) as base64.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import LingShiftError


class ResultsError(LingShiftError):
    """A result file is missing, unreadable, or not what the pipeline writes."""


def encode_correct(correct: np.ndarray) -> dict[str, Any]:
    """Pack per-seed correctness ``bool [seeds, layers, words]`` as seed counts ``uint8 [layers, words]``."""
    c = np.asarray(correct, dtype=bool)
    if c.ndim != 3:
        raise ValueError(f"correct must be [seeds, layers, words], got shape {c.shape}")
    if c.shape[0] > 255:
        raise ValueError("at most 255 seeds fit the uint8 encoding")
    counts = c.sum(0).astype(np.uint8)
    return {"encoding": "base64 of uint8 [layers, words], C order: how many seeds' probes tagged the test word "
                        "correctly",
            "n_seeds": int(c.shape[0]), "shape": list(counts.shape),
            "data": base64.b64encode(counts.tobytes()).decode("ascii")}


def decode_correct(packed: dict[str, Any]) -> np.ndarray:
    """Seed-averaged correctness ``float64 [layers, words]`` in [0, 1] from :func:`encode_correct`'s dict."""
    try:
        shape = tuple(int(x) for x in packed["shape"])
        raw = np.frombuffer(base64.b64decode(packed["data"], validate=True), dtype=np.uint8)
        return raw.reshape(shape).astype(np.float64) / float(packed["n_seeds"])
    except (KeyError, TypeError, ValueError) as err:
        raise ResultsError(f"test correctness is not in the pipeline's encoding ({err})",
                           "Re-run the probe stage: dvc repro probe") from None


def words_digest(words: Sequence[str], labels: Sequence[str]) -> str:
    """sha256 over the test words and their gold labels: two results with the same digest were scored on
    the same words, so their per-word correctness can be paired."""
    h = hashlib.sha256()
    for w, t in zip(words, labels, strict=True):
        h.update(f"{w}\t{t}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class LayerResult:
    """One probe-stage result: a model variant's per-layer test accuracy on one probing task."""

    model: str
    variant: str
    task: str
    layers: list[int]
    mean: np.ndarray            # float [layers]: test accuracy, mean over seeds
    std: np.ndarray             # float [layers]: sample std over seeds
    ci_low: np.ndarray          # float [layers]: bootstrap 95% interval of the seed-averaged accuracy
    ci_high: np.ndarray
    selectivity: np.ndarray | None  # float [layers]: task - control accuracy (seed 0), None without control
    majority: float | None      # test accuracy of always predicting the most frequent training label
    raw: dict[str, Any] = field(repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.variant, self.task)

    def correct(self) -> np.ndarray | None:
        """Seed-averaged test correctness ``float [layers, words]``, or None in files from before it was kept."""
        packed = self.raw.get("test_correct")
        return decode_correct(packed) if packed else None

    @property
    def words_sha256(self) -> str | None:
        return self.raw.get("test_words_sha256")


@dataclass(frozen=True)
class NeuronResult:
    """One neurons-stage result: the minimal neuron set of a model variant on one probing task."""

    model: str
    variant: str
    task: str
    n_layers: int
    dim: int
    k: int
    neurons: np.ndarray         # int [k]: flat neuron ids (layer * dim + unit), ranking order
    mean_layer: float
    counts: list[int]           # selected neurons per layer
    oracle_test: float
    raw: dict[str, Any] = field(repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.variant, self.task)

    @property
    def neuron_layers(self) -> np.ndarray:
        """Layer index of each selected neuron ``int [k]``."""
        return self.neurons // self.dim


@dataclass(frozen=True)
class FinetuneResult:
    """One fine-tuning result: the variant's score on its sentence task against the majority baseline."""

    model: str
    task: str
    metric: str
    test: float
    majority: float
    raw: dict[str, Any] = field(repr=False)


@dataclass
class Results:
    """Everything under one ``results/`` folder, keyed by (model, variant, task)."""

    root: Path
    layers: dict[tuple[str, str, str], LayerResult] = field(default_factory=dict)
    neurons: dict[tuple[str, str, str], NeuronResult] = field(default_factory=dict)
    finetune: dict[tuple[str, str], FinetuneResult] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return sorted({k[0] for k in self.layers} | {k[0] for k in self.neurons})

    def variants(self, model: str) -> list[str]:
        """``base`` first, then the fine-tuned variants in sorted order."""
        vs = {k[1] for k in self.layers if k[0] == model} | {k[1] for k in self.neurons if k[0] == model}
        return sorted(vs, key=lambda v: (v != "base", v))

    def tasks(self, model: str | None = None) -> list[str]:
        return sorted({k[2] for k in self.layers if model is None or k[0] == model})


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path} cannot be read as JSON ({err})",
                           "Re-run the stage that writes it (dvc repro), or restore it with git checkout.") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path} holds {type(data).__name__}, not a result object", "Re-run its stage.")
    return data


def _arr(x: Iterable[float]) -> np.ndarray:
    return np.asarray(list(x), dtype=np.float64)


def layer_result(data: dict[str, Any], path: Path | str = "<layer result>") -> LayerResult:
    """A probe-stage JSON object as a :class:`LayerResult` (clear error when a field is missing)."""
    try:
        acc = data["test_accuracy"]
        ctrl = data.get("control") or None
        maj = data.get("majority_baseline")
        return LayerResult(
            model=data["model"], variant=data["variant"], task=data["task"], layers=list(data["layers"]),
            mean=_arr(acc["mean"]), std=_arr(acc["std"]),
            ci_low=_arr(acc["bootstrap"]["ci_low"]), ci_high=_arr(acc["bootstrap"]["ci_high"]),
            selectivity=_arr(ctrl["selectivity"]) if ctrl else None,
            majority=float(maj["test_accuracy"]) if maj else None, raw=data)
    except (KeyError, TypeError) as err:
        raise ResultsError(f"{path} lacks field {err} of a probe result", "Re-run: dvc repro probe") from None


def neuron_result(data: dict[str, Any], path: Path | str = "<neuron result>") -> NeuronResult:
    """A neurons-stage JSON object as a :class:`NeuronResult`."""
    try:
        ms = data["minimal_set"]
        return NeuronResult(
            model=data["model"], variant=data["variant"], task=data["task"], n_layers=int(data["n_layers"]),
            dim=int(data["dim"]), k=int(ms["k"]), neurons=np.asarray(ms["neurons"], dtype=np.int64),
            mean_layer=float(ms["layers"]["mean_layer"]), counts=list(ms["layers"]["counts"]),
            oracle_test=float(data["oracle"]["test"]), raw=data)
    except (KeyError, TypeError) as err:
        raise ResultsError(f"{path} lacks field {err} of a neurons result", "Re-run: dvc repro neurons") from None


def finetune_result(data: dict[str, Any], model: str, path: Path | str = "<finetune result>") -> FinetuneResult:
    """A finetune-stage JSON object as a :class:`FinetuneResult`."""
    try:
        metric = data.get("main_metric", "accuracy")
        return FinetuneResult(model=model, task=data["task"], metric=metric, test=float(data["test"][metric]),
                              majority=float(data["majority_baseline"]["test"][metric]), raw=data)
    except (KeyError, TypeError) as err:
        raise ResultsError(f"{path} lacks field {err} of a fine-tuning result", "Re-run: dvc repro finetune") from None


def load_results(root: Path | str, models: Sequence[str] | None = None, variants: Sequence[str] | None = None,
                 tasks: Sequence[str] | None = None, sentence_tasks: Sequence[str] | None = None) -> Results:
    """Read every result file under ``root`` (``results/``), optionally only the listed names (a profile's).

    Files of other models/variants/tasks (left over from another profile) are skipped when lists are given.
    """
    root = Path(root)

    def keep(m: str, v: str, t: str) -> bool:
        return ((models is None or m in models) and (variants is None or v in variants)
                and (tasks is None or t in tasks))

    res = Results(root=root)
    for f in sorted(root.glob("layers/*/*/*.json")):
        m, v, t = f.parent.parent.name, f.parent.name, f.stem
        if keep(m, v, t):
            r = layer_result(_read(f), f)
            res.layers[r.key] = r
    for f in sorted(root.glob("neurons/*/*/*.json")):
        m, v, t = f.parent.parent.name, f.parent.name, f.stem
        if keep(m, v, t):
            n = neuron_result(_read(f), f)
            res.neurons[n.key] = n
    for f in sorted(root.glob("finetune/*.json")):
        data = _read(f)
        task = data.get("task")
        model = f.stem[: -len(task) - 1] if isinstance(task, str) and f.stem.endswith("-" + task) else None
        if model is None:
            raise ResultsError(f"{f} is not named <model>-<task>.json after its task {task!r}",
                               "Re-run: dvc repro finetune")
        if (models is None or model in models) and (sentence_tasks is None or task in sentence_tasks):
            r = finetune_result(data, model, f)
            res.finetune[(model, task)] = r
    return res
