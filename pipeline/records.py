"""Every result file the pipeline writes, as one typed, frozen record each, and the collection loader.

One record per file (paths: :mod:`pipeline.layout`):

- :class:`LayerResult`    ``results/layers/<model>/<variant>/<task>.json``  (probe stage)
- :class:`NeuronResult`   ``results/neurons/<model>/<variant>/<task>.json`` (neurons stage)
- :class:`FinetuneResult` ``results/finetune/<model>-<task>-seed<N>.json``          (finetune stage)
- :class:`ClaimsFile`     ``results/claims.json``, :class:`MetricsFile` ``results/metrics.json`` (report stage)
- :class:`RunLog`         ``results/runs/<stage>/<name>.json``  run facts: timings and host (untracked)

and :class:`Provenance`, the block every committed record carries (resolved config, seed, versions).

Every record has ``to_json()`` / ``from_json()`` (validating: a :class:`ResultsError` names the file and
the field), ``read(path)`` / ``write(path)`` (atomic), and a ``schema_version``. Committed records hold only
what a run on the same inputs reproduces: timings and the host go to the :class:`RunLog`.

The probe stage also stores each test word's correctness so that base-vs-fine-tuned deltas can be
bootstrapped *paired* from the committed files alone: :meth:`PackedCorrect.encode` packs
``uint8 [layers, words]`` (how many of the seeds' probes tagged the word right) as base64, the lexical
baseline's correctness is bit-packed (:class:`PackedBits`), and ``test_sentence_lengths`` rebuilds the
sentence of every test word (:meth:`LayerResult.sentence_ids`), the unit of every bootstrap.

Schema 2 (issue 12): layer results gained ``lexical_baseline``, ``test_sentence_lengths``, ``seeds_vary``,
``per_tag``, a sentence-level ``test_accuracy.bootstrap`` (``bootstrap_unit``) and the control task's
``word_types`` (instead of ``lowercase``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_serializer, model_validator

from pipeline.errors import LingShiftError
from pipeline.layout import Key, ResultsLayout
from pipeline.variants import group

SCHEMA_VERSION = 3
# Facts of the machine, not of the inputs: never part of a committed record (see RunLog).
HOST_KEYS = frozenset({"platform", "hostname", "cpu", "cpu_count"})

R = TypeVar("R", bound="Record")


class ResultsError(LingShiftError):
    """A result file is missing, unreadable, or not what the pipeline writes."""


class _Part(BaseModel):
    """A block inside a record: frozen, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Record(_Part):
    """One result file: ``to_json``/``from_json`` with validation, ``read``/``write`` (atomic)."""

    #: the stage that writes this kind of file (for the hint of a :class:`ResultsError`)
    STAGE: ClassVar[str] = "the stage that writes it"
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to disk (NaN stays NaN, floats round-trip exactly)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls: type[R], data: Any, source: Path | str | None = None) -> R:
        """Validate ``data`` (a parsed JSON object) as this record; ``source`` names it in errors."""
        where = str(source) if source is not None else f"<{cls.__name__}>"
        hint = f"Re-run {cls.STAGE} (dvc repro), or restore the file with git checkout."
        if not isinstance(data, dict):
            raise ResultsError(f"{where} holds {type(data).__name__}, not a {cls.__name__} object", hint)
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            said = "has no schema_version (written before pipeline/records.py)" if version is None \
                else f"has schema_version {version!r}"
            raise ResultsError(f"{where} {said}; this code reads {cls.__name__} schema {SCHEMA_VERSION}", hint)
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
            more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
            raise ResultsError(f"{where}: field {loc}: {first['msg']}{more}", hint) from None

    @classmethod
    def read(cls: type[R], path: Path | str) -> R:
        """Read and validate the record in ``path``."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ResultsError(f"{path} not found", f"Run {cls.STAGE} first (dvc repro).") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ResultsError(f"{path} cannot be read as JSON ({err})",
                               f"Re-run {cls.STAGE} (dvc repro), or restore it with git checkout.") from None
        return cls.from_json(data, path)

    def write(self, path: Path | str) -> Path:
        """Write the record to ``path`` atomically (indented, key-sorted JSON); return the path."""
        from pipeline.atomic import write_json

        write_json(Path(path), self.to_json())
        return Path(path)


# ---------------------------------------------------------------------------------------- shared blocks


class Provenance(_Part):
    """What produced a committed result: the resolved config section, the global seed, library versions."""

    config: dict[str, Any]
    seed: int
    versions: dict[str, str]
    #: where the probed weights came from (``lingshift-source.json`` of the model folder, via the activation store:
    #: hub id and pinned revision, or a user's folder, with a sha256 per file); left out of the JSON when unknown
    #: (the packaged models, fine-tuned checkpoints)
    model_source: Optional[dict[str, Any]] = None
    #: where the training data came from (a fine-tuning run's task: the package and file, or the Hugging Face
    #: dataset at its pinned revision, and the split seed); left out of the JSON for results of other stages
    data_source: Optional[dict[str, str]] = None

    @model_serializer(mode="wrap")
    def _omit_unknown_source(self, handler: Any) -> dict[str, Any]:
        out = handler(self)
        for key in ("model_source", "data_source"):
            if out.get(key) is None:
                out.pop(key, None)
        return out

    @field_validator("versions")
    @classmethod
    def _no_host(cls, v: dict[str, str]) -> dict[str, str]:
        host = sorted(set(v) & HOST_KEYS)
        if host:
            raise ValueError(f"{host} are host facts: they belong in the run log, not in a committed result")
        return v

    @classmethod
    def collect(cls, config: dict[str, Any], seed: int, model_source: dict[str, Any] | None = None,
                data_source: dict[str, str] | None = None) -> Provenance:
        """This process's provenance for ``config`` (a params section, JSON-dumped), ``seed``, the weights'
        ``model_source`` (the ``model_source`` of an activation store's metadata, if any) and the training data's
        ``data_source`` (a fine-tuning run's task provenance)."""
        from pipeline.provenance import library_versions

        return cls(config=config, seed=seed, versions=library_versions(), model_source=model_source,
                   data_source=data_source)


class SplitScores(_Part):
    """Accuracy on the dev and the test split."""

    dev: float
    test: float


# ---------------------------------------------------------------------------------------- probe stage


class PackedCorrect(_Part):
    """Per-word test correctness, seed counts ``uint8 [layers, words]`` as base64 (C order)."""

    encoding: str
    n_seeds: int
    shape: tuple[int, int]
    data: str

    @classmethod
    def encode(cls, correct: np.ndarray) -> PackedCorrect:
        """Pack per-seed correctness ``bool [seeds, layers, words]`` as seed counts ``uint8 [layers, words]``."""
        c = np.asarray(correct, dtype=bool)
        if c.ndim != 3:
            raise ValueError(f"correct must be [seeds, layers, words], got shape {c.shape}")
        if c.shape[0] > 255:
            raise ValueError("at most 255 seeds fit the uint8 encoding")
        counts = c.sum(0).astype(np.uint8)
        return cls(encoding="base64 of uint8 [layers, words], C order: how many seeds' probes tagged the test word "
                            "correctly",
                   n_seeds=int(c.shape[0]), shape=(int(counts.shape[0]), int(counts.shape[1])),
                   data=base64.b64encode(counts.tobytes()).decode("ascii"))

    def decode(self) -> np.ndarray:
        """Seed-averaged correctness ``float64 [layers, words]`` in [0, 1]."""
        try:
            raw = np.frombuffer(base64.b64decode(self.data, validate=True), dtype=np.uint8)
            return raw.reshape(self.shape).astype(np.float64) / float(self.n_seeds)
        except (TypeError, ValueError, ZeroDivisionError) as err:
            raise ResultsError(f"test correctness is not in the pipeline's encoding ({err})",
                               "Re-run the probe stage: dvc repro probe") from None


def words_digest(words: Sequence[str], labels: Sequence[str]) -> str:
    """sha256 over the test words and their gold labels: two results with the same digest were scored on
    the same words, so their per-word correctness can be paired."""
    h = hashlib.sha256()
    for w, t in zip(words, labels, strict=True):
        h.update(f"{w}\t{t}\n".encode())
    return h.hexdigest()


class PackedBits(_Part):
    """Per-word booleans ``bool [words]`` bit-packed (``numpy.packbits``, big bit order) as base64."""

    encoding: str
    n_words: int
    data: str

    @classmethod
    def encode(cls, flags: np.ndarray) -> PackedBits:
        """Pack ``bool [words]``."""
        f = np.asarray(flags, dtype=bool)
        if f.ndim != 1:
            raise ValueError(f"flags must be [words], got shape {f.shape}")
        return cls(encoding="base64 of numpy.packbits(bool [words]) (big bit order, zero-padded to whole bytes)",
                   n_words=int(f.shape[0]), data=base64.b64encode(np.packbits(f).tobytes()).decode("ascii"))

    def decode(self) -> np.ndarray:
        """The flags ``bool [words]``."""
        try:
            raw = np.frombuffer(base64.b64decode(self.data, validate=True), dtype=np.uint8)
            if raw.shape[0] != (self.n_words + 7) // 8:
                raise ValueError(f"{raw.shape[0]} bytes cannot hold {self.n_words} packed words")
            return np.unpackbits(raw, count=self.n_words).astype(bool)
        except (TypeError, ValueError) as err:
            raise ResultsError(f"packed per-word flags are not in the pipeline's encoding ({err})",
                               "Re-run the probe stage: dvc repro probe") from None


class Bootstrap(_Part):
    """Percentile bootstrap of the seed-averaged test accuracy per layer, resampling ``bootstrap_unit``
    (test sentences: the words of a sentence are not independent)."""

    accuracy: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    n_words: int
    n_sentences: int
    n_boot: int
    alpha: float
    seed: int
    bootstrap_unit: Literal["sentence"]


class SeedAccuracy(_Part):
    """Test accuracy per layer over the probe seeds (``per_seed``: float ``[seeds, layers]``)."""

    layers: tuple[int, ...]
    label_names: tuple[str, ...]
    seeds: tuple[int, ...]
    per_seed: tuple[tuple[float, ...], ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    bootstrap: Bootstrap


class Evaluation(_Part):
    """A probe's accuracy per layer on one split."""

    layers: tuple[int, ...]
    accuracy: tuple[float, ...]
    n_words: int
    n_unseen_label_words: int
    unseen_labels: tuple[str, ...]
    label_names: tuple[str, ...]


class FitHistory(_Part):
    """What happened during training (``[epochs][layers]`` curves; 1-based best epoch per layer).

    No timing: that is a run fact (:class:`RunLog`)."""

    dev_accuracy: tuple[tuple[float, ...], ...]
    train_loss: tuple[tuple[float, ...], ...]
    best_epoch: tuple[int, ...]
    resident: bool
    n_train: int


class ProbeRun(_Part):
    """One trained set of layer probes (seed ``seeds[0]``): settings, dev/test scores, training history."""

    params: dict[str, Any]
    label_names: tuple[str, ...]
    train_label_names: tuple[str, ...]
    dev: Evaluation
    test: Evaluation
    history: FitHistory
    standardized: bool


class ControlSpec(_Part):
    """The control task (Hewitt & Liang): a random label per word type, drawn from ``distribution``.

    ``word_types``: ``uncased`` when types follow an uncased tokenizer's normalisation (lowercased,
    accents stripped: :func:`pipeline.stats.lexical.normalise_word`), ``cased`` when every spelling is a
    type; ``n_types``: how many types the store's words make."""

    seed: int
    word_types: Literal["uncased", "cased"]
    n_types: int
    distribution: tuple[float, ...]


class ControlResult(_Part):
    """Control-task probes: selectivity = task - control accuracy per layer."""

    layers: tuple[int, ...]
    task_accuracy: tuple[float, ...]
    control_accuracy: tuple[float, ...]
    selectivity: tuple[float, ...]
    control: ControlSpec
    label_names: tuple[str, ...]
    params: dict[str, Any]


class MajorityTag(_Part):
    """Always predicting the most frequent training label."""

    label: str
    test_accuracy: float


class LexicalBaseline(_Part):
    """Each word form's most frequent training tag, unseen forms the majority training tag
    (:mod:`pipeline.stats.lexical`; claims.yaml P4): the floor a probe must clear to show more than word
    identity. ``test_correct``: its per-word correctness on the test words, for paired bootstraps."""

    rule: str
    ties: Literal["first_seen", "smallest_label"]
    word_types: Literal["uncased", "cased"]
    unseen_label: str
    dev_accuracy: float
    test_accuracy: float
    n_test_unseen: int
    test_correct: PackedBits


class PerTag(_Part):
    """Per-tag F1 on test of the seed-0 probe of every layer (:mod:`pipeline.stats.tags`), rounded to 4
    decimals: ``labels`` (the store's), ``support`` (gold test words per tag), ``f1`` ``[layers][labels]``."""

    labels: tuple[str, ...]
    support: tuple[int, ...]
    f1: tuple[tuple[float, ...], ...]

    def f1_array(self) -> np.ndarray:
        """F1 ``float [layers, labels]``."""
        return np.asarray(self.f1, dtype=np.float64).reshape(len(self.f1), len(self.labels))


class StoreSummary(_Part):
    """The activation store a result was computed from."""

    n_words: int
    n_layers: int
    dim: int
    aggregation: str
    splits: dict[str, tuple[int, int]]


class LayerResult(Record):
    """One probe-stage result: a model variant's per-layer test accuracy on one probing task."""

    STAGE: ClassVar[str] = "the probe stage"
    model: str
    variant: str
    task: str
    layers: tuple[int, ...]
    test_accuracy: SeedAccuracy
    dev_accuracy: tuple[float, ...]
    seed0: ProbeRun
    control: ControlResult | None
    n_test_words: int
    majority_baseline: MajorityTag
    lexical_baseline: LexicalBaseline
    test_correct: PackedCorrect
    test_words_sha256: str
    test_sentence_lengths: tuple[int, ...]
    seeds_vary: str
    per_tag: PerTag
    store: StoreSummary
    provenance: Provenance

    @property
    def key(self) -> Key:
        return (self.model, self.variant, self.task)

    @property
    def mean(self) -> np.ndarray:
        """Test accuracy, mean over seeds ``float [layers]``."""
        return np.asarray(self.test_accuracy.mean, dtype=np.float64)

    @property
    def std(self) -> np.ndarray:
        """Sample std over seeds ``float [layers]``."""
        return np.asarray(self.test_accuracy.std, dtype=np.float64)

    @property
    def ci_low(self) -> np.ndarray:
        """Bootstrap 95% interval of the seed-averaged accuracy, low end ``float [layers]``."""
        return np.asarray(self.test_accuracy.bootstrap.ci_low, dtype=np.float64)

    @property
    def ci_high(self) -> np.ndarray:
        return np.asarray(self.test_accuracy.bootstrap.ci_high, dtype=np.float64)

    @property
    def selectivity(self) -> np.ndarray | None:
        """Task - control accuracy (seed 0) ``float [layers]``, None without the control task."""
        return None if self.control is None else np.asarray(self.control.selectivity, dtype=np.float64)

    @property
    def majority(self) -> float:
        """Test accuracy of always predicting the most frequent training label."""
        return self.majority_baseline.test_accuracy

    @property
    def lexical(self) -> float:
        """Test accuracy of the lexical baseline (each word's most frequent training tag)."""
        return self.lexical_baseline.test_accuracy

    @property
    def headroom(self) -> np.ndarray:
        """Test accuracy above the lexical baseline ``float [layers]`` (mean over seeds)."""
        return self.mean - self.lexical

    def correct(self) -> np.ndarray:
        """Seed-averaged test correctness ``float [layers, words]``."""
        return self.test_correct.decode()

    def lexical_correct(self) -> np.ndarray:
        """The lexical baseline's test correctness ``bool [words]`` (same words as :meth:`correct`)."""
        return self.lexical_baseline.test_correct.decode()

    def sentence_ids(self) -> np.ndarray:
        """Test sentence index of each test word ``int [words]`` (0 = first test sentence), the cluster
        unit of sentence-level bootstraps (:func:`pipeline.stats.resample.cluster_bootstrap`)."""
        lengths = np.asarray(self.test_sentence_lengths, dtype=np.int64)
        return np.repeat(np.arange(lengths.shape[0], dtype=np.int64), lengths)

    @model_validator(mode="after")
    def _same_test_words(self) -> LayerResult:
        n = self.n_test_words
        sizes = {"test_sentence_lengths (sum)": sum(self.test_sentence_lengths),
                 "test_correct": self.test_correct.shape[1],
                 "lexical_baseline.test_correct": self.lexical_baseline.test_correct.n_words,
                 "per_tag.support (sum)": sum(self.per_tag.support)}
        bad = {k: v for k, v in sizes.items() if v != n}
        if bad:
            raise ValueError(f"n_test_words is {n} but {bad}: every per-word field must cover the same test words")
        if len(self.per_tag.f1) != len(self.layers) or any(len(r) != len(self.per_tag.labels) for r in self.per_tag.f1):
            raise ValueError("per_tag.f1 must be [layers][labels]")
        return self


# ---------------------------------------------------------------------------------------- neurons stage


class LayerSpread(_Part):
    """How a neuron set spreads over layers: count and share per layer, mean layer index."""

    counts: tuple[int, ...]
    fractions: tuple[float, ...]
    mean_layer: float


class NeuronSet(_Part):
    """A set of neurons (flat ids ``layer * dim + unit``), the accuracy of a probe on them, their spread."""

    neurons: tuple[int, ...]
    accuracy: SplitScores
    layers: LayerSpread


class MinimalSet(NeuronSet):
    """The smallest top-k of the ranking whose dev accuracy reaches the target (``evaluated``: k -> dev acc)."""

    k: int
    reached: bool
    evaluated: dict[str, float]


class NeuronBaselines(_Part):
    """Sets of the minimal set's size: random, and the bottom of the ranking."""

    random: NeuronSet
    bottom: NeuronSet


class Ablation(_Part):
    """The oracle probe with the selected (or as many random) neurons zeroed."""

    zero_selected: SplitScores
    zero_random: SplitScores


class OracleSeeds(_Part):
    """The oracle refit once per probe seed (the analysis recipe): accuracy per seed."""

    seeds: tuple[int, ...]
    dev: tuple[float, ...]
    test: tuple[float, ...]


class GridPoint(_Part):
    """One scanned k: dev accuracy of the top-k probe, mean and std over the grid seeds."""

    k: int
    dev_mean: float
    dev_std: float


class KSpread(_Part):
    """Smallest and largest of the grid seeds' own k."""

    min: int
    max: int


class GridScan(_Part):
    """The minimal set by a grid scan on the seed-0 raw ranking: smallest grid k whose seed-mean dev accuracy
    reaches ``target`` (``ratio`` x the oracles' mean dev accuracy); ``seed_k``: each grid seed's own k
    (``None``: never reached within the scan), ``k_spread``: their range (``None`` if a seed did not reach)."""

    k: int
    reached: bool
    target: float
    ratio: float
    oracle_dev: float
    step: float
    max_k: int
    seeds: tuple[int, ...]
    curve: tuple[GridPoint, ...]
    seed_k: tuple[int | None, ...]
    k_spread: KSpread | None
    scanned: int


class RankingLayers(_Part):
    """Where one ranking's top-k lies, per oracle seed: ``mean_layer [seeds]``, ``counts [seeds][layers]``."""

    mean_layer: tuple[float, ...]
    counts: tuple[tuple[int, ...], ...]


class RankingAgreement(_Part):
    """Raw against standardised top-k: shared share and mean-layer difference (standardised - raw), mean over
    oracle seeds and per seed."""

    overlap: float
    mean_layer_diff: float
    overlap_per_seed: tuple[float, ...]
    mean_layer_diff_per_seed: tuple[float, ...]


class LayerShift(_Part):
    """C5's statistic: the top-k's mean layer and count per layer for both rankings, per oracle seed."""

    k: int
    oracle_seeds: tuple[int, ...]
    raw: RankingLayers
    standardised: RankingLayers
    agreement: RankingAgreement


class RandomInterval(_Part):
    """Accuracy of the random k-sets: mean, the ``alpha/2``..``1-alpha/2`` quantiles, the mean's normal CI."""

    mean: float
    ci_low: float
    ci_high: float
    mean_ci_low: float
    mean_ci_high: float


class AblationSalience(_Part):
    """Top-k zeroed in the oracle against random k-sets zeroed (test accuracy, mean over oracle seeds)."""

    topk_accuracy: float
    topk_accuracy_per_seed: tuple[float, ...]
    random_accuracy: RandomInterval
    salient: bool
    reason: str


class SalienceRecipe(_Part):
    """The probe recipe of the neuron analysis: training words used and epochs."""

    train_words: int
    epochs: int


class Salience(_Part):
    """The salience gate of the seed-0 raw ranking's size k: a probe retrained on each oracle seed's top-k
    against ``n_random`` random k-sets (test accuracy, top-k averaged over oracle seeds), and the ablation
    test. ``salient`` only if both are; ``reason`` says which failed."""

    n_random: int
    k: int
    alpha: float
    topk_accuracy: float
    topk_accuracy_per_seed: tuple[float, ...]
    random_accuracy: RandomInterval
    selection_salient: bool
    salient: bool
    ablation: AblationSalience
    reason: str
    recipe: SalienceRecipe


class NeuronResult(Record):
    """One neurons-stage result: LCA ranking and the minimal neuron set of a model variant on one task.

    The legacy blocks (``oracle``, ``ordering``, ``minimal_set``, ``baselines``, ``ablation``) are oracle seed 0's,
    under the analysis recipe; ``oracle_seeds``, ``grid_scan``, ``layer_shift`` and ``salience`` hold the
    salience-gated analysis (every oracle seed, both rankings)."""

    STAGE: ClassVar[str] = "the neurons stage"
    model: str
    variant: str
    task: str
    n_neurons: int
    n_layers: int
    dim: int
    label_names: tuple[str, ...]
    all_label_names: tuple[str, ...]
    params: dict[str, Any]
    oracle: SplitScores
    target_dev: float
    ordering: tuple[int, ...]
    cutoffs: tuple[int, ...]
    minimal_set: MinimalSet
    baselines: NeuronBaselines
    ablation: Ablation
    oracle_seeds: OracleSeeds
    grid_scan: GridScan
    layer_shift: LayerShift
    salience: Salience
    provenance: Provenance

    @property
    def key(self) -> Key:
        return (self.model, self.variant, self.task)

    @property
    def k(self) -> int:
        return self.minimal_set.k

    @property
    def neurons(self) -> np.ndarray:
        """The minimal set ``int [k]``: flat neuron ids in ranking order."""
        return np.asarray(self.minimal_set.neurons, dtype=np.int64)

    @property
    def counts(self) -> list[int]:
        """Minimal-set neurons per layer."""
        return list(self.minimal_set.layers.counts)

    @property
    def mean_layer(self) -> float:
        return self.minimal_set.layers.mean_layer

    @property
    def oracle_test(self) -> float:
        return self.oracle.test

    @property
    def neuron_layers(self) -> np.ndarray:
        """Layer index of each selected neuron ``int [k]``."""
        return self.neurons // self.dim

    @property
    def ranking(self) -> np.ndarray:
        """Every neuron, most salient first ``int [n_neurons]``."""
        return np.asarray(self.ordering, dtype=np.int64)


# ---------------------------------------------------------------------------------------- finetune stage


class MajorityScores(_Part):
    """The task's metrics of always predicting train's most frequent label."""

    label: str
    scores: dict[str, float]


class FinetuneResult(Record):
    """One fine-tuning run: checkpoint ``variant`` (``<task>-seed<seed>``) and its scores on its sentence task
    (``scores``: split -> metric -> value)."""

    STAGE: ClassVar[str] = "the finetune stage"
    model: str
    variant: str
    seed: int
    task: str
    kind: str
    base: str
    main_metric: str
    scores: dict[str, dict[str, float]]
    majority_baseline: dict[str, MajorityScores] | None
    examples: dict[str, int]
    steps: int
    epochs_run: float
    train_loss: float
    best_dev_step: int | None
    dev_curve: tuple[dict[str, float], ...]
    provenance: Provenance

    @property
    def key(self) -> tuple[str, str]:
        """(model, checkpoint name)."""
        return (self.model, self.variant)

    @property
    def metric(self) -> str:
        return self.main_metric

    @property
    def test_split(self) -> str:
        """``test``, or the first of several test splits (MNLI: ``test_matched``)."""
        tests = sorted(s for s in self.scores if s.startswith("test"))
        if not tests:
            raise ResultsError(f"fine-tuning result {self.model}-{self.variant} has no test scores",
                               "Re-run: dvc repro finetune")
        return "test" if "test" in tests else tests[0]

    @property
    def score(self) -> float:
        """The main metric on the test split."""
        return self.scores[self.test_split][self.main_metric]

    @property
    def majority(self) -> float | None:
        """The majority baseline's main metric on the test split (None for regression tasks)."""
        if self.majority_baseline is None:
            return None
        return self.majority_baseline[self.test_split].scores[self.main_metric]


# ---------------------------------------------------------------------------------------- report stage


VerdictName = Literal["SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "NOT_APPLICABLE"]


class ClaimVerdict(_Part):
    """One claim's outcome (claims.yaml): the claim, its verdict and reason, whether it is a proxy verdict,
    the independent units (P5) with their verdicts, and per unit the statistic with its 95% interval."""

    id: str
    title: str
    statement: str
    statistic: str
    threshold: float | str
    thresholds: dict[str, float]
    side: str | dict[str, str]
    unit: str
    needs: str
    verdict: VerdictName
    reason: str
    proxy: bool
    proxy_reason: str | None
    aggregation: str
    independent_units: dict[str, dict[str, Any]]
    units: tuple[dict[str, Any], ...]
    min_detectable_effect: float | None
    n_finetune_seeds: int | None
    trust: tuple[str, ...]


class ClaimsFile(Record):
    """``results/claims.json``: every claim's verdict under one profile, and the specification it followed."""

    STAGE: ClassVar[str] = "the report stage"
    profile: str
    spec_sha256: str
    spec_version: int
    proxy: bool
    proxy_reason: str | None
    bootstrap_unit: str
    claims_defined: tuple[str, ...]
    n_boot: int
    claims: tuple[ClaimVerdict, ...]
    provenance: Provenance

    def verdicts(self) -> dict[str, str]:
        """``{claim id: verdict}``."""
        return {c.id: c.verdict for c in self.claims}


class VariantMetrics(_Part):
    """Flat numbers of one model x variant x task for ``dvc metrics show``."""

    best_layer_accuracy: float
    best_layer: int
    last_layer_accuracy: float
    minimal_set_k: int | None = None
    minimal_set_mean_layer: float | None = None


class MetricsFile(Record):
    """``results/metrics.json``: claims (1 SUPPORTED / 0 INCONCLUSIVE / -1 CONTRADICTED / null NOT_APPLICABLE),
    the same verdicts as words (``dvc exp show`` lists strings too, and drops nulls), and per model/variant/task
    summaries."""

    STAGE: ClassVar[str] = "the report stage"
    claims: dict[str, int | None]
    verdicts: dict[str, str] = {}
    results: dict[str, dict[str, dict[str, VariantMetrics]]]


# ---------------------------------------------------------------------------------------- run log


class RunLog(Record):
    """The run facts of one stage invocation (untracked): when, how long, on what machine.

    ``timings`` are seconds (``stage``: the whole invocation) or rates (``words_per_second``); ``facts``
    other host-dependent details (device name, torch threads)."""

    STAGE: ClassVar[str] = "the stage"
    stage: str
    name: str
    finished_at: str
    timings: dict[str, float]
    facts: dict[str, str | int | float | bool | None] = {}
    host: dict[str, str | int | float | None]

    @classmethod
    def now(cls, stage: str, name: str, timings: dict[str, float], **facts: str | int | float | bool | None) -> RunLog:
        """A run log of this process, finished now."""
        import datetime

        from pipeline.provenance import host_facts

        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return cls(stage=stage, name=name, finished_at=now,
                   timings={k: round(float(v), 3) for k, v in timings.items()}, facts=facts, host=host_facts())

    @property
    def seconds(self) -> float | None:
        """Wall seconds of the whole invocation."""
        return self.timings.get("stage")


def read_run_log(path: Path) -> RunLog | None:
    """The run log in ``path``, or None when it is absent or unreadable (run facts are optional)."""
    try:
        return RunLog.read(path)
    except ResultsError:
        return None


# ---------------------------------------------------------------------------------------- the collection


@dataclass
class Results:
    """Every result file under one ``results/`` folder, keyed by (model, variant, task)."""

    root: Path
    layers: dict[Key, LayerResult] = field(default_factory=dict)
    neurons: dict[Key, NeuronResult] = field(default_factory=dict)
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

    def by_variant(self, model: str) -> dict[str, list[str]]:
        """``model``'s checkpoints grouped by variant (``{"base": ["base"], "sentiment": ["sentiment-seed42",
        ...]}``), ``base`` first, each group in seed order (:func:`pipeline.variants.group`)."""
        return group(self.variants(model))

    def seed_layers(self, model: str, variant: str, task: str) -> list[LayerResult]:
        """The layer results of every fine-tuning seed of ``variant`` (or ``[base]``) on ``task``, in seed order."""
        return [self.layers[(model, c, task)] for c in self.by_variant(model).get(variant, [])
                if (model, c, task) in self.layers]


def _check_key(path: Path, key: tuple[str, ...], got: tuple[str, ...], what: str) -> None:
    if key != got:
        raise ResultsError(f"{path} holds the {what} of {'/'.join(got)}, not of {'/'.join(key)} as its path says",
                           "Re-run its stage, or restore the file with git checkout.")


def load_results(root: Path | str, models: Sequence[str] | None = None, variants: Sequence[str] | None = None,
                 tasks: Sequence[str] | None = None, sentence_tasks: Sequence[str] | None = None) -> Results:
    """Read every result file under ``root`` (``results/``), optionally only the listed names (a profile's).

    Files of other models/variants/tasks (left over from another profile) are skipped when lists are given.
    """
    lay = ResultsLayout(Path(root))

    def keep(m: str, v: str, t: str) -> bool:
        return ((models is None or m in models) and (variants is None or v in variants)
                and (tasks is None or t in tasks))

    res = Results(root=lay.root)
    for key, f in lay.layer_files():
        if keep(*key):
            r = LayerResult.read(f)
            _check_key(f, key, r.key, "probe result")
            res.layers[key] = r
    for key, f in lay.neuron_files():
        if keep(*key):
            n = NeuronResult.read(f)
            _check_key(f, key, n.key, "neurons result")
            res.neurons[key] = n
    for f in lay.finetune_files():
        ft = FinetuneResult.read(f)
        _check_key(f, (f.stem,), (f"{ft.model}-{ft.variant}",), "fine-tuning result")
        if (models is None or ft.model in models) and (sentence_tasks is None or ft.task in sentence_tasks):
            res.finetune[ft.key] = ft
    return res


def read_claims(root: Path | str) -> ClaimsFile | None:
    """``results/claims.json`` under ``root``, or None when the report stage has not run yet."""
    path = ResultsLayout(Path(root)).claims
    return ClaimsFile.read(path) if path.is_file() else None


def read_run_logs(root: Path | str, stage: str | None = None) -> dict[tuple[str, str], RunLog]:
    """Every readable run log under ``root`` (``results/``), keyed by (stage, name)."""
    out = {}
    for f in ResultsLayout(Path(root)).run_logs(stage):
        log = read_run_log(f)
        if log is not None:
            out[(log.stage, log.name)] = log
    return out


__all__ = [
    "SCHEMA_VERSION", "ResultsError", "Record", "Provenance", "SplitScores", "PackedCorrect", "PackedBits",
    "words_digest", "Bootstrap", "SeedAccuracy", "Evaluation", "FitHistory", "ProbeRun", "ControlSpec",
    "ControlResult", "MajorityTag", "LexicalBaseline", "PerTag", "StoreSummary", "LayerResult", "LayerSpread",
    "NeuronSet", "MinimalSet", "NeuronBaselines", "Ablation", "OracleSeeds", "GridPoint", "KSpread", "GridScan",
    "RankingLayers", "RankingAgreement", "LayerShift", "RandomInterval", "AblationSalience", "SalienceRecipe",
    "Salience", "NeuronResult", "MajorityScores", "FinetuneResult", "VerdictName", "ClaimVerdict", "ClaimsFile",
    "VariantMetrics", "MetricsFile", "RunLog", "read_run_log", "read_run_logs", "Results", "load_results",
    "read_claims",
]
