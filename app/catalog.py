"""The results the service serves: read once from ``results/``, re-read when the files change.

Integrity: every result file (layers, neurons, finetune, claims) and every trained probe is parsed and its md5
compared with the one ``dvc.lock`` records (:mod:`app.integrity`), at start and whenever a file changes. A bad
file leaves out only its own unit (model/variant/task), with a note naming the unit and what is wrong (never a
server path); every good unit is still served.

Also the allow-lists: the only model, variant and task names a request may use are the ones the
active profile (``params.yaml``) declares. A request never names a path.

Besides the active profile, the service serves the committed results of every other profile whose results
folder holds ``lock.yaml`` (the ``dvc.lock`` of the run that made them, e.g. ``results/offline-full/`` written
by ``make repro-full``): :func:`served_profiles`; a request picks one with ``?profile=NAME`` (allow-listed).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.integrity import (
    LockError,
    bytes_md5,
    folder_md5,
    json_problem,
    lock_problem,
    probe_folder_problem,
    read_folder,
    recorded_md5s,
)
from pipeline.config import Params, load_profile, profile_names
from pipeline.errors import LingShiftError
from pipeline.layout import Key, Layout
from pipeline.names import load_checked
from pipeline.records import ClaimsFile, FinetuneResult, LayerResult, NeuronResult, Record, Results
from pipeline.variants import seed_of

log = logging.getLogger(__name__)

REPAIR = "Re-run the pipeline (make repro), or restore the file with git checkout."
#: The lock file next to a non-active profile's committed results (a copy of its run's dvc.lock).
PROFILE_LOCK = "lock.yaml"


@dataclass(frozen=True)
class UnitNote:
    """A unit left out of the answers: the kind of file (``layers``, ``neurons``, ``finetune``, ``claims``,
    ``probe``), the unit's names and what is wrong with it. Never a server path."""

    kind: str
    key: tuple[str, ...]  # (model, variant, task); (model, variant) for finetune; () for claims
    problem: str

    @property
    def unit(self) -> str:
        return "/".join(self.key) or self.kind

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "unit": self.unit, "problem": self.problem}

    def __str__(self) -> str:
        what = "claims" if not self.key else f"{self.kind} of {self.unit}"
        return f"{what} left out: {self.problem}"


@dataclass
class Snapshot:
    """One consistent read of the results folder and the trained probes, each file checked on its own.

    ``omitted`` holds the units whose file is unreadable, invalid or differs from ``dvc.lock``; every other
    unit is in ``results``. ``problems`` is what readiness reports (each omitted unit, unverified files, ...).
    """

    results: Results
    claims: ClaimsFile | None
    etag: str
    loaded_at: float
    problems: list[str] = field(default_factory=list)
    omitted: list[UnitNote] = field(default_factory=list)
    probe_md5: dict[Key, str] = field(default_factory=dict)  # DVC md5 of each good probe folder

    def omitted_json(self, kinds: tuple[str, ...] | None = None, model: str | None = None,
                     variant: str | None = None, task: str | None = None) -> list[dict[str, str]]:
        """The notes of omitted units of ``kinds`` (all kinds: None) that match the given names."""
        want = (model, variant, task)
        return [n.as_json() for n in self.omitted if (kinds is None or n.kind in kinds)
                and all(w is None or i >= len(n.key) or n.key[i] == w for i, w in enumerate(want))]

    def unusable(self, model: str, variant: str, task: str) -> str | None:
        """Why ``model/variant`` cannot probe ``task`` with the files on disk (bad probe or neuron ranking), or None."""
        for n in self.omitted:
            if n.kind in ("probe", "neurons") and n.key == (model, variant, task):
                what = "trained probe" if n.kind == "probe" else "neuron ranking"
                return f"the probe or neuron ranking of {n.unit} cannot be loaded on this server (the {what} " \
                       f"fails its integrity check: {n.problem})"
        return None


