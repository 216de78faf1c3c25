"""Stage ``model``: materialise a model's base weights, or a user-supplied fine-tuned variant (safetensors)."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline import models
from pipeline.config import Params
from pipeline.errors import ConfigError
from pipeline.layout import Layout
from pipeline.stages.common import cache_dir

log = logging.getLogger(__name__)


def model(params: Params, root: Path, unit: str) -> Path:
    """Materialise model-stage ``unit`` (a key of ``params.model_stages``: a model name for its base, or
    ``<model>-<variant>`` for a user-supplied variant) into ``models/<model>/<variant>``, with
    :data:`pipeline.models.SOURCE_FILE` (revision or folder, sha256 per file) beside the weights."""
    if unit not in params.model_stages:
        raise ConfigError(f"--model {unit!r} is not a unit of the model stage; choose one of "
                          f"{list(params.model_stages)}", "Units are the models of params.yaml, and MODEL-VARIANT "
                                                          "for each user-supplied variant (model_stages).")
    st = params.model_stages[unit]
    spec = models.get_model(st.model, models.registry(params, root))
    dest = Layout.of(params, root).model_dir(st.model, st.variant)
    models.materialise(spec, dest, cache_dir(params, root), variant=st.variant)
    log.info("model %s/%s (%s) -> %s", st.model, st.variant, spec.source, dest)
    return dest
