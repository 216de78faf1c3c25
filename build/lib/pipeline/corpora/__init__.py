"""Corpus readers, one per file format, each returning a :class:`TaggedCorpus`."""

from pipeline.corpora.types import TaggedCorpus, TaggedSentence

__all__ = ["TaggedCorpus", "TaggedSentence"]
