"""Stage ``extract``: word-level activations of one model variant on one probing task.

Probing tasks over the same sentences (``pos-wsj`` and ``chunk-wsj``) share one extraction: the stage keys
a store by everything that determines its activations (:func:`inputs_digest`), and when a sibling task's
store of the same model variant has the same key it links that store's activations instead of running the
model again (:func:`pipeline.store.link_store`). A lock per model variant makes the second task wait for
the first, and the store written either way is byte for byte the same.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline import models
from pipeline.config import Params
from pipeline.data import get_probe_task
from pipeline.data.splits import SPLITS, read_split
from pipeline.layout import Layout
from pipeline.provenance import library_versions, stamp
from pipeline.records import RunLog

log = logging.getLogger(__name__)

#: The modules whose code decides the activations (part of a store's key, besides the library versions).
KEY_MODULES = ("extract.py", "store.py", "models.py", "precision.py")
#: What extract_to_store adds to the stage's meta (copied from a linked store; the same for the same key).
COMPUTED_META = ("extraction", "float16_overflows", "tokenizer_uncased")


def inputs_digest(model_dir: Path, sentences: Sequence[Sequence[str]], ranges: dict[str, tuple[int, int]],
                  settings: dict[str, Any], autocast: str) -> str:
    """sha256 of what an extraction's activations depend on: the checkpoint's files, the sentences and
    splits, the extraction settings and autocast dtype, the extraction code and the library versions."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(model_dir).rglob("*") if p.is_file()):
        with f.open("rb") as fh:
            h.update(f"{f.relative_to(model_dir).as_posix()}:{hashlib.file_digest(fh, 'sha256').hexdigest()}\n"
                     .encode())
    code = Path(__file__).resolve().parent.parent
    for name in KEY_MODULES:
        h.update(hashlib.sha256((code / name).read_bytes()).digest())
    versions = {k: v for k, v in library_versions().items() if k in ("torch", "transformers", "tokenizers")}
    h.update(json.dumps([sentences, ranges, settings, autocast, versions], sort_keys=True).encode())
    return h.hexdigest()


@contextmanager
def variant_lock(lay: Layout, model_name: str, variant: str) -> Iterator[None]:
    """Hold an exclusive lock on ``activations/.locks/<model>-<variant>.lock`` (the extractions of one model
    variant, one at a time; the folder is outside every store, so no output holds a stray file)."""
    folder = lay.activations / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{model_name}-{variant}.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def shared_store(lay: Layout, params: Params, model_name: str, variant: str, task: str, digest: str) -> Any:
    """A sibling task's store of ``model_name``/``variant`` with the same inputs digest, or None."""
    from pipeline.store import ActivationStore, StoreError

    for other in params.probe_tasks:
        if other == task:
            continue
        path = lay.activation_dir(model_name, variant, other)
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("inputs_digest") == digest:
            try:
                return ActivationStore(path)
            except StoreError:
                continue
    return None


def extract(params: Params, root: Path, model_name: str, variant: str, task: str) -> Path:
    """Extract word activations of ``model_name``/``variant`` on ``task`` into ``activations/...``.

    The store holds only what the inputs determine; the speed goes to ``results/runs/extract/``.
    """
    from pipeline.extract import extract_to_store, label_index, resolve_device
    from pipeline.precision import autocast_dtype
    from pipeline.store import link_store

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
    amp = autocast_dtype(params.extract.mixed_precision, device)
    autocast = str(amp).removeprefix("torch.") if amp is not None else "float32"
    model_dir = lay.model_dir(model_name, variant)
    record = models.read_source(model_dir)  # hub revision or user folder + sha256s, for the results' provenance
    source = {"model_source": record} if record is not None else {}
    settings = params.extract.model_dump(mode="json")
    out = lay.activation_dir(model_name, variant, task)
    t0 = time.perf_counter()
    with variant_lock(lay, model_name, variant):
        digest = inputs_digest(model_dir, sentences, ranges, settings, autocast)
        meta = {"model": model_name, "variant": variant, "task": task, "aggregation": params.extract.aggregation,
                "autocast": autocast, "inputs_digest": digest,
                **stamp(settings, seed=params.seed, **source)}
        sibling = shared_store(lay, params, model_name, variant, task, digest)
        if sibling is not None:
            flat, names = label_index(labels)
            link_store(sibling, out, flat, names, {**meta, **{k: sibling.meta[k] for k in COMPUTED_META}})
            seconds = time.perf_counter() - t0
            log.info("stage extract %s/%s/%s: same sentences and model as %s, activations linked in %.1f s",
                     model_name, variant, task, sibling.path, seconds)
            RunLog.now("extract", f"{model_name}-{variant}-{task}", {"stage": seconds},
                       device=str(device), linked_from=sibling.meta["task"]).write(
                lay.results.run_log("extract", model_name, variant, task))
            return out
        tokenizer, enc = models.load(model_dir, str(device))
        stats = extract_to_store(
            tokenizer, enc, sentences, labels, ranges, out, meta=meta,
            aggregation=params.extract.aggregation, batch_size=params.extract.batch_size,
            max_length=params.extract.max_length, mixed_precision=params.extract.mixed_precision,
        )
    seconds = time.perf_counter() - t0
    RunLog.now("extract", f"{model_name}-{variant}-{task}",
               {"stage": seconds, "extract": stats.seconds, "words_per_second": stats.words_per_second},
               device=str(device), autocast=autocast).write(lay.results.run_log("extract", model_name, variant, task))
    log.info("stage extract %s/%s/%s done in %.1f s", model_name, variant, task, seconds)
    return out
