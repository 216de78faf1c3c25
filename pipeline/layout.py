"""Where everything lives: every data, model, activation, result, probe and run-log path, derived from
``params.paths`` and the repository root (the folder that holds ``params.yaml``).

``dvc.yaml`` names the same relative paths (templated from ``params.yaml``'s ``paths:``); nothing else in
``pipeline/`` or ``app/`` spells a path out.

Under ``results/`` (:class:`ResultsLayout`):

- ``layers/<model>/<variant>/<task>.json``   probe stage, :class:`pipeline.records.LayerResult` (committed)
- ``neurons/<model>/<variant>/<task>.json``  neurons stage, :class:`pipeline.records.NeuronResult` (committed)
- ``finetune/<model>-<task>-seed<N>.json``   finetune stage, :class:`pipeline.records.FinetuneResult` (committed)
- ``claims.json``, ``metrics.json``, ``report.md``, ``plots/``   report stage (committed)
- ``probes/<model>/<variant>/<task>/``      trained probes (a DVC output, not committed)
- ``runs/<stage>/<name>.json``               run facts: timings, host (untracked, see :class:`pipeline.records.RunLog`)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config import Params, Paths

Key = tuple[str, str, str]  # (model, variant, task)


def _name(value: str, what: str) -> str:
    """``value`` if it is usable as one path component (no separator, not hidden, not empty)."""
    if not value or "/" in value or "\\" in value or value.startswith("."):
        from pipeline.errors import LingShiftError

        raise LingShiftError(f"invalid {what} name {value!r}", "Use a name from params.yaml.")
    return value


@dataclass(frozen=True)
class ResultsLayout:
    """The files under one results folder (``paths.results``; the gate may point at another one)."""

    root: Path

    # ------------------------------------------------------------------ one file per stage run
    def layer(self, model: str, variant: str, task: str) -> Path:
        """The probe stage's result of ``model``/``variant`` on probing task ``task``."""
        return self.root / "layers" / _name(model, "model") / _name(variant, "variant") / f"{_name(task, 'task')}.json"

    def neurons(self, model: str, variant: str, task: str) -> Path:
        """The neurons stage's result of ``model``/``variant`` on probing task ``task``."""
        return self.root / "neurons" / _name(model, "model") / _name(variant, "variant") / f"{_name(task, 'task')}.json"

    def finetune(self, model: str, variant: str) -> Path:
        """The finetune stage's result of ``model``'s fine-tuned checkpoint ``variant`` (``<task>-seed<N>``)."""
        return self.root / "finetune" / f"{_name(model, 'model')}-{_name(variant, 'variant')}.json"

    def probe_dir(self, model: str, variant: str, task: str) -> Path:
        """The trained probe (seed ``seeds[0]``) the API serves: ``probe.safetensors`` + ``probe.json``."""
        return self.root / "probes" / _name(model, "model") / _name(variant, "variant") / _name(task, "task")

    # ------------------------------------------------------------------ report stage
    @property
    def claims(self) -> Path:
        return self.root / "claims.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    # ------------------------------------------------------------------ run facts (untracked)
    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run_log(self, stage: str, *names: str) -> Path:
        """The run log of one stage invocation, e.g. ``runs/probe/minilm-base-pos-wsj.json``."""
        return self.runs / _name(stage, "stage") / f"{'-'.join(_name(n, 'run') for n in names) or stage}.json"

    # ------------------------------------------------------------------ listing
    def layer_files(self) -> list[tuple[Key, Path]]:
        """``((model, variant, task), path)`` of every layer result present, sorted."""
        return [((f.parent.parent.name, f.parent.name, f.stem), f) for f in sorted(self.root.glob("layers/*/*/*.json"))]

    def neuron_files(self) -> list[tuple[Key, Path]]:
        """``((model, variant, task), path)`` of every neuron result present, sorted."""
        return [((f.parent.parent.name, f.parent.name, f.stem), f)
                for f in sorted(self.root.glob("neurons/*/*/*.json"))]

    def finetune_files(self) -> list[Path]:
        """Every fine-tuning result present, sorted (the model and task are in the file)."""
        return sorted(self.root.glob("finetune/*.json"))

    def run_logs(self, stage: str | None = None) -> list[Path]:
        """Every run log present (of one ``stage``, or of all), sorted."""
        return sorted(self.runs.glob(f"{stage or '*'}/*.json"))

    def served_files(self) -> list[Path]:
        """The result files the API serves (their bytes make its ETag)."""
        files = [p for _, p in self.layer_files()] + [p for _, p in self.neuron_files()] + self.finetune_files()
        return sorted(files + ([self.claims] if self.claims.is_file() else []))


@dataclass(frozen=True)
class Layout:
    """Every path of one checkout, from ``params.paths`` (relative to ``root``)."""

    root: Path
    paths: Paths

    @classmethod
    def of(cls, params: Params, root: Path | str) -> Layout:
        """The layout of ``params`` in the checkout at ``root``."""
        return cls(Path(root), params.paths)

    # ------------------------------------------------------------------ inputs
    @property
    def cache(self) -> Path | None:
        """``paths.cache`` (relative to the root), or None: ``$LINGSHIFT_CACHE`` / ``~/.cache/lingshift``."""
        return self.root / self.paths.cache if self.paths.cache else None

    @property
    def corpora(self) -> Path:
        """User-supplied corpora of the paper profile (PTB, CCGbank, ...)."""
        return self.root / self.paths.corpora

    @property
    def data(self) -> Path:
        return self.root / self.paths.data

    def data_dir(self, task: str) -> Path:
        """The prepared splits of probing task ``task``: ``{train,dev,test}.tsv`` + ``meta.json``."""
        return self.data / _name(task, "task")

    def split_file(self, task: str, split: str) -> Path:
        return self.data_dir(task) / f"{_name(split, 'split')}.tsv"

    def data_meta_files(self) -> list[Path]:
        """``meta.json`` of every prepared task, sorted."""
        return sorted(self.data.glob("*/meta.json"))

    # ------------------------------------------------------------------ models and activations
    @property
    def models(self) -> Path:
        return self.root / self.paths.models

    def model_dir(self, model: str, variant: str) -> Path:
        """Weights of ``model``'s checkpoint ``variant`` (``base`` = pre-trained, else ``<task>-seed<N>``)."""
        return self.models / _name(model, "model") / _name(variant, "variant")

    @property
    def activations(self) -> Path:
        return self.root / self.paths.activations

    def activation_dir(self, model: str, variant: str, task: str) -> Path:
        """The activation store of ``model``/``variant`` on probing task ``task``."""
        return self.activations / _name(model, "model") / _name(variant, "variant") / _name(task, "task")

    def activation_meta_files(self) -> list[Path]:
        """``meta.json`` of every activation store, sorted."""
        return sorted(self.activations.glob("*/*/*/meta.json"))

    # ------------------------------------------------------------------ results and the gate
    @property
    def results(self) -> ResultsLayout:
        return ResultsLayout(self.root / self.paths.results)

    def baseline(self, profile: str) -> Path:
        """The regression gate's committed baseline of ``profile``."""
        return self.root / "baselines" / f"{_name(profile, 'profile')}.json"

    @property
    def dvc_lock(self) -> Path:
        return self.root / "dvc.lock"
