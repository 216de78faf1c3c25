"""Stage ``probe``: layer-wise probes with seeds, bootstrap intervals and the control task."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_dir, write_json
from pipeline.config import Params
from pipeline.provenance import stamp
from pipeline.results import encode_correct, words_digest
from pipeline.stages.common import open_store, probe_kwargs

log = logging.getLogger(__name__)


def probe(params: Params, root: Path, model_name: str, variant: str, task: str) -> Path:
    """Layer-wise probes on one store: accuracy per layer over seeds with bootstrap intervals,
    the control task's selectivity, and the trained probe (seed ``seeds[0]``) for the API.

    Writes ``results/layers/<model>/<variant>/<task>.json`` and ``results/probes/<model>/<variant>/<task>/``.
    """
    from pipeline.control import control_task_store
    from pipeline.probe import probe_store
    from pipeline.uncertainty import probe_with_uncertainty

    st = open_store(params, root, model_name, variant, task)
    kw = probe_kwargs(params)
    seeds = params.probe.seeds
    t0 = time.perf_counter()
    trained, first = probe_store(st, seed=seeds[0], **kw)
    unc = probe_with_uncertainty(st, seeds=seeds, n_boot=params.probe.n_boot, boot_seed=params.seed,
                                 trained=trained, keep_correct=True, **kw)
    correct = unc.pop("correct")
    test = st.split_rows("test")
    test_labels = [st.label_names[i] for i in st.labels[test]]
    control = control_task_store(st, seed=seeds[0], task_result=first, **kw) if params.probe.control_task else None
    result = {
        "model": model_name, "variant": variant, "task": task, "layers": unc["layers"],
        "test_accuracy": unc, "dev_accuracy": first["dev"]["accuracy"], "seed0": first,
        "control": control, "n_test_words": int(test.stop - test.start),
        "majority_baseline": majority_baseline(st),
        "test_correct": encode_correct(correct),
        "test_words_sha256": words_digest(st.flat_words()[test], test_labels),
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


def majority_baseline(st: Any) -> dict[str, Any]:
    """Test accuracy of always predicting the most frequent training label of store ``st``."""
    train, test = st.labels[st.split_rows("train")], st.labels[st.split_rows("test")]
    top = int(np.bincount(train, minlength=len(st.label_names)).argmax())
    return {"label": st.label_names[top], "test_accuracy": float((test == top).mean())}
