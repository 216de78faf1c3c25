#!/usr/bin/env python3
"""Make the local stand-ins of the paper profile for the ``paper-mini`` rehearsal (README "Rehearsing the paper
profile"): nothing here is a real model or real data, and no verdict computed on them is a finding.

Writes into OUT (default: ``.cache/paper-mini`` under the checkout; never committed):

- ``hf/hub/``: tiny RANDOMLY initialised BERT, RoBERTa and XLNet (3 layers x 32 hidden, safetensors) with fast
  tokenizers trained here on the stand-in text (WordPiece, byte-level BPE, Unigram), in the Hugging Face hub
  cache layout (``models--<id>/{blobs,snapshots/<commit>,refs/main}``) at the revision each model is pinned to
  (``pipeline.models.get_model(name).revision``), so that ``snapshot_download`` finds them with
  ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE=OUT/hf/hub``;
- ``hf/datasets/``: GLUE's six tasks (sst2, mnli, qnli, rte, mrpc, stsb) with the hub dataset's splits, columns
  and features, in the Arrow cache layout that ``datasets.load_dataset("nyu-mll/glue", config)`` reads offline
  (``nyu-mll___glue/<config>/0.0.0/<commit>/``, commit = ``pipeline.data.glue.GLUE_REVISION``);
- ``corpora/``: PTB ``.mrg`` trees (sections 00-24), PMB semantic tags, CoNLL-2000 chunks and CCGbank ``.auto``
  files, in the layout ``paths.corpora`` expects (pipeline/data/corpora.py).

Everything is deterministic from ``--seed``. Use: ``HF_HOME=OUT/hf HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.data.glue import GLUE, GLUE_DATASET, GLUE_REVISION  # noqa: E402
from pipeline.models import MODEL_FILES, get_model  # noqa: E402

log = logging.getLogger("make-paper-mini")

PAPER_MODELS = ("bert-base-cased", "roberta-base", "xlnet-base-cased")
#: Sentences per PTB/CCGbank file, files per section; PMB and CoNLL-2000 get as many sentences per split.
PER_FILE = 6
FILES_PER_SECTION = 2
GLUE_SIZES = {"train": 240, "validation": 60, "test": 30}

# ---------------------------------------------------------------------------------------- the stand-in text

# word -> (PTB POS, PMB semtag, CCG supertag, polarity)
Lex = tuple[str, str, str, int]
LEXICON: dict[str, list[tuple[str, Lex]]] = {
    "det": [("the", ("DT", "DEF", "NP[nb]/N", 0)), ("a", ("DT", "DIS", "NP[nb]/N", 0)),
            ("every", ("DT", "AND", "NP[nb]/N", 0)), ("this", ("DT", "PRX", "NP[nb]/N", 0)),
            ("that", ("DT", "DST", "NP[nb]/N", 0))],
    "adj": [("big", ("JJ", "IST", "N/N", 0)), ("small", ("JJ", "IST", "N/N", 0)), ("red", ("JJ", "IST", "N/N", 0)),
            ("old", ("JJ", "IST", "N/N", 0)), ("good", ("JJ", "IST", "N/N", 1)), ("happy", ("JJ", "IST", "N/N", 1)),
            ("bad", ("JJ", "IST", "N/N", -1)), ("sad", ("JJ", "IST", "N/N", -1)), ("fine", ("JJ", "IST", "N/N", 1)),
            ("awful", ("JJ", "IST", "N/N", -1))],
    "noun": [(w, ("NN", "CON", "N", 0)) for w in ("dog", "cat", "man", "woman", "house", "car", "book", "city",
                                                  "river", "idea", "film", "teacher", "garden", "letter")],
    "nouns": [(w, ("NNS", "CON", "N", 0)) for w in ("dogs", "cats", "books", "cities", "films", "letters")],
    "name": [("John", ("NNP", "PER", "N", 0)), ("Mary", ("NNP", "PER", "N", 0)), ("London", ("NNP", "GPE", "N", 0)),
             ("Paris", ("NNP", "GPE", "N", 0)), ("Acme", ("NNP", "ORG", "N", 0))],
    "pron": [("he", ("PRP", "PRO", "NP", 0)), ("she", ("PRP", "PRO", "NP", 0)), ("it", ("PRP", "PRO", "NP", 0))],
    "vbz": [(w, ("VBZ", "ENS", r"(S[dcl]\NP)/NP", 0)) for w in ("sees", "likes", "owns", "finds", "reads")],
    "vbd": [(w, ("VBD", "EPS", r"(S[dcl]\NP)/NP", 0)) for w in ("saw", "liked", "owned", "found", "read")],
    "md": [("will", ("MD", "FUT", r"(S[dcl]\NP)/(S[b]\NP)", 0)), ("can", ("MD", "POS", r"(S[dcl]\NP)/(S[b]\NP)", 0))],
    "vb": [(w, ("VB", "EXS", r"(S[b]\NP)/NP", 0)) for w in ("see", "like", "own", "find", "read")],
    "prep": [(w, ("IN", "REL", r"(NP\NP)/NP", 0)) for w in ("in", "on", "near", "with", "of")],
    "adv": [(w, ("RB", "IST", r"(S\NP)\(S\NP)", 0)) for w in ("quickly", "often", "rarely")],
    "neg": [("not", ("RB", "NOT", r"(S\NP)\(S\NP)", 0))],
}


@dataclass(frozen=True)
class Token:
    """One word of a generated sentence with its gold annotations."""

    word: str
    pos: str
    sem: str
    ccg: str
    chunk: str
    polarity: int


def _pick(rng: random.Random, cls: str) -> tuple[str, Lex]:
    return rng.choice(LEXICON[cls])


def _np(rng: random.Random) -> list[Token]:
    """A noun phrase: determiner, 0-2 adjectives and a noun; or a name; or a pronoun."""
    kind = rng.random()
    if kind < 0.15:
        w, (p, s, c, pol) = _pick(rng, "name")
        return [Token(w, p, s, c, "B-NP", pol)]
    if kind < 0.25:
        w, (p, s, c, pol) = _pick(rng, "pron")
        return [Token(w, p, s, c, "B-NP", pol)]
    out = [_pick(rng, "det")]
    out += [_pick(rng, "adj") for _ in range(rng.choice((0, 0, 1, 1, 2)))]
    out.append(_pick(rng, "nouns" if rng.random() < 0.3 else "noun"))
    return [Token(w, p, s, c, "B-NP" if i == 0 else "I-NP", pol) for i, (w, (p, s, c, pol)) in enumerate(out)]


def sentence(rng: random.Random) -> list[Token]:
    """A generated sentence: NP VP (PP) (ADVP) ."""
    subj = _np(rng)
    verb: list[Token] = []
    r = rng.random()
    if r < 0.25:
        for i, cls in enumerate(("md", "vb")):
            w, (p, s, c, pol) = _pick(rng, cls)
            verb.append(Token(w, p, s, c, "B-VP" if i == 0 else "I-VP", pol))
    else:
        w, (p, s, c, pol) = _pick(rng, "vbz" if r < 0.6 else "vbd")
        verb.append(Token(w, p, s, c, "B-VP", pol))
        if rng.random() < 0.15:
            w, (p, s, c, pol) = _pick(rng, "neg")
            verb.append(Token(w, p, s, c, "I-VP", pol))
    toks = subj + verb + _np(rng)
    if rng.random() < 0.4:
        w, (p, s, c, pol) = _pick(rng, "prep")
        toks += [Token(w, p, s, c, "B-PP", pol), *_np(rng)]
    if rng.random() < 0.2:
        w, (p, s, c, pol) = _pick(rng, "adv")
        toks.append(Token(w, p, s, c, "B-ADVP", pol))
    toks.append(Token(".", ".", "NIL", ".", "O", 0))
    return toks


def text(toks: list[Token]) -> str:
    """The sentence as running text."""
    return " ".join(t.word for t in toks[:-1]) + "."


# ---------------------------------------------------------------------------------------- corpora


def _groups(toks: list[Token]) -> Iterator[tuple[str, list[Token]]]:
    """The sentence's chunks as ``(chunk type, tokens)`` (the final ``.`` is type ``O``)."""
    group: list[Token] = []
    for t in toks:
        if t.chunk.startswith("B-") or t.chunk == "O":
            if group:
                yield group[0].chunk[2:] or "O", group
            group = [t]
        else:
            group.append(t)
    if group:
        yield group[0].chunk[2:] or "O", group


