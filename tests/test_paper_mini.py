"""The paper-mini rehearsal: the stand-in builder (scripts/make-paper-mini.py) writes hub-cache and datasets-cache
layouts that the project's own hub and ``datasets`` calls resolve offline at the pinned revision (and a wrong
revision fails with the project's error); corpora in the real formats; the profile overlay of the paper profile."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import models
from pipeline.analysis.claims import proxy_reason
from pipeline.config import load_profile
from pipeline.data.glue import GLUE_REVISION
from pipeline.data.registry import load_probe_splits, load_sentence_task
from pipeline.data.spec import LoadContext
from pipeline.errors import ConfigError, ModelError, ResourceError
from pipeline.profiles import resolved_text

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_paper_mini", ROOT / "scripts" / "make-paper-mini.py")
assert _spec is not None and _spec.loader is not None
mini = importlib.util.module_from_spec(_spec)
sys.modules["make_paper_mini"] = mini  # dataclasses look their module up there
_spec.loader.exec_module(mini)


# ---------------------------------------------------------------------------------------- hub models


def _model_files(folder: Path) -> Path:
    """The files a model directory needs (content is irrelevant to the resolution tested here)."""
    folder.mkdir(parents=True)
    for name, data in (("config.json", b'{"model_type": "bert"}'), ("model.safetensors", b"weights"),
                       ("tokenizer.json", b"{}"), ("tokenizer_config.json", b"{}")):
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache that the client uses, offline."""
    import huggingface_hub.constants as hub_constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    return cache


def test_hub_cache_layout_resolves_at_the_pinned_revision(tmp_path: Path, offline_hub: Path) -> None:
    spec = models.get_model("bert-base-cased")
    files = _model_files(tmp_path / "files")
    snap = mini.place_in_hub_cache(files, offline_hub, spec.hub_id, spec.revision)
    assert snap.name == mini.commit_of(spec.hub_id, spec.revision)
    repo = offline_hub / "models--bert-base-cased"
    assert (repo / "refs" / "main").read_text() == snap.name
    assert all((snap / f).is_symlink() and (snap / f).resolve().parent == repo / "blobs" for f in os.listdir(snap))
    dest = models.materialise("bert-base-cased", tmp_path / "models" / "base")
    assert set(os.listdir(files)) <= set(os.listdir(dest))
    assert (dest / "model.safetensors").read_bytes() == b"weights"
    source = models.read_source(dest)
    assert source is not None and source["revision"] == spec.revision


def test_a_revision_missing_from_the_cache_gives_the_projects_error(tmp_path: Path, offline_hub: Path) -> None:
    spec = models.get_model("roberta-base")
    mini.place_in_hub_cache(_model_files(tmp_path / "files"), offline_hub, spec.hub_id, "f" * 40)
    (offline_hub / "models--roberta-base" / "refs" / "main").unlink()  # only some other commit is cached
    with pytest.raises(ModelError, match=f"cannot download roberta-base at revision {spec.revision}"):
        models.materialise("roberta-base", tmp_path / "models" / "base")
    assert not (tmp_path / "models" / "base").exists()


# ---------------------------------------------------------------------------------------- GLUE


