"""The activation store: word-level activations of one (model, variant, task) on disk.

Layout of a store directory (written atomically, see :mod:`pipeline.atomic`):

- ``activations.f16``: raw float16, **layer-major** ``[layers, words, dim]``, so one layer is
  one contiguous block and reading it touches no other layer's bytes. :attr:`ActivationStore.
  activations` exposes the logical ``[words, layers, dim]`` view without copying.
- ``offsets.npy``: int64 ``[sentences + 1]``, sentence ``s`` owns word rows
  ``offsets[s]:offsets[s+1]``.
- ``labels.npy``: int32 ``[words]``, indices into ``meta.json["label_names"]`` (sorted).
- ``words.txt``: the words in row order, one per line (control tasks need word types).
- ``meta.json``: shape, model, variant, task, aggregation, splits (sentence ranges),
  provenance (config, versions).

``.npy`` files are read with ``allow_pickle=False``; nothing here unpickles.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_dir, write_json
from pipeline.errors import LingShiftError

FORMAT_VERSION = 1
ACTS_FILE = "activations.f16"


class StoreError(LingShiftError):
    """An activation store is missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class StoreInfo:
    """Everything about a store except the arrays."""

    n_words: int
    n_layers: int
    dim: int
    label_names: tuple[str, ...]
    splits: dict[str, tuple[int, int]]
    meta: dict[str, Any]


class ActivationWriter:
    """Fills a new store; nothing is visible at ``path`` until :meth:`commit`.

    Use as a context manager::

        with ActivationWriter(path, n_words, n_layers, dim) as w:
            w.write_rows(rows, acts)       # acts: float [n, layers, dim]
            w.commit(offsets, words, labels, label_names, splits, meta)
    """

    def __init__(self, path: Path, n_words: int, n_layers: int, dim: int, buffer_mb: float = 1024) -> None:
        """A store of ``[layers, words, dim]`` float16 at ``path``.

        Up to ``buffer_mb`` the activations are gathered in memory and written in one sequential
        pass at commit (scattered writes into a fresh memmap cost page faults); above it they go
        straight into the memory-mapped file, so memory stays bounded.
        """
        if n_words <= 0 or n_layers <= 0 or dim <= 0:
            raise StoreError(f"cannot create a store of shape words={n_words} layers={n_layers} dim={dim}")
        self.path = Path(path)
        self.shape = (n_layers, n_words, dim)
        self._ctx = atomic_dir(self.path)
        self._tmp: Path | None = None
        self._mm: np.ndarray | None = None
        self._in_memory = n_layers * n_words * dim * 2 <= buffer_mb * 2**20
        self._committed = False

    def __enter__(self) -> ActivationWriter:
        self._tmp = self._ctx.__enter__()
        if self._in_memory:
            self._mm = np.empty(self.shape, dtype=np.float16)
        else:
            self._mm = np.memmap(self._tmp / ACTS_FILE, dtype=np.float16, mode="w+", shape=self.shape)
        return self

    def write_rows(self, rows: np.ndarray, acts: np.ndarray) -> None:
        """Store ``acts`` (float ``[n, layers, dim]``) at word rows ``rows`` (int ``[n]``)."""
        assert self._mm is not None, "use ActivationWriter as a context manager"
        if acts.shape != (len(rows), self.shape[0], self.shape[2]):
            raise StoreError(f"activation block of shape {acts.shape} does not fit rows={len(rows)} "
                             f"layers={self.shape[0]} dim={self.shape[2]}")
        for layer in range(self.shape[0]):
            self._mm[layer, rows] = acts[:, layer]

    def commit(
        self,
        offsets: Sequence[int],
        words: Sequence[Sequence[str]],
        labels: Sequence[int],
        label_names: Sequence[str],
        splits: dict[str, tuple[int, int]],
        meta: dict[str, Any],
    ) -> None:
        """Write the index files and make the store visible at ``path``."""
        assert self._mm is not None and self._tmp is not None
        write_index(self._tmp, self.shape, offsets, words, labels, label_names, splits, meta,
                    acts=self._mm if self._in_memory else None)
        self._mm = None  # a memmap is unmapped; the page cache holds the data (a killed process loses nothing)
        self._committed = True

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        self._mm = None
        if exc_type is None and not self._committed:
            exc_type, exc = StoreError, StoreError("ActivationWriter closed without commit()")
            self._ctx.__exit__(exc_type, exc, None)
            raise exc
        self._ctx.__exit__(exc_type, exc, tb)


