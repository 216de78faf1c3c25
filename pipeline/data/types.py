"""The example types of the data package.

:class:`TaggedCorpus` (sentences of words, one label per word) is what every probing-corpus
reader produces; :class:`SentenceSplit` (texts with one label each) is one split of a sentence task.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pipeline.data.order import hash_order

#: A sentence-task label: a label name (classification) or a score (regression).
Label = str | float


@dataclass(frozen=True)
class TaggedSentence:
    """One sentence: ``words[i]`` carries ``labels[i]``."""

    words: tuple[str, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.words) != len(self.labels):
            raise ValueError(f"{len(self.words)} words but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.words)


@dataclass(frozen=True)
class TaggedCorpus:
    """Sentences of words with one label per word, plus where they came from.

    ``provenance`` is free-form JSON-able text (source file, resource name, licence,
    whether labels are gold or silver); it travels into every result.
    """

    name: str
    sentences: tuple[TaggedSentence, ...]
    provenance: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_lists(
        cls,
        name: str,
        sentences: Iterable[tuple[Sequence[str], Sequence[str]]],
        provenance: dict[str, str] | None = None,
    ) -> TaggedCorpus:
        """Build a corpus from ``(words, labels)`` pairs."""
        sents = tuple(TaggedSentence(tuple(ws), tuple(ls)) for ws, ls in sentences)
        return cls(name=name, sentences=sents, provenance=dict(provenance or {}))

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def n_tokens(self) -> int:
        """Number of words over all sentences."""
        return sum(len(s) for s in self.sentences)

    def label_counts(self) -> Counter[str]:
        """How often each label occurs."""
        return Counter(lab for s in self.sentences for lab in s.labels)

    def labels(self) -> list[str]:
        """The label set, sorted (the canonical label order saved with results)."""
        return sorted(self.label_counts())

    def words(self) -> list[list[str]]:
        """Sentences as lists of words (the extractor's input)."""
        return [list(s.words) for s in self.sentences]

    def subset(self, sentences: Sequence[TaggedSentence], suffix: str) -> TaggedCorpus:
        """A corpus of the given sentences with this corpus's provenance."""
        return TaggedCorpus(f"{self.name}:{suffix}", tuple(sentences), dict(self.provenance))

    def relabel(self, name: str, labels: Sequence[Sequence[str]], note: str) -> TaggedCorpus:
        """Same words, new labels (e.g. silver chunks from gold POS); ``note`` goes to provenance."""
        if len(labels) != len(self.sentences):
            raise ValueError(f"{len(labels)} label rows for {len(self.sentences)} sentences")
        sents = tuple(TaggedSentence(s.words, tuple(ls)) for s, ls in zip(self.sentences, labels))
        prov = dict(self.provenance)
        prov["labels"] = note
        return TaggedCorpus(name, sents, prov)


@dataclass(frozen=True)
class SentenceSplit:
    """One split: ``text_a[i]`` (and ``text_b[i]`` for pair tasks) carries ``labels[i]``.

    Labels are label names (classification) or floats (regression).
    """

    name: str
    text_a: tuple[str, ...]
    labels: tuple[Label, ...]
    text_b: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.text_a) != len(self.labels) or (self.text_b is not None and len(self.text_b) != len(self.labels)):
            raise ValueError(f"split {self.name}: texts and labels differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: Sequence[int], name: str | None = None) -> SentenceSplit:
        """The examples at ``indices`` (in that order)."""
        return SentenceSplit(
            name or self.name,
            tuple(self.text_a[i] for i in indices),
            tuple(self.labels[i] for i in indices),
            None if self.text_b is None else tuple(self.text_b[i] for i in indices),
        )

    def sample(self, n: int | None, seed: int) -> SentenceSplit:
        """At most ``n`` examples, chosen by a seeded hash (the same ``n`` gives a prefix of a larger ``n``)."""
        if n is None or n >= len(self):
            return self
        order = hash_order(range(len(self)), lambda i: f"{i}\x00{self.text_a[i]}", seed)
        return self.take(sorted(order[:n]))

    def label_counts(self) -> Counter[Label]:
        """How often each label occurs."""
        return Counter(self.labels)
