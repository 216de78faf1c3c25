"""Stage ``extract``: word-level activations of one model variant on one probing task."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline import models
from pipeline.config import Params
from pipeline.data import get_probe_task
from pipeline.data.splits import SPLITS, read_split
from pipeline.layout import Layout
from pipeline.provenance import stamp
from pipeline.records import RunLog

log = logging.getLogger(__name__)


def extract(params: Params, root: Path, model_name: str, variant: str, task: str) -> Path:
    """Extract word activations of ``model_name``/``variant`` on ``task`` into ``activations/...``.

    The store holds only what the inputs determine; the speed goes to ``results/runs/extract/``.
    """
    from pipeline.extract import extract_to_store, resolve_device

    get_probe_task(task)
    lay = Layout.of(params, root)
    parts = {s: read_split(lay.split_file(task, s), f"{task}:{s}") for s in SPLITS}
    sentences, labels, ranges = [], [], {}
    for s in SPLITS:
        start = len(sentences)
        sentences += [list(x.words) for x in parts[s].sentences]
        labels += [list(x.labels) for x in parts[s].sentences]
        ranges[s] = (start, len(sentences))
    models.get_model(model_name, models.registry(params, root))
    device = resolve_device(params.extract.device)
    model_dir = lay.model_dir(model_name, variant)
    record = models.read_source(model_dir)  # hub revision or user folder + sha256s, for the results' provenance
    source = {"model_source": record} if record is not None else {}
    tokenizer, enc = models.load(model_dir, str(device))
    out = lay.activation_dir(model_name, variant, task)
    t0 = time.perf_counter()
    stats = extract_to_store(
        tokenizer, enc, sentences, labels, ranges, out,
        meta={"model": model_name, "variant": variant, "task": task,
              "aggregation": params.extract.aggregation,
              **stamp(params.extract.model_dump(mode="json"), seed=params.seed, **source)},
        aggregation=params.extract.aggregation, batch_size=params.extract.batch_size,
        max_length=params.extract.max_length,
    )
    seconds = time.perf_counter() - t0
    RunLog.now("extract", f"{model_name}-{variant}-{task}",
               {"stage": seconds, "extract": stats.seconds, "words_per_second": stats.words_per_second},
               device=str(device)).write(lay.results.run_log("extract", model_name, variant, task))
    log.info("stage extract %s/%s/%s done in %.1f s", model_name, variant, task, seconds)
    return out