def ptb_tree(toks: list[Token], rng: random.Random) -> str:
    """A Penn Treebank bracketed tree of ``toks`` (one ``-NONE-`` trace now and then, as in the WSJ)."""
    parts = []
    for kind, group in _groups(toks):
        leaves = " ".join(f"({t.pos} {t.word})" for t in group)
        parts.append(leaves if kind == "O" else f"({kind} {leaves})")
    if rng.random() < 0.2:
        parts.insert(len(parts) - 1, "(ADVP (-NONE- *T*-1))")
    return "( (S " + "\n    ".join(parts) + ") )"


def ccg_auto(toks: list[Token], ident: str) -> str:
    """A CCGbank AUTO ID line and tree line of ``toks`` (a flat tree: the reader needs leaves, not derivations)."""
    leaves = " ".join(f"(<L {t.ccg} {t.pos} {t.pos} {t.word} {t.ccg}>)" for t in toks)
    return f"ID={ident} PARSER=GOLD NUMPARSE=1\n(<T S[dcl] 0 {len(toks)}> {leaves} )"


def write_corpora(out: Path, rng: random.Random) -> dict[str, int]:
    """PTB sections 00-24, CCGbank AUTO sections 00-24, PMB semtag and CoNLL-2000 splits under ``out``."""
    counts = {}
    n = 0
    for section in range(25):
        for f in range(1, FILES_PER_SECTION + 1):
            name = f"wsj_{section:02d}{f:02d}"
            sents = [sentence(rng) for _ in range(PER_FILE)]
            n += len(sents)
            mrg = out / "ptb" / "wsj" / f"{section:02d}" / f"{name}.mrg"
            auto = out / "ccgbank" / "AUTO" / f"{section:02d}" / f"{name}.auto"
            for p in (mrg, auto):
                p.parent.mkdir(parents=True, exist_ok=True)
            mrg.write_text("\n".join(ptb_tree(s, rng) for s in sents) + "\n", encoding="utf-8")
            auto.write_text("\n".join(ccg_auto(s, f"{name}.{i + 1}") for i, s in enumerate(sents)) + "\n",
                            encoding="utf-8")
    counts["ptb/ccgbank sentences"] = n
    n_split = {"train": PER_FILE * FILES_PER_SECTION * 20, "dev": PER_FILE * FILES_PER_SECTION * 2,
               "test": PER_FILE * FILES_PER_SECTION * 2}
    pmb = out / "pmb-semtags"
    pmb.mkdir(parents=True, exist_ok=True)
    for split, k in n_split.items():
        sents = [sentence(rng) for _ in range(k)]
        (pmb / f"{split}.tsv").write_text("".join("".join(f"{t.sem}\t{t.word}\n" for t in s) + "\n" for s in sents),
                                          encoding="utf-8")
    conll = out / "conll2000"
    conll.mkdir(parents=True, exist_ok=True)
    for split, k in (("train", n_split["train"] + n_split["dev"]), ("test", n_split["test"])):
        sents = [sentence(rng) for _ in range(k)]
        (conll / f"{split}.txt").write_text(
            "".join("".join(f"{t.word} {t.pos} {t.chunk}\n" for t in s) + "\n" for s in sents), encoding="utf-8")
    counts.update({f"pmb/conll {k}": v for k, v in n_split.items()})
    return counts


