"""Warm stage processes (pipeline/warm.py): which commands fork from the preloaded server, and that a warm run of
the real stages (model, prepare, fine-tune, extract, probe, neurons on MiniLM, small settings) writes exactly
the bytes a cold run writes."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.parallel import stage_env
from pipeline.warm import PER_STAGE_VARS, WarmExecutor, same_imports, start_unpolled, warm_argv

REPO = Path(__file__).resolve().parents[1]
HERE = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.mark.parametrize("cmd", ["python -m pipeline probe --model m --task t",
                                 "python  -m pipeline 'report'"])
def test_a_pipeline_command_runs_warm(cmd: str, tmp_path: Path) -> None:
    assert warm_argv(cmd, str(tmp_path), HERE) == cmd.replace("'", "").split()[3:]


@pytest.mark.parametrize("cmd", ["python -m pipeline report > out.txt", "python -m pipeline report && touch x",
                                 "python -m pipeline probe --model $M", "python -m other report",
                                 "python3 -m pipeline x", "echo hi", "python -m pipeline 'unclosed"])
def test_anything_else_runs_cold(cmd: str, tmp_path: Path) -> None:
    assert warm_argv(cmd, str(tmp_path), HERE) is None


def test_another_interpreter_or_checkout_runs_cold(tmp_path: Path) -> None:
    other = tmp_path / "bin"
    other.mkdir()
    (other / "python").symlink_to(sys.executable)  # the same binary, but another environment's path
    assert warm_argv("python -m pipeline report", str(tmp_path), {"PATH": str(other)}) is None
    (tmp_path / "pipeline").mkdir()  # a cold run in this folder would import that package, not ours
    (tmp_path / "pipeline" / "__init__.py").write_text("")
    assert warm_argv("python -m pipeline report", str(tmp_path), HERE) is None
    assert warm_argv("python -m pipeline report", str(REPO), HERE) == ["report"]  # this checkout: our package


def test_only_per_stage_variables_may_differ_from_the_servers() -> None:
    server = {"HF_HOME": "/a", "OMP_NUM_THREADS": "1", "PATH": "/bin"}
    assert same_imports({**server, "DVC_STAGE": "probe@x", "PATH": "/usr/bin"}, server)
    assert not same_imports({**server, "HF_HOME": "/b"}, server)  # read when huggingface_hub is imported
    assert not same_imports({**server, "OMP_NUM_THREADS": "2"}, server)  # read when OpenMP loads
    assert not same_imports({k: v for k, v in server.items() if k != "HF_HOME"}, server)
    assert "OMP_NUM_THREADS" not in PER_STAGE_VARS


SMALL = {"prepare": {"max_train_tokens": 3000},
         "finetune": {"max_train_examples": 48, "seeds": [42], "eval_steps": 0.5},
         "probe": {"seeds": [0], "epochs": 3},
         "neurons": {"oracle_seeds": [0], "grid_seeds": [0], "train_words": 1000, "epochs": 2}}
STAGES = ["model --model minilm", "prepare --task pos-wsj", "finetune --model minilm --task sentiment --seed 42",
          "extract --model minilm --variant sentiment-seed42 --task pos-wsj",
          "probe --model minilm --variant sentiment-seed42 --task pos-wsj",
          "neurons --model minilm --variant sentiment-seed42 --task pos-wsj"]


def _small_project(root: Path) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    for section, values in SMALL.items():
        params[section].update(values)
    params["checkpoints"] = ["base", "sentiment-seed42", "hedge-seed42"]
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return root


def _files(root: Path) -> list[Path]:
    skip = ("results/runs", "logs")  # run facts (times, hosts): not outputs
    return sorted(p.relative_to(root) for p in root.rglob("*")
                  if p.is_file() and not any(str(p.relative_to(root)).startswith(s) for s in skip))


@pytest.mark.slow
def test_warm_stages_write_the_bytes_cold_stages_write(tmp_path: Path) -> None:
    env = {**os.environ, **HERE, **stage_env(2)}
    cold, warm = _small_project(tmp_path / "cold"), _small_project(tmp_path / "warm")
    for args in STAGES:
        done = subprocess.run([sys.executable, "-m", "pipeline", *args.split()], cwd=cold, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    pool = WarmExecutor(1, stage_env(2))
    try:
        for i, args in enumerate(STAGES):
            log = tmp_path / f"warm-{i}.log"
            result = pool.submit("s", f"python -m pipeline {args}", {"cwd": warm, "env": env}, log).result()
            text = log.read_text(encoding="utf-8")
            assert result.code == 0, text[-2000:]
            assert "# warm: forked" in text  # it did not fall back to a cold run
        assert pool.cold == 0
        # a failing command: the exit code and the one-line error a cold run gives
        bad = ["extract", "--model", "minilm", "--variant", "nope", "--task", "pos-wsj"]
        cold_bad = subprocess.run([sys.executable, "-m", "pipeline", *bad], cwd=warm, env=env, capture_output=True,
                                  text=True)
        log = tmp_path / "bad.log"
        warm_bad = pool.submit("s", "python -m pipeline " + " ".join(bad), {"cwd": warm, "env": env}, log).result()
    finally:
        pool.close()
    assert warm_bad.code == cold_bad.returncode == 2
    assert cold_bad.stderr.split(" ", 1)[1] in log.read_text(encoding="utf-8")  # after the time stamp
    files = _files(cold)
    assert files == _files(warm) and len(files) > 20
    different = [str(f) for f in files if not filecmp.cmp(cold / f, warm / f, shallow=False)]
    assert different == []


def test_many_stages_at_once_all_report_their_exit_codes(tmp_path: Path) -> None:
    """Stages started and finished from several threads: each exit code is read once, by its own thread
    (a forkserver child's code polled by another thread's start() would come back as 255)."""
    env = {**os.environ, **HERE, **stage_env(4)}
    pool = WarmExecutor(4, stage_env(4))
    try:
        futures = [pool.submit("s", "python -m pipeline tasks" if i % 3 else "python -m pipeline nosuch",
                               {"cwd": tmp_path, "env": env}, tmp_path / f"{i}.log") for i in range(36)]
        codes = [f.result().code for f in futures]
    finally:
        pool.close()
    assert codes == [2 if i % 3 == 0 else 0 for i in range(36)]


def test_a_stages_exit_code_is_left_to_its_own_join() -> None:
    """A forkserver child's exit code can be read once; the runner's other threads start processes, and
    Process.start() polls every child the process knows of (multiprocessing.active_children() shows them):
    polled there while its own join() waits, a stage would be reported as exit 255 (seen once in 276 stages)."""
    import multiprocessing
    import time

    ctx = multiprocessing.get_context("forkserver")
    proc = ctx.Process(target=time.sleep, args=(0.5,))
    start_unpolled(proc)
    assert proc not in multiprocessing.active_children()  # nobody else polls it
    proc.join()
    assert proc.exitcode == 0


def test_a_code_change_after_the_server_started_runs_cold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server imported the pipeline's code once; once a module changes on disk, stages run cold (new
    interpreter, the code as it is now), so what runs is what DVC hashes."""
    import pipeline.warm as warm

    pool = WarmExecutor(1, stage_env(1))
    env = {**pool._server(), **HERE}  # one server per process: an earlier test may have started it
    try:
        first = tmp_path / "first.log"
        assert pool.submit("s", "python -m pipeline tasks", {"cwd": tmp_path, "env": env}, first).result().code == 0
        assert "# warm: forked" in first.read_text(encoding="utf-8") and pool.cold == 0
        stamp = warm.code_stamp()
        assert stamp and stamp == warm.code_stamp() and any(f == "warm.py" for f, _, _ in stamp)
        monkeypatch.setattr(warm, "code_stamp", lambda: (*stamp, ("edited.py", 1, 1)))
        second = tmp_path / "second.log"
        assert pool.submit("s", "python -m pipeline tasks", {"cwd": tmp_path, "env": env}, second).result().code == 0
        assert "# warm: forked" not in second.read_text(encoding="utf-8") and pool.cold == 1
    finally:
        pool.close()
