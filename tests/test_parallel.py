"""The parallel stage runner (pipeline/parallel.py) on a small DVC project made in the test: it runs
independent stages at once, leaves the same dvc.lock as `dvc repro`, skips what did not change, and
reports a failed stage while finishing the others."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.errors import LingShiftError
from pipeline.executors import stage_resources
from pipeline.parallel import log_path, run_pipeline, stage_env, store_producer

# x and y each wait (up to 20 s) for the other's start file: they can only both succeed if they run at once.
WAIT_FOR = 'touch {me}.started; for i in $(seq 200); do [ -f {other}.started ] && break; sleep 0.1; done; ' \
           '[ -f {other}.started ] && echo {me} > {me}.txt'
STAGES = {
    "a": {"cmd": "echo A > a.txt", "outs": ["a.txt"]},
    "b": {"cmd": "cat a.txt > b.txt && echo B >> b.txt", "deps": ["a.txt"], "outs": ["b.txt"]},
    "x": {"cmd": WAIT_FOR.format(me="x", other="y"), "outs": ["x.txt"]},
    "y": {"cmd": WAIT_FOR.format(me="y", other="x"), "outs": ["y.txt"]},
    "d": {"cmd": "cat b.txt x.txt y.txt > d.txt && echo $OMP_NUM_THREADS > threads.txt",
          "deps": ["b.txt", "x.txt", "y.txt"], "outs": ["d.txt", "threads.txt"]},
}


def _dvc(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def project(root: Path, stages: dict = STAGES) -> Path:
    """A git + DVC repository with ``stages`` in its dvc.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    assert _dvc(root, "init", "-q").returncode == 0
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    return root