class ActivationStore:
    """Read side of a store; opening maps the file and reads only the small index files."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        meta_file = self.path / "meta.json"
        if not meta_file.is_file():
            raise StoreError(f"no activation store at {self.path} (meta.json missing)",
                             "Run the extract stage first: python -m pipeline extract ...")
        self.meta: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise StoreError(f"{self.path}: store format {self.meta.get('format_version')} is not "
                             f"{FORMAT_VERSION}", "Re-run the extract stage.")
        self.n_layers = int(self.meta["n_layers"])
        self.n_words = int(self.meta["n_words"])
        self.dim = int(self.meta["dim"])
        self.label_names: tuple[str, ...] = tuple(self.meta["label_names"])
        self.splits: dict[str, tuple[int, int]] = {k: (int(a), int(b)) for k, (a, b) in self.meta["splits"].items()}
        acts = self.path / ACTS_FILE
        expected = self.n_layers * self.n_words * self.dim * 2
        if not acts.is_file() or acts.stat().st_size != expected:
            raise StoreError(f"{acts} is missing or truncated (expected {expected} bytes)", "Re-run the extract stage.")
        self._mm = np.memmap(acts, dtype=np.float16, mode="r", shape=(self.n_layers, self.n_words, self.dim))
        self.offsets: np.ndarray = np.load(self.path / "offsets.npy", allow_pickle=False)
        self.labels: np.ndarray = np.load(self.path / "labels.npy", allow_pickle=False)
        self._flat_words: list[str] | None = None

    @property
    def activations(self) -> np.ndarray:
        """Logical view ``[words, layers, dim]`` (float16, memory-mapped, no copy)."""
        return self._mm.transpose(1, 0, 2)

    def layer(self, k: int) -> np.ndarray:
        """Layer ``k`` as a memory-mapped float16 ``[words, dim]`` block (0 = embeddings)."""
        if not 0 <= k < self.n_layers:
            raise StoreError(f"layer {k} out of range: this store has layers 0..{self.n_layers - 1}")
        return self._mm[k]

    def split_rows(self, split: str) -> slice:
        """Word rows of a split (``train``, ``dev``, ``test``) as a slice."""
        if split not in self.splits:
            raise StoreError(f"split {split!r} not in this store; it has {sorted(self.splits)}")
        s0, s1 = self.splits[split]
        return slice(int(self.offsets[s0]), int(self.offsets[s1]))

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` of split ``name``: activations ``float16 [words, layers, dim]`` (a memory-mapped view,
        nothing read yet) and label ids ``int [words]`` into :attr:`label_names`."""
        rows = self.split_rows(name)
        return self.activations[rows], self.labels[rows]

    def sentence_ids(self, name: str) -> np.ndarray:
        """Sentence index of each word of split ``name`` (``int [words]``, 0 = the split's first sentence),
        the cluster unit for sentence-level bootstraps."""
        if name not in self.splits:
            raise StoreError(f"split {name!r} not in this store; it has {sorted(self.splits)}")
        s0, s1 = self.splits[name]
        lengths = np.diff(self.offsets[s0:s1 + 1])
        return np.repeat(np.arange(s1 - s0, dtype=np.int64), lengths)

    def flat_words(self) -> list[str]:
        """All words in row order (``[words]``; loaded on first use)."""
        if self._flat_words is None:
            text = (self.path / "words.txt").read_text(encoding="utf-8")
            self._flat_words = text.split("\n")[:-1]
            if len(self._flat_words) != self.n_words:
                raise StoreError(f"{self.path}/words.txt holds {len(self._flat_words)} words, not {self.n_words}",
                                 "Re-run the extract stage.")
        return self._flat_words

    @property
    def words(self) -> list[list[str]]:
        """The words, one list per sentence."""
        flat = self.flat_words()
        return [flat[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    def info(self) -> StoreInfo:
        """Shape, labels and splits without the arrays."""
        return StoreInfo(self.n_words, self.n_layers, self.dim, self.label_names, dict(self.splits), self.meta)


def write_index(
    folder: Path,
    shape: tuple[int, int, int],
    offsets: Sequence[int],
    words: Sequence[Sequence[str]],
    labels: Sequence[int],
    label_names: Sequence[str],
    splits: dict[str, tuple[int, int]],
    meta: dict[str, Any],
    acts: np.ndarray | None = None,
) -> None:
    """Check and write a store's index files (and ``acts``, float16 ``[layers, words, dim]``, if given) into
    ``folder``, a store being built whose activations file has ``shape`` ``(layers, words, dim)``."""
    offs = np.asarray(offsets, dtype=np.int64)
    labs = np.asarray(labels, dtype=np.int32)
    n_layers, n_words, dim = shape
    if offs[0] != 0 or offs[-1] != n_words or np.any(np.diff(offs) < 0):
        raise StoreError("sentence offsets must start at 0, end at the word count and never decrease")
    if len(words) != len(offs) - 1 or [len(w) for w in words] != np.diff(offs).tolist():
        raise StoreError("words do not match the sentence offsets")
    flat = [w for sent in words for w in sent]
    if any(not w or "\n" in w or "\r" in w for w in flat):
        raise StoreError("words must be non-empty and free of line breaks")
    if labs.shape != (n_words,) or (len(labs) and (labs.min() < 0 or labs.max() >= len(label_names))):
        raise StoreError("labels must be one id per word, each an index into label_names")
    if list(label_names) != sorted(label_names):
        raise StoreError("label_names must be sorted")
    if acts is not None:
        acts.tofile(folder / ACTS_FILE)
    np.save(folder / "offsets.npy", offs, allow_pickle=False)
    np.save(folder / "labels.npy", labs, allow_pickle=False)
    (folder / "words.txt").write_text("".join(w + "\n" for w in flat), encoding="utf-8")
    full = dict(meta)
    full.update(
        format_version=FORMAT_VERSION,
        dtype="float16",
        layout="layer-major [layers, words, dim]",
        n_words=n_words,
        n_layers=n_layers,
        dim=dim,
        n_sentences=len(offs) - 1,
        label_names=list(label_names),
        splits={k: list(v) for k, v in splits.items()},
    )
    write_json(folder / "meta.json", full)


def link_store(
    source: ActivationStore,
    out: Path,
    labels: Sequence[int],
    label_names: Sequence[str],
    meta: dict[str, Any],
) -> None:
    """A new store at ``out`` (atomically) with ``source``'s activations, sentences and splits and its own
    ``labels``/``label_names``/``meta``: the activations file is hard-linked (copied across file systems),
    so two tasks over the same sentences share one extraction and its disk."""
    import os
    import shutil

    with atomic_dir(Path(out)) as tmp:
        try:
            os.link(source.path / ACTS_FILE, tmp / ACTS_FILE)
        except OSError:
            shutil.copyfile(source.path / ACTS_FILE, tmp / ACTS_FILE)
        write_index(tmp, (source.n_layers, source.n_words, source.dim), source.offsets.tolist(), source.words,
                    labels, label_names, source.splits, meta)