# ---------------------------------------------------------------------------------------- GLUE


def _glue_rows(config: str, n: int, rng: random.Random, hidden: bool) -> dict[str, list[Any]]:
    """``n`` rows of GLUE ``config`` in the hub dataset's columns; labels -1 where ``hidden`` (GLUE's test)."""
    spec = GLUE[config]
    cols: dict[str, list[Any]] = {c: [] for c in spec.columns}
    labels: list[Any] = []
    for _ in range(n):
        a = sentence(rng)
        b = sentence(rng) if rng.random() < 0.5 else a
        polarity = sum(t.polarity for t in a)
        if config == "sst2":
            label: Any = 1 if polarity > 0 or (polarity == 0 and rng.random() < 0.5) else 0
        elif config == "stsb":
            label = round(5.0 if b is a else rng.uniform(0, 4), 3)
        else:
            label = 0 if b is a else rng.randrange(len(spec.glue_labels))
        texts = [text(a), text(b)]
        if config == "qnli":
            texts[0] = "what " + text(a)[:-1].lower() + "?"
        for c, t in zip(spec.columns, texts, strict=False):
            cols[c].append(t)
        labels.append((-1.0 if config == "stsb" else -1) if hidden else label)
    return {**cols, "label": labels, "idx": list(range(n))}


