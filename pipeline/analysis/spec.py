"""The claims specification ``claims.yaml``, read and validated: principles, claims, independence groups,
changelog, and the sha256 of the file's bytes (what ``results/claims.json`` records as ``spec_sha256``)."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.errors import LingShiftError

#: The file's name at the repository root.
SPEC_FILE = "claims.yaml"
#: The claims the engine implements, in order.
CLAIM_IDS = ("C1", "C2", "C3", "C4", "C5")


class SpecError(LingShiftError):
    """claims.yaml is missing or not a valid claims specification."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Principle(_Strict):
    id: str
    text: str


class ChangelogEntry(_Strict):
    date: datetime.date
    change: str
    seen: str


class ClaimSpec(_Strict):
    """One claim: statement, statistic, threshold(s), side(s), unit, and its claim-specific lists."""

    title: str
    statement: str
    statistic: str
    threshold: float | str | None = None
    thresholds: dict[str, float] = {}
    side: str | dict[str, str]
    unit: str
    needs: str
    forgetting_tasks: tuple[str, ...] = ()
    keeping_tasks: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    gate: str | None = None

    def number(self, name: str) -> float:
        """The threshold called ``name`` (``threshold`` for the main one); a SpecError if it is not a number."""
        value = self.threshold if name == "threshold" else self.thresholds.get(name)
        if not isinstance(value, int | float):
            raise SpecError(f"{SPEC_FILE}: threshold {name!r} is {value!r}, not a number",
                            "Fix claims.yaml (with a dated changelog entry).")
        return float(value)


class Spec(_Strict):
    """The whole specification; ``sha256`` is that of the file's bytes."""

    spec_version: int
    principles: tuple[Principle, ...]
    independence: dict[str, tuple[str, ...]] = {}
    layers: str
    claims: dict[str, ClaimSpec]
    changelog: tuple[ChangelogEntry, ...]
    sha256: str

    def group_of(self, task: str) -> str:
        """The independence group (P5) of probing task ``task``: its listed group, else the task itself."""
        for group, tasks in self.independence.items():
            if task in tasks:
                return group
        return task

    def claim(self, cid: str) -> ClaimSpec:
        return self.claims[cid]


def spec_path(root: Path | str) -> Path:
    """``<root>/claims.yaml``."""
    return Path(root) / SPEC_FILE


def load_spec(path: Path | str) -> Spec:
    """Read and validate ``claims.yaml``; every claim of :data:`CLAIM_IDS` must be specified."""
    path = Path(path)
    hint = "Restore claims.yaml with git checkout, or fix it (with a dated changelog entry)."
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise SpecError(f"{path} cannot be read ({err})", hint) from None
    try:
        data: Any = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise SpecError(f"{path} is not valid YAML ({err})", hint) from None
    if not isinstance(data, dict):
        raise SpecError(f"{path} holds {type(data).__name__}, not a mapping", hint)
    try:
        spec = Spec.model_validate({**data, "sha256": hashlib.sha256(raw).hexdigest()})
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise SpecError(f"{path}: field {loc}: {first['msg']}", hint) from None
    missing = [c for c in CLAIM_IDS if c not in spec.claims]
    if missing:
        raise SpecError(f"{path} does not specify claims {missing}", hint)
    seen: dict[str, str] = {}
    for group, tasks in spec.independence.items():
        for t in tasks:
            if t in seen:
                raise SpecError(f"{path}: task {t!r} is in two independence groups ({seen[t]}, {group})", hint)
            seen[t] = group
    return spec
