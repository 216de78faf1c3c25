"""Stage ``neurons``: neuron-level LCA (oracle, ordering, minimal set, baselines)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.atomic import write_json
from pipeline.config import Params
from pipeline.provenance import stamp
from pipeline.stages.common import open_store, probe_kwargs

log = logging.getLogger(__name__)


def neurons(params: Params, root: Path, model_name: str, variant: str, task: str) -> Path:
    """LCA on one store: oracle, neuron ordering, minimal set, its spread over layers, baselines.

    Writes ``results/neurons/<model>/<variant>/<task>.json``.
    """
    from pipeline.probing.lca import lca
    from pipeline.probing.solver import SolverConfig

    st = open_store(params, root, model_name, variant, task)
    t0 = time.perf_counter()
    res = lca(*st.split("train"), *st.split("dev"), *st.split("test"), label_names=st.label_names,
              ratio=params.neurons.ratio, search_stride=params.neurons.search_stride, seed=params.neurons.seed,
              config=SolverConfig(**probe_kwargs(params)))
    res["all_label_names"] = list(st.label_names)
    res.update(model=model_name, variant=variant, task=task, seconds=round(time.perf_counter() - t0, 2),
               **stamp({"neurons": params.neurons.model_dump(mode="json"),
                        "probe": params.probe.model_dump(mode="json")}, seed=params.seed))
    out = root / params.paths.results / "neurons" / model_name / variant / f"{task}.json"
    write_json(out, res)
    log.info("neurons %s/%s/%s: minimal set %s of %d neurons (%.1f s) -> %s", model_name, variant, task,
             res.get("minimal_set", {}).get("k", "?"), st.n_layers * st.dim, res["seconds"], out)
    return out
