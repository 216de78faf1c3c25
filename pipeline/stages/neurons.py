"""Stage ``neurons``: the salience-gated neuron analysis (oracles, rankings, grid-scanned minimal set, C5, gate)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.config import Params
from pipeline.layout import Layout
from pipeline.records import NeuronResult, Provenance, RunLog
from pipeline.stages.common import open_store, probe_kwargs

log = logging.getLogger(__name__)


def neurons(params: Params, root: Path, model_name: str, variant: str, task: str) -> Path:
    """The salience-gated neuron analysis of one store (:func:`pipeline.probing.neuron_analysis.analyse_neurons`):
    oracles over seeds, raw and standardised rankings, minimal set by grid scan, C5's layer statistic, the
    salience gate, and oracle seed 0's ordering, minimal set, baselines and ablation.

    Writes ``results/neurons/<model>/<variant>/<task>.json`` and the run log
    ``results/runs/neurons/<model>-<variant>-<task>.json``.
    """
    from pipeline.probing.neuron_analysis import analyse_neurons
    from pipeline.probing.solver import SolverConfig

    lay = Layout.of(params, root).results
    st = open_store(params, root, model_name, variant, task)
    t0 = time.perf_counter()
    res = analyse_neurons(*st.split("train"), *st.split("dev"), *st.split("test"), label_names=st.label_names,
                          params=params.neurons, config=SolverConfig(**probe_kwargs(params)))
    res["all_label_names"] = list(st.label_names)
    result = NeuronResult.model_validate({
        **res, "model": model_name, "variant": variant, "task": task,
        "provenance": Provenance.collect({"neurons": params.neurons.model_dump(mode="json"),
                                          "probe": params.probe.provenance()}, params.seed,
                                         st.meta.get("model_source")),
    })
    out = result.write(lay.neurons(model_name, variant, task))
    seconds = time.perf_counter() - t0
    RunLog.now("neurons", f"{model_name}-{variant}-{task}", {"stage": seconds}).write(
        lay.run_log("neurons", model_name, variant, task))
    log.info("neurons %s/%s/%s: minimal set %d of %d neurons, %s (%.1f s) -> %s", model_name, variant, task,
             result.k, result.n_neurons, "salient" if result.salience.salient else "not salient", seconds, out)
    return out
