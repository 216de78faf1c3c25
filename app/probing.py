"""Probe a sentence on demand: the pipeline's own extraction and trained probes, loaded lazily.

Models, probes and neuron rankings load once per worker process, from allow-listed names only
(the folder comes from the catalog, never from the request). Probe work is bounded: at most
``max_concurrent_probes`` run at once (more -> :class:`Busy`, a 503 with Retry-After) and a request
stops waiting after ``probe_timeout_s`` (the computation finishes in the background and frees its slot).

Loading is thread-safe: the transformers classes are imported when the service is built (at worker start;
transformers' lazy imports are not thread-safe), each variant loads under its own lock (once), and the
weights of different variants are read one after the other under one process-wide lock. A probe whose files
fail the catalog's integrity check is never loaded; a request for several variants serves the usable ones
and names the others under ``missing``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.catalog import Catalog
from pipeline.errors import LingShiftError

log = logging.getLogger(__name__)

# Penn-Treebank-like word split: "do n't", "John 's", hyphenated words and numbers kept whole, every
# other non-space character (punctuation) a word of its own.
_TOKEN = re.compile(r"\w+(?=n't\b)|n't\b|'(?:s|re|ve|ll|d|m)\b|\d+(?:[.,]\d+)*(?![\w])|\w+(?:[-.]\w+)*|[^\w\s]",
                    re.IGNORECASE)


RUN_PIPELINE = "Run the pipeline first: make repro (or dvc repro)."


class ProbeRequestError(LingShiftError):
    """The request cannot be probed as asked (bad words, unknown names, layers out of range): a 422."""


class Unavailable(LingShiftError):
    """A model or probe the request needs is not on this server (not materialised): a 503."""


class Busy(LingShiftError):
    """All probe slots are taken, or the probe ran past its time: a 503 with Retry-After."""


class LoadFailed(Busy):
    """A model's files are there but loading them failed in a way that may pass (an import, memory or
    I/O error): a 503 with the short Retry-After of :class:`Busy`. Nothing is cached, so a retry loads again."""


def import_model_classes() -> None:
    """Import the transformers classes the service uses, once, before any request thread does.

    transformers resolves its top-level names lazily, and concurrent first accesses from two threads can fail
    with ``cannot import name 'AutoConfig'``. Called when the service is built (once per worker process).
    """
    import transformers

    for name in ("AutoConfig", "AutoModel", "AutoTokenizer", "PreTrainedTokenizerFast"):
        getattr(transformers, name)
    from pipeline import extract, models  # noqa: F401 - imported here, not first inside a request thread
    from pipeline.probing import linear  # noqa: F401


def split_words(sentence: str) -> list[str]:
    """Words of ``sentence`` as the probing corpora split them (PTB style)."""
    return _TOKEN.findall(sentence)


def check_text(text: str, what: str) -> None:
    """Reject control and format characters (other than ordinary whitespace in a sentence)."""
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in " \t\n\r":
            raise ProbeRequestError(f"{what} contains the control character U+{ord(ch):04X}; send plain text")


@dataclass
class Loaded:
    """One model variant, loaded: tokenizer and encoder, plus per task its probe and neuron ranking, each with
    the snapshot token (result ETag, probe md5) it was read under (a change of the files reloads it)."""

    tokenizer: Any
    encoder: Any
    probes: dict[str, tuple[tuple[str, str | None], Any, np.ndarray]]
    dim: int


@dataclass(frozen=True)
class Ready:
    """What one variant needs to probe one task."""

    tokenizer: Any
    encoder: Any
    probe: Any
    ranking: np.ndarray
    dim: int


class ProbeService:
    """Lazy model bank + bounded probe execution for one worker."""

    def __init__(self, catalog: Catalog, max_concurrent: int = 2, timeout_s: float = 20.0,
                 device: str | None = None) -> None:
        self.catalog = catalog
        self.timeout_s = timeout_s
        self.device = device or "cpu"
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="probe")
        self._loaded: dict[str, Loaded] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._weights_lock = threading.Lock()  # one variant's weights read at a time (from_pretrained)
        import_model_classes()

    # ------------------------------------------------------------ availability
    def ready(self, model: str, variant: str, task: str | None = None) -> bool:
        """Whether weights (and, with ``task``, the trained probe and ranking, intact) exist for this variant."""
        return self.missing(model, variant, task) is None

    def missing(self, model: str, variant: str, task: str | None = None) -> Unavailable | None:
        """Why this variant cannot probe (``task``) on this server, as the error to raise; None when it can."""
        c = self.catalog
        mdir = c.model_dir(model, variant)
        if not ((mdir / "config.json").is_file() and (mdir / "model.safetensors").is_file()):
            return Unavailable(f"model {model}/{variant} is not materialised on this server", RUN_PIPELINE)
        if task is None:
            return None
        if not ((c.probe_dir(model, variant, task) / "probe.json").is_file()
                and c.neurons_file(model, variant, task).is_file()):
            return Unavailable(f"no trained probe for {model}/{variant}/{task} on this server", RUN_PIPELINE)
        bad = c.snapshot().unusable(model, variant, task)
        return Unavailable(bad) if bad else None

    def availability(self) -> dict[str, dict[str, bool]]:
        """``{model: {variant: ready for at least one task}}`` for every allow-listed pair."""
        c = self.catalog
        return {m: {v: any(self.ready(m, v, t) for t in c.tasks) for v in c.variants} for m in c.models}

    # ------------------------------------------------------------ loading
    def _load(self, model: str, variant: str, task: str) -> Ready:
        key = f"{model}/{variant}"
        with self._guard:
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:
            err = self.missing(model, variant, task)
            if err is not None:
                raise err
            entry = self._loaded.get(key)
            if entry is None:
                entry = self._load_model(model, variant)
                self._loaded[key] = entry
            snap = self.catalog.snapshot()
            token = (snap.etag, snap.probe_md5.get((model, variant, task)))
            held = entry.probes.get(task)
            if held is None or held[0] != token:
                held = (token, *self._load_probe(model, variant, task))
                entry.probes[task] = held
            return Ready(entry.tokenizer, entry.encoder, held[1], held[2], entry.dim)

    def _load_model(self, model: str, variant: str) -> Loaded:
        from pipeline import models

        t0 = time.perf_counter()
        try:
            with self._weights_lock:
                tok, enc = models.load(self.catalog.model_dir(model, variant), self.device)
        except LingShiftError as err:  # the files are there but not a loadable model: permanent
            log.warning("cannot load model %s/%s: %s", model, variant, err)
            raise Unavailable(f"model {model}/{variant} cannot be loaded on this server ({type(err).__name__})",
                              "Check the files under models/ or re-run make repro.") from None
        except Exception as err:  # noqa: BLE001 - import, memory or I/O trouble: a retry may succeed
            log.warning("loading model %s/%s failed: %r", model, variant, err)
            raise LoadFailed(f"model {model}/{variant} could not be loaded just now ({type(err).__name__})") from None
        log.info("loaded %s/%s in %.1f s", model, variant, time.perf_counter() - t0)
        return Loaded(tok, enc, {}, int(enc.config.hidden_size))

    def _load_probe(self, model: str, variant: str, task: str) -> tuple[Any, np.ndarray]:
        from pipeline.probing.linear import LinearProbe
        from pipeline.records import NeuronResult

        try:
            probe = LinearProbe.load(self.catalog.probe_dir(model, variant, task), device="cpu")
            ranking = NeuronResult.read(self.catalog.neurons_file(model, variant, task)).ranking
        except Exception as err:  # noqa: BLE001 - any failure to load means "not available here"
            log.warning("cannot load the probe of %s/%s/%s: %r", model, variant, task, err)
            raise Unavailable(f"the probe or neuron ranking of {model}/{variant}/{task} cannot be loaded "
                              f"on this server ({type(err).__name__})",
                              "Check the files under results/ (readable by the service?) or re-run "
                              "make repro.") from None
        return probe, ranking

    # ------------------------------------------------------------ probing
    def probe(self, words: Sequence[str], model: str, task: str, variants: Sequence[str] | None,
              layers: Sequence[int] | None, top_k: int) -> dict[str, Any]:
        """Run :meth:`compute` within the concurrency and time bounds."""
        if not self._slots.acquire(blocking=False):
            raise Busy("all probe slots are busy")
        try:
            fut = self._pool.submit(self.compute, words, model, task, variants, layers, top_k)
        except BaseException:
            self._slots.release()
            raise
        fut.add_done_callback(lambda _: self._slots.release())
        try:
            return fut.result(timeout=self.timeout_s)
        except FutureTimeout:
            raise Busy(f"the probe did not finish within {self.timeout_s:g} s") from None

    def resolve_variants(self, model: str, task: str, variants: Sequence[str] | None) -> list[str]:
        """The requested checkpoints (allow-listed, each once), or by default base and the first fine-tuning seed
        of each fine-tuned variant (``sentiment-seed42``, ...); other seeds on request."""
        c = self.catalog
        if variants is None:
            return c.default_variants
        bad = [v for v in variants if v not in c.variants]
        if bad:
            raise ProbeRequestError(f"unknown variant(s) {bad}; allowed: {c.variants}")
        return list(dict.fromkeys(variants))

    def compute(self, words: Sequence[str], model: str, task: str, variants: Sequence[str] | None,
                layers: Sequence[int] | None, top_k: int) -> dict[str, Any]:
        """Tags with probabilities per variant and layer, and the top-k ranked neurons' activations.

        Activations come from :func:`pipeline.extract.extract_array` (the pipeline's alignment):
        ``float [words, layers, dim]``; probe probabilities are ``[words, layers, classes]``. A variant that
        cannot probe here is listed under ``missing`` with the reason; when none can, its error is raised.
        """
        from pipeline.extract import extract_array

        t0 = time.perf_counter()
        out_variants: list[dict[str, Any]] = []
        failed: list[tuple[str, Unavailable | LoadFailed]] = []
        chosen_layers: list[int] | None = None
        for v in self.resolve_variants(model, task, variants):
            try:
                ready = self._load(model, v, task)
            except (Unavailable, LoadFailed) as err:
                failed.append((v, err))
                continue
            probe = ready.probe
            X = extract_array(ready.tokenizer, ready.encoder, [list(words)],
                              aggregation=self.catalog.params.extract.aggregation, batch_size=1)
            n_layers = X.shape[1]
            if chosen_layers is None:
                chosen_layers = list(range(n_layers)) if layers is None else list(dict.fromkeys(layers))
                bad = [x for x in chosen_layers if not 0 <= x < n_layers]
                if bad:
                    raise ProbeRequestError(f"layers {bad} out of range; {model} has layers 0..{n_layers - 1}")
            proba = probe.predict_proba(X)  # [words, probe_layers, classes]
            pos = {lid: i for i, lid in enumerate(probe.layer_ids)}
            names = probe.label_names
            layer_out = []
            for layer in chosen_layers:
                p = proba[:, pos[layer]]
                best = p.argmax(-1)
                tags = [{"tag": names[int(b)], "probability": round(float(p[i, b]), 4)} for i, b in enumerate(best)]
                layer_out.append({"layer": layer, "tags": tags})
            flat = X.reshape(X.shape[0], -1)
            ranking = ready.ranking[:top_k]
            neurons = [{"rank": r + 1, "neuron": int(nid), "layer": int(nid) // ready.dim, "unit": int(nid) % ready.dim,
                        "activations": [round(float(a), 4) for a in flat[:, nid]]} for r, nid in enumerate(ranking)]
            out_variants.append({"variant": v, "layers": layer_out, "neurons": neurons})
        if not out_variants:
            raise _none_usable(model, task, variants is None, failed)
        return {"model": model, "task": task, "words": list(words), "layers": chosen_layers or [],
                "variants": out_variants, "missing": [{"variant": v, "problem": str(err)} for v, err in failed],
                "elapsed_ms": round(1000 * (time.perf_counter() - t0), 2)}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _none_usable(model: str, task: str, default: bool, failed: list[tuple[str, Unavailable | LoadFailed]]) \
        -> Unavailable | LoadFailed:
    """The error when no variant could probe: the one variant's own error, or one naming each variant's reason
    (transient, a short retry, when any variant's failure may pass)."""
    if len(failed) == 1 and not default:
        return failed[0][1]
    reasons = "; ".join(f"{v}: {err.args[0]}" for v, err in failed)
    what = f"no variant of {model} is ready" if default else "none of the requested variants can be used"
    message = f"{what} to probe {task} on this server" + (f" ({reasons})" if reasons else "")
    if any(isinstance(err, LoadFailed) for _, err in failed):
        return LoadFailed(message)
    return Unavailable(message, failed[0][1].hint if failed else RUN_PIPELINE)
