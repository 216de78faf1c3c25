"""Stage ``finetune``: fine-tune a base model on a sentence task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import FinetuneParams, Params
from pipeline.errors import ConfigError
from pipeline.layout import Layout
from pipeline.records import FinetuneResult, Provenance, RunLog
from pipeline.stages.common import cache_dir
from pipeline.variants import checkpoint

# What run_finetune's metrics hold besides the result: timings and the host (-> the run log).
TIMINGS = ("train_seconds", "eval_seconds", "total_seconds")
HOST_FACTS = ("device", "torch_threads")


def finetune(params: Params, root: Path, model_name: str, task: str, seed: int) -> Path:
    """Fine-tune ``models/<model>/base`` on sentence task ``task`` with training ``seed`` into
    ``models/<model>/<task>-seed<seed>`` (the checkpoint name, :func:`pipeline.variants.checkpoint`).

    Dev/test scores also go to ``results/finetune/<model>-<task>-seed<seed>.json`` (small, committed; DVC
    cannot declare a metrics file inside a directory output), the training curves (DVCLive: loss, learning rate,
    dev scores when dev is evaluated during training) to ``results/train/<model>-<task>-seed<seed>/`` (committed,
    reproducible; ``dvc plots show`` draws them), the timings to ``results/runs/finetune/``.
    """
    from pipeline.finetune import run_finetune

    if seed not in params.finetune.seeds:
        raise ConfigError(f"fine-tuning seed {seed} is not one of finetune.seeds {params.finetune.seeds}",
                          "Add it to finetune.seeds in the profile (so that its model is probed), or pick one "
                          "of those.")
    lay = Layout.of(params, root)
    name = checkpoint(task, seed)
    out = lay.model_dir(model_name, name)
    metrics = run_finetune(lay.model_dir(model_name, "base"), out, task, recipe(params, model_name),
                           cache_dir(params, root), seed=seed, live_dir=curves_dir(lay, model_name, name))
    finetune_record(model_name, name, seed, metrics, params).write(lay.results.finetune(model_name, name))
    RunLog.now("finetune", f"{model_name}-{name}", {"stage": metrics["total_seconds"],
                                                    **{k: metrics[k] for k in TIMINGS}},
               **{k: metrics.get(k) for k in HOST_FACTS}).write(lay.results.run_log("finetune", model_name, name))
    return out


def recipe(params: Params, model_name: str) -> FinetuneParams:
    """``params.finetune`` as ``model_name`` is trained: its per-model cap (``model_max_train_examples``), if
    any, in place of ``max_train_examples``."""
    ft = params.finetune
    cap = ft.model_max_train_examples.get(model_name)
    return ft if cap is None else ft.model_copy(update={"max_train_examples": cap})


def curves_dir(lay: Layout, model_name: str, variant: str) -> Path:
    """The DVCLive folder of ``model_name``'s checkpoint ``variant``: ``results/train/<model>-<variant>/``."""
    return lay.results.root / "train" / f"{model_name}-{variant}"


def finetune_record(model_name: str, variant: str, seed: int, metrics: dict[str, Any],
                    params: Params) -> FinetuneResult:
    """The committed record of :func:`pipeline.finetune.run_finetune`'s metrics (no timings, no host) for
    checkpoint ``variant`` (``<task>-seed<seed>``)."""
    splits = [s for s in metrics["examples"] if s != "train"]
    majority = metrics["majority_baseline"]
    return FinetuneResult(
        model=model_name, variant=variant, seed=seed, task=metrics["task"], kind=metrics["kind"],
        base=metrics["base"],
        main_metric=metrics["main_metric"], scores={s: metrics[s] for s in splits},
        majority_baseline=None if majority is None else {
            s: {"label": b["label"], "scores": {k: v for k, v in b.items() if k != "label"}}
            for s, b in majority.items()},
        examples=metrics["examples"], steps=metrics["steps"], epochs_run=metrics["epochs_run"],
        train_loss=metrics["train_loss"], best_dev_step=metrics["best_dev_step"],
        dev_curve=tuple(metrics["dev_curve"]),
        provenance=Provenance.collect(recipe(params, model_name).model_dump(mode="json"), params.seed,
                                      data_source=metrics.get("task_source")))
