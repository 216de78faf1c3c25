"""The one corpus type every reader produces: sentences of words, one label per word."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


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
