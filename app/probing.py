"""Probe a sentence on demand: the pipeline's own extraction and trained probes, loaded lazily.

Models, probes and neuron rankings load once per worker process, from allow-listed names only
(the folder comes from the catalog, never from the request). Probe work is bounded: at most
``max_concurrent_probes`` run at once (more -> :class:`Busy`, a 503 with Retry-After) and a request
stops waiting after ``probe_timeout_s`` (the computation finishes in the background and frees its slot).
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
    """One model variant, ready: tokenizer and encoder, plus per task its probe and neuron ranking."""

    tokenizer: Any
    encoder: Any
    probes: dict[str, Any]
    rankings: dict[str, np.ndarray]
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

    # ------------------------------------------------------------ availability
    def ready(self, model: str, variant: str, task: str | None = None) -> bool:
        """Whether weights (and, with ``task``, the trained probe and ranking) exist for this variant."""
        c = self.catalog
        mdir = c.model_dir(model, variant)
        ok = (mdir / "config.json").is_file() and (mdir / "model.safetensors").is_file()
        if task is not None:
            ok = ok and (c.probe_dir(model, variant, task) / "probe.json").is_file() and \
                c.neurons_file(model, variant, task).is_file()
        return ok

    def availability(self) -> dict[str, dict[str, bool]]:
        """``{model: {variant: ready for at least one task}}`` for every allow-listed pair."""
        c = self.catalog
        return {m: {v: any(self.ready(m, v, t) for t in c.tasks) for v in c.variants} for m in c.models}

    # ------------------------------------------------------------ loading
    def _load(self, model: str, variant: str, task: str) -> Loaded:
        key = f"{model}/{variant}"
        with self._guard:
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:
            entry = self._loaded.get(key)
            if entry is None:
                if not self.ready(model, variant):
                    raise Unavailable(f"model {model}/{variant} is not materialised on this server",
                                      RUN_PIPELINE)
                from pipeline import models

                t0 = time.perf_counter()
                try:
                    tok, enc = models.load(self.catalog.model_dir(model, variant), self.device)
                except Exception as err:  # noqa: BLE001 - any failure to load means "not available here"
                    log.warning("cannot load model %s/%s: %r", model, variant, err)
                    raise Unavailable(f"model {model}/{variant} cannot be loaded on this server "
                                      f"({type(err).__name__})",
                                      "Check the files under models/ (readable by the service?) or re-run "
                                      "make repro.") from None
                entry = Loaded(tok, enc, {}, {}, int(enc.config.hidden_size))
                self._loaded[key] = entry
                log.info("loaded %s in %.1f s", key, time.perf_counter() - t0)
            if task not in entry.probes:
                if not self.ready(model, variant, task):
                    raise Unavailable(f"no trained probe for {model}/{variant}/{task} on this server",
                                      RUN_PIPELINE)
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
                entry.probes[task], entry.rankings[task] = probe, ranking
            return entry

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
        """The requested checkpoints (allow-listed), or by default base and the first fine-tuning seed of each
        fine-tuned variant (``sentiment-seed42``, ...) that is ready for ``task``; other seeds on request."""
        c = self.catalog
        if variants is None:
            chosen = [v for v in c.default_variants if self.ready(model, v, task)]
            if not chosen:
                raise Unavailable(f"no variant of {model} is ready to probe {task} on this server",
                                  RUN_PIPELINE)
            return chosen
        bad = [v for v in variants if v not in c.variants]
        if bad:
            raise ProbeRequestError(f"unknown variant(s) {bad}; allowed: {c.variants}")
        return list(dict.fromkeys(variants))

    def compute(self, words: Sequence[str], model: str, task: str, variants: Sequence[str] | None,
                layers: Sequence[int] | None, top_k: int) -> dict[str, Any]:
        """Tags with probabilities per variant and layer, and the top-k ranked neurons' activations.

        Activations come from :func:`pipeline.extract.extract_array` (the pipeline's alignment):
        ``float [words, layers, dim]``; probe probabilities are ``[words, layers, classes]``.
        """
        from pipeline.extract import extract_array

        t0 = time.perf_counter()
        out_variants = []
        chosen_layers: list[int] | None = None
        for v in self.resolve_variants(model, task, variants):
            entry = self._load(model, v, task)
            probe = entry.probes[task]
            X = extract_array(entry.tokenizer, entry.encoder, [list(words)],
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
            ranking = entry.rankings[task][:top_k]
            neurons = [{"rank": r + 1, "neuron": int(nid), "layer": int(nid) // entry.dim, "unit": int(nid) % entry.dim,
                        "activations": [round(float(a), 4) for a in flat[:, nid]]} for r, nid in enumerate(ranking)]
            out_variants.append({"variant": v, "layers": layer_out, "neurons": neurons})
        return {"model": model, "task": task, "words": list(words), "layers": chosen_layers or [],
                "variants": out_variants, "elapsed_ms": round(1000 * (time.perf_counter() - t0), 2)}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
