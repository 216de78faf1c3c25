"""Stage ``extract``: word-level activations of one model variant on one probing task."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline import models
from pipeline.config import Params
from pipeline.data import get_probe_task
from pipeline.data.splits import SPLITS, read_split
from pipeline.provenance import stamp

log = logging.getLogger(__name__)


def extract(params: Params, root: Path, model_name: str, variant: str, task: str) -> Path:
    """Extract word activations of ``model_name``/``variant`` on ``task`` into ``activations/...``."""
    from pipeline.extract import extract_to_store, resolve_device

    get_probe_task(task)
    data = root / params.paths.data / task
    parts = {s: read_split(data / f"{s}.tsv", f"{task}:{s}") for s in SPLITS}
    sentences, labels, ranges = [], [], {}
    for s in SPLITS:
        start = len(sentences)
        sentences += [list(x.words) for x in parts[s].sentences]
        labels += [list(x.labels) for x in parts[s].sentences]
        ranges[s] = (start, len(sentences))
    mdir = models.variant_dir(root / params.paths.models, model_name, variant)
    tokenizer, enc = models.load(mdir, str(resolve_device(params.extract.device)))
    out = root / params.paths.activations / model_name / variant / task
    t0 = time.perf_counter()
    extract_to_store(
        tokenizer, enc, sentences, labels, ranges, out,
        meta={"model": model_name, "variant": variant, "task": task,
              "aggregation": params.extract.aggregation,
              **stamp(params.extract.model_dump(mode="json"), seed=params.seed)},
        aggregation=params.extract.aggregation, batch_size=params.extract.batch_size,
        max_length=params.extract.max_length,
    )
    log.info("stage extract %s/%s/%s done in %.1f s", model_name, variant, task, time.perf_counter() - t0)
    return out
