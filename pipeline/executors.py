"""Where the stage commands of :mod:`pipeline.parallel` run: local threads, or Ray tasks on a cluster.

An executor takes one stage command at a time and returns a future of ``(exit code, seconds)``; the
command's output ends up in the stage's log file on the machine that runs the pipeline. DVC never runs
inside an executor: it stays in the driver, serial.

- :class:`LocalExecutor`: a thread per running command on this machine (the default).
- :class:`RayExecutor`: each command is a Ray task, on an embedded local Ray (no address: it starts one
  with ``jobs`` CPUs and stops it at the end) or on a running cluster (``address``, e.g. ``ray://head:10001``
  or ``auto``). Every node must see the checkout at the same path with the same environment (a shared file
  system, or the same image and a synced checkout), because a stage reads and writes the repository's
  folders. Each stage kind asks for its resources (:func:`stage_resources`): a GPU for fine-tuning and
  extraction where the cluster has GPUs, one CPU otherwise. A task whose worker dies (a lost node, an
  OOM kill) is retried up to :data:`MAX_RETRIES` times by Ray (Ray kills the lost attempt's command with
  its worker, so two attempts never write the same outputs); a command that exits non-zero is not
  retried (it would fail again) and is reported as failed.

Locality: a stage may be submitted ``near`` a node (the node that ran the extraction whose activation
store it reads, :func:`pipeline.parallel.store_producer`); Ray then runs it on that node
(``NodeAffinitySchedulingStrategy(node, soft=True)``: it waits there for a free CPU, and goes anywhere
else only if that node is gone), so an activation store is written and read on one node and never
has to cross the network. The store is still on the shared file system, which is what makes the
fallback to another node correct when the extraction's node is lost.

The embedded instance binds to 127.0.0.1 with the dashboard off (nothing listens on the network), and
is always a new one (``address="local"``): Ray's own default would join the last cluster started on
this machine instead.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from pipeline.errors import LingShiftError

log = logging.getLogger(__name__)

#: Retries of a stage whose Ray worker was lost (not of a command that failed).
MAX_RETRIES = 3
#: Stage kinds (the name before ``@``) that use a GPU where there is one.
GPU_STAGES = frozenset({"finetune", "extract"})
#: Set in a stage command's environment on Ray: the id of the node that runs it (also in the stage's log).
NODE_ENV = "LINGSHIFT_RAY_NODE"


class StageResult(NamedTuple):
    """What an executor returns for one stage command."""

    code: int       # exit status (negative: killed by that signal)
    seconds: float  # wall time of the command
    node: str       # the Ray node id that ran it ("" on the local executor)


class Executor(Protocol):
    """Runs stage commands; :meth:`submit` returns a future of a :class:`StageResult`."""

    slots: int

    def submit(self, stage: str, cmd: str, kwargs: dict[str, Any], log_file: Path, near: str = "") -> Future:
        ...

    def terminate(self) -> None:
        ...

    def close(self) -> None:
        ...


def run_command(cmd: str, cwd: str, env: dict[str, str]) -> tuple[int, float, str]:
    """Run one stage command through ``/bin/sh -c`` (as DVC does): ``(exit code, seconds, output)``."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/bin/sh", "-c", cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,  # noqa: S603
                          stderr=subprocess.STDOUT, check=False)
    return proc.returncode, time.perf_counter() - t0, proc.stdout.decode("utf-8", errors="replace")


def run_command_on_node(cmd: str, cwd: str, env: dict[str, str]) -> tuple[int, float, str, str]:
    """:func:`run_command` inside a Ray task, with :data:`NODE_ENV` set: ``(exit code, seconds, output, node id)``."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    return (*run_command(cmd, cwd, {**env, NODE_ENV: node}), node)


def run_command_to_file(cmd: str, cwd: str, env: dict[str, str], log_file: Path,
                        running: set[subprocess.Popen] | None = None) -> StageResult:
    """:func:`run_command` with the output written to ``log_file`` as it comes (``tail -f`` follows a
    long stage). The command runs in its own session (process group); while it runs its ``Popen`` is in
    ``running``, so that :meth:`LocalExecutor.terminate` can stop it and everything it started."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log_file, "w", encoding="utf-8") as out:
        out.write(f"$ {cmd}\n")
        out.flush()
        proc = subprocess.Popen(["/bin/sh", "-c", cmd], cwd=cwd, env=env, stdout=out,  # noqa: S603
                                stderr=subprocess.STDOUT, start_new_session=True)
        if running is not None:
            running.add(proc)
        try:
            code = proc.wait()
        finally:
            if running is not None:
                running.discard(proc)
    return StageResult(code, time.perf_counter() - t0, "")


