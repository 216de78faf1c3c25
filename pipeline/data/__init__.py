"""The data package: probing corpora and sentence tasks, their registry, splits and metrics.

=================  ==============================================================================
module             holds
=================  ==============================================================================
``types``          ``TaggedCorpus`` / ``TaggedSentence`` (word labels), ``SentenceSplit`` (texts)
``wordtag`` ...    one reader per corpus format: ``wordtag``, ``brown``, ``conllu``, ``ptb``,
                   ``conll2000``, ``pmb``, ``ccgbank``; ``chunker`` (SILVER chunks from POS)
``splits``         ``check_split_fractions`` (the one check), contiguous and seeded splits, the
                   ``word<TAB>label`` split files
``order``          seeded, platform-independent hash orders
``members``        the pinned archive members read, with their sha256
``spec``           ``LoadContext`` (the one loader context), ``ProbeTask``, ``SentenceTask``, ``TaskData``
``corpora``        the probing-task loaders
``sentence``       the offline sentence tasks (parsers, loaders)
``glue``           the GLUE tasks (``datasets``)
``metrics``        sentence-task metrics and the majority baseline
``registry``       ``PROBE_TASKS``, ``SENTENCE_TASKS`` and their lookups and loaders
=================  ==============================================================================

Corpus readers import no torch and no transformers.
"""

from pipeline.data.registry import (
    OFFLINE_TASKS,
    PAPER_TASKS,
    PROBE_TASKS,
    SENTENCE_TASKS,
    get_probe_task,
    get_sentence_task,
    load_probe_splits,
    load_sentence_task,
)
from pipeline.data.spec import LoadContext, ProbeTask, SentenceTask, Splits, TaskData
from pipeline.data.splits import SPLITS, check_split_fractions
from pipeline.data.types import SentenceSplit, TaggedCorpus, TaggedSentence

__all__ = [
    "OFFLINE_TASKS", "PAPER_TASKS", "PROBE_TASKS", "SENTENCE_TASKS", "SPLITS", "LoadContext", "ProbeTask",
    "SentenceSplit", "SentenceTask", "Splits", "TaggedCorpus", "TaggedSentence", "TaskData", "check_split_fractions",
    "get_probe_task", "get_sentence_task", "load_probe_splits", "load_sentence_task",
]
