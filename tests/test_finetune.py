"""Fine-tuning a tiny randomly initialised BERT (2 layers, hidden 32, WordPiece trained here) for a few steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")  # the HF Trainer needs it

from pipeline import finetune, models  # noqa: E402
from pipeline.config import Params  # noqa: E402
from pipeline.data import LoadContext, get_sentence_task, load_sentence_task  # noqa: E402
from pipeline.data.metrics import compute_metrics  # noqa: E402
from pipeline.errors import ConfigError, ModelError  # noqa: E402
from pipeline.records import FinetuneResult  # noqa: E402
from pipeline.stages.finetune import finetune_record  # noqa: E402

FIX = Path(__file__).parent / "fixtures" / "tasks"


def _fixture_reader(resource: str, chain: Any) -> bytes:
    return (FIX / Path(chain[-1]).name).read_bytes()


def _glue_fixture(config: str) -> dict[str, Any]:
    return json.loads((FIX / "glue_tiny.json").read_text(encoding="utf-8"))[config]


CTX = LoadContext(read_member=_fixture_reader, glue_source=_glue_fixture)
# The paper's recipe (dev evaluated each epoch, all examples), shortened; the defaults are the offline recipe.
FAST = {"epochs": 1, "batch_size": 8, "eval_batch_size": 16, "max_length": 32, "lr": 5e-5,
        "max_train_examples": None, "group_by_length": False, "eval_strategy": "epoch"}


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT in the base layout: config.json + model.safetensors + a fast WordPiece tokenizer."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors, trainers
    from tokenizers import models as tok_models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    corpus = [line.split("\t")[2] for line in
              (FIX / "movieReviewSnippets_GroundTruth.txt").read_text(encoding="utf-8").splitlines()]
    corpus += json.loads((FIX / "glue_tiny.json").read_text(encoding="utf-8"))["stsb"]["train"]["sentence1"]
    tok = Tokenizer(tok_models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    path = tmp_path_factory.mktemp("models") / "tiny" / "base"
    BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                      sep_token="[SEP]", mask_token="[MASK]").save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(path)
    return path


class Spy:
    """Captures the trained model that run_finetune writes (to compare with what reloads)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.model: Any = None
        real = finetune._write_outputs

        def wrapped(base_dir: Path, out_dir: Path, task: Any, params: Any, model: Any, *rest: Any) -> None:
            self.model = model
            real(base_dir, out_dir, task, params, model, *rest)

        monkeypatch.setattr(finetune, "_write_outputs", wrapped)


def _run(base: Path, out: Path, task: str, seed: int | None = None, **params: Any) -> dict[str, Any]:
    data = load_sentence_task(task, CTX)
    return finetune.run_finetune(base, out, task, finetune.FinetuneParams(**{**FAST, **params}), seed=seed, data=data)


