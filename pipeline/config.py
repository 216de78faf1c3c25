"""Typed parameters: every default of the project, validated on load with messages that name the field.

The models below ARE the defaults, and the ``offline`` profile is the defaults unchanged. A profile
(``profiles/NAME.yaml``) is an overlay naming only the keys that differ; :func:`load_params` reads a
complete ``params.yaml`` and an overlay alike, because pydantic fills every key the file leaves out
(a nested section is merged key by key, a list is replaced whole). ``params.yaml`` is the resolved
active profile, written by ``python -m pipeline profile NAME`` (:mod:`pipeline.profiles`).

The file has one section per stage (DVC tracks each stage's section as its params). Paths are
relative to the folder that holds the file. A field's ``description`` becomes its comment in
``params.yaml``. This module imports no training code: it cannot change a result, the values can.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ConfigError
from pipeline.variants import BASE, checkpoints, seed_of

#: The module that pins the built-in models (the model stage's source for them).
REGISTRY_MODULE = "pipeline/models.py"

#: Folder of the profile overlays, next to ``params.yaml``.
PROFILES_DIR = "profiles"
#: What a profile name looks like (the file ``profiles/NAME.yaml``).
PROFILE_NAME = r"^[a-z][a-z0-9-]*$"
#: The key of an overlay that names the profile it is an overlay of (resolved before validation).
EXTENDS = "extends"
#: Profiles that run the paper's DAG on random stand-ins (scripts/make-paper-mini.py): their verdicts are
#: rehearsals, never findings (the report and claims.json say so).
REHEARSAL_PROFILES = frozenset({"paper-mini"})


class SplitFractionsError(ConfigError, ValueError):
    """Split fractions that are not three positive numbers summing to 1.

    Also a ``ValueError``, so that a pydantic validator may raise it and name the field.
    """


def check_split_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """``fractions`` as a tuple if they are three positive numbers summing to 1, else :class:`SplitFractionsError`."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise SplitFractionsError(f"split fractions {list(fractions)} must be three positive numbers summing to 1")
    train, dev, test = fractions
    return train, dev, test


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(_Strict):
    """Where things live, relative to params.yaml."""

    cache: Optional[str] = Field(None, description="null: $LINGSHIFT_CACHE or ~/.cache/lingshift")
    data: str = "data"
    models: str = "models"
    activations: str = "activations"
    results: str = Field("results", description="small JSON results (committed) and trained probes")
    corpora: str = Field("corpora", description="user-supplied corpora of the paper profile (PTB, CCGbank, ...)")


class PrepareParams(_Strict):
    """Which probing corpora to prepare and how to split and cap them."""

    split_fractions: tuple[float, float, float] = Field((0.8, 0.1, 0.1),
                                                        description="contiguous blocks in corpus order")
    max_train_tokens: Optional[int] = Field(150_000, gt=0, description="the paper: first 150,000 training tokens")

    @field_validator("split_fractions")
    @classmethod
    def _sum_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        return check_split_fractions(v)


