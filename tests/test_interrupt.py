"""An interrupted stage leaves no half output and re-runs cleanly (real MiniLM, real WSJ sample)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.atomic import atomic_dir, remove_stale_temps
from pipeline.cli import main
from pipeline.store import ActivationStore

ROOT = Path(__file__).resolve().parents[1]


def _start_extract(project: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    return subprocess.Popen([sys.executable, "-m", "pipeline", "--params", str(project / "params.yaml"), "extract",
                             "--model", "minilm", "--task", "pos-wsj"], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_temp(parent: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> Path:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        # the writer names its temporary with its pid: a leftover of an earlier (killed) run does not count
        temps = list(parent.glob(f".pos-wsj.{proc.pid}.*.tmp")) if parent.is_dir() else []
        if temps:
            return temps[0]
        if proc.poll() is not None:
            pytest.fail(f"extract finished before it could be interrupted: {proc.stderr.read().decode()[-500:]}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail("extract never started writing")


@pytest.mark.integration
def test_killed_and_interrupted_extract_rerun_cleanly(tmp_path: Path, minilm_dir: Path) -> None:
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    shutil.copytree(minilm_dir, tmp_path / "models" / "minilm" / "base")
    assert main(["--params", str(tmp_path / "params.yaml"), "prepare", "--task", "pos-wsj"]) == 0
    out = tmp_path / "activations" / "minilm" / "base" / "pos-wsj"

    # SIGKILL mid-write: no store appears, only a temporary sibling that nobody owns any more
    proc = _start_extract(tmp_path)
    temp = _wait_for_temp(out.parent, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not out.exists() and temp.exists()

    # Ctrl-C mid-write: exit 130, the temporary is removed, still no store
    proc = _start_extract(tmp_path)
    _wait_for_temp(out.parent, proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert "interrupted" in proc.stderr.read().decode()
    assert not out.exists()

    # re-run: completes, and the killed run's leftover is gone
    assert main(["--params", str(tmp_path / "params.yaml"), "extract", "--model", "minilm", "--task", "pos-wsj"]) == 0
    st = ActivationStore(out)
    assert st.n_words == 25026 and st.n_layers == 7
    assert [p.name for p in out.parent.iterdir()] == ["pos-wsj"]


def test_atomic_dir_keeps_live_temps_and_removes_dead_ones(tmp_path: Path) -> None:
    final = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.{int(dead.stdout)}.abc.tmp"
    stale.mkdir()
    live = tmp_path / f".out.{os.getppid()}.def.tmp"  # the parent process is alive
    live.mkdir()
    assert remove_stale_temps(final) == [stale]
    assert live.exists() and not stale.exists()
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("boom")
    assert not final.exists() and sorted(p.name for p in tmp_path.iterdir()) == [live.name]


def test_atomic_dir_makes_outputs_readable_by_everyone(tmp_path: Path) -> None:
    """Writers such as safetensors create 0600 files; a service running as another user must read them."""
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "sub").mkdir()
        for p in (tmp / "weights.bin", tmp / "sub" / "more.bin"):
            p.write_bytes(b"x")
            os.chmod(p, 0o600)
    for p in (tmp_path / "out" / "weights.bin", tmp_path / "out" / "sub" / "more.bin"):
        assert p.stat().st_mode & 0o777 == 0o644
