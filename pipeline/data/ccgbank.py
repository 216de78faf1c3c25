"""Reader for CCGbank AUTO files (``wsj_0001.auto``): CCG supertags or POS tags per word.

Each sentence is an ID line followed by one tree line::

    ID=wsj_0001.1 PARSER=GOLD NUMPARSE=1
    (<T S[dcl] 0 2> (<T NP 0 2> (<L N/N NNP NNP Pierre N_73/N_73>) ... ) ... )

Internal nodes are ``(<T category head-index child-count> ...)``; leaves are
``(<L supertag modPOS origPOS word predarg>)``. All items are separated by single spaces,
which is what this reader relies on (words in CCGbank contain no spaces). ``label="pos"``
uses ``origPOS``, the original Penn Treebank tag (``modPOS`` differs only where CCGbank
re-tagged a word).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pipeline.data.conllu import as_path_list, describe_sources, iter_lines
from pipeline.data.types import TaggedCorpus
from pipeline.errors import CorpusFormatError


def _parse_tree(path: Path, lineno: int, line: str) -> list[tuple[str, str, str]]:
    """``(word, supertag, origPOS)`` of each leaf of one AUTO tree line, left to right."""
    toks = line.split()
    out: list[tuple[str, str, str]] = []
    depth = 0
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok == "(<T":
            head = toks[i + 1: i + 4]
            if len(head) < 3 or not head[2].endswith(">"):
                raise CorpusFormatError(path, lineno, f"internal node {' '.join(toks[i:i + 4])!r} is not "
                                        "'(<T category head children>'")
            depth += 1
            i += 4
        elif tok == "(<L":
            leaf = toks[i + 1: i + 6]
            if len(leaf) < 5 or not leaf[4].endswith(">)"):
                raise CorpusFormatError(path, lineno, f"leaf {' '.join(toks[i:i + 6])!r} is not "
                                        "'(<L supertag modPOS origPOS word predarg>)'")
            supertag, _mod_pos, orig_pos, word = leaf[:4]
            out.append((word, supertag, orig_pos))
            i += 6
        elif tok == ")":
            depth -= 1
            if depth < 0:
                raise CorpusFormatError(path, lineno, "unbalanced parentheses: ')' closes nothing")
            i += 1
        else:
            raise CorpusFormatError(path, lineno, f"unexpected item {tok!r} in tree (token {i + 1})")
    if depth != 0:
        raise CorpusFormatError(path, lineno, f"unbalanced parentheses: {depth} node(s) never closed")
    if not out:
        raise CorpusFormatError(path, lineno, "tree has no leaves")
    return out


def read_ccgbank_auto(paths: Iterable[Path], label: Literal["supertag", "pos"] = "supertag",
                      name: str | None = None) -> TaggedCorpus:
    """Read CCGbank AUTO files; each word is labelled with its CCG supertag (or original POS).

    A tree line without an ``ID=`` line before it, an ``ID=`` line without a tree, or a
    malformed tree raises :class:`CorpusFormatError` with its line number.
    """
    if label not in ("supertag", "pos"):
        raise ValueError(f"label must be 'supertag' or 'pos', not {label!r}")
    files = as_path_list(paths)
    sentences: list[tuple[list[str], list[str]]] = []
    for path in files:
        before = len(sentences)
        pending_id: int | None = None  # line number of an ID line still waiting for its tree
        for lineno, line in iter_lines(path):
            text = line.strip()
            if not text:
                continue
            if text.startswith("ID="):
                if pending_id is not None:
                    raise CorpusFormatError(path, pending_id, "ID line has no tree line after it")
                pending_id = lineno
                continue
            if not text.startswith("("):
                raise CorpusFormatError(path, lineno, "expected an 'ID=...' line or a tree starting with '('")
            if pending_id is None:
                raise CorpusFormatError(path, lineno, "tree line without an 'ID=...' line before it")
            pending_id = None
            leaves = _parse_tree(path, lineno, text)
            sentences.append(([w for w, _, _ in leaves],
                              [s if label == "supertag" else p for _, s, p in leaves]))
        if pending_id is not None:
            raise CorpusFormatError(path, pending_id, "ID line has no tree line after it")
        if len(sentences) == before:
            raise CorpusFormatError(path, None, "no sentences")
    what = "gold CCG supertags" if label == "supertag" else "gold Penn Treebank POS tags (CCGbank origPOS)"
    return TaggedCorpus.from_lists(name or f"ccgbank-{label}", sentences,
                                   {"source": describe_sources(files), "format": "CCGbank AUTO", "labels": what})