def glue_splits(config: str) -> dict[str, bool]:
    """The hub dataset's splits of ``config`` -> whether its labels are hidden (-1)."""
    if config == "mnli":
        return {"train": False, "validation_matched": False, "validation_mismatched": False,
                "test_matched": True, "test_mismatched": True}
    return {"train": False, "validation": False, "test": True}


def write_glue(datasets_cache: Path, rng: random.Random) -> dict[str, int]:
    """Write each GLUE config as ``datasets`` caches a hub dataset it prepared at commit GLUE_REVISION."""
    import datasets
    from datasets.arrow_writer import ArrowWriter

    namespace, name = GLUE_DATASET.split("/")
    counts = {}
    for config, spec in GLUE.items():
        label = datasets.Value("float32") if not spec.glue_labels else datasets.ClassLabel(names=list(spec.glue_labels))
        features = datasets.Features({**{c: datasets.Value("string") for c in spec.columns}, "label": label,
                                      "idx": datasets.Value("int32")})
        folder = datasets_cache / f"{namespace}___{name}" / config / "0.0.0" / GLUE_REVISION
        folder.mkdir(parents=True, exist_ok=True)
        split_dict = datasets.SplitDict(dataset_name=name)
        for split, hidden in glue_splits(config).items():
            size = GLUE_SIZES["test" if hidden else ("train" if split == "train" else "validation")]
            table = datasets.Dataset.from_dict(_glue_rows(config, size, rng, hidden), features=features).data.table
            with ArrowWriter(features=features, path=str(folder / f"{name}-{split}.arrow")) as writer:
                writer.write_table(table)
                num_examples, num_bytes = writer.finalize()
            split_dict.add(datasets.SplitInfo(name=split, num_bytes=num_bytes, num_examples=num_examples,
                                              dataset_name=name))
            counts[f"{config}/{split}"] = num_examples
        info = datasets.DatasetInfo(description="paper-mini stand-in (generated, not GLUE)", features=features,
                                    builder_name="parquet", dataset_name=name, config_name=config,
                                    version="0.0.0", splits=split_dict)
        info.write_to_directory(str(folder))
    return counts


# ---------------------------------------------------------------------------------------- models


