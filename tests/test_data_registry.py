"""The one task registry: probing and sentence tasks by name, one loader context, clear errors for
unknown names and for licensed corpora the user has not supplied."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline.data import (
    PROBE_TASKS,
    SENTENCE_TASKS,
    LoadContext,
    get_probe_task,
    get_sentence_task,
    load_probe_splits,
    load_sentence_task,
)
from pipeline.data.members import WSJ_MEMBER
from pipeline.errors import ConfigError, ResourceError

FIX = Path(__file__).parent / "fixtures"
WSJ_LINES = "The/DT cat/NN sat/VBD ./.\n" * 20


def fixture_reader(resource: str, chain: Sequence[str]) -> bytes:
    """Stands in for the pinned packages: a tiny WSJ sample, and the sentence-task fixtures by file name."""
    if chain[-1] == WSJ_MEMBER:
        return WSJ_LINES.encode("utf-8")
    return (FIX / "tasks" / Path(chain[-1]).name).read_bytes()


CTX = LoadContext(read_member=fixture_reader, fractions=(0.6, 0.2, 0.2))


def test_both_kinds_are_registered_under_distinct_names() -> None:
    assert {"pos-wsj", "chunk-wsj", "pos-ptb", "ccg-ccgbank"} <= set(PROBE_TASKS)
    assert {"sentiment", "hedge", "sst2", "stsb"} <= set(SENTENCE_TASKS)
    assert not set(PROBE_TASKS) & set(SENTENCE_TASKS)
    assert get_probe_task("chunk-wsj").labels == "silver" and get_sentence_task("hedge").profile == "offline"


@pytest.mark.parametrize("lookup, name, what, offline, paper", [
    (get_probe_task, "pos-klingon", "probing task", "pos-wsj, chunk-wsj, pos-brown (offline)", "ccg-ccgbank"),
    (get_sentence_task, "cola", "sentence task", "sentiment, hedge (offline)", "stsb (paper)"),
])
def test_unknown_names_list_the_valid_ones_by_profile(lookup, name: str, what: str, offline: str,  # noqa: ANN001
                                                      paper: str) -> None:
    with pytest.raises(ConfigError) as err:
        lookup(name)
    msg = str(err.value)
    assert msg.startswith(f"unknown {what} {name!r}; valid names: ") and offline in msg and paper in msg


def test_a_probing_task_from_a_sentence_task_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown probing task 'sentiment'"):
        load_probe_splits("sentiment", CTX)
    with pytest.raises(ConfigError, match="unknown sentence task 'pos-wsj'"):
        load_sentence_task("pos-wsj", CTX)


def test_one_context_loads_both_kinds() -> None:
    splits = load_probe_splits("chunk-wsj", CTX)
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [12, 4, 4]  # CTX's 60/20/20
    assert splits["train"].provenance["task"] == "chunk-wsj"
    assert splits["train"].provenance["label_quality"] == "silver"
    assert splits["train"].sentences[0].labels == ("B-NP", "I-NP", "B-VP", "O")
    hedge = load_sentence_task("hedge", CTX)
    assert sum(hedge.counts().values()) == 40 and hedge.provenance["split_seed"] == str(CTX.seed)


@pytest.mark.parametrize("task, needle", [
    ("pos-ptb", "pos-ewt"), ("ccg-ccgbank", "LDC2005T13"), ("sem-pmb", "pmb-semtags"),
    ("chunk-conll2000", "chunk-wsj"), ("pos-ewt", "ud-ewt"),
])
def test_paper_corpora_missing_say_where_to_put_them(tmp_path: Path, task: str, needle: str) -> None:
    with pytest.raises(ResourceError, match="not found at") as err:
        load_probe_splits(task, LoadContext(cache=None, corpora_dir=tmp_path))
    assert needle in str(err.value) and str(tmp_path) in str(err.value)


def test_paper_ptb_reads_the_standard_sections(tmp_path: Path) -> None:
    tree = "( (S (NP-SBJ (NNP Pierre) (NNP Vinken)) (VP (VBD left) (-NONE- *T*-1)) (. .)) )\n"
    for sec in (2, 21, 22, 23, 24):
        d = tmp_path / "ptb" / "wsj" / f"{sec:02d}"
        d.mkdir(parents=True)
        (d / f"wsj_{sec:02d}01.mrg").write_text(tree)
    splits = load_probe_splits("pos-ptb", LoadContext(cache=None, corpora_dir=tmp_path))
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [2, 1, 1]
    assert splits["test"].sentences[0].labels == ("NNP", "NNP", "VBD", ".")
