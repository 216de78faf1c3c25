"""Reader for Parallel Meaning Bank semantic tags (the "semtagging" token-per-line files).

Expected layout (the PMB semtag release / ``sem-0.1.0`` data used by Bjerva et al. 2016
and Belinkov et al. 2017), one token per line, TAB-separated, a blank line between
sentences::

    PRO<TAB>I
    ENS<TAB>am
    ...
    NIL<TAB>.
    <blank line>
    ...

By default the tag is column 0 and the word column 1; other column layouts (e.g. a CoNLL
export with the word first and the tag in column 3) are read by passing ``tag_col`` and
``word_col`` (0-based). Further columns are ignored. A line that starts with ``#`` and has
too few columns to hold a token is taken as a comment and skipped; any other line with too
few columns, or an empty word or tag, raises :class:`CorpusFormatError`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.data.conllu import iter_lines
from pipeline.data.types import TaggedCorpus
from pipeline.errors import CorpusFormatError


def read_pmb_semtags(path: Path, tag_col: int = 0, word_col: int = 1, name: str | None = None) -> TaggedCorpus:
    """Read a PMB semantic-tag file (layout in the module docstring); labels are the sem tags."""
    if tag_col < 0 or word_col < 0 or tag_col == word_col:
        raise ValueError(f"tag_col ({tag_col}) and word_col ({word_col}) must be distinct and >= 0")
    need = max(tag_col, word_col) + 1
    sentences: list[tuple[list[str], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []
    for lineno, line in iter_lines(path):
        if not line.strip():
            if words:
                sentences.append((words, tags))
                words, tags = [], []
            continue
        fields = line.split("\t")
        if len(fields) < need:
            if line.startswith("#"):
                continue
            raise CorpusFormatError(path, lineno, f"expected at least {need} TAB-separated columns "
                                    f"(tag in column {tag_col + 1}, word in column {word_col + 1}), "
                                    f"found {len(fields)}",
                                    "Semtag lines look like 'PRO<TAB>I'; pass tag_col/word_col for other layouts.")
        tag, word = fields[tag_col].strip(), fields[word_col].strip()
        if not tag:
            raise CorpusFormatError(path, lineno, f"empty semantic tag in column {tag_col + 1}")
        if not word:
            raise CorpusFormatError(path, lineno, f"empty word in column {word_col + 1}")
        words.append(word)
        tags.append(tag)
    if words:
        sentences.append((words, tags))
    if not sentences:
        raise CorpusFormatError(path, None, "no sentences")
    prov = {"source": str(path), "format": "PMB semtags (token per line, TAB-separated)",
            "labels": "gold PMB semantic tags (as supplied; the PMB also ships silver/bronze tags)"}
    return TaggedCorpus.from_lists(name or "pmb-semtags", sentences, prov)
