"""What to write next to every result: library versions, seeds, resolved config."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from typing import Any

_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pydantic", "accelerate", "datasets", "dvc")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape results (``"absent"`` if not installed)."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
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
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def stamp(config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A provenance record: versions, the resolved config section used, and extras (seed...)."""
    rec: dict[str, Any] = {"versions": library_versions()}
    if config is not None:
        rec["config"] = config
    rec.update(extra)
    return rec