def _train_tokenizer(family: str, texts: list[str]) -> Any:
    """A fast tokenizer of the model family's class, its vocabulary trained on ``texts`` (tokenizers library)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from tokenizers.implementations import ByteLevelBPETokenizer, SentencePieceUnigramTokenizer
    from transformers import BertTokenizer, RobertaTokenizer, XLNetTokenizer

    if family == "bert":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.train_from_iterator(texts, trainers.WordPieceTrainer(
            vocab_size=400, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
        return BertTokenizer(vocab=tok.get_vocab(), do_lower_case=False)
    if family == "roberta":
        bpe = ByteLevelBPETokenizer(add_prefix_space=False)
        bpe.train_from_iterator(texts, vocab_size=600, min_frequency=1,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        model = json.loads(bpe.to_str())["model"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        return RobertaTokenizer(vocab=model["vocab"], merges=merges)
    specials = ["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>"]
    uni = SentencePieceUnigramTokenizer()
    uni.train_from_iterator(texts, vocab_size=400, special_tokens=specials, unk_token="<unk>")
    vocab = [(p, float(s)) for p, s in json.loads(uni.to_str())["model"]["vocab"]]
    return XLNetTokenizer(vocab=vocab, unk_id=0)


def _tiny_model(family: str, vocab_size: int, tokenizer: Any, seed: int) -> Any:
    """A 3-layer x 32-hidden model of the family's pre-training class, randomly initialised with ``seed``."""
    import torch
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        RobertaConfig,
        RobertaForMaskedLM,
        XLNetConfig,
        XLNetLMHeadModel,
    )

    torch.manual_seed(seed)
    common = {"vocab_size": vocab_size, "pad_token_id": tokenizer.pad_token_id}
    ends = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    if family == "bert":
        return BertForMaskedLM(BertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                                          intermediate_size=64, max_position_embeddings=512, **common))
    if family == "roberta":
        return RobertaForMaskedLM(RobertaConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                                                intermediate_size=64, max_position_embeddings=514, type_vocab_size=1,
                                                **ends, **common))
    return XLNetLMHeadModel(XLNetConfig(d_model=32, n_layer=3, n_head=2, d_inner=64, **ends, **common))


def commit_of(repo_id: str, revision: str) -> str:
    """The snapshot folder name for ``revision``: itself if it is a commit id, else a stand-in commit id."""
    if len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
        return revision
    return hashlib.sha1(f"paper-mini {repo_id} {revision}".encode()).hexdigest()


def place_in_hub_cache(files: Path, hub_cache: Path, repo_id: str, revision: str) -> Path:
    """Put the files of ``files`` into the hub cache as a download of ``repo_id`` at ``revision`` would:
    ``blobs/<sha256>``, ``snapshots/<commit>/<file>`` (relative links to the blobs) and ``refs/<revision>``
    (``refs/main`` too). Returns the snapshot folder."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    commit = commit_of(repo_id, revision)
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    for f in sorted(files.iterdir()):
        if f.name not in MODEL_FILES:
            continue
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snap / f.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, snap))
    (repo / "refs").mkdir(exist_ok=True)
    for ref in {"main", revision} - {commit}:
        (repo / "refs" / ref).write_text(commit, encoding="utf-8")
    return snap


def write_models(hub_cache: Path, texts: list[str], seed: int) -> dict[str, str]:
    """The three tiny paper models in the hub cache; returns model name -> snapshot folder."""
    out = {}
    for i, name in enumerate(PAPER_MODELS):
        spec = get_model(name)
        tokenizer = _train_tokenizer(spec.family, texts)
        model = _tiny_model(spec.family, len(tokenizer), tokenizer, seed + i)
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            out[name] = str(place_in_hub_cache(Path(tmp), hub_cache, spec.hub_id or name, spec.revision))
    return out


# ---------------------------------------------------------------------------------------- main


def build(out: Path, seed: int = 0) -> dict[str, Any]:
    """Write every stand-in under ``out`` (replacing what is there); returns what was written."""
    for sub in ("hf", "corpora"):
        shutil.rmtree(out / sub, ignore_errors=True)
    rng = random.Random(seed)
    corpora = write_corpora(out / "corpora", rng)
    glue = write_glue(out / "hf" / "datasets", random.Random(seed + 1))
    texts = [text(sentence(random.Random(seed + 2 + i))) for i in range(2000)]
    models = write_models(out / "hf" / "hub", texts, seed)
    return {"out": str(out), "corpora": corpora, "glue": glue, "models": models,
            "env": {"HF_HOME": str(out / "hf"), "HF_HUB_CACHE": str(out / "hf" / "hub"),
                    "HF_DATASETS_CACHE": str(out / "hf" / "datasets"), "HF_HUB_OFFLINE": "1",
                    "HF_DATASETS_OFFLINE": "1", "corpora": str(out / "corpora")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=str(ROOT / ".cache" / "paper-mini"),
                    help="folder to write into (default: .cache/paper-mini)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("datasets").setLevel(logging.ERROR)
    result = build(Path(args.out).resolve(), args.seed)
    print(json.dumps(result["env"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
