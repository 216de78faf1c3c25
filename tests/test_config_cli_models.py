"""params.yaml validation, the CLI's error handling, the model registry's failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import models
from pipeline.cli import main
from pipeline.config import FinetuneParams, Params, load_params, load_profile
from pipeline.errors import ConfigError, ModelError

ROOT = Path(__file__).resolve().parents[1]


def test_committed_params_are_valid_and_offline() -> None:
    params, root = load_params(ROOT / "params.yaml")
    assert root == ROOT and params.profile == "offline"
    assert params.models == ["minilm"] and "pos-wsj" in params.probe_tasks
    assert params.extract.aggregation == "last"


@pytest.mark.parametrize("text, where", [
    ("extract: {aggregation: median}\n", "extract.aggregation"),
    ("extract: {batch_size: 0}\n", "extract.batch_size"),
    ("prepare: {split_fractions: [0.5, 0.5, 0.5]}\n", "prepare.split_fractions"),
    ("surprise: 1\n", "surprise"),
    ("- a list\n", "mapping"),
    ("a: [unclosed\n", "not valid YAML"),
])
def test_bad_params_name_the_field(tmp_path: Path, text: str, where: str) -> None:
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match=where.split(":")[0]) as err:
        load_params(tmp_path / "params.yaml")
    assert where.split(",")[0] in str(err.value)


def test_defaults_are_the_offline_profile() -> None:
    assert Params().profile == "offline" and Params().prepare.max_train_tokens == 150_000


def test_unknown_key_is_named_with_the_valid_ones(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("finetune: {epoch: 3}\n")
    with pytest.raises(ConfigError, match=r"finetune\.epoch: unknown key; valid keys here: epochs, lr, batch_size"):
        load_params(tmp_path / "params.yaml")


def test_finetune_defaults_are_the_offline_recipe_and_validate() -> None:
    p = FinetuneParams()
    assert (p.epochs, p.lr, p.batch_size, p.max_length, p.seeds) == (1, 1e-4, 16, 64, [42, 43, 44])
    assert (p.max_train_examples, p.group_by_length, p.eval_strategy, p.eval_steps) == (2000, True, "steps", 0.25)
    assert Params().finetune == p and isinstance(p.epochs, float)
    paper = load_profile("paper", ROOT).finetune
    assert (paper.epochs, paper.lr, paper.batch_size, paper.max_length, paper.seeds) == (3, 5e-5, 8, 128, [42, 43, 44])
    assert FinetuneParams.from_mapping({"seeds": [3]}).seeds == [3]
    for raw, where in [({"epochs": 0}, "finetune.epochs"), ({"surprise": 1}, "finetune.surprise"),
                       ({"eval_strategy": "steps", "eval_steps": None}, "needs eval_steps"),
                       ({"eval_strategy": "no", "keep_best": True}, "need dev evaluation"),
                       ({"mixed_precision": "fp8"}, "finetune.mixed_precision"),
                       ({"seeds": []}, "finetune.seeds"), ({"seeds": [1, 1]}, "must be distinct"),
                       ({"seed": 42}, "finetune.seed: unknown key"),
                       ({"eval_strategy": "no", "early_stopping_patience": 2}, "need dev evaluation")]:
        with pytest.raises(ConfigError, match=where):
            FinetuneParams.from_mapping(raw)
    parsed = FinetuneParams.from_mapping(yaml.safe_load("eval_strategy: no\nmixed_precision: no\n"))
    assert parsed.eval_strategy == "no" and parsed.mixed_precision == "no"
    with pytest.raises(ConfigError, match="unknown profile 'fast'; available: offline, offline-full, paper"):
        load_profile("fast", ROOT)


def test_config_imports_no_training_code() -> None:
    """config.py is plumbing outside every stage's deps: importing it, and validating the paper profile (which
    reads the model and task registries), must not reach fine-tuning, probing or torch."""
    code = ("import sys; import pipeline.config as c;"
            " before = sorted(m for m in sys.modules if m.startswith('pipeline'));"
            " c.load_profile('paper', '.'); print(before);"
            " print(sorted(m for m in sys.modules if m in ('pipeline.finetune', 'pipeline.probing', 'torch')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert proc.stdout.splitlines() == ["['pipeline', 'pipeline.config', 'pipeline.errors', 'pipeline.variants']",
                                        "[]"]


def test_cli_reports_user_errors_in_one_line_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("models: [gpt-7]\n")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--params", str(tmp_path / "params.yaml"), "prepare"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "unknown model" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_unknown_task_lists_valid_names(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "params.yaml").write_text("{}\n")
    assert main(["--params", str(tmp_path / "params.yaml"), "prepare", "--task", "pos-klingon"]) == 2
    assert "valid names: pos-wsj" in caplog.text


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ModelError, match="valid names: minilm, mpnet, bert-base-cased"):
        models.get_model("gpt-7")


def test_hub_model_offline_fails_with_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        models.materialise("roberta-base", tmp_path / "roberta-base" / "base")
    msg = str(err.value)
    assert f"cannot download roberta-base at revision {models.ROBERTA_BASE_REVISION} from the Hugging Face hub" in msg
    assert "minilm" in msg
    assert not (tmp_path / "roberta-base" / "base").exists()


def test_pickle_only_checkpoints_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelError, match="only safetensors"):
        models.load(tmp_path)


def test_model_dir_without_config_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no config.json"):
        models.check_loadable(tmp_path)


@pytest.mark.parametrize("text, where", [
    ("models: [gpt-7]\n", "models: unknown model(s) ['gpt-7']"),
    ("probe_tasks: [pos-klingon]\n", "probe_tasks: unknown probing task(s) ['pos-klingon']"),
    ("sentence_tasks: [cola]\nvariants: [base]\n", "sentence_tasks: unknown sentence task(s) ['cola']"),
])
def test_unknown_names_are_named_with_the_valid_ones(tmp_path: Path, text: str, where: str) -> None:
    from pipeline.names import load_checked

    (tmp_path / "params.yaml").write_text(text)
    load_params(tmp_path / "params.yaml")  # structure alone is fine: names are checked against the registries
    with pytest.raises(ConfigError) as err:
        load_checked(tmp_path / "params.yaml")
    assert where in str(err.value) and "valid: [" in str(err.value)
