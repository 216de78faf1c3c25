"""What a task is: a probing task or a sentence task, and the one context every loader gets."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline.data.members import read_pinned_member
from pipeline.data.types import Label, SentenceSplit, TaggedCorpus
from pipeline.errors import ConfigError

#: A probing task's splits: ``train``, ``dev``, ``test``.
Splits = dict[str, TaggedCorpus]
#: ``glue_source(config)`` -> split name -> columnar split (``split[column]`` is a sequence).
GlueSource = Callable[[str], Mapping[str, Any]]
#: ``read_member(resource_name, member_chain)`` -> bytes.
MemberReader = Callable[[str, Sequence[str]], bytes]


@dataclass(frozen=True)
class LoadContext:
    """What a loader may use: the resource cache, the folder of user-supplied corpora, split settings.

    ``fractions`` are the train/dev/test fractions of the corpora split here; ``seed`` is the seed
    of the sentence tasks' hashed splits; ``glue_dev_*`` size GLUE's held-out dev part.
    ``read_member`` and ``glue_source`` exist for tests (dependency injection).
    """

    cache: Path | None = None
    corpora_dir: Path = Path("corpora")
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 42
    glue_dev_fraction: float = 0.1
    glue_dev_max: int = 5000
    read_member: MemberReader | None = None
    glue_source: GlueSource | None = None

    def read(self, resource: str, chain: Sequence[str]) -> bytes:
        """Bytes of a pinned archive member (verified), or from the injected reader."""
        if self.read_member is not None:
            return self.read_member(resource, chain)
        return read_pinned_member(resource, chain, self.cache)


@dataclass(frozen=True)
class ProbeTask:
    """A probing task: a name, a kind of linguistic property, and a loader giving its splits."""

    name: str
    kind: Literal["pos", "chunk", "sem", "ccg"]
    profile: Literal["offline", "paper"]
    labels: Literal["gold", "silver"]
    description: str
    loader: Callable[[LoadContext], Splits]


@dataclass(frozen=True)
class SentenceTask:
    """A sentence(-pair) task for fine-tuning: its label space, metrics, test splits and loader.

    Label names are stored sorted; label id ``i`` is ``label_names[i]``.
    """

    name: str
    profile: Literal["offline", "paper"]
    kind: Literal["classification", "regression"]
    label_names: tuple[str, ...]
    pair: bool
    metrics: tuple[str, ...]
    main_metric: str
    description: str
    source: str
    loader: Callable[[SentenceTask, LoadContext], dict[str, SentenceSplit]] = field(repr=False, compare=False)
    test_splits: tuple[str, ...] = ("test",)
    positive_label: str | None = None

    @property
    def num_labels(self) -> int:
        """Output size of the head (1 for regression)."""
        return 1 if self.kind == "regression" else len(self.label_names)

    @property
    def eval_splits(self) -> tuple[str, ...]:
        """``dev`` and the test split(s)."""
        return ("dev", *self.test_splits)

    def label_id(self, label: Label) -> int:
        """Index of ``label`` in :attr:`label_names`."""
        try:
            return self.label_names.index(str(label))
        except ValueError:
            raise ConfigError(f"task {self.name}: unknown label {label!r}; "
                              f"labels: {', '.join(self.label_names)}") from None


@dataclass(frozen=True)
class TaskData:
    """A sentence task with its loaded splits (``train``, ``dev`` and ``task.test_splits``) and their source."""

    task: SentenceTask
    splits: dict[str, SentenceSplit]
    provenance: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of examples per split."""
        return {k: len(v) for k, v in self.splits.items()}
