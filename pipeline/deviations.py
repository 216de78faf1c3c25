"""Where a run's params differ from the paper profile's: the report's list of deviations, generated.

Usage (the report)::

    from pipeline.config import load_profile
    from pipeline.deviations import deviations

    for d in deviations(params, load_profile("paper", root)):
        print(d)          # finetune.epochs: 1 (paper profile: 3)

Deviations that the paper profile shares with every run (e.g. the probe optimiser) are not differences
between profiles, so they do not appear here; the field descriptions in :mod:`pipeline.config` note them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.config import Params

#: Keys never listed: which profile a file holds is not a setting, ``checkpoints`` follows from
#: ``variants`` and ``finetune.seeds`` and ``model_stages`` from ``models`` and ``model_sources`` (listed
#: themselves where they differ); a user's own models (``model_sources``) show up in ``models``.
SKIPPED = frozenset({"profile", "checkpoints", "model_stages", "model_sources"})


@dataclass(frozen=True)
class Deviation:
    """One param that differs: its dotted key, our value and the reference's (JSON values: lists, not tuples)."""

    key: str
    ours: Any
    paper: Any

    def __str__(self) -> str:
        return f"{self.key}: {_show(self.ours)} (paper profile: {_show(self.paper)})"


class _Unset:
    """A key that one side's mapping lacks (e.g. ``finetune.model_max_train_examples.mpnet`` against a profile
    without per-model caps)."""

    def __repr__(self) -> str:
        return "UNSET"


#: The value of a key one side does not set; shown as "not set".
UNSET: Any = _Unset()


def _show(value: Any) -> str:
    if value is UNSET:
        return "not set"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay whole values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def deviations(params: Params, reference: Params) -> list[Deviation]:
    """Every param whose value in ``params`` differs from ``reference`` (normally the paper profile), in the
    order of the parameter file; a list counts as one value, ``profile`` is skipped. A key of a mapping-valued
    param (a per-model cap) that only one side sets differs from :data:`UNSET` on the other side."""
    ours = _flat(params.model_dump(mode="json"))
    theirs = _flat(reference.model_dump(mode="json"))
    keys = [*ours, *(k for k in theirs if k not in ours)]
    return [Deviation(k, ours.get(k, UNSET), theirs.get(k, UNSET)) for k in keys
            if k.split(".")[0] not in SKIPPED and ours.get(k, UNSET) != theirs.get(k, UNSET)]
