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


#: CPU flags that change which kernels torch runs, and so the last bits of results: bfloat16 autocast is on
#: (``finetune.mixed_precision: auto``) only where the CPU has native bfloat16.
NUMERIC_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU, precisely enough to tell whether two machines compute the same bits: its model name, family and
    model numbers, and the :data:`NUMERIC_FLAGS` it has, e.g. ``AMD EPYC (family 25 model 1; avx2 fma)``
    (``/proc/cpuinfo`` on Linux, else ``platform.processor()``). Hypervisors often show every generation as
    ``AMD EPYC``; an EPYC without AVX-512 and one with bfloat16 (where fine-tuning autocasts to bf16) then
    differ only in the numbers and flags."""
    try:
        fields: dict[str, str] = {}
        for line in cpuinfo.read_text().splitlines():
            if not line.strip():
                break  # the first processor is enough
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        fields = {}
    if "model name" not in fields:
        return platform.processor()
    flags = set(fields.get("flags", "").split())
    have = " ".join(f for f in NUMERIC_FLAGS if f in flags) or "none of " + " ".join(NUMERIC_FLAGS)
    return f"{fields['model name']} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')}; {have})"


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