class _Reader:
    """Reads and checks the files of one snapshot, collecting the notes and the ETag digest."""

    def __init__(self, root: Path, recorded: dict[str, str] | None) -> None:
        self.root = root
        self.recorded = recorded
        self.digest = hashlib.sha256()
        self.omitted: list[UnitNote] = []
        self.unverified: list[str] = []

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _md5_ok(self, kind: str, key: tuple[str, ...], path: Path, md5: str) -> bool:
        rel = self._rel(path)
        if self.recorded is not None and rel not in self.recorded:
            self.unverified.append(f"{kind} of {'/'.join(key)}" if key else kind)
        bad = lock_problem(self.recorded, rel, md5)
        if bad:
            self.note(kind, key, f"{bad}. {REPAIR}", path)
        return bad is None

    def note(self, kind: str, key: tuple[str, ...], problem: str, path: Path) -> None:
        note = UnitNote(kind, key, problem)
        log.warning("%s (%s)", note, path)
        self.omitted.append(note)

    def record(self, cls: type[Record], kind: str, key: tuple[str, ...], path: Path) -> Any | None:
        """The validated record in ``path``, or None (noted) when it is unreadable, invalid or not as locked."""
        try:
            data = path.read_bytes()
        except OSError as err:
            self.note(kind, key, f"the file cannot be read ({type(err).__name__}). {REPAIR}", path)
            return None
        self.digest.update(self._rel(path).encode() + b"\0" + data)
        parsed, bad = json_problem(data)
        if bad:
            self.note(kind, key, f"the file is {bad}. {REPAIR}", path)
            return None
        try:
            rec = cls.from_json(parsed, "the file")
        except LingShiftError as err:
            self.note(kind, key, str(err), path)
            return None
        got = tuple(getattr(rec, "key", key))
        if key and got != key:
            self.note(kind, key, f"the file holds the result of {'/'.join(got)}. {REPAIR}", path)
            return None
        return rec if self._md5_ok(kind, key, path, bytes_md5(data)) else None

    def probe(self, key: Key, folder: Path) -> str | None:
        """The DVC md5 of a trained probe's folder, or None (noted) when its files are damaged or not as locked."""
        try:
            files = read_folder(folder)
        except OSError as err:
            self.note("probe", key, f"its files cannot be read ({type(err).__name__}). {REPAIR}", folder)
            return None
        bad = probe_folder_problem(files)
        if bad:
            self.note("probe", key, f"{bad}. {REPAIR}", folder)
            return None
        md5 = folder_md5(files)
        return md5 if self._md5_ok("probe", key, folder, md5) else None


