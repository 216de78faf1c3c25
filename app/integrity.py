"""Integrity of the served files: the md5 that ``dvc.lock`` records for each stage output, and checks of a
result file or a trained probe's folder against it.

Only the lock file is read; DVC is not called. DVC's ``md5`` of a file is the md5 of its bytes; of a folder it
is the md5 of the folder's listing, ``[{"md5": <file md5>, "relpath": <posix path>}, ...]`` sorted by relpath
and written by ``json.dumps(..., sort_keys=True)``, with ``.dir`` appended (as ``dvc-data`` computes it).

Every message here names files by their role (``probe.json``, "the file"), never by a server path.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import yaml

log = logging.getLogger(__name__)


class LockError(Exception):
    """``dvc.lock`` exists but cannot be read as a lock file."""


def recorded_md5s(lock: Path) -> dict[str, str] | None:
    """``{out path relative to the repository: md5}`` of every stage output in ``lock``; None without a lock.

    Raises :class:`LockError` when the file is not a readable lock (its message holds no server path).
    """
    try:
        text = lock.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise LockError(f"dvc.lock cannot be read ({type(err).__name__})") from None
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: ~20x faster
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise LockError(f"dvc.lock is not valid YAML{where}") from None
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict):
        raise LockError("dvc.lock has no 'stages' mapping")
    out: dict[str, str] = {}
    for stage in stages.values():
        for entry in (stage or {}).get("outs") or []:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("md5"), str):
                out[entry["path"].replace("\\", "/").strip("/")] = entry["md5"]
    return out


def bytes_md5(data: bytes) -> str:
    """DVC's md5 of a file with these bytes."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def folder_md5(files: dict[str, bytes]) -> str:
    """DVC's ``<md5>.dir`` of a folder holding ``files`` (``{relpath: bytes}``)."""
    listing = sorted(({"md5": bytes_md5(b), "relpath": rel} for rel, b in files.items()),
                     key=lambda e: e["relpath"])
    return bytes_md5(json.dumps(listing, sort_keys=True).encode("utf-8")) + ".dir"


def read_folder(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` as ``{posix relpath: bytes}`` (symlinks followed, as DVC does)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def json_problem(data: bytes) -> tuple[object, str | None]:
    """``(parsed JSON, None)``, or ``(None, what is wrong)`` for bytes that are not one UTF-8 JSON document."""
    try:
        return json.loads(data.decode("utf-8")), None
    except UnicodeDecodeError as err:
        return None, f"not UTF-8 text (byte {err.start})"
    except json.JSONDecodeError as err:
        return None, f"not valid JSON ({err.msg}: line {err.lineno}, column {err.colno}; truncated or damaged?)"


def probe_folder_problem(files: dict[str, bytes]) -> str | None:
    """What is wrong with a trained probe's files (``probe.json`` + ``probe.safetensors``), or None.

    Both files are parsed: the metadata as JSON of the probe format, the weights as safetensors.
    """
    from safetensors.numpy import load as load_tensors

    from pipeline.probing.linear import KIND, META_FILE, PROBE_FORMAT, WEIGHTS_FILE

    missing = [name for name in (META_FILE, WEIGHTS_FILE) if name not in files]
    if missing:
        return f"{' and '.join(missing)} missing"
    meta, bad = json_problem(files[META_FILE])
    if bad:
        return f"{META_FILE} is {bad}"
    if not isinstance(meta, dict) or meta.get("format") not in (1, PROBE_FORMAT) \
            or (meta.get("format") == PROBE_FORMAT and meta.get("kind") != KIND):
        return f"{META_FILE} is not a LingShift probe of format {PROBE_FORMAT} (or 1)"
    try:
        tensors = load_tensors(files[WEIGHTS_FILE])
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types for damaged headers
        return f"{WEIGHTS_FILE} cannot be parsed ({type(err).__name__}: truncated or damaged?)"
    if meta.get("format") == PROBE_FORMAT and not {"weights", "bias"} <= set(tensors):
        return f"{WEIGHTS_FILE} lacks the weights or the bias"
    return None


def lock_problem(recorded: dict[str, str] | None, relpath: str, md5: str) -> str | None:
    """Why a file (or folder) with DVC md5 ``md5`` does not match what ``dvc.lock`` records, or None.

    A file the lock does not record (or no lock, ``recorded`` None) cannot be compared: None; the caller
    notes that it is unverified.
    """
    want = (recorded or {}).get(relpath)
    if want is None:
        return None
    if want != md5:
        return "its md5 differs from the one dvc.lock records (changed or damaged after the pipeline wrote it)"
    return None


__all__ = ["LockError", "recorded_md5s", "bytes_md5", "folder_md5", "read_folder", "json_problem",
           "probe_folder_problem", "lock_problem"]
