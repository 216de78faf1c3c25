"""Reader for Penn Treebank bracketed trees (``.mrg`` files): gold POS tags from the leaves.

A file holds several trees; a tree may span many lines and is usually wrapped in an extra
unlabelled ``( ... )``. Pre-terminals look like ``(NN dog)``. Empty elements (``-NONE-``
leaves: traces, null complementisers) are dropped, so the words are the overt tokens as in
the usual WSJ POS-tagging setup. A tree left with no overt word is skipped. LDC header lines
starting with ``*x*`` (found in some distributions) are skipped between trees.

The parser is a small s-expression tokenizer: ``(``, ``)`` and atoms (runs of other
non-space characters; PTB escapes brackets in words as ``-LRB-``/``-RRB-``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.conllu import as_path_list, describe_sources, iter_lines
from pipeline.data.types import TaggedCorpus
from pipeline.errors import CorpusFormatError

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
EMPTY_TAG = "-NONE-"


@dataclass
class _Node:
    line: int
    label: str | None = None
    children: list[_Node | str] = field(default_factory=list)


def _iter_trees(path: Path) -> Iterator[_Node]:
    """Yield the top-level trees of one file, raising on unbalanced brackets or stray atoms."""
    stack: list[_Node] = []
    for lineno, line in iter_lines(path):
        if not stack and line.lstrip().startswith("*x*"):
            continue
        for m in _TOKEN.finditer(line):
            tok = m.group()
            if tok == "(":
                stack.append(_Node(lineno))
            elif tok == ")":
                if not stack:
                    raise CorpusFormatError(path, lineno, "unbalanced parentheses: ')' closes nothing",
                                            "A tree has more closing than opening brackets.")
                node = stack.pop()
                if not node.children:
                    raise CorpusFormatError(path, node.line, f"empty constituent ({node.label or ''})")
                if stack:
                    stack[-1].children.append(node)
                else:
                    yield node
            else:
                if not stack:
                    raise CorpusFormatError(path, lineno, f"text {tok!r} outside any tree")
                top = stack[-1]
                if top.label is None and not top.children:
                    top.label = tok
                else:
                    top.children.append(tok)
    if stack:
        raise CorpusFormatError(path, stack[0].line, "unbalanced parentheses: the tree starting on this line "
                                "is never closed", "A ')' is missing somewhere in this tree.")


def _leaves(path: Path, tree: _Node) -> list[tuple[str, str]]:
    """``(word, tag)`` of every pre-terminal, left to right, empty elements included."""
    out: list[tuple[str, str]] = []
    todo: list[_Node] = [tree]
    while todo:
        node = todo.pop()
        words = [k for k in node.children if isinstance(k, str)]
        subtrees = [k for k in node.children if isinstance(k, _Node)]
        if not words:
            todo.extend(reversed(subtrees))
            continue
        if len(node.children) != 1 or node.label is None:
            shown = " ".join(k if isinstance(k, str) else "(...)" for k in node.children)
            raise CorpusFormatError(path, node.line, f"malformed leaf ({node.label or ''} {shown}); "
                                    "expected (TAG word)")
        out.append((words[0], node.label))
    return out


def read_ptb(paths: Iterable[Path], name: str | None = None) -> TaggedCorpus:
    """Read Penn Treebank ``.mrg`` files into a corpus of words with gold POS tags.

    Sentences keep file order, then tree order. ``-NONE-`` leaves are dropped. Unbalanced
    parentheses raise :class:`CorpusFormatError` naming the line where the tree started.
    """
    files = as_path_list(paths)
    sentences: list[tuple[list[str], list[str]]] = []
    skipped = 0
    for path in files:
        before = len(sentences)
        for tree in _iter_trees(path):
            pairs = [(w, t) for w, t in _leaves(path, tree) if t != EMPTY_TAG]
            if not pairs:
                skipped += 1
                continue
            sentences.append(([w for w, _ in pairs], [t for _, t in pairs]))
        if len(sentences) == before:
            raise CorpusFormatError(path, None, "no sentences")
    if skipped:
        log.warning("skipped %d trees with no overt words (only -NONE- leaves)", skipped)
    return TaggedCorpus.from_lists(name or "ptb-pos", sentences,
                                   {"source": describe_sources(files), "format": "Penn Treebank bracketed (.mrg)",
                                    "labels": "gold Penn Treebank POS tags (-NONE- empty elements dropped)"})
