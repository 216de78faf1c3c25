"""SILVER chunk labels: a deterministic rule chunker over gold Penn Treebank POS tags.

Gold chunking (CoNLL-2000) is not available offline, so the offline chunking task uses
these labels instead. They are **silver**: produced by rules from POS tags alone, never
checked by a person, and must be reported as such. Output is CoNLL-2000-style BIO
(``B-NP``, ``I-NP``, ``B-VP``, ``B-PP``, ``B-ADJP``, ``B-ADVP``, ``B-SBAR``, ``B-PRT``,
``B-INTJ``, ``B-LST``, ``O``) and always valid BIO.

How it works (NLTK ``RegexpParser`` style): the tag sequence is written as ``<DT><JJ><NN>``
and the patterns of :data:`RULES` are applied in order, each only to tokens that no earlier
rule has chunked. ``<NN.*|PRP$>`` matches one tag (``X.*`` is a prefix match, anything else
literal); the rest is Python regular-expression syntax over such tags. Then one context
rule decides every remaining preposition (IN) / TO:

* ``SBAR`` if it starts a clause: the next chunk is an NP immediately followed by a VP whose
  first word is finite (MD, VBD, VBZ, VBP), and the token before is not inside an NP
  (``said that he left``, ``, although prices fell``);
* ``PP`` otherwise (``on the mat``, ``the price of the stock rose``).

Everything else (punctuation, CC, stray POS/SYM/-LRB-, ...) is ``O``.

Conventions followed from CoNLL-2000: the possessive ``'s`` (POS) *starts* the next NP
(``[NP the company] [NP 's chairman]``); verb groups include modals, adverbs between
verbs and infinitival ``to`` (``[VP is widely expected to take]``); ``which``/``that``
tagged WDT and ``who`` (WP) are one-word NPs (CoNLL-2000 makes WHNP an NP chunk, so SBAR
only comes from subordinating IN); ``when``/``where`` (WRB) are ADVP.

Known limitations (POS tags only, no words, no parser):

* noun-noun boundaries are guessed: a common noun followed by a proper noun splits
  (``[a director] [Nov. 29]``), adjacent common nouns never split (``[release tomorrow]``);
* NP coordination is joined only between bare nouns (``[July and August]``);
* a VBN/VBG (or a proper noun) before a noun is a modifier only after a determiner
  (``[the proposed merger]``, ``[the Dutch publishing group]``, but ``[VP operating] [NP profit]``);
* SBAR vs PP is a heuristic: a subordinator right after a noun (``the belief that he left``)
  comes out PP; a fronted PP followed by a clause (``In May sales rose``) comes out SBAR;
* an adverb before the first verb is a separate ADVP, ``n't``/``not`` after the last verb
  is ADVP; CONJP and UCP chunks are never produced.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.data.types import TaggedCorpus

CHUNKER_VERSION = "rules-1"

# Shared pieces of the patterns below.
_DET = r"<PDT>?<DT|PRP$|WDT|WP$|POS>"
_NOUNS = r"(?:<NNP|NNPS>+<NN|NNS|FW>*(?:<CD>(?!<NN.*>))?|<NN|NNS|FW>+)"  # common after proper, not before
_COORD = r"(?:<CC><NN|NNS|NNP|NNPS>+)*"
_VERB = r"(?:<MD|VB.*>|<TO><RB.*>*<VB>)"

#: The chunk rules, applied in this order; each row is (chunk type, tag pattern, example).
RULES: tuple[tuple[str, str, str], ...] = (
    ("NP", _DET + r"(?:<RB.*>*<JJ.*|VBN|VBG|CD|$|#|NNP|NNPS>)*" + _NOUNS + _COORD, "the Dutch publishing group"),
    ("NP", r"(?:<RB.*>*<JJ.*|CD|$|#>)*" + _NOUNS + _COORD, "5 million new shares / July and August"),
    ("NP", r"<PDT>?<DT|PRP$|POS>?<$|#>?<CD>+", "$ 5 million / the 1980s"),
    ("NP", _DET + r"(?:<RB.*>*<JJ.*>)+", "the latest / the most recent"),
    ("NP", r"<PDT>?<DT|WDT>|<PRP|WP|EX|PDT>", "that / all those / he / which / there"),
    ("VP", _VERB + r"(?:<RB.*>*" + _VERB + r")*", "could n't have been expected to go"),
    ("ADJP", r"<RB.*>*<JJ.*>+", "very good"),
    ("ADVP", r"<RB.*|WRB>+", "very quickly / when"),
    ("PRT", r"<RP>", "(gave) up"),
    ("INTJ", r"<UH>", "oh"),
    ("LST", r"<LS>", "a) / 1."),
)

_FINITE = frozenset({"MD", "VBD", "VBZ", "VBP"})
_TAG_IN_PATTERN = re.compile(r"<([^<>]*)>")


def _compile(pattern: str) -> re.Pattern[str]:
    """Turn a tag pattern (``<DT|NN.*>`` ...) into a regex over strings like ``<DT><NN>``."""

    def one(m: re.Match[str]) -> str:
        alts = []
        for alt in m.group(1).split("|"):
            alts.append(re.escape(alt[:-2]) + r"[^<>]*" if alt.endswith(".*") else re.escape(alt))
        return "(?:<(?:" + "|".join(alts) + ")>)"  # one group, so a following ? or * covers the tag

    return re.compile(_TAG_IN_PATTERN.sub(one, pattern))


_COMPILED: tuple[tuple[str, re.Pattern[str]], ...] = tuple((kind, _compile(p)) for kind, p, _ in RULES)


def _clean(tag: str) -> str:
    """A tag safe to embed between ``<`` and ``>``."""
    return tag.replace("<", "_").replace(">", "_") or "_"


def _runs(kinds: list[str | None]) -> list[tuple[int, int]]:
    """Maximal ``[start, end)`` spans of tokens not yet in a chunk."""
    out, start = [], None
    for i, k in enumerate(kinds + ["#end"]):
        if k is None and start is None:
            start = i
        elif k is not None and start is not None:
            out.append((start, i))
            start = None
    return out


def _chunk_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """Chunks as ``(start, end, type)`` spans, sorted, non-overlapping."""
    n = len(tags)
    kinds: list[str | None] = [None] * n
    spans: list[tuple[int, int, str]] = []
    for kind, regex in _COMPILED:
        for lo, hi in _runs(kinds):
            pieces = [f"<{_clean(t)}>" for t in tags[lo:hi]]
            offsets = {0: lo}
            pos = 0
            for j, piece in enumerate(pieces, start=lo + 1):
                pos += len(piece)
                offsets[pos] = j
            for m in regex.finditer("".join(pieces)):
                if m.end() == m.start() or m.start() not in offsets or m.end() not in offsets:
                    continue
                a, b = offsets[m.start()], offsets[m.end()]
                spans.append((a, b, kind))
                for i in range(a, b):
                    kinds[i] = kind
    # Context rule: each IN / TO still unchunked becomes SBAR or PP.
    starts = {a: (b, k) for a, b, k in spans}
    for i, tag in enumerate(tags):
        if kinds[i] is not None or tag not in ("IN", "TO"):
            continue
        kind = "PP"
        nxt = starts.get(i + 1)
        if tag == "IN" and nxt is not None and nxt[1] == "NP" and (i == 0 or kinds[i - 1] != "NP"):
            after = starts.get(nxt[0])
            if after is not None and after[1] == "VP" and tags[nxt[0]] in _FINITE:
                kind = "SBAR"
        spans.append((i, i + 1, kind))
        kinds[i] = kind
    return sorted(spans)


def chunk_tags(pos: Sequence[str]) -> list[str]:
    """BIO chunk labels (one per token) for a sentence given only its Penn Treebank POS tags."""
    tags = [str(t) for t in pos]
    labels = ["O"] * len(tags)
    for a, b, kind in _chunk_spans(tags):
        labels[a] = f"B-{kind}"
        for i in range(a + 1, b):
            labels[i] = f"I-{kind}"
    return labels


def silver_chunk_corpus(pos_corpus: TaggedCorpus, name: str | None = None) -> TaggedCorpus:
    """The same sentences with SILVER chunk labels computed from their gold POS tags."""
    labels = [chunk_tags(s.labels) for s in pos_corpus.sentences]
    out = pos_corpus.relabel(
        name or f"{pos_corpus.name}:silver-chunks", labels,
        note="SILVER chunk labels from a rule chunker over gold POS tags (pipeline.data.chunker), "
             "not CoNLL-2000 gold")
    out.provenance["chunker"] = CHUNKER_VERSION
    return out
