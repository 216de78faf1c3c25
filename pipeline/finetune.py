"""Fine-tune an encoder on a sentence task with the Hugging Face Trainer.

``run_finetune(models/<m>/base, models/<m>/<task>, task, params)`` trains encoder + head
(``AutoModelForSequenceClassification``; regression for STS-B) and writes, atomically::

    models/<m>/<task>/
      config.json, model.safetensors   the fine-tuned ENCODER in the base layout, so
                                       ``pipeline.models.load`` reads base and fine-tuned alike
      tokenizer files                  copied unchanged from the base directory
      head.safetensors, head.json      the task head (weights; label names, architecture), see
                                       :func:`load_classifier`
      metrics.json                     dev and test metrics, majority baseline, times
      finetune.json                    resolved params, seed, split sizes, library versions, log

Nothing is pickled: the Trainer runs with ``save_strategy="no"`` in a scratch folder that is
removed afterwards, the best dev state (``keep_best``) is kept in memory, and weights are
read with safetensors only. The recipe is :class:`pipeline.config.FinetuneParams` (defaults:
the offline profile's; the paper's is in ``profiles/paper.yaml``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline import models
from pipeline.atomic import atomic_dir, write_json
from pipeline.config import FinetuneParams
from pipeline.data import (
    LoadContext,
    SentenceSplit,
    SentenceTask,
    TaskData,
    get_sentence_task,
    load_sentence_task,
)
from pipeline.data.metrics import compute_metrics, majority_baseline
from pipeline.data.sentence import to_dataset
from pipeline.errors import ConfigError, ModelError
from pipeline.precision import cpu_has_bf16
from pipeline.provenance import stamp
from pipeline.resources import sha256_file

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

HEAD_WEIGHTS = "head.safetensors"
HEAD_INFO = "head.json"
METRICS = "metrics.json"
PROVENANCE = "finetune.json"
#: Files of a model directory that are the tokenizer (copied verbatim from the base).
TOKENIZER_FILES = tuple(f for f in models.MODEL_FILES if f not in ("config.json", "model.safetensors"))


# --------------------------------------------------------------------------- data


def encode(tokenizer: Any, task: SentenceTask, split: SentenceSplit, max_length: int) -> datasets.Dataset:
    """The one tokenisation path of every sentence task, offline and GLUE alike: the split as a
    ``datasets.Dataset`` (:func:`pipeline.data.sentence.to_dataset`) mapped through the tokenizer.

    Columns: ``input_ids``, ``attention_mask`` (and ``token_type_ids`` where the tokenizer makes them), ``label``;
    rows in the split's order, unpadded (``DataCollatorWithPadding`` pads each batch).
    """
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    texts = ["text_a", "text_b"] if task.pair else ["text_a"]

    def tokenize(batch: dict[str, list[Any]]) -> Any:
        return tokenizer(batch["text_a"], batch["text_b"] if task.pair else None, truncation=True,
                         max_length=max_length)

    raw = to_dataset(task, split)
    shown = is_progress_bar_enabled()
    disable_progress_bar()  # a bar per split is noise in the stage log
    try:
        # in memory, fingerprinted by name (hashing the tokenizer would be slow): no cache files are written
        enc = raw.map(tokenize, batched=True, remove_columns=texts, keep_in_memory=True,
                      new_fingerprint=f"{task.name}-{split.name}-{len(split)}-tok{max_length}")
    finally:
        if shown:
            enable_progress_bar()
    extra = [c for c in enc.column_names if c not in ("input_ids", "attention_mask", "token_type_ids", "label")]
    enc = enc.remove_columns(extra) if extra else enc
    n_cut = sum(1 for ids in enc["input_ids"] if len(ids) >= max_length)
    if n_cut:
        log.info("%s: %d of %d examples reach the %d-token limit (longer ones are truncated)", split.name, n_cut,
                 len(split), max_length)
    return enc


# --------------------------------------------------------------------------- trainer pieces


def _logits(predictions: Any) -> np.ndarray:
    return np.asarray(predictions[0] if isinstance(predictions, tuple) else predictions)


def _predicted(task: SentenceTask, logits: np.ndarray) -> np.ndarray:
    return logits.reshape(-1) if task.kind == "regression" else logits.argmax(-1)


def _fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def _callbacks(task: SentenceTask, params: FinetuneParams) -> tuple[Any, Any]:
    """A readable progress callback (bar on a terminal, log lines with ETA always) and the best-dev tracker."""
    from transformers import ProgressCallback, TrainerCallback

    class ReadableProgress(ProgressCallback):
        """tqdm bar only on a terminal; log lines ``step i/n (p%) loss ... ETA m:ss`` everywhere."""

        def __init__(self) -> None:
            super().__init__()
            self.tty = sys.stderr.isatty()
            self.t0 = time.perf_counter()

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            self.t0 = time.perf_counter()
            if self.tty:
                super().on_train_begin(args, state, control, **kwargs)
            self.current_step = 0

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            if self.tty and self.training_bar is not None:
                super().on_step_end(args, state, control, **kwargs)

        def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):  # noqa: ANN001, ANN201
            if self.tty:
                super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)

        def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            if self.training_bar is not None:
                super().on_train_end(args, state, control, **kwargs)

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201
            logs = dict(logs or {})
            step, total = state.global_step, max(state.max_steps, 1)
            elapsed = time.perf_counter() - self.t0
            if "loss" in logs:
                eta = elapsed / max(step, 1) * (total - step)
                log.info("step %d/%d (%d%%) epoch %.2f: loss %.4f, lr %.2e, %s elapsed, ETA %s", step, total,
                         100 * step // total, logs.get("epoch", state.epoch or 0), logs["loss"],
                         logs.get("learning_rate", float("nan")), _fmt_duration(elapsed), _fmt_duration(eta))
            elif any(k.startswith("eval_") for k in logs):
                vals = ", ".join(f"{k[5:]} {v:.4f}" for k, v in logs.items()
                                 if k.startswith("eval_") and k[5:] in (*task.metrics, "loss"))
                log.info("dev at step %d (epoch %.2f): %s", step, logs.get("epoch", state.epoch or 0), vals)
            elif "train_runtime" in logs:
                log.info("trained %d steps in %s (%.2f steps/s), mean loss %.4f", step,
                         _fmt_duration(logs["train_runtime"]), logs.get("train_steps_per_second", float("nan")),
                         logs.get("train_loss", float("nan")))

    class BestDev(TrainerCallback):
        """Track the best dev score; keep that state in memory (no checkpoint files); early stopping."""

        def __init__(self) -> None:
            self.best: float | None = None
            self.best_step: int | None = None
            self.best_state: dict[str, Any] | None = None
            self.bad = 0
            self.history: list[dict[str, float]] = []

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):  # noqa: ANN001, ANN201
            value = (metrics or {}).get(f"eval_{task.main_metric}")
            if value is None or not math.isfinite(value):
                return
            self.history.append({"step": state.global_step, task.main_metric: float(value)})
            if self.best is None or value > self.best:
                self.best, self.best_step, self.bad = float(value), state.global_step, 0
                if params.keep_best and model is not None:
                    self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                self.bad += 1
                if params.early_stopping_patience and self.bad >= params.early_stopping_patience:
                    log.info("early stopping: no dev gain in %d evaluations (best %s %.4f at step %d)", self.bad,
                             task.main_metric, self.best, self.best_step)
                    control.should_training_stop = True

    return ReadableProgress(), BestDev()


def _training_curves(live_dir: Path) -> Any:
    """DVCLive's Hugging Face Trainer integration writing ``live_dir`` (``metrics.json``, ``plots/metrics/*.tsv``:
    train ``loss``, ``learning_rate``, ``grad_norm``, ``epoch``, and ``eval/*`` when dev is evaluated during
    training), reproducible byte for byte: rows are keyed by the Trainer's global step, wall-clock entries
    (``*_runtime``, ``*_per_second``) are left out, no timestamps, no params (they hold a scratch path; the recipe
    is in ``finetune.json``), no DVC experiment, no ``dvc.yaml`` written (dvc.yaml declares these files)."""
    from dvclive import Live
    from transformers.integrations import DVCLiveCallback

    class TrainingCurves(DVCLiveCallback):
        def setup(self, args, state, model):  # noqa: ANN001, ANN201
            self._initialized = True  # the parent would log args.to_dict(), which holds the scratch folder

        def on_log(self, args, state, control, model=None, logs=None, **kwargs):  # noqa: ANN001, ANN201
            self.live.step = state.global_step
            super().on_log(args, state, control, model=model, logs=_without_timings(dict(logs or {})), **kwargs)

    live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None, monitor_system=False)
    return TrainingCurves(live=live)


def _trainer_class() -> type:
    """The Hugging Face ``Trainer`` with one change: a dev evaluation during training leaves the global random
    generators (``random``, NumPy, torch) as it found them. Iterating a DataLoader draws its base seed from
    torch's global generator, so without this, turning on dev curves (``eval_strategy``) would shift every later
    dropout mask and change the trained weights; with it, the weights are the same bit for bit either way."""
    import random

    import torch
    from transformers import Trainer

    class DevNeutralTrainer(Trainer):
        def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
            saved = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
            try:
                return super().evaluate(*args, **kwargs)
            finally:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.random.set_rng_state(saved[2])

    return DevNeutralTrainer


def _device_settings(params: FinetuneParams) -> dict[str, Any]:
    """TrainingArguments for the device: CPU/CUDA, mixed precision, TF32, determinism."""
    import torch

    cuda = torch.cuda.is_available() and params.device != "cpu"
    if params.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("finetune.device is 'cuda' but no CUDA GPU is visible", "Set finetune.device: null or cpu.")
    mp = params.mixed_precision
    if mp == "auto":
        mp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else ("bf16" if cpu_has_bf16() else "no")
    if mp == "fp16" and not cuda:
        raise ConfigError("finetune.mixed_precision fp16 needs a CUDA GPU",
                          "Set it to bf16 (autocast on CPUs with bfloat16 support), auto or no on a CPU.")
    tf32 = (params.tf32 if params.tf32 is not None else True) if cuda else None
    return {
        "use_cpu": not cuda, "fp16": mp == "fp16", "bf16": mp == "bf16", "tf32": tf32,
        "full_determinism": params.full_determinism if params.full_determinism is not None else not cuda,
    }


def _check_cpu_contention(threads: int) -> None:
    """Warn when OpenMP threads will spin-wait against other busy processes (a 5-10x slowdown here)."""
    try:
        load, cores = os.getloadavg()[0], len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return
    if threads > 1 and load > cores - 0.5 and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        log.warning("the CPU is busy (load %.1f on %d cores) and torch uses %d threads: OpenMP spin-waiting can "
                    "make training several times slower. Start Python with OMP_WAIT_POLICY=PASSIVE or set "
                    "finetune.num_threads: 1.", load, cores, threads)


class _GlobalState:
    """Restore what ``enable_full_determinism`` changes process-wide (flags, env vars, threads)."""

    _ENV = ("CUDA_LAUNCH_BLOCKING", "CUBLAS_WORKSPACE_CONFIG", "ASCEND_LAUNCH_BLOCKING", "HCCL_DETERMINISTIC",
            "FLASH_ATTENTION_DETERMINISTIC")

    def __enter__(self) -> _GlobalState:
        import torch

        self.det = (torch.are_deterministic_algorithms_enabled(),
                    torch.is_deterministic_algorithms_warn_only_enabled())
        self.cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        self.env = {k: os.environ.get(k) for k in self._ENV}
        self.threads = torch.get_num_threads()
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.use_deterministic_algorithms(self.det[0], warn_only=self.det[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = self.cudnn
        torch.set_num_threads(self.threads)
        for k, v in self.env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------- the run


def _load_for_training(base_dir: Path, task: SentenceTask, seed: int) -> tuple[Any, Any]:
    """Fast tokenizer + encoder with a fresh (seeded) head, from safetensors only."""
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    models.check_loadable(base_dir)
    tokenizer = AutoTokenizer.from_pretrained(base_dir, use_fast=True)
    if not tokenizer.is_fast:
        raise ModelError(f"{base_dir}: no fast tokenizer")
    labels = {} if task.kind == "regression" else {
        "id2label": dict(enumerate(task.label_names)), "label2id": {n: i for i, n in enumerate(task.label_names)}}
    transformers.set_seed(seed)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "newly initialised head" is expected, not a warning
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            base_dir, num_labels=task.num_labels, use_safetensors=True, output_hidden_states=False,
            problem_type="regression" if task.kind == "regression" else "single_label_classification", **labels)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot build a sequence-classification model from {base_dir}: {err}") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
    return tokenizer, model


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (results carry no host paths)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def run_finetune(
    base_dir: Path,
    out_dir: Path,
    task: SentenceTask | str,
    params: FinetuneParams | None = None,
    cache: Path | None = None,
    *,
    seed: int | None = None,
    data: TaskData | None = None,
    live_dir: Path | None = None,
) -> dict[str, Any]:
    """Fine-tune the encoder in ``base_dir`` on ``task`` with training ``seed`` (default: the first of
    ``params.seeds``); write ``out_dir`` atomically; return the metrics.

    ``data`` (already loaded splits) is for tests and callers that hold the data; otherwise the
    task is loaded with ``params.split_seed`` and the resource ``cache``. The returned metrics also
    hold the run facts (``*_seconds``, ``device``, ``torch_threads``) that ``out_dir`` leaves out; the
    stage writes the result record and the run log from them. With ``live_dir``, DVCLive writes the training
    curves there (:func:`_training_curves`).
    """
    import torch
    from transformers import DataCollatorWithPadding, ProgressCallback, TrainingArguments

    t_start = time.perf_counter()
    params = params or FinetuneParams()
    seed = params.seeds[0] if seed is None else seed
    task = get_sentence_task(task) if isinstance(task, str) else task
    base_dir, out_dir = Path(base_dir), Path(out_dir)
    if out_dir.resolve() == base_dir.resolve():
        raise ConfigError(f"fine-tuning output {out_dir} would overwrite the base model")
    if data is not None and data.task.name != task.name:
        raise ConfigError(f"the data given is for task {data.task.name!r}, not {task.name!r}")
    data = data or load_sentence_task(task, LoadContext(cache=cache, seed=params.split_seed))
    train_split = data.splits["train"].sample(params.max_train_examples, params.split_seed)

    device = _device_settings(params)
    tokenizer, model = _load_for_training(base_dir, task, seed)
    encoded = {"train": encode(tokenizer, task, train_split, params.max_length)}
    for name in task.eval_splits:
        encoded[name] = encode(tokenizer, task, data.splits[name], params.max_length)

    steps_per_epoch = math.ceil(len(train_split) / params.batch_size)
    log.info("fine-tuning %s on %s: %d train examples, %s epoch(s) x %d steps, batch %d, lr %g, max length %d, "
             "seed %d, %s%s", base_dir, task.name, len(train_split), f"{params.epochs:g}", steps_per_epoch,
             params.batch_size, params.lr, params.max_length, seed,
             "cpu" if device["use_cpu"] else "cuda", "" if not (device["fp16"] or device["bf16"]) else
             f" ({'bf16' if device['bf16'] else 'fp16'})")
    progress, best = _callbacks(task, params)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.scratch-", dir=_mkdir(out_dir.parent)))

    def trainer_metrics(pred: Any) -> dict[str, float]:
        return compute_metrics(task, _predicted(task, _logits(pred.predictions)), np.asarray(pred.label_ids))

    try:
        with _GlobalState():
            if params.num_threads:
                torch.set_num_threads(params.num_threads)
            if device["use_cpu"]:
                _check_cpu_contention(torch.get_num_threads())
            threads = torch.get_num_threads()
            args = TrainingArguments(
                output_dir=str(scratch), save_strategy="no", report_to="none", disable_tqdm=False,
                num_train_epochs=params.epochs, learning_rate=params.lr, per_device_train_batch_size=params.batch_size,
                per_device_eval_batch_size=params.eval_batch_size, warmup_steps=params.warmup_ratio,
                weight_decay=params.weight_decay, seed=seed, data_seed=seed,
                eval_strategy=params.eval_strategy, eval_steps=params.eval_steps, logging_strategy="steps",
                logging_steps=params.logging_steps, dataloader_num_workers=0,
                train_sampling_strategy="group_by_length" if params.group_by_length else "random", **device)
            trainer = _trainer_class()(
                model=model, args=args, train_dataset=encoded["train"],
                eval_dataset=encoded["dev"] if params.eval_strategy != "no" else None,
                data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=None if device["use_cpu"] else 8),
                processing_class=tokenizer, compute_metrics=trainer_metrics,
                callbacks=[best, *([_training_curves(scratch / "curves")] if live_dir is not None else [])])
            trainer.remove_callback(ProgressCallback)
            trainer.add_callback(progress)
            t0 = time.perf_counter()
            train_out = trainer.train()
            train_seconds = time.perf_counter() - t0
            if live_dir is not None:  # DVCLive writes as it goes: land the finished curves in one rename
                with atomic_dir(live_dir) as tmp:
                    shutil.copytree(scratch / "curves", tmp, dirs_exist_ok=True)
            if device["bf16"] or device["fp16"]:
                # accelerate wraps forward in autocast; unwrap it so that dev/test are scored in float32,
                # exactly as the saved weights reload (and as the extract stage runs them)
                trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
            if params.keep_best and best.best_state is not None and best.best_step != trainer.state.global_step:
                log.info("restoring the best dev state (step %d, %s %.4f)", best.best_step, task.main_metric,
                         best.best)
                model.load_state_dict(best.best_state)
            t1 = time.perf_counter()
            results: dict[str, dict[str, float]] = {}
            baselines: dict[str, Any] = {}
            for name in task.eval_splits:
                # label_ids, not the dataset's order: with group_by_length the Trainer also groups eval batches
                pred = trainer.predict(encoded[name], metric_key_prefix=name)
                results[name] = compute_metrics(task, _predicted(task, _logits(pred.predictions)),
                                                np.asarray(pred.label_ids))
                baselines[name] = majority_baseline(task, train_split, data.splits[name])
            eval_seconds = time.perf_counter() - t1
            log_history = list(trainer.state.log_history)
            global_step, epochs_run = trainer.state.global_step, float(trainer.state.epoch or 0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    model.eval()
    metrics: dict[str, Any] = {
        "task": task.name, "seed": seed, "base": _display_path(base_dir), "kind": task.kind,
        "task_source": {k: str(v) for k, v in data.provenance.items()}, "main_metric": task.main_metric, **results,
        "majority_baseline": baselines if task.kind == "classification" else None,
        "examples": {"train": len(train_split), **{n: len(encoded[n]) for n in task.eval_splits}},
        "steps": global_step, "epochs_run": round(epochs_run, 4), "train_loss": float(train_out.training_loss),
        "best_dev_step": best.best_step, "dev_curve": best.history,
        "train_seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds, 2),
        "device": "cpu" if device["use_cpu"] else torch.cuda.get_device_name(0),
        "torch_threads": threads if device["use_cpu"] else None,
    }
    _write_outputs(base_dir, out_dir, task, params, model, data, metrics, log_history, device, t_start)
    summary = ", ".join(f"{n} {task.main_metric} {results[n][task.main_metric]:.4f}" for n in task.eval_splits)
    log.info("%s -> %s: %s (train %s, total %s)", task.name, out_dir, summary, _fmt_duration(train_seconds),
             _fmt_duration(metrics["total_seconds"]))
    return _json_safe(metrics)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_outputs(base_dir: Path, out_dir: Path, task: SentenceTask, params: FinetuneParams, model: Any,
                   data: TaskData, metrics: dict[str, Any], log_history: list[dict[str, Any]],
                   device: dict[str, Any], t_start: float) -> None:
    """Encoder (base layout) + tokenizer + head + metrics + provenance, atomically; verified by reloading."""
    from safetensors.torch import save_file

    encoder = model.base_model
    prefix = f"{model.base_model_prefix}."
    with atomic_dir(out_dir) as tmp:
        encoder.save_pretrained(tmp)
        for f in TOKENIZER_FILES:
            if (base_dir / f).is_file():
                shutil.copyfile(base_dir / f, tmp / f)
        head = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()
                if not k.startswith(prefix)}
        # one metadata key: safetensors writes a map in random order, and the bytes must be reproducible
        save_file(head, str(tmp / HEAD_WEIGHTS), metadata={"format": "pt"})
        write_json(tmp / HEAD_INFO, {
            "task": task.name, "kind": task.kind, "label_names": list(task.label_names), "pair": task.pair,
            "num_labels": task.num_labels, "problem_type": model.config.problem_type,
            "architecture": type(model).__name__, "base_model_prefix": model.base_model_prefix,
            "max_length": params.max_length, "keys": sorted(head),
        })
        _verify_encoder(tmp, encoder)
        metrics["total_seconds"] = round(time.perf_counter() - t_start, 2)
        # Inside the model directory only what the training determines: no timings, so that a re-run
        # with the same result leaves the directory's hash (and DVC's downstream stages) unchanged.
        write_json(tmp / METRICS, _json_safe(_without_timings(metrics)))
        write_json(tmp / PROVENANCE, _json_safe(stamp(
            params.model_dump(mode="json"), seed=metrics["seed"], task=task.name, task_source=data.provenance,
            split_sizes=data.counts(), base=_display_path(base_dir),
            base_model_sha256=sha256_file(base_dir / "model.safetensors"),
            device={k: v for k, v in device.items()}, trainer_versions=_trainer_versions(),
            log_history=[_without_timings(entry) for entry in log_history],
        )))


def _without_timings(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without wall-clock fields (``*_seconds``, ``*_runtime``, ``*_per_second``)."""
    return {k: v for k, v in record.items() if not k.endswith(("_seconds", "_runtime", "_per_second"))}


def _trainer_versions() -> dict[str, str]:
    """Versions of the Trainer's own dependencies (not in :func:`pipeline.provenance.library_versions`)."""
    import importlib.metadata

    out = {}
    for name in ("accelerate", "datasets"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats as null (strict JSON; e.g. Pearson of constant predictions)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _verify_encoder(path: Path, encoder: Any) -> None:
    """Reload ``path`` through :func:`pipeline.models.load`; its weights must equal ``encoder``'s bit for bit."""
    import torch

    _, reloaded = models.load(path, "cpu")
    want = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
    got = reloaded.state_dict()
    # A head that brings its own pooling (RoBERTa's classification head) trains an encoder without a pooler;
    # the plain model reloaded from it gets a fresh pooler that extraction never reads (hidden states only).
    odd = (set(want) - set(got)) | {k for k in set(got) - set(want) if not k.startswith("pooler.")}
    if odd:
        raise ModelError(f"{path}: reloaded encoder has different weights ({sorted(odd)[:5]})")
    bad = [k for k in want if want[k].dtype != got[k].dtype or not torch.equal(want[k], got[k])]
    if bad:
        raise ModelError(f"{path}: reloaded encoder differs from the trained one in {bad[:5]}")


def load_classifier(path: Path, device: str | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """``(tokenizer, sequence-classification model, head info)`` from a fine-tuned directory (safetensors only)."""
    import transformers
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    path = Path(path)
    models.check_loadable(path)
    if not (path / HEAD_INFO).is_file() or not (path / HEAD_WEIGHTS).is_file():
        raise ModelError(f"{path} has no task head ({HEAD_INFO}, {HEAD_WEIGHTS})",
                         "Is it a fine-tuned model directory?")
    info = json.loads((path / HEAD_INFO).read_text(encoding="utf-8"))
    config = AutoConfig.from_pretrained(path)
    cls = getattr(transformers, info["architecture"], None)
    if cls is None:
        raise ModelError(f"{path}: unknown head architecture {info['architecture']!r}")
    model = cls(config)
    state = {f"{info['base_model_prefix']}.{k}": v for k, v in load_file(str(path / "model.safetensors")).items()}
    state.update(load_file(str(path / HEAD_WEIGHTS)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    persistent = set(model.state_dict())
    missing = [k for k in missing if k in persistent]
    if missing or unexpected:
        raise ModelError(f"{path}: weights do not match {info['architecture']} (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    model.eval()
    if device:
        model.to(device)
    return AutoTokenizer.from_pretrained(path, use_fast=True), model, info


def read_metrics(out_dir: Path) -> dict[str, Any]:
    """The ``metrics.json`` of a fine-tuned model directory."""
    p = Path(out_dir) / METRICS
    if not p.is_file():
        raise ModelError(f"{p} not found", "Run the finetune stage first.")
    return json.loads(p.read_text(encoding="utf-8"))
