"""Profiles: complete parameter files under ``profiles/``; the active one is copied to ``params.yaml``.

``offline`` (the default, committed as ``params.yaml``) runs on pinned packages on a CPU;
``paper`` is the paper's setup (hub models, GLUE, licensed corpora) for a GPU machine with network.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.atomic import write_text
from pipeline.config import load_params
from pipeline.errors import ConfigError


def profiles_dir(params_path: Path) -> Path:
    """``profiles/`` next to ``params.yaml``."""
    return Path(params_path).resolve().parent / "profiles"


def available(params_path: Path) -> list[str]:
    """Names of the profiles under ``profiles/``."""
    return sorted(p.stem for p in profiles_dir(params_path).glob("*.yaml"))


def show_or_switch(params_path: Path | str, name: str | None) -> str:
    """Without ``name``: describe the active profile. With it: validate ``profiles/<name>.yaml`` and copy it
    to ``params_path`` (atomically); return what was done and what to run next."""
    params_path = Path(params_path)
    names = available(params_path)
    if name is None:
        params, _ = load_params(params_path)
        return (f"active profile: {params.profile} ({params_path}); available: {', '.join(names)}. "
                f"Switch with: python -m pipeline profile NAME")
    if name not in names:
        raise ConfigError(f"unknown profile {name!r}; available: {', '.join(names) or 'none'}",
                          f"Profiles are the YAML files in {profiles_dir(params_path)}.")
    src = profiles_dir(params_path) / f"{name}.yaml"
    params, _ = load_params(src)  # validate before touching params.yaml
    if params.profile != name:
        raise ConfigError(f"{src} says profile: {params.profile}, not {name}")
    write_text(params_path, src.read_text(encoding="utf-8"))
    return (f"{params_path} now holds the {name} profile ({len(params.models)} models x {len(params.variants)} "
            f"variants x {len(params.probe_tasks)} probing tasks). Preview: dvc repro --dry; run: dvc repro. "
            f"Back to the default: python -m pipeline profile offline")