@pytest.fixture
def glue_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The six GLUE stand-ins in a datasets cache that ``datasets`` uses, offline."""
    import random

    import datasets
    import huggingface_hub.constants as hub_constants

    cache = tmp_path / "datasets"
    mini.write_glue(cache, random.Random(0))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    return cache


def test_glue_stand_ins_load_through_the_projects_datasets_path(glue_cache: Path) -> None:
    rte = load_sentence_task("rte")
    assert set(rte.splits) == {"train", "dev", "test"}
    assert rte.splits["train"].text_b is not None and len(rte.splits["test"]) == mini.GLUE_SIZES["validation"]
    assert f"nyu-mll/glue@{GLUE_REVISION}" in rte.provenance["source"]
    mnli = load_sentence_task("mnli")
    assert set(mnli.splits) == {"train", "dev", "test_matched", "test_mismatched"}
    stsb = load_sentence_task("stsb")
    assert all(isinstance(x, float) and 0 <= x <= 5 for x in stsb.splits["train"].labels)
    sst2 = load_sentence_task("sst2")
    assert sst2.splits["train"].text_b is None and set(sst2.splits["train"].labels) == {"negative", "positive"}


def test_glue_test_splits_hide_their_labels(glue_cache: Path) -> None:
    import datasets

    raw = datasets.load_dataset("nyu-mll/glue", "qnli", revision=GLUE_REVISION)
    assert set(raw["test"]["label"]) == {-1} and -1 not in set(raw["validation"]["label"])
    assert raw["train"].features["label"].names == ["entailment", "not_entailment"]


def test_glue_cached_at_another_revision_is_refused(glue_cache: Path) -> None:
    other = "0" * 40
    for config in ("rte",):
        base = glue_cache / "nyu-mll___glue" / config / "0.0.0"
        (base / GLUE_REVISION).rename(base / other)
    with pytest.raises(ResourceError, match=f"pins revision {GLUE_REVISION}"):
        load_sentence_task("rte")


# ---------------------------------------------------------------------------------------- corpora


def test_corpora_stand_ins_read_with_the_paper_readers(tmp_path: Path) -> None:
    import random

    mini.write_corpora(tmp_path, random.Random(0))
    ctx = LoadContext(corpora_dir=tmp_path)
    for task in ("pos-ptb", "sem-pmb", "chunk-conll2000", "ccg-ccgbank"):
        splits = load_probe_splits(task, ctx)
        assert set(splits) == {"train", "dev", "test"}
        assert len(splits["train"]) > 4 * len(splits["test"]) > 0
    ptb = load_probe_splits("pos-ptb", ctx)["train"]
    assert "-NONE-" not in {t for s in ptb.sentences for t in s.labels}
    assert not any(w.startswith("*T*") for s in ptb.sentences for w in s.words)


def test_the_builder_is_deterministic(tmp_path: Path) -> None:
    import random

    for out in ("a", "b"):
        mini.write_corpora(tmp_path / out, random.Random(7))
    a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert a and all((tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes() for p in a)


# ---------------------------------------------------------------------------------------- the profile


def test_paper_mini_is_the_paper_profile_with_a_cheap_recipe() -> None:
    paper, mini_ = load_profile("paper", ROOT), load_profile("paper-mini", ROOT)
    same = ("models", "probe_tasks", "sentence_tasks", "variants")
    assert {k: getattr(mini_, k) for k in same} == {k: getattr(paper, k) for k in same}
    assert mini_.profile == "paper-mini" and mini_.finetune.seeds == [42]
    assert mini_.finetune.max_train_examples is not None and paper.finetune.max_train_examples is None
    assert mini_.finetune.lr != paper.finetune.lr and mini_.finetune.eval_strategy == "no"


def test_an_overlay_of_an_overlay_and_a_cycle(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    (tmp_path / "profiles" / "tiny.yaml").write_text(yaml.safe_dump(
        {"extends": "paper-mini", "profile": "tiny", "finetune": {"epochs": 0.5}}))
    tiny = load_profile("tiny", tmp_path)
    assert tiny.finetune.epochs == 0.5 and tiny.finetune.seeds == [42] and tiny.models == load_profile(
        "paper", tmp_path).models
    assert "profile: tiny" in resolved_text(tmp_path, "tiny")
    (tmp_path / "profiles" / "a.yaml").write_text("extends: b\nprofile: a\n")
    (tmp_path / "profiles" / "b.yaml").write_text("extends: a\nprofile: b\n")
    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):
        load_profile("a", tmp_path)
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        (tmp_path / "profiles" / "c.yaml").write_text("extends: nope\nprofile: c\n")
        load_profile("c", tmp_path)


def test_offline_params_yaml_is_unchanged_by_the_overlay_machinery() -> None:
    assert resolved_text(ROOT, "offline") == (ROOT / "params.yaml").read_text(encoding="utf-8")


def test_rehearsal_verdicts_are_labelled_not_findings() -> None:
    paper = load_profile("paper", ROOT)
    why = proxy_reason("paper-mini", paper.models, paper.models, paper.sentence_tasks, paper.sentence_tasks, 0)
    assert why is not None and why.startswith("REHEARSAL") and "no verdict here is a finding" in why
    assert proxy_reason("paper", paper.models, paper.models, paper.sentence_tasks, paper.sentence_tasks, 0) is None


# ---------------------------------------------------------------------------------------- the real models


@pytest.mark.slow
def test_tiny_models_load_with_fast_tokenizers_that_align_words(tmp_path: Path, offline_hub: Path) -> None:
    texts = [mini.text(mini.sentence(__import__("random").Random(i))) for i in range(300)]
    snaps = mini.write_models(offline_hub, texts, seed=0)
    assert set(snaps) == set(mini.PAPER_MODELS)
    for name in mini.PAPER_MODELS:
        dest = models.materialise(name, tmp_path / name / "base")
        tokenizer, model = models.load(dest)
        enc = tokenizer([["The", "dog", "sees", "Mary", "."]], is_split_into_words=True, return_tensors="pt")
        assert {w for w in enc.word_ids() if w is not None} == {0, 1, 2, 3, 4}
        out = model(**enc)
        assert len(out.hidden_states) == 4 and out.hidden_states[-1].shape[-1] == 32