class FinetuneParams(_Strict):
    """Fine-tuning recipe. Defaults: the offline profile's; the paper's recipe is in ``profiles/paper.yaml``.

    The offline recipe is sized so that three fine-tuning seeds of both tasks take about 6 minutes on a 2-core
    CPU with bf16 (measured: benchmarks/README-finetune.md, "Budget for fine-tuning seeds"). Differences from
    the paper's (HF ``run_glue``: 3 epochs, lr 5e-5, batch 8, length 128): ONE epoch over at most 2,000
    training examples (sentiment has 8,056, hedge 2,366; 4,000 scored 1.3 test points more on sentiment, one
    seed, at twice the time); bf16 autocast where the CPU has it (``mixed_precision: auto``); batch 16 with
    lr 1e-4 (twice the batch with twice the rate, the linear scaling rule, and half the optimiser steps);
    max length 64 (0.1 % of the snippets and 5 % of the hedge sentences reach 64 tokens); length-grouped
    batches (less padding); no per-epoch dev evaluation (one epoch leaves nothing to decide; dev is still
    scored at the end).
    """

    epochs: float = Field(1.0, gt=0, description="training epochs (fractions allowed)")
    lr: float = Field(1e-4, gt=0, lt=1, description="peak learning rate (AdamW, linear decay)")
    batch_size: int = Field(16, ge=1, le=4096)
    eval_batch_size: int = Field(64, ge=1, le=8192)
    max_length: int = Field(64, ge=8, le=4096, description="tokens per example (pairs: both texts)")
    seeds: list[int] = Field(default_factory=lambda: [42, 43, 44], min_length=1,
                             description="fine-tuning seeds (head init, data order, dropout): one model per seed, "
                                         "each probed (checkpoint <task>-seed<N>)")
    split_seed: int = Field(42, description="seed of the offline splits and of GLUE's held-out dev")
    max_train_examples: Optional[int] = Field(2000, ge=1, description="seeded cap on train examples (null: all)")
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    eval_strategy: Literal["epoch", "steps", "no"] = Field(
        "steps", description="dev evaluation during training (the dev curves; the trained weights are the same)")
    eval_steps: Optional[float] = Field(0.25, gt=0, description="with eval_strategy steps: steps between dev "
                                                                "evaluations (<1: fraction of all steps)")
    early_stopping_patience: Optional[int] = Field(None, ge=1, description="stop after N dev evals without gain")
    keep_best: bool = Field(False, description="end with the best dev state rather than the last")
    group_by_length: bool = Field(True, description="batch examples of similar length (faster on CPU)")
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = Field(
        "auto", description="auto: bf16/fp16 on CUDA, bf16 on a CPU with native bf16, else no")
    tf32: Optional[bool] = Field(None, description="null: on with CUDA")
    full_determinism: Optional[bool] = Field(None, description="null: on CPU only")
    device: Optional[Literal["cpu", "cuda"]] = Field(None, description="null: cuda if available")
    num_threads: Optional[int] = Field(1, ge=1, description="CPU threads for torch, pinned: backward sums depend on "
                                                            "the count, so runners agree only with the same "
                                                            "(null: torch's default or the runner's share)")
    logging_steps: float = Field(0.05, gt=0, description="<1: fraction of all steps between log lines")
    model_max_train_examples: dict[str, int] = Field(
        default_factory=dict, description="per-model cap overriding max_train_examples (budget caps, e.g. a "
                                          "base-size model on CPU; the report lists each as a deviation)")

    @field_validator("eval_strategy", "mixed_precision", mode="before")
    @classmethod
    def _yaml_no(cls, v: Any) -> Any:
        return "no" if v is False else v  # YAML 1.1 reads an unquoted `no` as false

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or any(s < 0 for s in v):
            raise ValueError(f"fine-tuning seeds {v} must be distinct non-negative integers")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> FinetuneParams:
        if self.eval_strategy == "steps" and self.eval_steps is None:
            raise ValueError("eval_strategy 'steps' needs eval_steps")
        if self.eval_strategy == "no" and (self.keep_best or self.early_stopping_patience):
            raise ValueError("keep_best and early_stopping_patience need dev evaluation (eval_strategy epoch or steps)")
        return self

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], where: str = "finetune") -> FinetuneParams:
        """Validate ``raw``; a problem becomes one :class:`ConfigError` naming the field."""
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            raise ConfigError(_first_problem(err, cls, prefix=(where,))) from None


class ExtractParams(_Strict):
    """Activation extraction settings (see pipeline.extract)."""

    aggregation: Literal["first", "last", "mean"] = Field("last",
                                                          description="first | last | mean sub-word of each word "
                                                                      "(paper: last)")
    batch_size: int = Field(32, ge=1, le=4096)
    max_length: Optional[int] = Field(None, ge=8, description="null: the model's limit (at most 512 tokens); "
                                                              "longer sentences are windowed")
    device: Optional[str] = Field(None, description="null: cuda if available, else cpu")
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "no", description="autocast of the forward pass: auto = fp16 on CUDA, bf16 on a CPU with native bf16, "
                          "else no (the store is float16 either way)")

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_no(cls, v: Any) -> Any:
        return "no" if v is False else v  # YAML 1.1 reads an unquoted `no` as false


