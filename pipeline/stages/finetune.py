"""Stage ``finetune``: fine-tune a base model on a sentence task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import Params
from pipeline.layout import Layout
from pipeline.records import FinetuneResult, Provenance, RunLog
from pipeline.stages.common import cache_dir

# What run_finetune's metrics hold besides the result: timings and the host (-> the run log).
TIMINGS = ("train_seconds", "eval_seconds", "total_seconds")
HOST_FACTS = ("device", "torch_threads")


def finetune(params: Params, root: Path, model_name: str, task: str) -> Path:
    """Fine-tune ``models/<model>/base`` on sentence task ``task`` into ``models/<model>/<task>``.

    Dev/test scores also go to ``results/finetune/<model>-<task>.json`` (small, committed; DVC cannot
    declare a metrics file inside a directory output), the timings to ``results/runs/finetune/``.
    """
    from pipeline.finetune import run_finetune

    lay = Layout.of(params, root)
    out = lay.model_dir(model_name, task)
    metrics = run_finetune(lay.model_dir(model_name, "base"), out, task, params.finetune, cache_dir(params, root))
    finetune_record(model_name, metrics, params).write(lay.results.finetune(model_name, task))
    RunLog.now("finetune", f"{model_name}-{task}", {"stage": metrics["total_seconds"],
                                                    **{k: metrics[k] for k in TIMINGS}},
               **{k: metrics.get(k) for k in HOST_FACTS}).write(lay.results.run_log("finetune", model_name, task))
    return out


def finetune_record(model_name: str, metrics: dict[str, Any], params: Params) -> FinetuneResult:
    """The committed record of :func:`pipeline.finetune.run_finetune`'s metrics (no timings, no host)."""
    splits = [s for s in metrics["examples"] if s != "train"]
    majority = metrics["majority_baseline"]
    return FinetuneResult(
        model=model_name, task=metrics["task"], kind=metrics["kind"], base=metrics["base"],
        main_metric=metrics["main_metric"], scores={s: metrics[s] for s in splits},
        majority_baseline=None if majority is None else {
            s: {"label": b["label"], "scores": {k: v for k, v in b.items() if k != "label"}}
            for s, b in majority.items()},
        examples=metrics["examples"], steps=metrics["steps"], epochs_run=metrics["epochs_run"],
        train_loss=metrics["train_loss"], best_dev_step=metrics["best_dev_step"],
        dev_curve=tuple(metrics["dev_curve"]),
        provenance=Provenance.collect(params.finetune.model_dump(mode="json"), params.seed))
