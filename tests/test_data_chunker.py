"""The SILVER rule chunker: hand-checked sentences, BIO validity, determinism, provenance."""

from __future__ import annotations

import random

import pytest

from pipeline.data.chunker import CHUNKER_VERSION, RULES, chunk_tags, silver_chunk_corpus
from pipeline.data.types import TaggedCorpus

PTB_TAGS = ("CC CD DT EX FW IN JJ JJR JJS LS MD NN NNS NNP NNPS PDT POS PRP PRP$ RB RBR RBS RP SYM TO UH VB "
            "VBD VBG VBN VBP VBZ WDT WP WP$ WRB # $ . , : `` '' -LRB- -RRB- -NONE-").split()


def split(tagged: str) -> tuple[list[str], list[str]]:
    """``"The/DT cat/NN"`` -> (words, tags), split on the last slash."""
    toks = [t.rpartition("/") for t in tagged.split()]
    return [w for w, _, _ in toks], [t for _, _, t in toks]


def check_bio(labels: list[str]) -> None:
    prev = "O"
    for lab in labels:
        assert lab == "O" or lab[:2] in ("B-", "I-"), lab
        if lab.startswith("I-"):
            assert prev != "O" and prev[2:] == lab[2:], (prev, lab, labels)
        prev = lab


@pytest.mark.parametrize("tagged, expected", [
    ("The/DT black/JJ cat/NN sat/VBD on/IN the/DT mat/NN ./.",
     "B-NP I-NP I-NP B-VP B-PP B-NP I-NP O"),
    # WSJ 0001: appositive, ADJP, "as" after an NP is a PP, proper noun + number
    ("Pierre/NNP Vinken/NNP ,/, 61/CD years/NNS old/JJ ,/, will/MD join/VB the/DT board/NN as/IN a/DT "
     "nonexecutive/JJ director/NN Nov./NNP 29/CD ./.",
     "B-NP I-NP O B-NP I-NP B-ADJP O B-VP I-VP B-NP I-NP B-PP B-NP I-NP I-NP B-NP I-NP O"),
    # verb group with adverb and infinitive; IN before NP (no clause) is PP
    ("Confidence/NN in/IN the/DT pound/NN is/VBZ widely/RB expected/VBN to/TO take/VB another/DT sharp/JJ "
     "dive/NN ./.",
     "B-NP B-PP B-NP I-NP B-VP I-VP I-VP I-VP I-VP B-NP I-NP I-NP O"),
    # possessive 's starts the next NP (CoNLL-2000 convention); bare-noun coordination
    ("from/IN July/NNP and/CC August/NNP 's/POS near-record/JJ deficits/NNS",
     "B-PP B-NP I-NP I-NP B-NP I-NP I-NP"),
    # complementiser after a verb, before NP + finite verb: SBAR
    ("He/PRP said/VBD that/IN the/DT stock/NN rose/VBD ./.",
     "B-NP B-VP B-SBAR B-NP I-NP B-VP O"),
    # IN after a noun stays PP even when a finite verb follows its NP
    ("The/DT price/NN of/IN the/DT stock/NN rose/VBD", "B-NP I-NP B-PP B-NP I-NP B-VP"),
    # sentence-initial subordinator
    ("Although/IN prices/NNS fell/VBD ,/, sales/NNS rose/VBD", "B-SBAR B-NP B-VP O B-NP B-VP"),
    # particle, pronoun, money
    ("She/PRP gave/VBD up/RP $/$ 1.5/CD million/CD", "B-NP B-VP B-PRT B-NP I-NP I-NP"),
    # modal + negation + auxiliaries; predicative ADJP; ADVP
    ("It/PRP could/MD n't/RB have/VB been/VBN very/RB good/JJ there/RB",
     "B-NP B-VP I-VP I-VP I-VP B-ADJP I-ADJP B-ADVP"),
    # relative WDT is an NP of its own; TO before a noun is PP
    ("shares/NNS that/WDT rose/VBD to/TO records/NNS", "B-NP B-NP B-VP B-PP B-NP"),
    # determiner + participle modifier; existential there
    ("There/EX is/VBZ the/DT proposed/VBN merger/NN", "B-NP B-VP B-NP I-NP I-NP"),
])
def test_hand_checked_sentences(tagged: str, expected: str) -> None:
    _, tags = split(tagged)
    assert chunk_tags(tags) == expected.split()


def test_empty_and_unknown_tags() -> None:
    assert chunk_tags([]) == []
    out = chunk_tags(["<weird>", "", "NN", "XYZ", "NN"])
    assert out == ["O", "O", "B-NP", "O", "B-NP"]


def test_output_is_always_valid_bio_on_random_tag_sequences() -> None:
    rng = random.Random(20210601)
    vocab = PTB_TAGS + ["nn", "<", ">", "NN|VBG", ""]
    for _ in range(3000):
        tags = [rng.choice(vocab) for _ in range(rng.randint(0, 40))]
        labels = chunk_tags(tags)
        assert len(labels) == len(tags)
        check_bio(labels)


def test_output_is_valid_bio_on_noun_heavy_sequences() -> None:
    """Sequences drawn from the chunk-relevant tags only, so long NPs/VPs/SBARs occur often."""
    rng = random.Random(7)
    vocab = "DT JJ NN NNS NNP POS CD $ IN TO VB VBD VBZ MD RB RP PRP , CC WDT".split()
    for _ in range(3000):
        tags = [rng.choice(vocab) for _ in range(rng.randint(1, 30))]
        check_bio(chunk_tags(tags))


def test_deterministic() -> None:
    rng = random.Random(3)
    seqs = [[rng.choice(PTB_TAGS) for _ in range(25)] for _ in range(200)]
    first = [chunk_tags(s) for s in seqs]
    second = [chunk_tags(s) for s in reversed(seqs)][::-1]
    assert first == second


def test_rules_table_is_documented() -> None:
    kinds = {k for k, _, _ in RULES}
    assert {"NP", "VP", "ADJP", "ADVP", "PRT"} <= kinds
    assert all(example for _, _, example in RULES)


def test_silver_chunk_corpus_keeps_words_and_marks_provenance() -> None:
    words1, tags1 = split("The/DT black/JJ cat/NN sat/VBD on/IN the/DT mat/NN ./.")
    words2, tags2 = split("He/PRP left/VBD ./.")
    pos = TaggedCorpus.from_lists("pos-wsj:train", [(words1, tags1), (words2, tags2)],
                                  {"source": "x", "format": "word/TAG lines", "labels": "gold Penn Treebank POS"})
    chunks = silver_chunk_corpus(pos)
    assert [s.words for s in chunks.sentences] == [s.words for s in pos.sentences]
    assert chunks.sentences[1].labels == ("B-NP", "B-VP", "O")
    assert chunks.provenance["labels"].startswith("SILVER")
    assert "not CoNLL-2000 gold" in chunks.provenance["labels"]
    assert chunks.provenance["chunker"] == CHUNKER_VERSION
    assert chunks.provenance["source"] == "x"
    assert pos.provenance["labels"] == "gold Penn Treebank POS"  # the input is untouched
    assert chunks.name == "pos-wsj:train:silver-chunks"
    assert silver_chunk_corpus(pos, name="chunk").name == "chunk"