def _lock(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.lock").read_text())


def test_runs_independent_stages_at_once_and_leaves_dvc_up_to_date(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    events: list[str] = []
    out = run_pipeline(root, jobs=2, on_event=events.append)
    assert out.ok and sorted(out.ran) == ["a", "b", "d", "x", "y"], out.failed
    assert (root / "d.txt").read_text() == "A\nB\nx\ny\n"
    assert (root / "threads.txt").read_text().strip() == stage_env(2)["OMP_NUM_THREADS"]
    assert "Data and pipelines are up to date" in _dvc(root, "status").stdout
    assert log_path(root, "x").read_text().startswith("$ touch x.started")
    # the same lock as a serial `dvc repro` of the same project (x and y cannot run serially: make them plain)
    serial = {**STAGES, "x": {"cmd": "echo x > x.txt", "outs": ["x.txt"]},
              "y": {"cmd": "echo y > y.txt", "outs": ["y.txt"]}}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": serial}, sort_keys=False))
    ours = run_pipeline(root, jobs=2, on_event=events.append)
    assert sorted(ours.ran) == ["x", "y"] and sorted(ours.skipped) == ["a", "b", "d"]  # d's inputs are the same
    other = project(tmp_path / "q", serial)
    assert _dvc(other, "repro", "-q", env=stage_env(2)).returncode == 0  # the same thread count in threads.txt
    assert _lock(root) == _lock(other)
    again = run_pipeline(root, jobs=2, on_event=events.append)
    assert again.ran == {} and sorted(again.skipped) == ["a", "b", "d", "x", "y"]
    assert any(e.startswith("start x") for e in events) and any(e.startswith("done d") for e in events)


def test_dvc_lock_is_written_in_batches_and_on_an_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC rewrites the whole dvc.lock per write: the runner writes finished stages together (here, the run is
    shorter than the interval: one write at the end), and an interrupted run still records what finished."""
    from dvc.dvcfile import Lockfile

    writes: list[list[str]] = []
    dump_stages = Lockfile.dump_stages

    def spy(self: Lockfile, stages: list, **kwargs: object) -> None:
        writes.append(sorted(s.name for s in stages))
        dump_stages(self, stages, **kwargs)

    monkeypatch.setattr(Lockfile, "dump_stages", spy)
    root = project(tmp_path / "p")
    assert run_pipeline(root, jobs=2, on_event=lambda _: None).ok
    assert writes == [["a", "b", "d", "x", "y"]]

    def stop_after_a(event: str) -> None:
        if event.startswith("done a"):
            raise KeyboardInterrupt

    two = project(tmp_path / "q", {k: STAGES[k] for k in ("a", "b")})
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(two, jobs=1, on_event=stop_after_a)
    assert list(_lock(two)["stages"]) == ["a"] and not (two / "b.txt").exists()
    again = run_pipeline(two, jobs=1, on_event=lambda _: None)
    assert again.skipped == ["a"] and list(again.ran) == ["b"]


def test_a_failed_stage_skips_what_depends_on_it_and_the_rerun_resumes(tmp_path: Path) -> None:
    stages = {**STAGES, "b": {"cmd": "echo broken >&2; exit 3", "deps": ["a.txt"], "outs": ["b.txt"]}}
    root = project(tmp_path / "p", stages)
    out = run_pipeline(root, jobs=2, on_event=lambda _: None)
    assert not out.ok and sorted(out.ran) == ["a", "x", "y"]
    assert list(out.failed) == ["b"] and "exit 3" in out.failed["b"] and "broken" in out.failed["b"]
    assert out.not_run == {"d": "b"} and not (root / "d.txt").exists()
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": STAGES}, sort_keys=False))
    again = run_pipeline(root, jobs=2, on_event=lambda _: None)
    assert again.ok and sorted(again.ran) == ["b", "d"] and sorted(again.skipped) == ["a", "x", "y"]


def test_targets_force_and_dry(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    events: list[str] = []
    assert run_pipeline(root, jobs=2, targets=["b"], dry=True, on_event=events.append).ran == {}
    assert events == ["would check a", "would check b"] and not (root / "a.txt").exists()
    assert sorted(run_pipeline(root, jobs=2, targets=["b"], on_event=events.append).ran) == ["a", "b"]
    assert sorted(run_pipeline(root, jobs=2, targets=["b"], force=True, on_event=events.append).ran) == ["a", "b"]
    with pytest.raises(LingShiftError, match="no stage 'nosuch' in dvc.yaml") as err:
        run_pipeline(root, jobs=2, targets=["nosuch"])
    assert "dvc stage list" in err.value.hint


def test_cli_runs_the_pipeline_and_reports_failures(tmp_path: Path) -> None:
    stages = {"a": {"cmd": "exit 5", "outs": ["a.txt"]}}
    root = project(tmp_path / "p", stages)
    shutil.copy(Path(__file__).resolve().parents[1] / "params.yaml", root / "params.yaml")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--params", str(root / "params.yaml"), "run", "-j", "1"],
                          capture_output=True, text=True, cwd=root)
    assert proc.returncode == 1 and "stage a failed: exit 5" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--params", str(root / "params.yaml"), "run", "-j", "0"],
                          capture_output=True, text=True, cwd=root)
    assert proc.returncode == 2 and "--jobs 0: give at least 1" in proc.stderr


@pytest.mark.parametrize(("jobs", "cores", "threads"), [(1, 2, "2"), (2, 2, "1"), (4, 2, "1"), (2, 16, "8")])
def test_threads_per_stage(jobs: int, cores: int, threads: str) -> None:
    env = stage_env(jobs, cores, environ={"LINGSHIFT_OMP_WAIT_POLICY": "passive"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == threads and env["OMP_WAIT_POLICY"] == "PASSIVE"


def test_a_run_decides_the_wait_policy_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm server and every stage must get the same decision: a second look at the load average could
    differ, and a stage whose environment differs from the server's silently runs cold."""
    import pipeline.parallel as parallel

    calls: list[int] = []
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)  # conftest sets it for the test process
    monkeypatch.setattr(parallel, "wait_policy", lambda environ=None: calls.append(1) or ("PASSIVE" if len(calls) > 1
                                                                                         else None))
    root = project(tmp_path / "p", {"a": {"cmd": "echo $LINGSHIFT_OMP_WAIT_POLICY-$OMP_WAIT_POLICY > a.txt",
                                          "outs": ["a.txt"]}})
    assert run_pipeline(root, jobs=1).ok
    assert len(calls) == 1 and (root / "a.txt").read_text().strip() == "default-"


def test_the_wait_policy_is_decided_once_for_every_stage() -> None:
    """Every stage of a run gets the runner's decision: a policy, or the instruction not to set one (a stage
    deciding by the load it sees itself would differ from the warm server's)."""
    assert stage_env(2, 2, environ={"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"
    quiet = stage_env(2, 2, environ={"LINGSHIFT_OMP_WAIT_POLICY": "default"})
    assert "OMP_WAIT_POLICY" not in quiet and quiet["LINGSHIFT_OMP_WAIT_POLICY"] == "default"


def test_ray_executor_runs_stages_at_once_and_retries_a_lost_worker(tmp_path: Path) -> None:
    """An embedded local Ray runs x and y at once (they wait for each other), and re-runs the stage whose
    worker process was killed on its first attempt (a lost worker); DVC is up to date afterwards."""
    pytest.importorskip("ray")
    lost = "if [ ! -f lost.attempt ]; then touch lost.attempt; kill -9 $PPID; sleep 30; fi; echo ok > lost.txt"
    root = project(tmp_path / "p", {**STAGES, "lost": {"cmd": lost, "outs": ["lost.txt"]}})
    events: list[str] = []
    out = run_pipeline(root, jobs=2, executor="ray", on_event=events.append)
    assert out.ok, out.failed
    assert sorted(out.ran) == ["a", "b", "d", "lost", "x", "y"]
    assert (root / "lost.attempt").exists() and (root / "lost.txt").read_text() == "ok\n"
    assert (root / "threads.txt").read_text().strip() == "1"  # one CPU per Ray task
    assert "Data and pipelines are up to date" in _dvc(root, "status").stdout
    assert log_path(root, "d").read_text().startswith("$ cat b.txt")


def test_executor_choice_is_checked(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    with pytest.raises(LingShiftError, match="unknown executor 'dask'"):
        run_pipeline(root, executor="dask")
    with pytest.raises(LingShiftError, match="--address is for --executor ray"):
        run_pipeline(root, address="ray://head:10001")


def test_stage_resources() -> None:
    assert stage_resources("finetune@minilm-sentiment-42", cluster_gpus=2) == {"num_gpus": 1, "num_cpus": 1}
    assert stage_resources("extract@m-base-pos", cluster_gpus=1) == {"num_gpus": 1, "num_cpus": 1}
    assert stage_resources("finetune@minilm-sentiment-42", cluster_gpus=0) == {"num_cpus": 1}
    assert stage_resources("neurons@m-base-pos", cluster_gpus=4) == {"num_cpus": 1}


def test_store_producer_is_the_extraction_a_stage_reads() -> None:
    assert store_producer(["model@m", "extract@m-base-pos", "prepare@pos"]) == "extract@m-base-pos"
    assert store_producer(["finetune@m-sst2-42", "prepare@sst2"]) is None
    assert store_producer([]) is None


SLOW = {"fast": {"cmd": "echo F > fast.txt", "outs": ["fast.txt"]},
        "slow": {"cmd": "echo $$ > slow.pid; sleep 120; echo S > slow.txt", "outs": ["slow.txt"]}}


@pytest.mark.parametrize("warm", [False, True])
def test_sigterm_stops_the_running_stages_and_records_what_finished(tmp_path: Path, warm: bool) -> None:
    """SIGTERM to the runner (a scheduler, `timeout`, `kill`) stops it like Ctrl-C: the running stage command and
    its children are stopped (no orphan goes on writing outputs), what finished is in dvc.lock, the exit is
    prompt and non-zero. With ``warm`` the runner itself is a warm-forked stage of an outer runner's executor,
    which WarmExecutor.terminate stops the same way."""
    import signal
    import time

    root = project(tmp_path / "p", SLOW)
    code = f"from pipeline.parallel import run_pipeline; run_pipeline({str(root)!r}, jobs=2, warm=False)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if warm:
        from pipeline.warm import WarmExecutor

        shutil.copy(Path(__file__).resolve().parents[1] / "params.yaml", root / "params.yaml")  # the CLI reads it
        outer = WarmExecutor(1, stage_env(1))
        server = {**outer._server(), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        fut = outer.submit("run", "python -m pipeline run -j 2 --cold", {"cwd": root, "env": server},
                           tmp_path / "outer.log")
    else:
        runner = subprocess.Popen([sys.executable, "-c", code], cwd=root, env=env)
    deadline = time.monotonic() + 120
    while not ((root / "slow.pid").is_file() and (root / "fast.txt").is_file()) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # the runner has recorded `fast` in its batch or holds it for the final flush
    group = int((root / "slow.pid").read_text())
    t0 = time.monotonic()
    if warm:
        outer.terminate()
        result = fut.result(timeout=60)
        outer.close()
        assert result.code != 0
    else:
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=60) != 0
    assert time.monotonic() - t0 < 30
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(group, 0)  # the stage's shell is gone (it waits on its sleep, so that is gone too)
    assert not (root / "slow.txt").exists()
    assert "fast" in _lock(root)["stages"] and "slow" not in _lock(root)["stages"]
