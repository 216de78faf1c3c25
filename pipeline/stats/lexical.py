"""Lexical baseline: each word's most frequent training tag, unseen words get the majority training tag.

A probe that does no better than this baseline has learnt nothing beyond word identity. Ties are broken
deterministically (both per word and for the overall majority), by one of :data:`TIE_RULES`:
``"smallest_label"`` (default: the smallest label id wins) or ``"first_seen"`` (the tag seen first in
training order wins, as ``collections.Counter.most_common`` does). On the WSJ samples about 100 training
types have tied tags and the two rules differ by 0.1 to 0.2 points of test accuracy.

An optional normaliser maps words to the types the model can tell apart; for an uncased BERT WordPiece
tokenizer use ``lambda w: normalise_word(w, uncased=True)`` (see :func:`word_normaliser`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pipeline.errors import LingShiftError

Normaliser = Callable[[str], str]
TieRule = Literal["smallest_label", "first_seen"]
#: The tie-breaking rules :func:`fit_lexical` accepts.
TIE_RULES: tuple[str, ...] = ("smallest_label", "first_seen")


class LexicalInputError(LingShiftError, ValueError):
    """Bad input to the lexical baseline (mismatched lengths, empty training data, bad label ids)."""


def _is_cjk(cp: int) -> bool:
    """The CJK ideograph blocks that BERT's normaliser pads with spaces."""
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B920 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _clean_char(ch: str) -> str:
    """BERT's text cleaning of one character: drop NUL, U+FFFD and control/format/unassigned characters
    (``C*`` categories except tab, newline, carriage return); map whitespace to a space."""
    if ch in "\t\n\r":
        return " "
    if ch in "\x00\ufffd" or unicodedata.category(ch).startswith("C"):
        return ""
    if ch.isspace():
        return " "
    return f" {ch} " if _is_cjk(ord(ch)) else ch


def normalise_word(word: str, uncased: bool) -> str:
    """The word type a BERT WordPiece tokenizer sees.

    ``uncased=True`` reproduces Hugging Face's ``BertNormalizer(lowercase=True)`` (strip_accents following
    lowercase): clean control characters and whitespace, pad CJK ideographs with spaces, NFD-decompose and
    drop non-spacing marks (``Mn``), then lowercase each character on its own (so a final capital
    sigma becomes ``σ``, not ``ς``). ``uncased=False`` returns the word unchanged (a cased
    model tells every spelling apart).
    """
    if not uncased:
        return word
    cleaned = "".join(_clean_char(ch) for ch in word)
    stripped = "".join(ch for ch in unicodedata.normalize("NFD", cleaned) if unicodedata.category(ch) != "Mn")
    return "".join(ch.lower() for ch in stripped)  # per character, as Rust's char::to_lowercase (no final sigma)


def word_normaliser(uncased: bool) -> Normaliser | None:
    """The normaliser to pass to :func:`fit_lexical` for a tokenizer that is (un)cased; ``None`` if cased."""
    return (lambda w: normalise_word(w, uncased=True)) if uncased else None


def _labels(labels: Any, n_words: int, name: str) -> np.ndarray:
    """Label ids ``int [words]``, checked non-negative integers, one per word."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n_words:
        raise LexicalInputError(f"{name} has shape {y.shape}; expected one label id per word, [{n_words}].")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise LexicalInputError(f"{name} has dtype {y.dtype}; expected integer label ids.")
    if y.size and y.min() < 0:
        raise LexicalInputError(f"{name} holds negative label ids; expected ids 0..n_labels-1.")
    return y.astype(np.int64)


def _types(words: Sequence[str], normalise: Normaliser | None) -> list[str]:
    """Words mapped to their types (unchanged without a normaliser)."""
    return [normalise(w) for w in words] if normalise is not None else [str(w) for w in words]


@dataclass(frozen=True)
class LexicalModel:
    """The fitted baseline: ``table`` maps a word type to its tag id; ``majority`` is the tag of unseen
    types; ``normalise`` maps words to types (``None``: identity)."""

    table: dict[str, int]
    majority: int
    normalise: Normaliser | None = None

    def predict(self, words: Sequence[str]) -> np.ndarray:
        """Tag ids ``int [words]`` of ``words``."""
        return np.fromiter((self.table.get(t, self.majority) for t in _types(words, self.normalise)),
                           dtype=np.int64, count=len(words))

    def seen(self, words: Sequence[str]) -> np.ndarray:
        """``bool [words]``: whether each word's type occurred in training."""
        return np.fromiter((t in self.table for t in _types(words, self.normalise)), dtype=bool, count=len(words))


