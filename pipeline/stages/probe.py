"""Stage ``probe``: layer-wise probes with seeds, bootstrap intervals and the control task."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.atomic import atomic_dir
from pipeline.config import Params
from pipeline.layout import Layout
from pipeline.records import LayerResult, PackedCorrect, Provenance, RunLog, words_digest
from pipeline.stages.common import open_store, probe_kwargs

if TYPE_CHECKING:
    from pipeline.probing.linear import LinearProbe
    from pipeline.probing.solver import SolverConfig
    from pipeline.store import ActivationStore

log = logging.getLogger(__name__)


def probe(params: Params, root: Path, model_name: str, variant: str, task: str) -> Path:
    """Layer-wise probes on one store: accuracy per layer over seeds with bootstrap intervals,
    the control task's selectivity, and the trained probe (seed ``seeds[0]``) for the API.

    Writes ``results/layers/<model>/<variant>/<task>.json``, ``results/probes/<model>/<variant>/<task>/``
    and the run log ``results/runs/probe/<model>-<variant>-<task>.json``.
    """
    from pipeline.probing.solver import SolverConfig
    from pipeline.stats.bootstrap import accuracy_over_seeds

    lay = Layout.of(params, root).results
    st = open_store(params, root, model_name, variant, task)
    seeds = params.probe.seeds
    config = SolverConfig(**probe_kwargs(params), seed=seeds[0])
    t0 = time.perf_counter()
    trained, first = layer_probe(st, config)
    correct = seed_correct(st, seeds, config, trained)
    unc = {"layers": trained.layer_ids, "seeds": [int(s) for s in seeds],
           **accuracy_over_seeds(correct, n_boot=params.probe.n_boot, seed=params.seed),
           "label_names": list(st.label_names)}
    test = st.split_rows("test")
    test_labels = [st.label_names[i] for i in st.labels[test]]
    control = control_task(st, config, first["test"]["accuracy"]) if params.probe.control_task else None
    fit_seconds = first["history"].get("seconds")
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


def layer_probe(st: ActivationStore, config: SolverConfig) -> tuple[LinearProbe, dict[str, Any]]:
    """Probes of every layer of store ``st``: trained on train, epochs selected on dev, scored on dev and test.

    Returns the probe and a JSON-friendly record (settings, label names, dev and test evaluation, history).
    """
    from pipeline.probing.solver import fit
    from pipeline.probing.views import PerLayer

    view = PerLayer()
    probe, history = fit(*st.split("train"), *st.split("dev"), view=view, config=config, label_names=st.label_names)
    res = {
        "params": {**config.to_dict(), **view.to_json()},
        "label_names": list(st.label_names),
        "train_label_names": probe.label_names,
        "dev": probe.evaluate(*st.split("dev")),
        "test": probe.evaluate(*st.split("test")),
        "history": history.to_dict(),
        "standardized": config.standardize,
    }
    return probe, res


def seed_correct(st: ActivationStore, seeds: list[int], config: SolverConfig,
                 trained: LinearProbe | None = None) -> np.ndarray:
    """Test correctness ``bool [seeds, layers, words]`` of layer probes trained with each of ``seeds``.

    ``trained``: a probe already fitted on ``st`` with ``config`` (its seed included); it stands in for
    that seed instead of being trained again.
    """
    from pipeline.probing.solver import fit

    X_test, y_test = st.split("test")
    out = []
    for seed in seeds:
        if trained is not None and config.seed == int(seed):
            probe = trained
        else:
            probe, _ = fit(*st.split("train"), *st.split("dev"), config=replace(config, seed=int(seed)),
                           label_names=st.label_names)
        out.append(probe.correct(X_test, y_test))
    return np.stack(out)


def control_task(st: ActivationStore, config: SolverConfig, task_accuracy: list[float],
                 lowercase: bool = False) -> dict[str, Any]:
    """Layer probes on the control task of store ``st`` (seed ``config.seed``) and their selectivity per layer.

    The control labels use the training split's label distribution; ``config`` should be the task probe's
    and ``task_accuracy`` its test accuracy per layer. JSON-friendly.
    """
    from pipeline.probing.control import control_labels, label_distribution, selectivity
    from pipeline.probing.solver import fit
    from pipeline.probing.views import PerLayer

    words = st.flat_words()
    dist = label_distribution(st.split("train")[1], len(st.label_names))
    ctrl = control_labels(words, dist, seed=config.seed, lowercase=lowercase)
    data = {s: (st.split(s)[0], ctrl[st.split_rows(s)]) for s in ("train", "dev", "test")}
    view = PerLayer()
    probe, _ = fit(*data["train"], *data["dev"], view=view, config=config, label_names=st.label_names)
    control_test = probe.evaluate(*data["test"])
    return {
        "layers": control_test["layers"],
        "task_accuracy": task_accuracy,
        "control_accuracy": control_test["accuracy"],
        "selectivity": selectivity(task_accuracy, control_test["accuracy"]),
        "control": {"seed": config.seed, "lowercase": lowercase, "n_types": len(set(
            (w.lower() if lowercase else w) for w in words)), "distribution": dist.tolist()},
        "label_names": list(st.label_names),
        "params": {**config.to_dict(), **view.to_json()},
    }


def majority_baseline(st: ActivationStore) -> dict[str, Any]:
    """Test accuracy of always predicting the most frequent training label of store ``st``."""
    train, test = st.split("train")[1], st.split("test")[1]
    top = int(np.bincount(train, minlength=len(st.label_names)).argmax())
    return {"label": st.label_names[top], "test_accuracy": float((test == top).mean())}