class ProbeParams(_Strict):
    """Layer probes (NeuroX's elastic net, our Adam schedule) and their uncertainty runs."""

    l1: float = Field(1e-5, ge=0, description="elastic net as NeuroX: l1 * sum|W| + l2 * ||W||_2 (the paper's)")
    l2: float = Field(1e-5, ge=0)
    epochs: int = Field(10, ge=1, description="the best dev epoch is kept")
    batch_size: int = Field(256, ge=1, description="paper: 128 / 512")
    lr: float = Field(1e-2, gt=0, description="Adam, cosine decay (paper: 1e-3; 1e-2 won on dev in our solver study)")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1,
                             description="probes repeated over seeds: mean, std, and a bootstrap CI over test words")
    n_boot: int = Field(1000, ge=100, description="bootstrap replicates")
    control_task: Union[bool, Literal["base"]] = Field(
        True, description="Hewitt & Liang control task -> selectivity per layer (true: every checkpoint; base: the "
                          "pre-trained one only, whose selectivity the report tabulates; false: none)")
    solver: Literal["ours", "sklearn"] = Field("ours", description="sklearn: LogisticRegression, L2, C on dev "
                                                                   "(l1/l2/epochs/batch_size/lr then unused)")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="matmuls of probe training (ours): bf16 "
                                                                    "inputs and weights, float32 master weights, "
                                                                    "loss and scoring")

    @field_validator("control_task", mode="before")
    @classmethod
    def _control_choice(cls, v: Any) -> Any:
        if v is True or v is False or v == "base":
            return v
        raise ValueError(f"control_task is true (every checkpoint), base (the pre-trained one) or false, not {v!r}")

    def runs_control(self, variant: str) -> bool:
        """Whether the probe stage of checkpoint ``variant`` (``base`` = pre-trained) runs the control task."""
        return self.control_task is True or (self.control_task == "base" and variant == "base")

    def provenance(self) -> dict[str, Any]:
        """This section as results record it: ``solver`` only when it is not ``ours``, so the results of the
        default solver read exactly as before the option existed."""
        out = self.model_dump(mode="json")
        if out["solver"] == "ours":
            del out["solver"]
        if out["precision"] == "fp32":
            del out["precision"]
        return out


class NeuronParams(_Strict):
    """Linguistic Correlation Analysis: ranking, minimal neuron set, per-layer spread."""

    ratio: float = Field(0.99, gt=0, le=1,
                         description="minimal set: smallest top-k whose dev accuracy >= ratio * the oracle's")
    search_stride: int = Field(100, ge=1, description="NeuroX's percentage sweep for the global neuron ordering")
    seed: int = Field(0, description="probe seed of the top-k / random-set probes, and of the word subsample")
    oracle_seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1,
                                    description="the oracle is fit once per seed; rankings and C5 per seed")
    grid_step: float = Field(0.01, gt=0, le=1, description="minimal set: grid of k every step x the neurons")
    grid_seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1,
                                  description="probe seeds averaged at every grid point (k's spread over them)")
    grid_block: int = Field(10, ge=1, description="grid points trained per batched program (scan stops early)")
    grid_max_share: float = Field(0.5, gt=0, le=1, description="k cap of the scan: this share of the neurons")
    n_random: int = Field(100, ge=100, description="salience: random k-sets probed and ablated")
    alpha: float = Field(0.05, gt=0, lt=1, description="salience: top-k outside the random sets' 1-alpha range")
    train_words: Optional[int] = Field(4000, ge=1, description="seeded subsample of training words for the "
                                                               "oracle, grid and subset probes (null: all)")
    epochs: int = Field(4, ge=1, description="epochs of every probe of the neuron analysis (best dev kept)")


_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_COMMIT = r"^[0-9a-f]{40}$"


class ModelSource(_Strict):
    """A user's model (bring your own model): a local folder, or a hub id pinned to a commit; and optionally
    the user's own fine-tuned checkpoints of it, probed as variants without the finetune stage."""

    path: Optional[str] = Field(None, description="checkpoint folder relative to the repository root")
    hub: Optional[str] = Field(None, description="hub model id (with revision)")
    revision: Optional[str] = Field(None, pattern=_COMMIT, description="the hub commit: 40 hex digits")
    variants: dict[str, str] = Field(default_factory=dict,
                                     description="fine-tuned checkpoints: variant name -> folder (repo-relative)")
    description: Optional[str] = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelSource:
        if (self.path is None) == (self.hub is None):
            raise ValueError("give exactly one of path (a local folder) or hub (an id with a pinned revision)")
        if self.hub is not None and self.revision is None:
            raise ValueError(f"hub model {self.hub!r} needs revision: the 40-hex commit id to pin (never a branch)")
        if self.path is not None and self.revision is not None:
            raise ValueError("revision belongs to a hub model; a local folder is tracked by its content")
        for p in [self.path, *self.variants.values()]:
            if p is not None and (Path(p).is_absolute() or ".." in Path(p).parts):
                raise ValueError(f"path {p!r} must lie inside the repository (relative, no '..'), so that DVC can "
                                 "track it: copy or symlink the checkpoint folder into the repository")
        for v in self.variants:
            if not re.match(_NAME, v) or v == BASE or seed_of(v) is not None:
                raise ValueError(f"variant name {v!r} must be lowercase letters, digits, '.', '_' or '-', not "
                                 "'base' and not ending in -seed<N> (the fine-tuned checkpoints' names)")
        return self


