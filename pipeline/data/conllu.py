"""Reader for CoNLL-U files (Universal Dependencies), one POS column as the label.

Layout (https://universaldependencies.org/format.html): one token per line with ten
TAB-separated columns ``ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC``, a blank line
after each sentence, ``#`` comment lines before a sentence. Multiword-token lines (ID ``1-2``)
and empty nodes (ID ``1.1``) are skipped, so the words are the syntactic words.

This module also holds :func:`iter_lines`, the line reader every corpus reader here shares:
it streams a file, strips a UTF-8 BOM and CRLF/LF line ends, and names the line of any byte
that is not UTF-8.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

from pipeline.data.types import TaggedCorpus
from pipeline.errors import CorpusFormatError, LingShiftError

_COLUMNS = {"upos": 3, "xpos": 4}


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, text)`` for each line of ``path``, without its line end.

    A UTF-8 BOM on the first line, ``\\r\\n`` or ``\\n`` line ends and a missing final newline
    are all accepted. Bytes that are not UTF-8 raise :class:`CorpusFormatError` naming the line.
    """
    try:
        fh = open(path, "rb")  # closed by the ``with`` below
    except OSError as err:
        raise LingShiftError(f"{path}: cannot open corpus file ({err.strerror or err})") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise CorpusFormatError(path, lineno, f"not UTF-8 text (bad byte at column {err.start + 1})",
                                        "Convert the file to UTF-8.") from None
            yield lineno, text


def describe_sources(paths: Sequence[Path]) -> str:
    """A short provenance string for one or many input files."""
    if len(paths) == 1:
        return str(paths[0])
    return f"{paths[0]} .. {paths[-1]} ({len(paths)} files)"


def as_path_list(paths: Iterable[Path] | Path | str) -> list[Path]:
    """``paths`` as a non-empty list (a single path is accepted too)."""
    if isinstance(paths, (str, Path)):
        out = [Path(paths)]
    else:
        out = [Path(p) for p in paths]
    if not out:
        raise LingShiftError("no corpus files given")
    return out


def read_conllu(path: Path, column: Literal["upos", "xpos"] = "xpos", name: str | None = None) -> TaggedCorpus:
    """Read a CoNLL-U file; each word is labelled with its ``column`` tag (XPOS by default).

    Returns one sentence per blank-line-separated block. A ``_`` in the chosen column, a line
    without ten TAB-separated columns, or token IDs out of order raise :class:`CorpusFormatError`.
    """
    if column not in _COLUMNS:
        raise ValueError(f"column must be 'upos' or 'xpos', not {column!r}")
    col = _COLUMNS[column]
    sentences: list[tuple[list[str], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if words:
            sentences.append((list(words), list(tags)))
        words.clear()
        tags.clear()

    for lineno, line in iter_lines(path):
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 10:
            raise CorpusFormatError(path, lineno, f"expected 10 TAB-separated columns, found {len(fields)}",
                                    "CoNLL-U columns are ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC.")
        tok_id = fields[0]
        if "-" in tok_id or "." in tok_id:
            continue  # multiword token range or empty node
        if not tok_id.isdigit():
            raise CorpusFormatError(path, lineno, f"token ID {tok_id!r} is not a number")
        if int(tok_id) != len(words) + 1:
            raise CorpusFormatError(path, lineno, f"token ID {tok_id} where {len(words) + 1} was expected",
                                    "Is a blank line between two sentences missing?")
        form, tag = fields[1], fields[col].strip()
        if not form:
            raise CorpusFormatError(path, lineno, "FORM column is empty")
        if not tag or tag == "_":
            other = "upos" if column == "xpos" else "xpos"
            raise CorpusFormatError(path, lineno, f"{column.upper()} column (column {col + 1}) is missing ('_')",
                                    f"This file has no {column.upper()} tags; try column={other!r}.")
        words.append(form)
        tags.append(tag)
    flush()
    if not sentences:
        raise CorpusFormatError(path, None, "no sentences")
    return TaggedCorpus.from_lists(name or f"conllu-{column}", sentences,
                                   {"source": str(path), "format": "CoNLL-U",
                                    "labels": f"gold {column.upper()} tags"})
