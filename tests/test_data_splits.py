"""word/TAG reader, deterministic splits, the one split-fraction check, token caps, the split file format."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.config import PrepareParams
from pipeline.data.splits import (
    cap_tokens,
    check_split_fractions,
    contiguous_split,
    read_split,
    seeded_split,
    write_split,
)
from pipeline.data.types import TaggedCorpus
from pipeline.data.wordtag import parse_word_tag, read_word_tag
from pipeline.errors import ConfigError, CorpusFormatError

WSJ_LIKE = ("Pierre/NNP Vinken/NNP ,/, 61/CD years/NNS old/JJ ./.\n1/2/CD of/IN AT&T/NNP\n"
            "Mr./NNP Vinken/NNP is/VBZ chairman/NN ./.")


def test_word_tag_splits_on_the_last_slash_and_needs_no_final_newline(tmp_path: Path) -> None:
    f = tmp_path / "wsj.txt"
    f.write_text(WSJ_LIKE, encoding="utf-8")
    c = read_word_tag(f)
    assert len(c) == 3 and c.n_tokens == 15
    assert c.sentences[1].words == ("1/2", "of", "AT&T")
    assert c.sentences[1].labels == ("CD", "IN", "NNP")
    assert c.labels() == sorted(c.labels())


def test_word_tag_tolerates_bom_and_crlf(tmp_path: Path) -> None:
    f = tmp_path / "wsj.txt"
    f.write_bytes(("\ufeff" + WSJ_LIKE.replace("\n", "\r\n") + "\r\n").encode("utf-8"))
    assert read_word_tag(f).sentences == parse_word_tag(WSJ_LIKE, "x").sentences


@pytest.mark.parametrize("bad, line", [("a/DT dog\n", 1), ("a/DT\nb/\n", 2), ("ok/NN\n\n/NN\n", 3)])
def test_word_tag_malformed_names_file_and_line(tmp_path: Path, bad: str, line: int) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(bad, encoding="utf-8")
    with pytest.raises(CorpusFormatError) as err:
        read_word_tag(f)
    assert err.value.line == line and f"{f}:{line}:" in str(err.value)


def test_word_tag_rejects_empty_and_non_utf8(tmp_path: Path) -> None:
    (tmp_path / "e.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match="no sentences"):
        read_word_tag(tmp_path / "e.txt")
    (tmp_path / "b.txt").write_bytes(b"caf\xe9/NN\n")
    with pytest.raises(CorpusFormatError, match="not UTF-8"):
        read_word_tag(tmp_path / "b.txt")


def _corpus(n: int, length: int = 3) -> TaggedCorpus:
    return TaggedCorpus.from_lists("toy", [([f"w{i}_{j}" for j in range(length)], ["X"] * length) for i in range(n)])


def test_contiguous_split_is_ordered_disjoint_and_complete() -> None:
    c = _corpus(101)
    parts = contiguous_split(c, (0.8, 0.1, 0.1))
    assert [len(parts[s]) for s in ("train", "dev", "test")] == [81, 10, 10]
    joined = parts["train"].sentences + parts["dev"].sentences + parts["test"].sentences
    assert joined == c.sentences
    assert contiguous_split(c, (0.8, 0.1, 0.1))["dev"].sentences == parts["dev"].sentences


BAD_FRACTIONS = [(0.5, 0.5), (0.8, 0.3, 0.1), (1.0, 0.0, 0.0), (0.9, 0.2, -0.1)]


@pytest.mark.parametrize("fracs", BAD_FRACTIONS)
def test_split_fractions_are_validated(fracs: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError, match="fractions"):
        contiguous_split(_corpus(10), fracs)


@pytest.mark.parametrize("fracs", BAD_FRACTIONS)
def test_one_split_fraction_check_everywhere(fracs: tuple[float, ...]) -> None:
    """Both splitters and params.yaml's prepare.split_fractions reject the same values with the same sentence."""
    want = f"split fractions {list(fracs)} must be three positive numbers summing to 1"
    with pytest.raises(ConfigError) as direct:
        check_split_fractions(fracs)
    with pytest.raises(ConfigError) as contiguous:
        contiguous_split(_corpus(10), fracs)
    with pytest.raises(ConfigError) as seeded:
        seeded_split(["a", "b", "c"], ["x", "y", "x"], seed=0, fractions=fracs)
    assert str(direct.value) == str(contiguous.value) == str(seeded.value) == want
    if len(fracs) == 3:  # a shorter list is already refused by the field's type
        with pytest.raises(ValidationError) as err:
            PrepareParams(split_fractions=fracs)
        assert want in str(err.value)


def test_good_split_fractions_pass_unchanged() -> None:
    assert check_split_fractions([0.7, 0.2, 0.1]) == (0.7, 0.2, 0.1)
    assert PrepareParams(split_fractions=(0.6, 0.2, 0.2)).split_fractions == (0.6, 0.2, 0.2)


def test_tiny_corpus_still_gets_three_nonempty_splits() -> None:
    parts = contiguous_split(_corpus(3))
    assert [len(parts[s]) for s in ("train", "dev", "test")] == [1, 1, 1]


def test_cap_keeps_whole_sentences_up_to_the_cap() -> None:
    c = _corpus(10, length=4)
    assert cap_tokens(c, 10).n_tokens == 8
    assert cap_tokens(c, None) is c and cap_tokens(c, 1000) is c


def test_split_file_round_trip(tmp_path: Path) -> None:
    c = parse_word_tag(WSJ_LIKE, "x")
    write_split(c, tmp_path / "train.tsv")
    assert read_split(tmp_path / "train.tsv").sentences == c.sentences
    text = (tmp_path / "train.tsv").read_text(encoding="utf-8")
    assert text.startswith("Pierre\tNNP\n") and "\n\n" in text


def test_split_file_malformed_and_missing(tmp_path: Path) -> None:
    (tmp_path / "x.tsv").write_text("a\tDT\nb DT\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"x.tsv:2:"):
        read_split(tmp_path / "x.tsv")
    with pytest.raises(CorpusFormatError, match="prepare stage"):
        read_split(tmp_path / "missing.tsv")


def test_words_with_tabs_cannot_be_written(tmp_path: Path) -> None:
    c = TaggedCorpus.from_lists("t", [(["a\tb"], ["X"])])
    with pytest.raises(CorpusFormatError, match="TSV"):
        write_split(c, tmp_path / "t.tsv")
    assert not (tmp_path / "t.tsv").exists()
