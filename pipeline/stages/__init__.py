"""Stage entry points (what ``dvc.yaml`` runs through ``python -m pipeline``), one module per stage
so that each DVC stage depends on exactly its own code.

Each stage reads its inputs, writes its outputs atomically, and puts the resolved config and
library versions next to them. This package imports none of them: ``pipeline.cli`` imports the one
stage module a command runs, so a stage's import closure (``tests/test_dvc_deps.py``) is its own.
"""
