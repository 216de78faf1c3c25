"""Stage ``prepare``: fetch a probing corpus, split it, cap the training tokens."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.atomic import atomic_dir, write_json
from pipeline.config import Params
from pipeline.data import LoadContext, get_probe_task, load_probe_splits
from pipeline.data.splits import SPLITS, cap_tokens, write_split
from pipeline.layout import Layout
from pipeline.provenance import stamp
from pipeline.stages.common import cache_dir

log = logging.getLogger(__name__)


def prepare(params: Params, root: Path, task: str) -> Path:
    """Fetch and verify the corpus of probing task ``task``; write ``data/<task>/{train,dev,test}.tsv``."""
    spec = get_probe_task(task)
    lay = Layout.of(params, root)
    ctx = LoadContext(cache=cache_dir(params, root), corpora_dir=lay.corpora, fractions=params.prepare.split_fractions)
    splits = load_probe_splits(task, ctx)
    splits["train"] = cap_tokens(splits["train"], params.prepare.max_train_tokens)
    out = lay.data_dir(task)
    with atomic_dir(out) as tmp:
        counts = {}
        for name in SPLITS:
            write_split(splits[name], tmp / f"{name}.tsv")
            counts[name] = {"sentences": len(splits[name]), "tokens": splits[name].n_tokens}
        labels = sorted(set().union(*(splits[s].label_counts() for s in SPLITS)))
        write_json(tmp / "meta.json", {
            "task": task, "kind": spec.kind, "label_quality": spec.labels, "description": spec.description,
            "counts": counts, "labels": labels, "n_labels": len(labels),
            "provenance": splits["train"].provenance,
            **stamp(params.prepare.model_dump(mode="json"), seed=params.seed),
        })
    log.info("%s: %s -> %s", task, ", ".join(f"{k} {v['sentences']} sent/{v['tokens']} tok" for k, v in counts.items()),
             out)
    return out
