"""Stage ``finetune``: fine-tune a base model on a sentence task."""

from __future__ import annotations

from pathlib import Path

from pipeline import models
from pipeline.config import Params
from pipeline.stages.common import cache_dir


def finetune(params: Params, root: Path, model_name: str, task: str) -> Path:
    """Fine-tune ``models/<model>/base`` on sentence task ``task`` into ``models/<model>/<task>``.

    Dev/test metrics also go to ``results/finetune/<model>-<task>.json`` (small, committed).
    """
    from pipeline.finetune import run_finetune

    mroot = root / params.paths.models
    out = models.variant_dir(mroot, model_name, task)
    run_finetune(models.variant_dir(mroot, model_name, "base"), out, task, params.finetune, cache_dir(params, root),
                 metrics_copy=root / params.paths.results / "finetune" / f"{model_name}-{task}.json")
    return out