def test_finetune_lands_outputs_and_reloads_bit_for_bit(tiny_base: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    out = tmp_path / "models" / "tiny" / "sentiment"
    data = load_sentence_task("sentiment", CTX)
    metrics = finetune.run_finetune(tiny_base, out, "sentiment", finetune.FinetuneParams(**FAST), data=data)

    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "head.safetensors",
            "head.json", "metrics.json", "finetune.json"} <= names
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".pickle")]
    assert [p.name for p in out.parent.iterdir()] == ["sentiment"]  # the Trainer's scratch folder is gone
    for f in ("tokenizer.json", "tokenizer_config.json"):
        assert (out / f).read_bytes() == (tiny_base / f).read_bytes()

    saved = json.loads((out / "metrics.json").read_text())
    assert metrics["seed"] == 42  # the first of finetune.seeds when no seed is given
    # the committed result: no timings, no host
    record = finetune_record("tiny", "sentiment-seed42", 42, metrics, Params())
    assert record.score == metrics["test"]["accuracy"] and record.majority == saved["majority_baseline"]["test"][
        "accuracy"]
    assert FinetuneResult.from_json(json.loads(json.dumps(record.to_json()))) == record
    # the training data's source (for GLUE: the dataset at its pinned revision) is in the committed provenance
    assert record.provenance.data_source == metrics["task_source"] == {
        "source": get_sentence_task("sentiment").source, "split_seed": "42"}
    assert record.to_json()["provenance"]["data_source"]["source"] == get_sentence_task("sentiment").source
    assert not {"device", "torch_threads"} & set(record.to_json()) and "seconds" not in json.dumps(record.to_json())
    assert metrics["train_seconds"] > 0 and metrics["total_seconds"] > 0  # timings: returned for the run log only
    assert saved == {k: v for k, v in json.loads(json.dumps(metrics)).items() if not k.endswith("_seconds")}
    assert set(saved["dev"]) == {"accuracy", "macro_f1"} and set(saved["test"]) == {"accuracy", "macro_f1"}
    assert saved["examples"] == {"train": 32, "dev": 4, "test": 4} and saved["steps"] == 4
    assert saved["majority_baseline"]["test"]["accuracy"] == 0.5
    prov = json.loads((out / "finetune.json").read_text())
    assert prov["seed"] == 42 and prov["config"]["lr"] == 5e-5 and prov["versions"]["torch"]
    assert prov["split_sizes"] == {"train": 32, "dev": 4, "test": 4}

    # the encoder loads through the registry exactly like a base model, weights bit for bit
    tokenizer, enc = models.load(out)
    _, base_enc = models.load(tiny_base)
    assert type(enc) is type(base_enc)
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertModel"]
    trained = spy.model.base_model.state_dict()
    got = enc.state_dict()
    assert set(got) == set(trained)
    assert all(torch.equal(got[k], trained[k]) for k in got)
    assert not all(torch.equal(got[k], base_enc.state_dict()[k]) for k in got)  # training changed it
    with torch.no_grad():
        hidden = enc(**tokenizer(["a small gem ."], return_tensors="pt")).hidden_states
    assert len(hidden) == 3  # embeddings + 2 layers


def test_head_reloads_and_predicts_like_the_trained_model(tiny_base: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    out = tmp_path / "sentiment"
    _run(tiny_base, out, "sentiment")
    tokenizer, model, info = finetune.load_classifier(out)
    assert info["label_names"] == ["negative", "positive"] and info["architecture"] == "BertForSequenceClassification"
    assert set(info["keys"]) == {"classifier.weight", "classifier.bias"}
    batch = tokenizer(["a small gem of a film .", "it stinks ."], return_tensors="pt", padding=True)
    spy.model.eval()
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, spy.model(**batch).logits)


def test_regression_head_on_stsb_like_pairs(tiny_base: Path, tmp_path: Path) -> None:
    out = tmp_path / "stsb"
    metrics = _run(tiny_base, out, "stsb", lr=1e-3)
    assert metrics["kind"] == "regression" and metrics["majority_baseline"] is None
    assert set(metrics["test"]) == {"pearson", "spearman", "mse"} and metrics["main_metric"] == "pearson"
    info = json.loads((out / "head.json").read_text())
    assert info["problem_type"] == "regression" and info["num_labels"] == 1 and info["pair"] is True
    _, model, _ = finetune.load_classifier(out)
    assert model.config.problem_type == "regression" and model.classifier.out_features == 1
    models.load(out)


def test_mnli_like_task_reports_matched_and_mismatched(tiny_base: Path, tmp_path: Path) -> None:
    metrics = _run(tiny_base, tmp_path / "mnli", "mnli", eval_strategy="no")
    assert {"dev", "test_matched", "test_mismatched"} <= set(metrics)
    assert metrics["examples"]["test_mismatched"] == 6