def _pick(counts: np.ndarray, first: np.ndarray, ties: str) -> np.ndarray:
    """Per row of ``counts`` ``[rows, labels]`` the most frequent label; ties by ``ties`` (``first``
    ``[rows, labels]``: index of each label's first occurrence)."""
    if ties == "smallest_label":
        return counts.argmax(axis=1)  # argmax returns the first maximum: the smallest label id
    top = counts == counts.max(axis=1, keepdims=True)
    return np.where(top, first, np.iinfo(np.int64).max).argmin(axis=1)


def fit_lexical(train_words: Sequence[str], train_labels: Any, normalise: Normaliser | None = None,
                ties: TieRule = "smallest_label") -> LexicalModel:
    """Learn each type's most frequent tag from ``train_words`` ``[n_train]`` and ``train_labels``
    ``int [n_train]``; the majority tag covers unseen types; ties broken by ``ties`` (see module doc)."""
    if ties not in TIE_RULES:
        raise LexicalInputError(f"ties={ties!r} is not a tie rule; expected one of {TIE_RULES}.")
    y = _labels(train_labels, len(train_words), "train_labels")
    if y.size == 0:
        raise LexicalInputError("there are no training words; the lexical baseline needs a training split.")
    types, inv = np.unique(np.asarray(_types(train_words, normalise), dtype=object), return_inverse=True)
    n_labels, n_types = int(y.max()) + 1, len(types)
    pair = inv.ravel() * n_labels + y
    counts = np.bincount(pair, minlength=n_types * n_labels).reshape(n_types, n_labels)
    first = np.full(n_types * n_labels, np.iinfo(np.int64).max)
    seen_pairs, first_idx = np.unique(pair, return_index=True)
    first[seen_pairs] = first_idx
    first_label = np.full(n_labels, np.iinfo(np.int64).max)
    seen_labels, first_lab_idx = np.unique(y, return_index=True)
    first_label[seen_labels] = first_lab_idx
    best = _pick(counts, first.reshape(n_types, n_labels), ties)
    majority = int(_pick(np.bincount(y, minlength=n_labels)[None], first_label[None], ties)[0])
    return LexicalModel({str(t): int(b) for t, b in zip(types, best)}, majority, normalise)


@dataclass(frozen=True)
class LexicalResult:
    """The baseline scored on an evaluation split: ``accuracy``; ``correct`` ``bool [words]``;
    ``predicted`` ``int [words]``; ``seen`` ``bool [words]`` (type occurred in training); ``majority``."""

    accuracy: float
    correct: np.ndarray
    predicted: np.ndarray
    seen: np.ndarray
    majority: int


def lexical_baseline(train_words: Sequence[str], train_labels: Any, eval_words: Sequence[str], eval_labels: Any,
                     normalise: Normaliser | None = None, ties: TieRule = "smallest_label") -> LexicalResult:
    """Fit the per-word most-frequent-tag baseline on train (:func:`fit_lexical`) and score it on eval words
    ``[n_eval]`` with gold ``eval_labels`` ``int [n_eval]``."""
    y = _labels(eval_labels, len(eval_words), "eval_labels")
    if y.size == 0:
        raise LexicalInputError("there are no evaluation words to score the lexical baseline on.")
    model = fit_lexical(train_words, train_labels, normalise, ties)
    pred = model.predict(eval_words)
    correct = pred == y
    return LexicalResult(float(correct.mean()), correct, pred, model.seen(eval_words), model.majority)
