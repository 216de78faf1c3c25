"""Corpus readers on small hand-written fixtures in each real format, plus malformed input."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.data.brown import BROWN_TO_UNIVERSAL, coarse_tag, read_brown, strip_tag
from pipeline.data.ccgbank import read_ccgbank_auto
from pipeline.data.conll2000 import read_conll2000
from pipeline.data.conllu import read_conllu
from pipeline.data.pmb import read_pmb_semtags
from pipeline.data.ptb import read_ptb
from pipeline.data.types import TaggedCorpus
from pipeline.errors import CorpusFormatError, LingShiftError

FIX = Path(__file__).parent / "fixtures" / "corpora"
UNIVERSAL = {"NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", ".", "X"}

Reader = Callable[[Path], TaggedCorpus]
READERS: dict[str, tuple[Reader, str]] = {
    "brown": (lambda p: read_brown([p]), "brown_ca01"),
    "conll2000": (read_conll2000, "conll2000_train.txt"),
    "conllu": (read_conllu, "sample.conllu"),
    "ptb": (lambda p: read_ptb([p]), "wsj_0001.mrg"),
    "ccgbank": (lambda p: read_ccgbank_auto([p]), "wsj_0001.auto"),
    "pmb": (read_pmb_semtags, "pmb_semtags.tsv"),
}


def write(tmp_path: Path, text: str, name: str = "f.txt") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8"))
    return p


def pairs(corpus: TaggedCorpus) -> list[list[tuple[str, str]]]:
    return [list(zip(s.words, s.labels, strict=True)) for s in corpus.sentences]


def assert_error_at(err: pytest.ExceptionInfo[CorpusFormatError], path: Path, line: int) -> None:
    assert err.value.line == line
    assert f"{path}:{line}:" in str(err.value)


# --- every reader: BOM + CRLF + no final newline, empty files, provenance --------------------


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_bom_crlf_and_missing_final_newline_read_the_same(fmt: str, tmp_path: Path) -> None:
    reader, fixture = READERS[fmt]
    plain = reader(FIX / fixture)
    text = (FIX / fixture).read_text(encoding="utf-8").rstrip("\n")
    variant = tmp_path / fixture
    variant.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    assert pairs(reader(variant)) == pairs(plain)


@pytest.mark.parametrize("fmt", sorted(READERS))
@pytest.mark.parametrize("content", ["", "\n\n", "\ufeff\r\n"])
def test_empty_file_is_no_sentences(fmt: str, content: str, tmp_path: Path) -> None:
    reader, fixture = READERS[fmt]
    path = write(tmp_path, content, fixture)
    with pytest.raises(CorpusFormatError, match="no sentences") as err:
        reader(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_provenance_names_source_format_and_gold_labels(fmt: str) -> None:
    reader, fixture = READERS[fmt]
    prov = reader(FIX / fixture).provenance
    assert prov["source"] == str(FIX / fixture)
    assert prov["format"]
    assert prov["labels"].startswith("gold")


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_non_utf8_byte_names_the_line(fmt: str, tmp_path: Path) -> None:
    reader, fixture = READERS[fmt]
    lines = (FIX / fixture).read_bytes().split(b"\n")
    bad = next(i for i, line in enumerate(lines) if line.strip())  # first non-blank line
    lines[bad] = lines[bad] + b"\xff"
    path = tmp_path / fixture
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CorpusFormatError, match="not UTF-8") as err:
        reader(path)
    assert_error_at(err, path, bad + 1)


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(LingShiftError, match="cannot open"):
        read_conllu(tmp_path / "absent.conllu")


# --- Brown ------------------------------------------------------------------------------------


def test_brown_raw_tags() -> None:
    c = read_brown([FIX / "brown_ca01"], tagset="raw")
    assert len(c) == 3
    assert pairs(c)[1] == [("I'm", "ppss+bem"), ("sure", "jj"), ("it", "pps"), ("isn't", "bez*"),
                           ("1-1/2", "cd"), ("/", "in"), ("ad", "fw-nn"), ("hoc", "fw-nn"), (",", ","),
                           ("not", "*"), ("here", "rn"), (".", ".")]
    assert pairs(c)[2] == [("BRIEF", "jj-hl"), ("Quiz", "nn-hl"), ("?", ".-hl")]
    assert c.sentences[0].words[:5] == ("The", "Fulton", "County", "Grand", "Jury")
    assert c.sentences[0].labels[:5] == ("at", "np-tl", "nn-tl", "jj-tl", "nn-tl")
    assert c.sentences[0].words[10] == "Atlanta's" and c.sentences[0].labels[10] == "np$"


def test_brown_stripped_tags() -> None:
    c = read_brown([FIX / "brown_ca01"], tagset="stripped")
    assert c.sentences[0].labels[:5] == ("at", "np", "nn", "jj", "nn")
    assert c.sentences[1].labels == ("ppss+bem", "jj", "pps", "bez*", "cd", "in", "nn", "nn", ",", "*", "rn", ".")
    assert c.sentences[2].labels == ("jj", "nn", ".")


def test_brown_coarse_tags() -> None:
    c = read_brown([FIX / "brown_ca01"])  # coarse is the default
    assert c.sentences[0].labels == (
        "DET", "NOUN", "NOUN", "ADJ", "NOUN", "VERB", "NOUN", "DET", "NOUN", "ADP", "NOUN", "ADJ", "NOUN",
        "NOUN", "VERB", ".", "DET", "NOUN", ".", "ADP", "DET", "NOUN", "VERB", "NOUN", ".")
    assert c.sentences[1].labels == ("PRON", "ADJ", "PRON", "VERB", "NUM", "ADP", "X", "X", ".", "ADV", "ADV", ".")
    assert c.sentences[2].labels == ("ADJ", "NOUN", ".")
    assert set(c.labels()) <= UNIVERSAL


@pytest.mark.parametrize("tag, uni", [
    ("ppss+bem", "PRON"), ("*", "ADV"), ("*-hl", "ADV"), ("bez*", "VERB"), ("md*", "VERB"), ("fw-nn", "X"),
    ("fw-in+at-t", "X"), ("nn-tl-hl", "NOUN"), ("nns$-tl", "NOUN"), ("abn", "PRT"), ("abl", "PRT"),
    ("ap", "ADJ"), ("ap$", "PRT"), ("abx", "DET"), ("ex+bez", "DET"), ("cs", "ADP"), ("to+vb", "PRT"),
    ("od", "ADJ"), ("pn", "NOUN"), ("wdt", "DET"), ("wps+bez", "PRON"), ("ql", "ADV"), ("uh", "X"),
    ("nil", "X"), ("---hl", "."), ("(-hl", "."), ("``", "."), ("cd$", "NUM"), ("cc", "CONJ"),
])
def test_brown_coarse_mapping(tag: str, uni: str) -> None:
    assert coarse_tag(tag) == uni


def test_brown_mapping_targets_only_universal_tags() -> None:
    assert set(BROWN_TO_UNIVERSAL.values()) == UNIVERSAL
    assert coarse_tag("zzz") is None
    assert strip_tag("fw-nn-tl-nc") == "nn" and strip_tag("ppss+bem") == "ppss+bem"


def test_brown_unknown_tag_becomes_x_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, "\tA/at zork/qqq zork/qqq ./.\n")
    with caplog.at_level(logging.WARNING, logger="pipeline.data.brown"):
        c = read_brown([path])
    assert c.sentences[0].labels == ("DET", "X", "X", ".")
    assert c.provenance["unmapped_tokens"] == "2"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 tokens" in warnings[0].getMessage() and "qqq" in warnings[0].getMessage()


def test_brown_several_files_keep_order(tmp_path: Path) -> None:
    a = write(tmp_path, "\tOne/cd ./.\n", "ca01")
    b = write(tmp_path, "\tTwo/cd ./.\n", "ca02")
    c = read_brown([a, b], tagset="raw")
    assert [s.words[0] for s in c.sentences] == ["One", "Two"]
    assert "2 files" in c.provenance["source"]


@pytest.mark.parametrize("bad", ["word", "/nn", "word/"])
def test_brown_malformed_token_names_the_line(bad: str, tmp_path: Path) -> None:
    path = write(tmp_path, f"\n\n\tThe/at cat/nn\n\n\tA/at {bad} ./.\n")
    with pytest.raises(CorpusFormatError, match="not of the form word/tag") as err:
        read_brown([path])
    assert_error_at(err, path, 5)


def test_brown_empty_file_among_several_is_named(tmp_path: Path) -> None:
    good = write(tmp_path, "\tA/at ./.\n", "ca01")
    empty = write(tmp_path, "\n", "ca02")
    with pytest.raises(CorpusFormatError, match="no sentences") as err:
        read_brown([good, empty])
    assert str(empty) in str(err.value)


# --- CoNLL-2000 -------------------------------------------------------------------------------


def test_conll2000_chunk_and_pos_columns() -> None:
    chunks = read_conll2000(FIX / "conll2000_train.txt")
    assert len(chunks) == 2
    assert pairs(chunks)[1] == [("He", "B-NP"), ("reckons", "B-VP"), ("the", "B-NP"), ("current", "I-NP"),
                                ("account", "I-NP"), ("deficit", "I-NP"), ("will", "B-VP"), ("narrow", "I-VP"),
                                (".", "O")]
    assert chunks.sentences[0].labels[4:9] == ("B-VP", "I-VP", "I-VP", "I-VP", "I-VP")
    pos = read_conll2000(FIX / "conll2000_train.txt", column="pos")
    assert pos.sentences[0].words == chunks.sentences[0].words
    assert pos.sentences[1].labels == ("PRP", "VBZ", "DT", "JJ", "NN", "NN", "MD", "VB", ".")


@pytest.mark.parametrize("line", ["pound NN", "pound NN I-NP extra", "pound"])
def test_conll2000_wrong_column_count(line: str, tmp_path: Path) -> None:
    path = write(tmp_path, f"the DT B-NP\n{line}\n\nHe PRP B-NP\n")
    with pytest.raises(CorpusFormatError, match="expected 3 columns") as err:
        read_conll2000(path)
    assert_error_at(err, path, 2)


def test_conll2000_bad_chunk_label(tmp_path: Path) -> None:
    path = write(tmp_path, "the DT B-NP\n\npound NN NP\n")
    with pytest.raises(CorpusFormatError, match="not O, B-X or I-X") as err:
        read_conll2000(path)
    assert_error_at(err, path, 3)


# --- CoNLL-U ----------------------------------------------------------------------------------


def test_conllu_xpos_skips_multiword_tokens_and_empty_nodes() -> None:
    c = read_conllu(FIX / "sample.conllu")
    assert pairs(c) == [
        [("I", "PRP"), ("do", "VBP"), ("n't", "RB"), ("like", "VB"), ("it", "PRP"), (".", ".")],
        [("Sue", "NNP"), ("likes", "VBZ"), ("coffee", "NN"), ("and", "CC"), ("Bill", "NNP"), ("tea", "NN")],
    ]


def test_conllu_upos() -> None:
    c = read_conllu(FIX / "sample.conllu", column="upos")
    assert c.sentences[0].labels == ("PRON", "AUX", "PART", "VERB", "PRON", "PUNCT")
    assert c.provenance["labels"] == "gold UPOS tags"


def _conllu_line(i: int, form: str, upos: str = "NOUN", xpos: str = "NN") -> str:
    return "\t".join([str(i), form, form, upos, xpos, "_", "0", "root", "_", "_"])


def test_conllu_missing_xpos_says_which_column(tmp_path: Path) -> None:
    path = write(tmp_path, "# sent_id = 1\n" + _conllu_line(1, "cats") + "\n" + _conllu_line(2, "sleep", "VERB", "_")
                 + "\n\n")
    with pytest.raises(CorpusFormatError, match="XPOS column") as err:
        read_conllu(path)
    assert_error_at(err, path, 3)
    assert "upos" in str(err.value)  # the hint names the other column
    assert read_conllu(path, column="upos").sentences[0].labels == ("NOUN", "VERB")


def test_conllu_wrong_column_count(tmp_path: Path) -> None:
    path = write(tmp_path, _conllu_line(1, "cats") + "\n2 sleep sleep VERB VBP _ 1 dep _ _\n")
    with pytest.raises(CorpusFormatError, match="expected 10 TAB-separated columns, found 1") as err:
        read_conllu(path)
    assert_error_at(err, path, 2)


def test_conllu_ids_out_of_order(tmp_path: Path) -> None:
    path = write(tmp_path, _conllu_line(1, "cats") + "\n" + _conllu_line(2, "sleep") + "\n" + _conllu_line(1, "Dogs")
                 + "\n")
    with pytest.raises(CorpusFormatError, match="token ID 1 where 3 was expected") as err:
        read_conllu(path)
    assert_error_at(err, path, 3)


def test_conllu_non_numeric_id(tmp_path: Path) -> None:
    path = write(tmp_path, _conllu_line(1, "cats").replace("1", "x", 1) + "\n")
    with pytest.raises(CorpusFormatError, match="not a number") as err:
        read_conllu(path)
    assert_error_at(err, path, 1)


# --- Penn Treebank ----------------------------------------------------------------------------


def test_ptb_leaves_without_traces() -> None:
    c = read_ptb([FIX / "wsj_0001.mrg"])
    assert len(c) == 3
    assert c.sentences[0].words == ("Pierre", "Vinken", ",", "61", "years", "old", ",", "will", "join", "the",
                                    "board", "as", "a", "nonexecutive", "director", "Nov.", "29", ".")
    assert c.sentences[0].labels == ("NNP", "NNP", ",", "CD", "NNS", "JJ", ",", "MD", "VB", "DT", "NN", "IN", "DT",
                                     "JJ", "NN", "NNP", "CD", ".")
    assert pairs(c)[1] == [("Mr.", "NNP"), ("Vinken", "NNP"), ("is", "VBZ"), ("expected", "VBN"), ("to", "TO"),
                           ("resign", "VB"), (".", ".")]
    assert pairs(c)[2] == [("It", "PRP"), ("rose", "VBD"), ("-LRB-", "-LRB-"), ("5", "CD"), ("%", "NN"),
                           ("-RRB-", "-RRB-"), (".", ".")]


def test_ptb_unwrapped_trees_and_several_files(tmp_path: Path) -> None:
    a = write(tmp_path, "(S (NP (DT The) (NN cat)) (VP (VBD sat)))\n(S (NP (PRP It)) (VP (VBD ran)))", "a.mrg")
    b = write(tmp_path, "*x* header line\n( (FRAG (UH Hi) ) )\n", "b.mrg")
    c = read_ptb([a, b])
    assert [s.words for s in c.sentences] == [("The", "cat", "sat"), ("It", "ran"), ("Hi",)]


def test_ptb_tree_of_only_empty_elements_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "( (S (-NONE- *T*-1) ) )\n( (S (NP (NN Dogs)) (VP (VBP bark))) )\n")
    assert read_ptb([path]).sentences[0].words == ("Dogs", "bark")


def test_ptb_unclosed_tree_names_its_first_line(tmp_path: Path) -> None:
    path = write(tmp_path, "( (S (NP (NN Dogs)) (VP (VBP bark))) )\n\n( (S\n  (NP (NN Cats))\n  (VP (VBP purr))\n")
    with pytest.raises(CorpusFormatError, match="unbalanced parentheses") as err:
        read_ptb([path])
    assert_error_at(err, path, 3)


def test_ptb_extra_closing_bracket(tmp_path: Path) -> None:
    path = write(tmp_path, "( (S (NP (NN Dogs)) (VP (VBP bark))) )\n( (S (NP (NN Cats)) (VP (VBP purr))) ))\n")
    with pytest.raises(CorpusFormatError, match="unbalanced parentheses") as err:
        read_ptb([path])
    assert_error_at(err, path, 2)


@pytest.mark.parametrize("text, line, msg", [
    ("( (S\n (NP (NN Dogs) bark)) )\n", 2, "malformed leaf"),
    ("( (S (NP (NN Dogs cats))) )\n", 1, "malformed leaf"),
    ("( (S (NP )) )\n", 1, "empty constituent"),
    ("( (S (NN Dogs)) )\nstray words\n", 2, "outside any tree"),
])
def test_ptb_malformed_trees(text: str, line: int, msg: str, tmp_path: Path) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CorpusFormatError, match=re.escape(msg)) as err:
        read_ptb([path])
    assert_error_at(err, path, line)


# --- CCGbank AUTO -----------------------------------------------------------------------------


def test_ccgbank_supertags_and_pos() -> None:
    c = read_ccgbank_auto([FIX / "wsj_0001.auto"])
    assert len(c) == 2
    assert pairs(c)[0] == [("Pierre", "N/N"), ("Vinken", "N"), (",", ","), ("61", "N/N"), ("years", "N"),
                           ("old", "(S[adj]\\NP)\\NP"), ("will", "(S[dcl]\\NP)/(S[b]\\NP)"),
                           ("join", "(S[b]\\NP)/NP"), ("the", "NP[nb]/N"), ("board", "N"), (".", ".")]
    pos = read_ccgbank_auto([FIX / "wsj_0001.auto"], label="pos")
    assert pos.sentences[1].labels == ("NNP", "NNP", "VBZ", "NN", ".")
    assert pos.sentences[1].words == ("Mr.", "Vinken", "is", "chairman", ".")


_LEAF_TREE = "(<T S[dcl] 0 2> (<L NP NNP NNP John NP>) (<L S[dcl]\\NP VBZ VBZ sleeps S[dcl]\\NP_1>) )"


@pytest.mark.parametrize("text, line, msg", [
    (f"{_LEAF_TREE}\n", 1, "without an 'ID=...' line"),
    (f"ID=a.1 PARSER=GOLD NUMPARSE=1\nID=a.2 PARSER=GOLD NUMPARSE=1\n{_LEAF_TREE}\n", 1, "no tree line"),
    (f"ID=a.1 PARSER=GOLD NUMPARSE=1\n{_LEAF_TREE}\nID=a.2 PARSER=GOLD NUMPARSE=1\n", 3, "no tree line"),
    ("ID=a.1\n(<T S[dcl] 0 2> (<L NP NNP NNP John>) )\n", 2, "is not '(<L supertag"),
    ("ID=a.1\n(<T S[dcl] 0 2> (<L NP NNP NNP John NP>)\n", 2, "unbalanced parentheses"),
    (f"ID=a.1\n{_LEAF_TREE} )\n", 2, "unbalanced parentheses"),
    ("ID=a.1\n(<T S[dcl] 0 2 (<L NP NNP NNP John NP>) )\n", 2, "internal node"),
    ("ID=a.1\nJohn sleeps\n", 2, "expected an 'ID=...' line or a tree"),
])
def test_ccgbank_malformed(text: str, line: int, msg: str, tmp_path: Path) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CorpusFormatError, match=re.escape(msg)) as err:
        read_ccgbank_auto([path])
    assert_error_at(err, path, line)


# --- PMB semantic tags ------------------------------------------------------------------------


def test_pmb_default_layout() -> None:
    c = read_pmb_semtags(FIX / "pmb_semtags.tsv")
    assert pairs(c) == [[("I", "PRO"), ("am", "NOW"), ("not", "NOT"), ("happy", "IST"), (".", "NIL")],
                        [("A", "DIS"), ("cat", "CON"), ("is", "ENS"), ("asleep", "IST"), (".", "NIL")]]


def test_pmb_other_columns_and_comments(tmp_path: Path) -> None:
    path = write(tmp_path, "# sent_id = 1\n1\tI\ti\tPRO\n2\tslept\tsleep\tPST\n\n# sent_id = 2\n1\t#\t#\tNIL\n")
    c = read_pmb_semtags(path, tag_col=3, word_col=1)
    assert pairs(c) == [[("I", "PRO"), ("slept", "PST")], [("#", "NIL")]]


def test_pmb_too_few_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "PRO\tI\nNOW am\n")
    with pytest.raises(CorpusFormatError, match="expected at least 2 TAB-separated columns") as err:
        read_pmb_semtags(path)
    assert_error_at(err, path, 2)


def test_pmb_empty_tag(tmp_path: Path) -> None:
    path = write(tmp_path, "PRO\tI\n\n\tam\n")
    with pytest.raises(CorpusFormatError, match="empty semantic tag") as err:
        read_pmb_semtags(path)
    assert_error_at(err, path, 3)


def test_brown_document_split_holds_out_whole_documents_across_genres() -> None:
    """Dev and test are every 50th Brown file (10 each), train the other 480 in genre-interleaved order, so the
    first training tokens come from every genre letter; no file is in two splits."""
    from pipeline.data.corpora import brown_document_split

    genres = {"a": 44, "b": 27, "c": 17, "d": 17, "e": 36, "f": 48, "g": 75, "h": 30, "j": 80, "k": 29, "l": 24,
              "m": 6, "n": 29, "p": 29, "r": 9}
    files = [Path(f"c{g}{i:02d}") for g, n in genres.items() for i in range(1, n + 1)]
    assert len(files) == 500
    split = brown_document_split(list(reversed(files)))  # order given does not matter
    assert [len(split[s]) for s in ("train", "dev", "test")] == [480, 10, 10]
    assert len({f.name for fs in split.values() for f in fs}) == 500
    assert split["dev"][0].name == "ca25" and split["test"][0].name == "cb06"
    assert {f.name[1] for f in split["train"][:50]} >= set("abcdefghjklmnp")