def stop_process_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM to ``proc``'s process group (a stage command and its children), SIGKILL after ``grace_s``."""
    import os
    import signal

    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _to_log(log_file: Path, cmd: str) -> Callable[[tuple[int, float, str, str]], StageResult]:
    def write(result: tuple[int, float, str, str]) -> StageResult:
        code, seconds, output, node = result
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(f"$ {cmd}\n# on Ray node {node}\n{output}", encoding="utf-8")
        return StageResult(code, seconds, node)
    return write


def _chain(src: Future, fn: Callable[[Any], Any]) -> Future:
    """A future of ``fn(src.result())`` (an exception of ``src`` or ``fn`` passes through)."""
    out: Future = Future()

    def done(f: Future) -> None:
        try:
            out.set_result(fn(f.result()))
        except BaseException as err:  # noqa: BLE001 - handed to the waiting driver
            out.set_exception(err)

    src.add_done_callback(done)
    return out


class LocalExecutor:
    """At most ``jobs`` commands at once on this machine, one thread each."""

    def __init__(self, jobs: int) -> None:
        self.slots = jobs
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="stage")
        self._running: set[subprocess.Popen] = set()

    def submit(self, stage: str, cmd: str, kwargs: dict[str, Any], log_file: Path, near: str = "") -> Future:
        """Run ``cmd`` in ``kwargs["cwd"]`` with ``kwargs["env"]``; its output goes to ``log_file`` as it comes
        (``near`` is for Ray; here every command runs on this machine)."""
        return self._pool.submit(run_command_to_file, cmd, str(kwargs["cwd"]), kwargs["env"], log_file,
                                 self._running)

    def terminate(self) -> None:
        """Stop every running stage command and what it started (the run was interrupted); nothing new starts."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(self._running):
            stop_process_group(proc)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def stage_resources(stage: str, cluster_gpus: float) -> dict[str, float]:
    """Ray resources of one stage: ``{"num_gpus": 1}`` for fine-tuning and extraction on a cluster with
    GPUs, else ``{"num_cpus": 1}`` (probes and the neuron analysis run on CPUs; one thread each)."""
    kind = stage.split("@", 1)[0]
    if kind in GPU_STAGES and cluster_gpus >= 1:
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": 1}


class RayExecutor:
    """Each command a Ray task (see the module doc); ``address`` None starts an embedded local Ray."""

    def __init__(self, jobs: int | None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise LingShiftError("--executor ray needs Ray, which is not installed",
                                 "pip install 'lingshift[ray]' (or pip install 'ray>=2.40,<3'), or use the "
                                 "default local executor") from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            try:
                embedded = {"address": "local", "num_cpus": jobs, "_node_ip_address": "127.0.0.1"}
                ray.init(**(embedded if address is None else {"address": address}), include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise LingShiftError(f"cannot start or reach Ray at {address or 'a new local instance'}: {err}",
                                     "Check the address (ray status on the head node), or leave out --address "
                                     "for an embedded local Ray.") from None
        resources = ray.cluster_resources()
        self.gpus = float(resources.get("GPU", 0))
        self.slots = jobs or max(1, int(resources.get("CPU", 1)))
        self._task = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(run_command_on_node)
        log.info("Ray: %s, %d CPUs, %g GPUs", "embedded local instance" if address is None else address,
                 int(resources.get("CPU", 0)), self.gpus)

    def submit(self, stage: str, cmd: str, kwargs: dict[str, Any], log_file: Path, near: str = "") -> Future:
        """Run ``cmd`` as a Ray task with :func:`stage_resources`, on the node ``near`` while it is alive (a Ray
        node id; "": anywhere); its output comes back into ``log_file``."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        where = NodeAffinitySchedulingStrategy(near, soft=True) if near else "DEFAULT"
        ref = self._task.options(**stage_resources(stage, self.gpus), name=stage, scheduling_strategy=where).remote(
            cmd, str(kwargs["cwd"]), kwargs["env"])
        return _chain(ref.future(), _to_log(log_file, cmd))

    def terminate(self) -> None:
        """Nothing to stop here: :meth:`close` shuts an embedded Ray down, which ends its tasks; a cluster's
        tasks of an interrupted run finish on their nodes (their outputs are not recorded)."""

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


__all__ = ["Executor", "GPU_STAGES", "LocalExecutor", "MAX_RETRIES", "NODE_ENV", "RayExecutor", "StageResult",
           "run_command", "run_command_on_node", "run_command_to_file", "stage_resources", "stop_process_group"]
