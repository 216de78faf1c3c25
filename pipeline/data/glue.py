"""GLUE tasks of the paper profile, from the Hugging Face dataset ``nyu-mll/glue``.

``sst2``, ``mnli``, ``qnli``, ``rte``, ``mrpc``, ``stsb`` (regression). The official train split
minus a seeded held-out part (10 %, at most 5,000 examples) is train, that held-out part is dev
(for early decisions), and the official validation split is test (GLUE's test labels are
hidden); MNLI has two tests, ``test_matched`` and ``test_mismatched``.

The dataset is pinned to the commit :data:`GLUE_REVISION`. Online, ``datasets`` downloads that commit;
offline (``HF_HUB_OFFLINE=1`` / ``HF_DATASETS_OFFLINE=1``) it never asks the hub and loads the most
recently prepared copy from its own Arrow cache (``$HF_DATASETS_CACHE/nyu-mll___glue/<config>/0.0.0/<commit>/``),
whatever its revision: :func:`hub_glue` therefore checks that the copy it got is the pinned commit.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipeline.data.order import hash_order
from pipeline.data.spec import LoadContext, SentenceTask
from pipeline.data.types import Label, SentenceSplit
from pipeline.errors import ResourceError

GLUE_DATASET = "nyu-mll/glue"
#: The pinned commit of ``nyu-mll/glue``: the commit its ``main`` resolved to in a client log of the hub's
#: redirects (2026-07-15, a public CI log found with the code search of this project's sessions), also the
#: GLUE_REVISION other public projects pin. Recorded in every GLUE task's provenance (``source``).
GLUE_REVISION = "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c"


@dataclass(frozen=True)
class GlueSpec:
    """How one GLUE config maps onto a :class:`SentenceSplit`."""

    config: str
    columns: tuple[str, ...]
    #: label names in GLUE's integer order (empty for regression)
    glue_labels: tuple[str, ...]
    #: our test split -> GLUE split
    tests: dict[str, str]


GLUE: dict[str, GlueSpec] = {
    "sst2": GlueSpec("sst2", ("sentence",), ("negative", "positive"), {"test": "validation"}),
    "mnli": GlueSpec("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
                     {"test_matched": "validation_matched", "test_mismatched": "validation_mismatched"}),
    "qnli": GlueSpec("qnli", ("question", "sentence"), ("entailment", "not_entailment"), {"test": "validation"}),
    "rte": GlueSpec("rte", ("sentence1", "sentence2"), ("entailment", "not_entailment"), {"test": "validation"}),
    "mrpc": GlueSpec("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), {"test": "validation"}),
    "stsb": GlueSpec("stsb", ("sentence1", "sentence2"), (), {"test": "validation"}),
}


def _glue_split(task: SentenceTask, spec: GlueSpec, raw: Any, name: str) -> SentenceSplit:
    cols = [list(raw[c]) for c in spec.columns]
    labels_raw = list(raw["label"])
    if task.kind == "regression":
        labels: list[Label] = [float(x) for x in labels_raw]
    else:
        if any(not 0 <= int(x) < len(spec.glue_labels) for x in labels_raw):
            raise ResourceError(f"GLUE {spec.config}/{name}: label ids outside 0..{len(spec.glue_labels) - 1} "
                                "(hidden test labels are -1; use the validation split)")
        labels = [spec.glue_labels[int(x)] for x in labels_raw]
    return SentenceSplit(name, tuple(cols[0]), tuple(labels), tuple(cols[1]) if len(cols) > 1 else None)


def load_glue(task: SentenceTask, ctx: LoadContext) -> dict[str, SentenceSplit]:
    """A GLUE task's train / held-out dev / official validation as test (from ``ctx.glue_source`` or the hub)."""
    spec = GLUE[task.name]
    raw = (ctx.glue_source or hub_glue)(spec.config)
    for split in ("train", *spec.tests.values()):
        if split not in raw:
            raise ResourceError(f"GLUE {spec.config} has no split {split!r} (has: {', '.join(raw)})")
    features = getattr(raw["train"], "features", None)
    names = getattr(features.get("label"), "names", None) if features is not None else None
    if task.kind == "classification" and names is not None and tuple(names) != spec.glue_labels:
        raise ResourceError(f"GLUE {spec.config}: label names {list(names)} differ from the expected "
                            f"{list(spec.glue_labels)}; the dataset on the hub has changed.")
    full = _glue_split(task, spec, raw["train"], "train")
    n_dev = min(ctx.glue_dev_max, max(1, round(len(full) * ctx.glue_dev_fraction)))
    order = hash_order(range(len(full)), lambda i: f"{i}", ctx.seed)
    dev_idx = set(order[:n_dev])
    out = {
        "train": full.take([i for i in range(len(full)) if i not in dev_idx], "train"),
        "dev": full.take(sorted(dev_idx), "dev"),
    }
    for ours, theirs in spec.tests.items():
        out[ours] = _glue_split(task, spec, raw[theirs], ours)
    return out


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check of the hub endpoint (True when a proxy is configured: let the client try)."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    from huggingface_hub import constants  # the client's own endpoint (honours HF_ENDPOINT)

    url = urlparse(constants.ENDPOINT)
    if not url.hostname:
        return True
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_env() -> bool:
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))