class ModelStage(_Strict):
    """One model-stage unit (DERIVED): the checkpoint it writes and the path DVC hashes for it."""

    model: str
    variant: str
    source: str
    revision: Optional[str] = None


def model_stages(models: Sequence[str], sources: dict[str, ModelSource],
                 supplied: Sequence[str]) -> dict[str, ModelStage]:
    """The model stage's units: each model's ``base`` (key: the model name) and each user-supplied variant
    (key ``<model>-<variant>``). ``source`` is the folder a local checkpoint is copied from, else the module
    that pins the download (``pipeline/models.py``); ``revision`` a user hub model's pinned commit."""
    out: dict[str, ModelStage] = {}
    for m in models:
        src = sources.get(m)
        out[m] = ModelStage(model=m, variant=BASE, source=src.path if src and src.path else REGISTRY_MODULE,
                            revision=src.revision if src else None)
        for v in supplied:
            key = f"{m}-{v}"
            if key in out or key in models:
                raise ValueError(f"model stage name {key!r} (model {m}, variant {v}) collides with another; rename one")
            out[key] = ModelStage(model=m, variant=v, source=sources[m].variants[v])
    return out


class Params(_Strict):
    """The whole parameter file: the offline profile by default."""

    profile: str = Field("offline", pattern=PROFILE_NAME, description="the profile this file holds")
    seed: int = Field(42, description="seed of the bootstraps and stage stamps")
    models: list[str] = Field(["minilm"], description="encoders to probe (python -m pipeline tasks)")
    model_sources: dict[str, ModelSource] = Field(
        default_factory=dict, description="bring your own model: NAME: {path: DIR} or {hub: ID, revision: COMMIT}, "
                                          "optional variants: {NAME: DIR} (README)")
    probe_tasks: list[str] = Field(["pos-wsj", "chunk-wsj"], description="word-level probing tasks")
    sentence_tasks: list[str] = Field(["sentiment", "hedge"], description="sentence tasks to fine-tune on")
    variants: list[str] = Field(["base", "sentiment", "hedge"],
                                description="base = pre-trained, others = fine-tuned on that sentence task "
                                            "(or user-supplied: model_sources)")
    checkpoints: list[str] = Field(default_factory=list,
                                   description="DERIVED from variants x finetune.seeds (do not edit): the models "
                                               "probed, base and <task>-seed<N>")
    model_stages: dict[str, ModelStage] = Field(default_factory=dict,
                                                description="DERIVED from models and model_sources (do not edit): "
                                                            "what each model stage writes and reads")
    paths: Paths = Paths()
    prepare: PrepareParams = PrepareParams()
    finetune: FinetuneParams = FinetuneParams()
    extract: ExtractParams = ExtractParams()
    probe: ProbeParams = ProbeParams()
    neurons: NeuronParams = NeuronParams()

    @model_validator(mode="after")
    def _variants_are_base_or_tasks(self) -> Params:
        supplied = [v for v in self.variants if v != BASE and v not in self.sentence_tasks]
        for v in supplied:
            missing = [m for m in self.models if v not in (self.model_sources.get(m).variants
                                                           if m in self.model_sources else {})]
            if missing:
                raise ValueError(f"variant {v!r} is neither 'base', one of sentence_tasks {self.sentence_tasks}, nor "
                                 f"a user-supplied variant of every model (missing for {missing}): register it under "
                                 "model_sources.MODEL.variants, or list only the models that have it")
        derived = checkpoints(self.variants, self.finetune.seeds, supplied)
        if not self.checkpoints:
            object.__setattr__(self, "checkpoints", derived)  # frozen model: filled in once, while validating
        elif self.checkpoints != derived:
            raise ValueError(f"checkpoints {self.checkpoints} do not follow from variants {self.variants} and "
                             f"finetune.seeds {self.finetune.seeds} (expected {derived}); the list is derived: "
                             "drop it from the overlay, or regenerate params.yaml with python -m pipeline profile NAME")
        stages = model_stages(self.models, self.model_sources, supplied)
        if not self.model_stages:
            object.__setattr__(self, "model_stages", stages)
        elif self.model_stages != stages:
            raise ValueError("model_stages do not follow from models and model_sources (expected "
                             f"{ {k: v.model_dump() for k, v in stages.items()} }); the key is derived: drop it from "
                             "the overlay, or regenerate params.yaml with python -m pipeline profile NAME")
        return self

    @property
    def supplied_variants(self) -> list[str]:
        """The user-supplied fine-tuned variants among ``variants`` (registered in ``model_sources``, no seeds)."""
        return [v for v in self.variants if v != BASE and v not in self.sentence_tasks]


