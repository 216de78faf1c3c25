"""What several stages share: the resource cache, opening a store, the probe settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import resources
from pipeline.config import Params
from pipeline.layout import Layout


def cache_dir(params: Params, root: Path) -> Path:
    """The resource cache: ``paths.cache`` (relative to ``root``) or ``$LINGSHIFT_CACHE`` / the default."""
    return resources.cache_dir(Layout.of(params, root).cache)


def open_store(params: Params, root: Path, model_name: str, variant: str, task: str) -> Any:
    """The :class:`pipeline.store.ActivationStore` of ``activations/<model>/<variant>/<task>``."""
    from pipeline.store import ActivationStore

    return ActivationStore(Layout.of(params, root).activation_dir(model_name, variant, task))


def probe_kwargs(params: Params) -> dict[str, Any]:
    """The :class:`pipeline.probing.solver.SolverConfig` settings from ``params.probe`` (the rest: its defaults)."""
    p = params.probe
    return {"l1": p.l1, "l2": p.l2, "epochs": p.epochs, "batch_size": p.batch_size, "lr": p.lr,
            "precision": p.precision}
