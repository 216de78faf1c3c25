"""Stage entry points (what ``dvc.yaml`` runs through ``python -m pipeline``), one module per stage
so that each DVC stage depends on exactly its own code.

Each stage reads its inputs, writes its outputs atomically, and puts the resolved config and
library versions next to them.
"""

from pipeline.stages.extract import extract
from pipeline.stages.finetune import finetune
from pipeline.stages.model import model
from pipeline.stages.neurons import neurons
from pipeline.stages.prepare import prepare
from pipeline.stages.probe import probe
from pipeline.stages.report import report
from pipeline.stages.summary import summary

__all__ = ["prepare", "model", "finetune", "extract", "probe", "neurons", "report", "summary"]
