"""DVC experiments on the real pipeline: ``dvc exp run -S ...`` in a copy of this checkout, ``dvc exp show --json``.

The experiment is the fastest one the real ``dvc.yaml`` allows: the report stage alone (``--single-item``) with
fewer bootstrap replicates (``-S probe.n_boot=200``), from the committed result files; no model, data or
activations are needed. About 20 s on a quiet machine (DVC collects the whole matrix of stages first).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERDICTS = {"SUPPORTED", "INCONCLUSIVE", "CONTRADICTED", "NOT_APPLICABLE"}

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _env() -> dict[str, str]:
    """This environment's python and dvc first on PATH, no PYTHONPATH (the copy runs its own code), a git identity."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for role in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{role}_NAME", "lingshift-test")
        env.setdefault(f"GIT_{role}_EMAIL", "test@lingshift.invalid")
    return env


def _sh(args: list[str], cwd: Path, timeout: float = 600) -> str:
    done = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}" \
                                 f"\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository holding this working tree's tracked and unignored files, in one commit."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of LingShift")
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    repo = tmp_path_factory.mktemp("exp") / "lingshift"
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and not src.is_symlink():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    _sh(["git", "init", "-q", "-b", "main"], repo)
    _sh(["git", "add", "-A"], repo)
    _sh(["git", "commit", "-q", "-m", "checkout under test"], repo)
    return repo


def _experiment(show: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for rev in show:
        for exp in rev.get("experiments") or []:
            if exp.get("name") == name:
                return exp["revs"][0]["data"]
    raise AssertionError(f"experiment {name!r} not in dvc exp show --json: {[r.get('name') for r in show]}")


def _metrics(data: dict[str, Any], path: str) -> dict[str, Any]:
    return data["metrics"][path]["data"]


def test_an_experiment_shows_claim_verdicts_and_key_metrics(checkout: Path) -> None:
    _sh(["dvc", "exp", "run", "--temp", "-n", "fewer-boot", "--single-item", "report", "-S", "probe.n_boot=200"],
        checkout)
    show = json.loads(_sh(["dvc", "exp", "show", "--json"], checkout))
    exp = _experiment(show, "fewer-boot")
    assert exp["params"]["params.yaml"]["data"]["probe"]["n_boot"] == 200

    metrics = _metrics(exp, "results/metrics.json")
    claims = json.loads((checkout / "results" / "claims.json").read_text(encoding="utf-8"))["claims"]
    ids = {c["id"] for c in claims}
    assert set(metrics["verdicts"]) == ids and set(metrics["verdicts"].values()) <= VERDICTS
    assert {k for k, v in metrics["claims"].items() if v is not None} <= ids
    base = metrics["results"]["minilm"]["base"]
    assert 0.5 < base["pos-wsj"]["best_layer_accuracy"] <= 1.0
    # the fine-tuned models' test scores sit in the same table (the finetune stages' metrics files)
    finetuned = _metrics(exp, "results/finetune/minilm-sentiment-seed42.json")
    assert 0.5 < finetuned["scores"]["test"]["accuracy"] <= 1.0

    # dvc exp diff names what changed between the commit and the experiment
    diff = json.loads(_sh(["dvc", "exp", "diff", "--json", "main", "fewer-boot"], checkout))
    assert diff["params"]["params.yaml"]["probe.n_boot"]["new"] == 200
