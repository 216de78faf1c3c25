"""Deterministic train/dev/test splits, the one split-fraction check, token caps, the split file format.

Probing corpora are cut into contiguous blocks in corpus order (documents stay whole, so no
sentence of a test document leaks into training). A split file is UTF-8 ``word<TAB>label``
lines with a blank line after each sentence (the CoNLL convention). Sentence tasks are cut by
a seeded hash of the text, stratified by label (:func:`seeded_split`).

Every place that takes split fractions (``params.yaml``'s ``prepare.split_fractions``, both
splitters) validates them with :func:`check_split_fractions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.atomic import write_text
from pipeline.config import check_split_fractions
from pipeline.data.order import hash_order
from pipeline.data.types import Label, SentenceSplit, TaggedCorpus, TaggedSentence
from pipeline.errors import ConfigError, CorpusFormatError

SPLITS = ("train", "dev", "test")


def contiguous_split(corpus: TaggedCorpus, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> dict[str, TaggedCorpus]:
    """Cut ``corpus`` into train/dev/test blocks of the given sentence fractions (in order)."""
    check_split_fractions(fractions)
    n = len(corpus)
    if n < 3:
        raise ConfigError(f"corpus {corpus.name} has {n} sentences; at least 3 are needed to split it")
    a = min(max(1, round(n * fractions[0])), n - 2)
    b = min(n - 1, max(a + 1, round(n * (fractions[0] + fractions[1]))))
    parts = (corpus.sentences[:a], corpus.sentences[a:b], corpus.sentences[b:])
    return {name: corpus.subset(part, name) for name, part in zip(SPLITS, parts)}


def cap_tokens(corpus: TaggedCorpus, max_tokens: int | None) -> TaggedCorpus:
    """The first whole sentences of ``corpus`` holding at most ``max_tokens`` words (None: all)."""
    if max_tokens is None or corpus.n_tokens <= max_tokens:
        return corpus
    kept: list[TaggedSentence] = []
    total = 0
    for sent in corpus.sentences:
        if total + len(sent) > max_tokens:
            break
        kept.append(sent)
        total += len(sent)
    return TaggedCorpus(corpus.name, tuple(kept), dict(corpus.provenance))


def write_split(corpus: TaggedCorpus, path: Path) -> None:
    """Write ``corpus`` as ``word<TAB>label`` lines, a blank line after each sentence (atomic)."""
    out: list[str] = []
    for sent in corpus.sentences:
        for w, lab in zip(sent.words, sent.labels):
            if any(c in w + lab for c in "\t\n\r") or not w or not lab:
                raise CorpusFormatError(corpus.name, None, f"word {w!r} / label {lab!r} cannot be written as TSV")
            out.append(f"{w}\t{lab}\n")
        out.append("\n")
    write_text(path, "".join(out))


def read_split(path: Path, name: str | None = None) -> TaggedCorpus:
    """Read a split file written by :func:`write_split`."""
    path = Path(path)
    if not path.is_file():
        raise CorpusFormatError(path, None, "split file is missing", "Run the prepare stage first.")
    sentences: list[tuple[list[str], list[str]]] = []
    words: list[str] = []
    labels: list[str] = []
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line:
                if words:
                    sentences.append((words, labels))
                    words, labels = [], []
                continue
            cols = line.split("\t")
            if len(cols) != 2 or not cols[0] or not cols[1]:
                raise CorpusFormatError(path, lineno, f"expected 'word<TAB>label', got {line!r}")
            words.append(cols[0])
            labels.append(cols[1])
    if words:
        sentences.append((words, labels))
    return TaggedCorpus.from_lists(name or path.stem, sentences, {"source": str(path)})


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
    check_split_fractions(fractions)
    strata: dict[Any, list[int]] = {}
    for i, lab in enumerate(labels):
        strata.setdefault(lab if stratify else None, []).append(i)
    parts: dict[str, list[int]] = {"train": [], "dev": [], "test": []}
    for idx in strata.values():
        order = hash_order(idx, lambda i: texts[i], seed)
        a, b = _cut(len(order), fractions)
        parts["train"] += order[:a]
        parts["dev"] += order[a:b]
        parts["test"] += order[b:]
    full = SentenceSplit("all", tuple(texts), tuple(labels))
    return {k: full.take(hash_order(v, lambda i: texts[i], seed), k) for k, v in parts.items()}


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
