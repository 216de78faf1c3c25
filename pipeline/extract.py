"""Word-level activations: batched forward passes, sub-word -> word alignment, aggregation.

For each word the extractor keeps one vector per layer (the embedding layer included) made
from the word's sub-word tokens: the ``first``, the ``last`` (default, as NeuroX and the
paper) or their ``mean``. Alignment comes from the fast tokenizer's ``word_ids()``, so it is
correct for WordPiece (BERT), byte-level BPE with space markers (RoBERTa) and SentencePiece
with left padding and trailing special tokens (XLNet) alike; special and padding tokens
never reach a word. A word spelled like a special token (``[SEP]``, ``<pad>``, ``</s>``, ``<cls>``) is
encoded as literal text, never as that token (the tokenizer's ``split_special_tokens``), and the
whitespace around a word is stripped (on byte-level BPE a trailing space would otherwise become the
word's last sub-word); blank words are refused.

Sentences are sorted by length and batched. A sentence longer than the model's limit is cut
into overlapping windows of words; each word takes its vector from the window in which it
sits away from the edges (``context`` sub-words of context on each side), so no word is
dropped. A word the tokenizer turns into no tokens at all (e.g. a lone zero-width space) is
encoded as the unknown token (:func:`unknown_stand_in`); a single word longer than a whole window keeps its first
sub-words. Each of these events is counted and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from pipeline.config import ExtractParams
from pipeline.errors import LingShiftError
from pipeline.precision import autocast_dtype
from pipeline.store import ActivationWriter

#: The extraction settings' one source of defaults (``extract:`` in params.yaml).
_DEFAULTS = ExtractParams()
log = logging.getLogger(__name__)

Aggregation = Literal["first", "last", "mean"]
AGGREGATIONS: tuple[str, ...] = ("first", "last", "mean")
DEFAULT_MAX_LENGTH = 512


class ExtractionInputError(LingShiftError):
    """The sentences given to the extractor are not usable."""


@dataclass
class ExtractStats:
    """Counts and timing of one extraction run."""

    n_sentences: int = 0
    n_words: int = 0
    n_subwords: int = 0
    n_windows: int = 0
    n_windowed_sentences: int = 0
    n_empty_words: int = 0
    n_truncated_words: int = 0
    seconds: float = 0.0

    @property
    def words_per_second(self) -> float:
        """Throughput of the whole run."""
        return self.n_words / self.seconds if self.seconds > 0 else float("nan")

    def counts(self) -> dict[str, int]:
        """The counts only: what the inputs determine (timings are run facts, kept out of the store)."""
        return {k: v for k, v in asdict(self).items() if k != "seconds"}

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly counts, with the throughput."""
        return {**asdict(self), "words_per_second": round(self.words_per_second, 1)}


@dataclass(frozen=True)
class Window:
    """Words ``start:end`` of sentence ``sent`` go through the model; ``own_start:own_end`` are kept."""

    sent: int
    start: int
    end: int
    own_start: int
    own_end: int
    n_sub: int


def validate_sentences(sentences: Sequence[Sequence[str]]) -> None:
    """Reject what the extractor cannot align: empty sentences, non-string or empty words."""
    if len(sentences) == 0:
        raise ExtractionInputError("no sentences to extract")
    for i, sent in enumerate(sentences):
        if isinstance(sent, str):
            raise ExtractionInputError(f"sentence {i} is a string, not a list of words",
                                       "Split it into words first (e.g. sentence.split()).")
        if len(sent) == 0:
            raise ExtractionInputError(f"sentence {i} is empty; every sentence needs at least one word")
        for j, w in enumerate(sent):
            if not isinstance(w, str) or not w.strip():
                raise ExtractionInputError(f"sentence {i}, word {j} is {w!r}; words must be non-blank strings")


