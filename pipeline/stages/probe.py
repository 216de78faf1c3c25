"""Stage ``probe``: layer-wise probes with seeds, bootstrap intervals and the control task."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_dir
from pipeline.config import Params
from pipeline.layout import Layout
from pipeline.records import LayerResult, PackedCorrect, Provenance, RunLog, words_digest
from pipeline.stages.common import open_store, probe_kwargs

log = logging.getLogger(__name__)


def probe(params: Params, root: Path, model_name: str, variant: str, task: str) -> Path:
    """Layer-wise probes on one store: accuracy per layer over seeds with bootstrap intervals,
    the control task's selectivity, and the trained probe (seed ``seeds[0]``) for the API.

    Writes ``results/layers/<model>/<variant>/<task>.json``, ``results/probes/<model>/<variant>/<task>/``
    and the run log ``results/runs/probe/<model>-<variant>-<task>.json``.
    """
    from pipeline.control import control_task_store
    from pipeline.probe import probe_store
    from pipeline.uncertainty import probe_with_uncertainty

    lay = Layout.of(params, root).results
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
    fit_seconds = getattr(getattr(trained, "history_", None), "seconds", None)
    result = LayerResult.model_validate({
        "model": model_name, "variant": variant, "task": task, "layers": unc["layers"],
        "test_accuracy": unc, "dev_accuracy": first["dev"]["accuracy"],
        "seed0": {**first, "history": {k: v for k, v in first["history"].items() if k != "seconds"}},
        "control": control, "n_test_words": int(test.stop - test.start),
        "majority_baseline": majority_baseline(st),
        "test_correct": PackedCorrect.encode(correct),
        "test_words_sha256": words_digest(st.flat_words()[test], test_labels),
        "store": {k: st.meta[k] for k in ("n_words", "n_layers", "dim", "aggregation", "splits")},
        "provenance": Provenance.collect(params.probe.model_dump(mode="json"), params.seed),
    })
    out = result.write(lay.layer(model_name, variant, task))
    with atomic_dir(lay.probe_dir(model_name, variant, task)) as tmp:
        trained.save(tmp)
    seconds = time.perf_counter() - t0
    timings = {"stage": seconds, **({"seed0_fit": fit_seconds} if fit_seconds else {})}
    RunLog.now("probe", f"{model_name}-{variant}-{task}", timings).write(
        lay.run_log("probe", model_name, variant, task))
    log.info("probe %s/%s/%s: test accuracy per layer %s (%.1f s) -> %s", model_name, variant, task,
             " ".join(f"{a:.3f}" for a in result.mean), seconds, out)
    return out


def majority_baseline(st: Any) -> dict[str, Any]:
    """Test accuracy of always predicting the most frequent training label of store ``st``."""
    train, test = st.labels[st.split_rows("train")], st.labels[st.split_rows("test")]
    top = int(np.bincount(train, minlength=len(st.label_names)).argmax())
    return {"label": st.label_names[top], "test_accuracy": float((test == top).mean())}