def cached_revision(raw: Mapping[str, Any]) -> str | None:
    """The commit a loaded ``DatasetDict`` was prepared from: the ``<commit>`` folder of its Arrow cache files
    (``.../<config>/<version>/<commit>/...arrow``); None when it is not a cached hub dataset."""
    for split in raw.values():
        for f in getattr(split, "cache_files", None) or []:
            parts = Path(f["filename"]).parts
            if len(parts) >= 2 and re.fullmatch(r"[0-9a-f]{40}", parts[-2]):
                return parts[-2]
    return None


def check_revision(raw: Mapping[str, Any], config: str, revision: str = GLUE_REVISION) -> None:
    """Raise unless ``raw`` came from commit ``revision`` (offline, ``datasets`` takes whatever it cached last)."""
    got = cached_revision(raw)
    if got is not None and got != revision:
        raise ResourceError(
            f"GLUE task {config!r}: the datasets cache holds {GLUE_DATASET} at revision {got}, but the profile pins "
            f"revision {revision} (offline, datasets loads the latest cached copy whatever its revision).",
            f"With network, load it once at the pinned revision: datasets.load_dataset('{GLUE_DATASET}', "
            f"'{config}', revision='{revision}'); or remove the other revision's folder from the datasets cache.")


def hub_glue(config: str) -> Mapping[str, Any]:
    """``datasets.load_dataset("nyu-mll/glue", config, revision=GLUE_REVISION)``; offline it uses the local
    datasets cache only, and checks that the cached copy is the pinned revision.

    Any failure becomes one :class:`ResourceError` sentence naming what is missing.
    """
    offline_hint = ("The offline default tasks 'sentiment' and 'hedge' need no hub "
                    "(switch with: python -m pipeline profile offline).")
    try:
        import datasets
        import huggingface_hub.constants as hub_constants
    except ImportError:
        raise ResourceError(f"GLUE task {config!r} needs the 'datasets' package, which is not installed.",
                            f"pip install 'datasets>=3'. {offline_hint}") from None
    offline = _offline_env() or not hub_reachable()
    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    try:
        if offline:  # fail fast (no retries) and use the local cache if the data is there
            datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
        raw = datasets.load_dataset(GLUE_DATASET, config, revision=GLUE_REVISION)
    except Exception as err:  # noqa: BLE001 - the hub/datasets clients raise many kinds; all mean "not available"
        why = "the Hugging Face hub is unreachable" if offline else "downloading it failed"
        detail = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise ResourceError(
            f"GLUE task {config!r} needs the dataset {GLUE_DATASET} (config {config}), which is not in the local "
            f"datasets cache and {why} ({detail}).", offline_hint) from None
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved
    check_revision(raw, config)
    return raw