def clean_words(sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    """``sentences`` with the whitespace around each word stripped (the API and the corpora alike)."""
    return [[w.strip() for w in sent] for sent in sentences]


def plan_windows(sent: int, lens: Sequence[int], budget: int, context: int) -> list[Window]:
    """Cut a sentence with per-word sub-word counts ``lens`` into windows of at most ``budget``.

    Every word is owned by exactly one window; owned words get up to ``context`` sub-words of
    context on both sides (less at the sentence edges).
    """
    n = len(lens)
    capped = [min(x, budget) for x in lens]
    total = sum(capped)
    if total <= budget:
        return [Window(sent, 0, n, 0, n, total)]
    context = max(0, min(context, (budget - 1) // 2))
    out: list[Window] = []
    own_start = 0
    while own_start < n:
        start, used = own_start, 0
        while start > 0 and used + capped[start - 1] <= context:
            start -= 1
            used += capped[start]
        while used + capped[own_start] > budget:  # keep the part of the left context that fits
            used -= capped[start]
            start += 1
        rest = sum(capped[own_start:])
        if used + rest <= budget:
            out.append(Window(sent, start, n, own_start, n, used + rest))
            break
        own_end, size = own_start + 1, used + capped[own_start]
        while own_end < n and size + capped[own_end] <= budget - context:
            size += capped[own_end]
            own_end += 1
        end = own_end
        while end < n and size + capped[end] <= budget:
            size += capped[end]
            end += 1
        out.append(Window(sent, start, end, own_start, own_end, size))
        own_start = own_end
    return out


def tokenizer_is_uncased(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` folds case (an uncased model cannot tell ``Ab`` from ``ab``).

    Read from the fast tokenizer's backend normaliser (``normalize_str("Ab") == "ab"``); a tokenizer
    without a normaliser is cased; a slow tokenizer falls back to its ``do_lower_case`` flag. Recorded in
    the store's ``meta.json`` as ``tokenizer_uncased`` so that word types (control task) follow it.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        normaliser = backend.normalizer
        return normaliser is not None and normaliser.normalize_str("Ab") == "ab"
    return bool(getattr(tokenizer, "do_lower_case", False))


def default_max_length(tokenizer: Any, model: Any) -> int:
    """The longest input the model takes, in tokens (special tokens included), at most 512."""
    cands = [DEFAULT_MAX_LENGTH]
    mml = getattr(tokenizer, "model_max_length", None)
    if isinstance(mml, int) and 0 < mml < 100_000:
        cands.append(mml)
    mpe = getattr(model.config, "max_position_embeddings", None)
    if isinstance(mpe, int) and mpe > 0 and getattr(model.config, "model_type", "") != "xlnet":
        cands.append(mpe - (2 if model.config.model_type in ("roberta", "mpnet") else 0))
    return min(cands)


#: Characters that no vocabulary of ours holds: a word with no sub-words is replaced by the first one the
#: tokenizer encodes to pieces that include the unknown token (WordPiece: exactly ``[UNK]``).
_UNK_CANDIDATES = ("\u3400", "\U0001f9ff", "\ua66e")


def unknown_stand_in(tokenizer: Any) -> str:
    """The text that stands in for a word with no sub-words: a character the tokenizer maps to its unknown
    token even with special tokens split (``split_special_tokens``), else the unknown token's spelling (then
    encoded as literal text)."""
    unk_id = tokenizer.unk_token_id
    for cand in _UNK_CANDIDATES:
        ids = tokenizer(cand, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        if ids and unk_id in ids:
            return cand
    return tokenizer.unk_token or "<unk>"


def _encode_words(tokenizer: Any, sentences: Sequence[Sequence[str]]) -> tuple[list[list[str]], list[list[int]], int]:
    """Sub-word counts per word (special-token spellings as literal text); a word with no sub-words is
    replaced by :func:`unknown_stand_in`, and its sentence counted again."""

    def counts_of(sents: Sequence[Sequence[str]]) -> list[list[int]]:
        enc = tokenizer([list(x) for x in sents], is_split_into_words=True, add_special_tokens=False,
                        verbose=False, split_special_tokens=True)
        return [np.bincount([w for w in enc.word_ids(i) if w is not None], minlength=len(x)).tolist()
                for i, x in enumerate(sents)]

    fixed = [list(x) for x in sentences]
    lens = counts_of(fixed)
    redo = [i for i, c in enumerate(lens) if 0 in c]
    n_empty = sum(c.count(0) for c in lens)
    if redo:
        stand_in = unknown_stand_in(tokenizer)
        for i in redo:
            fixed[i] = [stand_in if c == 0 else w for w, c in zip(fixed[i], lens[i], strict=True)]
        for i, c in zip(redo, counts_of([fixed[i] for i in redo]), strict=True):
            lens[i] = c
    return fixed, lens, n_empty


def resolve_device(device: str | None) -> torch.device:
    """``device`` if given, else CUDA when present, else CPU (where to load a model)."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_device(model: Any) -> torch.device:
    """The device the model's weights are on (where its inputs must go)."""
    return next(model.parameters()).device


def iter_activations(
    tokenizer: Any,
    model: Any,
    sentences: Sequence[Sequence[str]],
    *,
    aggregation: Aggregation = _DEFAULTS.aggregation,
    batch_size: int = _DEFAULTS.batch_size,
    max_length: int | None = None,
    context: int | None = None,
    device: str | None = None,
    progress: bool = True,
    stats: ExtractStats | None = None,
    mixed_precision: str = "no",
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(rows, acts)`` per batch: word rows int64 ``[n]`` and float16 ``[layers, n, dim]`` (NumPy).

    Row ``r`` is the ``r``-th word of the concatenated sentences. Every row is yielded once.
    ``device`` None runs where the model is; a device given moves the model there. ``mixed_precision``:
    the forward pass's autocast (``extract.mixed_precision``: no, auto, bf16, fp16;
    :func:`pipeline.precision.autocast_dtype`).
    """
    if aggregation not in AGGREGATIONS:
        raise ExtractionInputError(f"aggregation {aggregation!r} is not one of {', '.join(AGGREGATIONS)}")
    if batch_size < 1:
        raise ExtractionInputError(f"batch_size must be at least 1, got {batch_size}")
    validate_sentences(sentences)
    sentences = clean_words(sentences)
    stats = stats if stats is not None else ExtractStats()
    dev = torch.device(device) if device else model_device(model)
    if dev != model_device(model):
        model.to(dev)
    max_length = max_length or default_max_length(tokenizer, model)
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    if budget < 1:
        raise ExtractionInputError(f"max_length {max_length} leaves no room for words")
    context = budget // 4 if context is None else context

    words, lens, n_empty = _encode_words(tokenizer, sentences)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in words])]).astype(np.int64)
    windows = [w for i, ln in enumerate(lens) for w in plan_windows(i, ln, budget, context)]
    stats.n_sentences += len(words)
    stats.n_words += int(offsets[-1])
    stats.n_subwords += sum(map(sum, lens))
    stats.n_empty_words += n_empty
    stats.n_truncated_words += sum(1 for ln in lens for x in ln if x > budget)
    stats.n_windows += len(windows)
    windowed = {w.sent for w in windows if w.start != 0 or w.end != len(words[w.sent])}
    stats.n_windowed_sentences += len(windowed)
    if windowed:
        log.info("%d of %d sentences exceed %d sub-words and were cut into overlapping windows",
                 len(windowed), len(words), budget)
    if n_empty:
        log.warning("%d words had no sub-word tokens and were encoded as %r", n_empty, tokenizer.unk_token)
    if stats.n_truncated_words:
        log.warning("%d words are longer than a whole window; only their first %d sub-words are used",
                    stats.n_truncated_words, budget)

    order = sorted(range(len(windows)), key=lambda k: windows[k].n_sub)
    model_inputs = set(getattr(model, "main_input_name", "input_ids").split()) | {
        "input_ids", "attention_mask", "token_type_ids"}
    amp = autocast_dtype(mixed_precision, dev)
    from tqdm.auto import tqdm

    bar = tqdm(total=int(offsets[-1]), unit="word", desc="extract", disable=not progress or None, leave=False)
    try:
        for b0 in range(0, len(order), batch_size):
            batch = [windows[k] for k in order[b0:b0 + batch_size]]
            enc = tokenizer([words[w.sent][w.start:w.end] for w in batch], is_split_into_words=True,
                            padding=True, truncation=True, max_length=max_length, return_tensors="pt",
                            split_special_tokens=True)
            rows, bsel, tsel, seg = _alignment(enc, batch, offsets, aggregation)
            inputs = {k: v.to(dev) for k, v in _model_inputs(enc, model).items() if k in model_inputs}
            with torch.inference_mode(), torch.autocast(device_type=dev.type, dtype=amp, enabled=amp is not None):
                hidden = model(**inputs).hidden_states
            acts = aggregate_words(hidden, bsel, tsel, seg, len(rows), aggregation)
            yield rows, acts
            bar.update(len(rows))
    finally:
        bar.close()


def _model_inputs(enc: Any, model: Any) -> dict[str, torch.Tensor]:
    """The encoded batch, plus XLNet's segment ids where the tokenizer gives none.

    XLNet was pre-trained with segment id 2 on its final ``<cls>`` (and 3 on padding);
    transformers 4's tokenizer supplied them, transformers 5's does not.
    """
    inputs = dict(enc.items())
    if getattr(model.config, "model_type", "") == "xlnet" and "token_type_ids" not in inputs:
        mask = inputs["attention_mask"]
        tt = torch.zeros_like(mask)
        last = mask.shape[1] - 1 - mask.flip(1).argmax(1)  # <cls> is the last real token (by position:
        tt[torch.arange(len(mask)), last] = 2              # a word may spell "<cls>" too)
        tt[mask == 0] = 3
        inputs["token_type_ids"] = tt
    return inputs


def _alignment(enc: Any, batch: Sequence[Window], offsets: np.ndarray,
               aggregation: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Token positions feeding each owned word of a batch.

    Returns word rows ``[n]``, and per selected token its batch index, position and the local
    word slot it feeds (``[m]`` each; for first/last ``m == n``).
    """
    rows: list[int] = []
    bsel: list[int] = []
    tsel: list[int] = []
    seg: list[int] = []
    for b, w in enumerate(batch):
        base = int(offsets[w.sent]) + w.start
        lo, hi = w.own_start - w.start, w.own_end - w.start
        prev = None
        for t, wid in enumerate(enc.word_ids(b)):
            if wid is None or wid < lo or wid >= hi:
                continue
            if wid != prev:
                rows.append(base + wid)
                prev = wid
                if aggregation != "mean":
                    bsel.append(b)
                    tsel.append(t)
                    seg.append(len(rows) - 1)
                    continue
            if aggregation == "last":
                tsel[-1] = t
            elif aggregation == "mean":
                bsel.append(b)
                tsel.append(t)
                seg.append(len(rows) - 1)
    n_owned = sum(w.own_end - w.own_start for w in batch)
    if len(rows) != n_owned:
        raise RuntimeError(f"alignment found {len(rows)} words where {n_owned} were expected")
    return (np.asarray(rows, dtype=np.int64), np.asarray(bsel, dtype=np.int64), np.asarray(tsel, dtype=np.int64),
            np.asarray(seg, dtype=np.int64))


def aggregate_words(hidden: Sequence[torch.Tensor], bsel: np.ndarray, tsel: np.ndarray, seg: np.ndarray,
               n: int, aggregation: str, on_device: bool | None = None) -> np.ndarray:
    """Word vectors, float16 ``[layers, n, dim]``, from hidden states (``layers`` x ``[batch, tokens, dim]``).

    On the CPU the gather runs in NumPy: tiny ATen ops under OpenMP slow down by 10-30x when
    the cores are shared with other work, NumPy's fancy indexing does not. On an accelerator
    (``on_device``, default: the hidden states are not on the CPU) the gather runs in torch.
    """
    flat = bsel * hidden[0].shape[1] + tsel
    if on_device if on_device is not None else hidden[0].device.type != "cpu":
        idx = torch.as_tensor(flat, device=hidden[0].device)
        picked_t = torch.stack([h.reshape(-1, h.shape[-1]).index_select(0, idx) for h in hidden]).float()
        if aggregation == "mean":
            seg_t = torch.as_tensor(seg, device=idx.device)
            sums = torch.zeros(picked_t.shape[0], n, picked_t.shape[2], device=idx.device)
            sums.index_add_(1, seg_t, picked_t)
            picked_t = sums / torch.bincount(seg_t, minlength=n).to(sums.dtype)[None, :, None]
        return picked_t.to(torch.float16).cpu().numpy()
    picked = np.stack([h.reshape(-1, h.shape[-1]).numpy()[flat] for h in hidden])  # [layers, m, dim]
    if aggregation == "mean":
        starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])  # a word's tokens are consecutive
        counts = np.diff(np.r_[starts, len(seg)])
        picked = np.add.reduceat(picked, starts, axis=1) / counts[None, :, None].astype(np.float32)
    return torch.from_numpy(picked).to(torch.float16).numpy()  # torch's cast is ~4x faster than NumPy's


def extract_array(tokenizer: Any, model: Any, sentences: Sequence[Sequence[str]], **kwargs: Any) -> np.ndarray:
    """All word activations in memory: float32 ``[words, layers, dim]`` (for tests and the API)."""
    parts = list(iter_activations(tokenizer, model, sentences, progress=False, **kwargs))
    n = sum(len(r) for r, _ in parts)
    layers, _, dim = parts[0][1].shape
    out = np.empty((n, layers, dim), dtype=np.float32)
    for rows, acts in parts:
        out[rows] = acts.transpose(1, 0, 2)
    return out


def label_index(labels: Sequence[Sequence[str]]) -> tuple[list[int], list[str]]:
    """Word labels as ids ``[words]`` (flattened, sentence order) into their sorted names."""
    label_names = sorted({lab for sent in labels for lab in sent})
    index = {lab: i for i, lab in enumerate(label_names)}
    return [index[lab] for sent in labels for lab in sent], label_names


def extract_to_store(
    tokenizer: Any,
    model: Any,
    sentences: Sequence[Sequence[str]],
    labels: Sequence[Sequence[str]],
    splits: dict[str, tuple[int, int]],
    out: Path,
    meta: dict[str, Any],
    **kwargs: Any,
) -> ExtractStats:
    """Extract ``sentences`` into a new activation store at ``out`` (atomically).

    ``labels`` holds one label per word; ``splits`` maps split names to sentence ranges.
    """
    validate_sentences(sentences)
    if len(labels) != len(sentences) or any(len(a) != len(b) for a, b in zip(labels, sentences)):
        raise ExtractionInputError("labels must hold one label per word of every sentence")
    flat_labels, label_names = label_index(labels)
    n_words = len(flat_labels)
    n_layers = model.config.num_hidden_layers + 1
    dim = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.d_model
    stats = ExtractStats()
    t0 = time.perf_counter()
    with ActivationWriter(out, n_words, n_layers, dim) as writer:
        n_inf = 0
        for rows, acts in iter_activations(tokenizer, model, sentences, stats=stats, **kwargs):
            block = acts.transpose(1, 0, 2)
            n_inf += int(np.isinf(block).sum())
            writer.write_rows(rows, block)
        if n_inf:
            log.warning("%d activation values overflowed float16 and are stored as +-inf", n_inf)
        stats.seconds = time.perf_counter() - t0
        offsets = np.concatenate([[0], np.cumsum([len(s) for s in sentences])])
        writer.commit(offsets, sentences, flat_labels, label_names, splits,
                      {**meta, "extraction": stats.counts(), "float16_overflows": n_inf,
                       "tokenizer_uncased": tokenizer_is_uncased(tokenizer)})
    log.info("extracted %d words (%d sentences) in %.1f s: %.0f words/s -> %s", stats.n_words,
             stats.n_sentences, stats.seconds, stats.words_per_second, out)
    return stats
