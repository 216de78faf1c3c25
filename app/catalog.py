"""The results the service serves: read once from ``results/``, re-read when the files change.

Also the allow-lists: the only model, variant and task names a request may use are the ones the
active profile (``params.yaml``) declares. A request never names a path.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Params
from pipeline.errors import LingShiftError
from pipeline.layout import Layout
from pipeline.names import load_checked
from pipeline.records import ClaimsFile, Results, load_results, read_claims
from pipeline.variants import seed_of

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """One consistent read of the results folder."""

    results: Results
    claims: ClaimsFile | None
    etag: str
    loaded_at: float
    problems: list[str] = field(default_factory=list)


class Catalog:
    """Results + allow-lists of one repository checkout; thread-safe, refreshed on change."""

    def __init__(self, root: Path, params_file: str = "params.yaml", check_every_s: float = 2.0) -> None:
        self.root = Path(root).resolve()
        self.params: Params
        self.params, _ = load_checked(self.root / params_file)
        self.layout = Layout.of(self.params, self.root)
        self.results_dir = self.layout.results.root
        self._lock = threading.Lock()
        self._check_every = check_every_s
        self._checked = 0.0
        self._signature: tuple[Any, ...] = ()
        self._snap = self._load()

    # ---------------------------------------------------------------- allow-lists
    @property
    def models(self) -> list[str]:
        return list(self.params.models)

    @property
    def variants(self) -> list[str]:
        """The checkpoints served: ``base`` and ``<task>-seed<N>`` per fine-tuning seed (``params.checkpoints``)."""
        return list(self.params.checkpoints)

    @property
    def default_variants(self) -> list[str]:
        """What a probe without ``variants`` shows: base and each fine-tuned variant's first seed."""
        first = self.params.finetune.seeds[0]
        return [c for c in self.variants if seed_of(c) in (None, first)]

    @property
    def tasks(self) -> list[str]:
        return list(self.params.probe_tasks)

    def probe_dir(self, model: str, variant: str, task: str) -> Path:
        """Folder of a trained probe; only for allow-listed names."""
        self._check_names(model, variant, task)
        return self.layout.results.probe_dir(model, variant, task)

    def model_dir(self, model: str, variant: str) -> Path:
        """Folder of a model variant's weights; only for allow-listed names."""
        self._check_names(model, variant, None)
        return self.layout.model_dir(model, variant)

    def neurons_file(self, model: str, variant: str, task: str) -> Path:
        """The neurons-stage result (its ranking); only for allow-listed names."""
        self._check_names(model, variant, task)
        return self.layout.results.neurons(model, variant, task)

    def _check_names(self, model: str, variant: str, task: str | None) -> None:
        if model not in self.models or variant not in self.variants or (task is not None and task not in self.tasks):
            raise LingShiftError(f"not an allow-listed name: {model}/{variant}/{task}")

    # ---------------------------------------------------------------- snapshot
    def _files(self) -> list[Path]:
        return self.layout.results.served_files()

    def _sig(self) -> tuple[Any, ...]:
        out = []
        for p in self._files():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            out.append((str(p), st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _load(self) -> Snapshot:
        problems: list[str] = []
        sig = self._sig()
        h = hashlib.sha256()
        for path, _, _ in sig:
            h.update(path.encode())
            h.update(Path(path).read_bytes())
        try:
            res = load_results(self.results_dir, models=self.models, variants=self.variants, tasks=self.tasks,
                               sentence_tasks=self.params.sentence_tasks)
        except LingShiftError as err:
            problems.append(f"results unreadable: {err}")
            res = Results(root=self.results_dir)
        claims = None
        try:
            claims = read_claims(self.results_dir)
        except LingShiftError as err:
            problems.append(f"claims.json unreadable: {err}")
        else:
            if claims is None:
                problems.append("no results/claims.json yet (run: dvc repro)")
        if not res.layers:
            problems.append("no probe results under results/layers (run: dvc repro)")
        self._signature = sig
        log.info("loaded %d layer results, %d neuron results from %s", len(res.layers), len(res.neurons),
                 self.results_dir)
        return Snapshot(res, claims, h.hexdigest()[:32], time.time(), problems)

    def snapshot(self) -> Snapshot:
        """The current results; re-read at most every ``check_every_s`` when a file changed."""
        now = time.monotonic()
        if now - self._checked >= self._check_every:
            with self._lock:
                if now - self._checked >= self._check_every:
                    self._checked = now
                    if self._sig() != self._signature:
                        self._snap = self._load()
        return self._snap

    def provenance(self) -> dict[str, Any]:
        """Active params, seeds, the dvc.lock digest and the versions recorded with the claims."""
        lock = self.layout.dvc_lock
        snap = self.snapshot()
        return {"profile": self.params.profile, "params": self.params.model_dump(mode="json"),
                "seeds": {"global": self.params.seed, "probe": list(self.params.probe.seeds),
                          "neurons": self.params.neurons.seed, "finetune": list(self.params.finetune.seeds)},
                "dvc_lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None,
                "versions": snap.claims.provenance.versions if snap.claims is not None else None,
                "results_etag": snap.etag}