class Catalog:
    """Results + allow-lists of one repository checkout; thread-safe, refreshed on change."""

    def __init__(self, root: Path, params_file: str = "params.yaml", check_every_s: float = 2.0,
                 profile: str | None = None) -> None:
        """The active profile's results (``params_file``), or with ``profile`` that profile's committed results,
        checked against its ``results/.../lock.yaml``."""
        self.root = Path(root).resolve()
        self.params: Params
        if profile is None:
            self.params, _ = load_checked(self.root / params_file)
        else:
            self.params = load_profile(profile, self.root)
        self.layout = Layout.of(self.params, self.root)
        self.results_dir = self.layout.results.root
        self.lock_file = self.layout.dvc_lock if profile is None else self.results_dir / PROFILE_LOCK
        self._lock = threading.Lock()
        self._check_every = check_every_s
        self._checked = 0.0
        self._signature: tuple[Any, ...] = ()
        self._snap = self._load()

    # ---------------------------------------------------------------- allow-lists
    @property
    def models(self) -> list[str]:
        return list(self.params.models)

    def model_info(self, model: str) -> dict[str, str]:
        """``family`` and ``description`` of an allow-listed model, built-in or registered in ``model_sources``
        (the family of a user's model read from its materialised ``config.json``). Never a path."""
        from pipeline import models

        if model not in self.models:
            raise LingShiftError(f"not an allow-listed model: {model}")
        spec = models.get_model(model, models.registry(self.params, self.root))
        family = spec.family or models.family_of(self.layout.model_dir(model, "base"), required=False)
        return {"family": family or "unknown", "description": spec.description}

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
    def _units(self) -> list[Key]:
        return [(m, v, t) for m in self.models for v in self.variants for t in self.tasks]

    def _probe_folders(self) -> dict[Key, Path]:
        """The trained probes present (a folder with at least one file) of every allow-listed unit."""
        out = {}
        for key in self._units():
            folder = self.layout.results.probe_dir(*key)
            if folder.is_dir() and any(p.is_file() for p in folder.iterdir()):
                out[key] = folder
        return out

    def _files(self) -> list[Path]:
        probes = [p for f in self._probe_folders().values() for p in sorted(f.rglob("*"))]
        return self.layout.results.served_files() + probes + [self.lock_file]

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
        """Read and check every served file on its own: a bad one is left out (noted), the others are kept."""
        sig = self._sig()
        problems: list[str] = []
        try:
            recorded = recorded_md5s(self.lock_file)
        except LockError as err:
            recorded = None
            problems.append(f"{err}: files are parsed but their md5s are not checked")
        else:
            if recorded is None:
                problems.append("no dvc.lock: files are parsed but their md5s are not checked (run: make repro)")
        lay, units = self.layout.results, set(self._units())
        reader = _Reader(self.root, recorded)
        res = Results(root=self.results_dir)
        for kind, files, cls, into in (("layers", lay.layer_files(), LayerResult, res.layers),
                                       ("neurons", lay.neuron_files(), NeuronResult, res.neurons)):
            for key, f in files:
                if key in units and (rec := reader.record(cls, kind, key, f)) is not None:
                    into[key] = rec
        pairs = {f"{m}-{v}": (m, v) for m in self.models for v in self.variants if v != "base"}
        for f in lay.finetune_files():
            if f.stem in pairs and (ft := reader.record(FinetuneResult, "finetune", pairs[f.stem], f)) is not None:
                if ft.task in self.params.sentence_tasks:
                    res.finetune[ft.key] = ft
        claims = None
        if lay.claims.is_file():
            claims = reader.record(ClaimsFile, "claims", (), lay.claims)
        else:
            problems.append("no results/claims.json yet (run: make repro)")
        probe_md5 = {}
        for key, folder in self._probe_folders().items():
            if (md5 := reader.probe(key, folder)) is not None:
                probe_md5[key] = md5
        problems += [str(n) for n in reader.omitted]
        if reader.unverified:
            problems.append("not recorded in dvc.lock, so served unverified: " + ", ".join(reader.unverified))
        if not res.layers:
            problems.append("no probe results under results/layers (run: make repro)")
        for n in reader.omitted:
            reader.digest.update(str(n).encode())
        self._signature = sig
        log.info("loaded %d layer results, %d neuron results, %d probes from %s; %d left out", len(res.layers),
                 len(res.neurons), len(probe_md5), self.results_dir, len(reader.omitted))
        return Snapshot(res, claims, reader.digest.hexdigest()[:32], time.time(), problems, reader.omitted,
                        probe_md5)

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
        lock = self.lock_file
        snap = self.snapshot()
        return {"profile": self.params.profile, "params": self.params.model_dump(mode="json"),
                "seeds": {"global": self.params.seed, "probe": list(self.params.probe.seeds),
                          "neurons": self.params.neurons.seed, "finetune": list(self.params.finetune.seeds)},
                "dvc_lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None,
                "versions": snap.claims.provenance.versions if snap.claims is not None else None,
                "results_etag": snap.etag}


def served_profiles(root: Path, active: Catalog) -> dict[str, Catalog]:
    """The catalogs a service answers from: the active profile's, and every other profile's whose results folder
    (its own, not the active one's) holds :data:`PROFILE_LOCK`; keyed by profile name."""
    out = {active.params.profile: active}
    for name in profile_names(root):
        if name in out:
            continue
        try:
            params = load_profile(name, root)
        except LingShiftError:
            continue
        results = Layout.of(params, root).results.root
        if results != active.results_dir and (results / PROFILE_LOCK).is_file():
            out[name] = Catalog(root, profile=name)
    return out