def test_same_seed_same_weights_other_seed_other_weights(tiny_base: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    for name, seed in (("a", 42), ("b", 42), ("c", 7)):
        _run(tiny_base, tmp_path / name, "hedge", seed=seed, eval_strategy="no")
    a, b, c = (load_file(str(tmp_path / n / "model.safetensors")) for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    ha, hb = (load_file(str(tmp_path / n / "head.safetensors")) for n in "ab")
    assert all(torch.equal(ha[k], hb[k]) for k in ha)
    # the whole directory is byte-identical, so DVC sees an unchanged output and skips what follows
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert [f for f in files if (tmp_path / "a" / f).read_bytes() != (tmp_path / "b" / f).read_bytes()] == []


def test_dev_evaluation_during_training_leaves_the_weights_unchanged(tiny_base: Path, tmp_path: Path) -> None:
    """Dev curves are free: evaluating dev every quarter of the steps (each evaluation iterates a DataLoader, which
    draws its base seed from torch's global generator) trains the same weights, bit for bit, as no evaluation."""
    from safetensors.torch import load_file

    _run(tiny_base, tmp_path / "none", "hedge", epochs=2, eval_strategy="no")
    metrics = _run(tiny_base, tmp_path / "dev", "hedge", epochs=2, eval_strategy="steps", eval_steps=0.25)
    assert len(metrics["dev_curve"]) == 4
    for name in ("model.safetensors", "head.safetensors"):
        a, b = (load_file(str(tmp_path / run / name)) for run in ("none", "dev"))
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_eval_steps_fraction_and_its_errors() -> None:
    assert finetune.FinetuneParams(eval_strategy="steps", eval_steps=0.25).eval_steps == 0.25
    with pytest.raises(ValueError, match="needs eval_steps"):
        finetune.FinetuneParams(eval_strategy="steps", eval_steps=None)
    with pytest.raises(ValueError, match="greater than 0"):
        finetune.FinetuneParams(eval_strategy="steps", eval_steps=0)


def test_keep_best_and_early_stopping(tiny_base: Path, tmp_path: Path) -> None:
    metrics = _run(tiny_base, tmp_path / "h", "hedge", epochs=3, keep_best=True, early_stopping_patience=1)
    assert metrics["best_dev_step"] in {row["step"] for row in metrics["dev_curve"]}
    assert 1 <= len(metrics["dev_curve"]) <= 3


def test_a_failed_run_leaves_nothing_behind(tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import Trainer

    def boom(self: Any, *a: Any, **k: Any) -> Any:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(Trainer, "train", boom)
    parent = tmp_path / "models"
    with pytest.raises(RuntimeError):
        _run(tiny_base, parent / "sentiment", "sentiment")
    assert list(parent.iterdir()) == []


def test_unknown_task_lists_valid_names(tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid names: sentiment, hedge"):
        finetune.run_finetune(tiny_base, tmp_path / "x", "cola", finetune.FinetuneParams())
    assert not (tmp_path / "x").exists()


def test_missing_base_model_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a model directory"):
        finetune.run_finetune(tmp_path / "nope", tmp_path / "out", "sentiment", finetune.FinetuneParams(),
                              data=load_sentence_task("sentiment", CTX))
    assert not (tmp_path / "out").exists()


def test_output_must_not_overwrite_the_base(tiny_base: Path) -> None:
    with pytest.raises(ConfigError, match="overwrite the base"):
        finetune.run_finetune(tiny_base, tiny_base, "sentiment", data=load_sentence_task("sentiment", CTX))


def test_head_loading_needs_a_head(tiny_base: Path) -> None:
    with pytest.raises(ModelError, match="no task head"):
        finetune.load_classifier(tiny_base)


def test_mixed_precision_needs_cuda(tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        _run(tiny_base, tmp_path / "x", "sentiment", mixed_precision="fp16")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        _run(tiny_base, tmp_path / "x", "sentiment", device="cuda")


def test_bf16_on_cpu_scores_the_saved_float32_weights(tiny_base: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 autocast trains on a CPU; dev/test are scored without autocast, as the weights reload."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spy = Spy(monkeypatch)
    metrics = _run(tiny_base, tmp_path / "bf", "sentiment", mixed_precision="bf16", eval_strategy="no")
    tok, model, _ = finetune.load_classifier(tmp_path / "bf")
    enc = tok(["a fine film", "dull"], return_tensors="pt", padding=True)
    with torch.no_grad():
        assert torch.equal(spy.model(**enc).logits, model(**enc).logits)
    assert metrics["examples"]["test"] > 0


def test_determinism_flags_are_restored(tiny_base: Path, tmp_path: Path) -> None:
    before = torch.are_deterministic_algorithms_enabled()
    _run(tiny_base, tmp_path / "d", "hedge", eval_strategy="no", full_determinism=True)
    assert torch.are_deterministic_algorithms_enabled() == before


def test_reported_test_metrics_match_reloaded_predictions(tiny_base: Path, tmp_path: Path) -> None:
    """Length-grouped batches reorder eval examples too: the metrics must still pair predictions with their labels.

    Regression makes this visible: Pearson of per-example scores changes when pairs are shuffled.
    """
    out = tmp_path / "stsb"
    metrics = _run(tiny_base, out, "stsb", group_by_length=True, eval_batch_size=2)
    test = load_sentence_task("stsb", CTX).splits["test"]
    tokenizer, model, _ = finetune.load_classifier(out)
    with torch.no_grad():
        pairs = zip(test.text_a, test.text_b or (), strict=True)
        scores = [model(**tokenizer(a, b, return_tensors="pt")).logits.item() for a, b in pairs]
    want = compute_metrics(get_sentence_task("stsb"), np.array(scores), np.array(test.labels))
    assert metrics["test"]["pearson"] == pytest.approx(want["pearson"], abs=1e-3)
    assert metrics["test"]["mse"] == pytest.approx(want["mse"], rel=1e-3)


# --------------------------------------------------------------------------- datasets: one tokenisation path


def test_offline_and_glue_splits_share_one_encoding(tiny_base: Path) -> None:
    """Offline (sentiment) and GLUE (rte, pairs; stsb, regression) splits: the same Dataset columns, in order."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_base)
    for name in ("sentiment", "rte", "stsb"):
        task = get_sentence_task(name)
        split = load_sentence_task(task, CTX).splits["train"]
        enc = finetune.encode(tok, task, split, max_length=16)
        assert sorted(enc.column_names) == ["attention_mask", "input_ids", "label", "token_type_ids"]
        assert len(enc) == len(split)
        want = tok(list(split.text_a), list(split.text_b) if task.pair else None, truncation=True, max_length=16)
        assert enc["input_ids"] == want["input_ids"]  # same examples, same order, same truncation
        labels = enc["label"]
        if task.kind == "regression":
            assert labels == pytest.approx([float(x) for x in split.labels])
        else:
            assert labels == [task.label_id(x) for x in split.labels]
            assert enc.features["label"].names == list(task.label_names)


def test_a_pair_task_without_second_texts_is_a_format_error() -> None:
    from pipeline.data import SentenceSplit
    from pipeline.data.sentence import to_dataset
    from pipeline.errors import CorpusFormatError

    split = SentenceSplit("train", ("a", "b"), ("entailment", "not_entailment"))
    with pytest.raises(CorpusFormatError, match="second text"):
        to_dataset(get_sentence_task("rte"), split)
    with pytest.raises(ConfigError, match="unknown label 'maybe'"):
        to_dataset(get_sentence_task("hedge"), SentenceSplit("train", ("a",), ("maybe",)))


# --------------------------------------------------------------------------- DVCLive training curves


def _tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def test_training_curves_are_written_by_dvclive_and_reproducible(tiny_base: Path, tmp_path: Path) -> None:
    """Loss per logged step and dev scores per evaluation, keyed by the global step, with no wall-clock fields:
    the same seed writes the same bytes (results/train/ is committed and checked by the CI)."""
    runs = {}
    for name in ("a", "b"):
        live = tmp_path / f"curves-{name}"
        metrics = finetune.run_finetune(tiny_base, tmp_path / name, "hedge",
                                        finetune.FinetuneParams(**{**FAST, "epochs": 2, "logging_steps": 1}),
                                        data=load_sentence_task("hedge", CTX), live_dir=live)
        runs[name] = {p.relative_to(live).as_posix(): p.read_bytes() for p in sorted(live.rglob("*")) if p.is_file()}
    assert runs["a"] == runs["b"]
    files = set(runs["a"])
    assert {"metrics.json", "plots/metrics/loss.tsv", "plots/metrics/learning_rate.tsv",
            "plots/metrics/eval/accuracy.tsv", "plots/metrics/eval/loss.tsv"} <= files
    assert not [f for f in files if "runtime" in f or "per_second" in f]  # wall times are left out
    assert "params.yaml" not in files and "dvc.yaml" not in files
    loss = _tsv(tmp_path / "curves-a" / "plots" / "metrics" / "loss.tsv")
    assert loss[0] == ["step", "loss"]  # no timestamp column
    assert [int(r[0]) for r in loss[1:]] == list(range(1, metrics["steps"] + 1))  # every step logged
    dev = _tsv(tmp_path / "curves-a" / "plots" / "metrics" / "eval" / "accuracy.tsv")
    assert [{"step": int(s), "accuracy": float(v)} for s, v in dev[1:]] == metrics["dev_curve"]
    assert not list(tmp_path.glob(".curves-a*"))  # no temporaries left
