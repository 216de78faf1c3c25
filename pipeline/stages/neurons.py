"""Stage ``neurons``: neuron-level LCA (oracle, ordering, minimal set, baselines)."""

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
    """LCA on one store: oracle, neuron ordering, minimal set, its spread over layers, baselines.

    Writes ``results/neurons/<model>/<variant>/<task>.json`` and the run log
    ``results/runs/neurons/<model>-<variant>-<task>.json``.
    """
    from pipeline.probing.lca import lca
    from pipeline.probing.solver import SolverConfig

    lay = Layout.of(params, root).results
    st = open_store(params, root, model_name, variant, task)
    t0 = time.perf_counter()
    res = lca(*st.split("train"), *st.split("dev"), *st.split("test"), label_names=st.label_names,
              ratio=params.neurons.ratio, search_stride=params.neurons.search_stride, seed=params.neurons.seed,
              config=SolverConfig(**probe_kwargs(params)))
    res["all_label_names"] = list(st.label_names)
    result = NeuronResult.model_validate({
        **res, "model": model_name, "variant": variant, "task": task,
        "provenance": Provenance.collect({"neurons": params.neurons.model_dump(mode="json"),
                                          "probe": params.probe.model_dump(mode="json")}, params.seed),
    })
    out = result.write(lay.neurons(model_name, variant, task))
    seconds = time.perf_counter() - t0
    RunLog.now("neurons", f"{model_name}-{variant}-{task}", {"stage": seconds}).write(
        lay.run_log("neurons", model_name, variant, task))
    log.info("neurons %s/%s/%s: minimal set %d of %d neurons (%.1f s) -> %s", model_name, variant, task,
             result.k, result.n_neurons, seconds, out)
    return out
