"""Reader for the CoNLL-2000 chunking data (``train.txt``, ``test.txt``).

One token per line with three space-separated columns ``word POS chunk``
(``Confidence NN B-NP``), a blank line after each sentence. Chunk labels are BIO
(``B-NP``, ``I-VP``, ``O``). A ``-DOCSTART-`` line, if present, is skipped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pipeline.data.conllu import iter_lines
from pipeline.data.types import TaggedCorpus
from pipeline.errors import CorpusFormatError

_BIO = re.compile(r"O|[BI]-\S+")


def read_conll2000(path: Path, column: Literal["pos", "chunk"] = "chunk", name: str | None = None) -> TaggedCorpus:
    """Read a CoNLL-2000 file; labels are the gold chunk tags (default) or the POS column.

    A line without exactly three columns, or a chunk label that is not ``O``/``B-X``/``I-X``,
    raises :class:`CorpusFormatError` with its line number.
    """
    if column not in ("pos", "chunk"):
        raise ValueError(f"column must be 'pos' or 'chunk', not {column!r}")
    sentences: list[tuple[list[str], list[str]]] = []
    words: list[str] = []
    labels: list[str] = []
    for lineno, line in iter_lines(path):
        fields = line.split()
        if not fields:
            if words:
                sentences.append((words, labels))
                words, labels = [], []
            continue
        if fields[0] == "-DOCSTART-":
            continue
        if len(fields) != 3:
            raise CorpusFormatError(path, lineno, f"expected 3 columns (word POS chunk), found {len(fields)}",
                                    "CoNLL-2000 lines look like 'Confidence NN B-NP'.")
        word, pos, chunk = fields
        if not _BIO.fullmatch(chunk):
            raise CorpusFormatError(path, lineno, f"chunk label {chunk!r} is not O, B-X or I-X")
        words.append(word)
        labels.append(pos if column == "pos" else chunk)
    if words:
        sentences.append((words, labels))
    if not sentences:
        raise CorpusFormatError(path, None, "no sentences")
    what = "gold chunk tags (BIO)" if column == "chunk" else "gold Penn Treebank POS tags"
    return TaggedCorpus.from_lists(name or f"conll2000-{column}", sentences,
                                   {"source": str(path), "format": "CoNLL-2000", "labels": what})