def _first_problem(err: ValidationError, model: type[BaseModel], prefix: tuple[str, ...] = ()) -> str:
    """``where: what`` of the first validation problem; an unknown key lists the valid keys of its section."""
    first = err.errors()[0]
    loc = tuple(str(x) for x in first["loc"])
    where = ".".join((*prefix, *loc)) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        section: Any = model
        for part in loc[:-1]:  # through nested sections; a dict's key part leads to its value type
            section = get_args(section)[1] if get_origin(section) is dict else section.model_fields[part].annotation
        msg = f"unknown key; valid keys here: {', '.join(section.model_fields)}"
    more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
    return f"{where}: {msg}{more}"


def read_mapping(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path`` (an empty file is ``{}``), or a :class:`ConfigError` that says what is wrong."""
    if not path.is_file():
        raise ConfigError(f"{path} not found", "Run from the repository root or pass --params PATH.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, not {type(raw).__name__}")
    return raw


def validate(raw: dict[str, Any], source: Path | str) -> Params:
    """``raw`` (a complete file or an overlay) over the defaults, validated; problems name ``source`` and the key."""
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_first_problem(err, Params)}") from None


def load_params(path: Path | str = "params.yaml") -> tuple[Params, Path]:
    """Read and validate a parameter file; return the params and the folder paths are relative to.

    Keys the file leaves out take their defaults, so this reads ``params.yaml`` and a profile overlay alike."""
    path = Path(path)
    return validate(read_mapping(path), path), path.resolve().parent


def profile_path(root: Path | str, name: str) -> Path:
    """``profiles/NAME.yaml`` under ``root`` (the folder of ``params.yaml``)."""
    return Path(root) / PROFILES_DIR / f"{name}.yaml"


def profile_names(root: Path | str) -> list[str]:
    """Names of the profile overlays under ``root/profiles``."""
    return sorted(p.stem for p in (Path(root) / PROFILES_DIR).glob("*.yaml"))


def merge_overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base`` as pydantic merges an overlay over the defaults: a nested section key by key, any
    other value (a list included) replaced whole."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_overlay(out[key], value)
        else:
            out[key] = value
    return out


def profile_mapping(name: str, root: Path | str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The raw overlay of profile ``name`` with the overlays it ``extends:`` (recursively) underneath it."""
    names = profile_names(root)
    if name not in names:
        raise ConfigError(f"unknown profile {name!r}; available: {', '.join(names) or 'none'}",
                          f"Profiles are the YAML overlays in {Path(root) / PROFILES_DIR}.")
    if name in seen:
        raise ConfigError(f"profiles extend each other in a cycle: {' -> '.join((*seen, name))}",
                          f"Remove one `{EXTENDS}:` key of those profiles.")
    path = profile_path(root, name)
    raw = read_mapping(path)
    parent = raw.pop(EXTENDS, None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: `{EXTENDS}:` must name one profile, not {parent!r}")
    return merge_overlay(profile_mapping(parent, root, (*seen, name)), raw)


def load_profile(name: str, root: Path | str) -> Params:
    """The defaults with ``profiles/NAME.yaml`` on top (and under it, the profiles it ``extends:``), validated;
    e.g. ``load_profile("paper", root)``."""
    path = profile_path(root, name)
    params = validate(profile_mapping(name, root), path)
    if params.profile != name:
        raise ConfigError(f"{path} resolves to profile: {params.profile}, not {name}",
                          f"Set `profile: {name}` in {path}.")
    return params


def written_keys(section: BaseModel) -> list[str]:
    """The keys of ``section`` that ``params.yaml`` lists: every field, so DVC tracks every setting."""
    return list(type(section).model_fields)
