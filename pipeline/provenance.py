"""What to write next to every result (library versions, seeds, resolved config), and the host facts that
belong only in the untracked run log (they change from machine to machine, not with the inputs)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pydantic", "accelerate", "datasets", "dvc")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape results (``"absent"`` if not installed).

    The same virtual environment gives the same versions, so they may sit in committed files; the host
    (kernel, CPU) does not: see :func:`host_facts`.
    """
    out = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    from pipeline import __version__

    out["lingshift"] = __version__
    return out


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``), for benchmark records."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def host_facts() -> dict[str, Any]:
    """The machine a stage ran on (platform string, CPU, cores): for the run log, never a committed file."""
    return {"platform": platform.platform(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0]}


def stamp(config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A provenance dict for the metadata of DVC-cached outputs (data, activations, models): versions,
    the resolved config section used, and extras (seed...). Result files use
    :class:`pipeline.records.Provenance` instead."""
    rec: dict[str, Any] = {"versions": library_versions()}
    if config is not None:
        rec["config"] = config
    rec.update(extra)
    return rec
