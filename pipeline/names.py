"""Names in the parameters (models, probing tasks, sentence tasks) checked against their registries.

Kept out of :mod:`pipeline.config` so that the config module imports no registry (it is plumbing
that no stage result depends on); the CLI, the profile switch and the API call :func:`load_checked`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipeline.config import Params, load_params
from pipeline.errors import ConfigError


def _unknown(names: list[str], registry: Mapping[str, object], key: str, what: str, source: Path | str) -> None:
    bad = [n for n in names if n not in registry]
    if bad:
        raise ConfigError(f"{source}: {key}: unknown {what}(s) {bad}; valid: {sorted(registry)}",
                          "List the valid names with: python -m pipeline tasks")


def check_names(params: Params, source: Path | str = "params") -> Params:
    """``params`` if every model and task it names is registered, else a :class:`ConfigError` naming the key."""
    from pipeline.data import PROBE_TASKS, SENTENCE_TASKS
    from pipeline.models import MODELS, overrides_revision


    clash = sorted(n for n, s in params.model_sources.items() if n in MODELS and not overrides_revision(n, s))
    if clash:
        raise ConfigError(f"{source}: model_sources: {clash} are built-in model names",
                          "Give your own models other names (python -m pipeline tasks lists the built-in ones); "
                          "only a built-in hub model may be re-pinned, with its own name and hub id.")
    _unknown(params.models, {**MODELS, **params.model_sources}, "models", "model", source)
    _unknown(params.probe_tasks, PROBE_TASKS, "probe_tasks", "probing task", source)
    _unknown(params.sentence_tasks, SENTENCE_TASKS, "sentence_tasks", "sentence task", source)
    return params


def load_checked(path: Path | str = "params.yaml") -> tuple[Params, Path]:
    """:func:`pipeline.config.load_params` plus :func:`check_names`: the params and the folder paths are relative to."""
    params, root = load_params(path)
    return check_names(params, path), root
