"""Warm stage processes: ``python -m pipeline STAGE`` commands forked from a server that has imported torch
and transformers once, instead of a new interpreter per stage.

A stage process spends about 5 s importing torch, transformers and scikit-learn before it does any work;
the paper-mini rehearsal runs 278 stages, most of them a few seconds long, so the imports were most of its
time. :class:`WarmExecutor` (the default of :func:`pipeline.parallel.run_pipeline` on this machine) starts
one multiprocessing *forkserver* that imports :data:`PRELOAD` once; each stage command of the form
``python -m pipeline ARGS`` then runs in a fresh process forked from it (:func:`stage_main`), with the
stage's working directory, environment, torch thread count and log file, and exits with the code the
command would have. Every other command (shell syntax, another program) runs as before, in ``/bin/sh``.

It is the same code on the same inputs, so the outputs are byte-identical to a cold run
(``tests/test_warm.py`` compares them): the server never computes anything (no OpenMP pool exists before
the fork), it is started with the stages' thread variables (``OMP_NUM_THREADS`` and the BLAS ones are read
when those libraries load), and a stage runs warm only where a cold run would import the same code with
the same interpreter and environment (:func:`warm_argv`, :func:`same_imports`); otherwise it runs cold.
``python -m pipeline run --cold`` turns it off.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import shlex
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from pipeline.atomic import pid_alive
from pipeline.executors import LocalExecutor, StageResult

log = logging.getLogger(__name__)

#: Imported once by the server (what the stages import lazily). Not ``datasets``: pyarrow starts a
#: thread at import, and only the paper profile's GLUE loading needs it.
PRELOAD = ("numpy", "scipy.stats", "sklearn.linear_model", "sklearn.metrics", "torch", "safetensors.torch",
           "safetensors.numpy", "transformers", "transformers.models.auto.modeling_auto", "transformers.trainer",
           "transformers.integrations", "matplotlib", "yaml", "pydantic", "tqdm.auto", "pipeline.cli",
           "pipeline.stages.prepare", "pipeline.stages.model", "pipeline.stages.finetune", "pipeline.stages.extract",
           "pipeline.stages.probe", "pipeline.stages.neurons", "pipeline.stages.report", "pipeline.finetune",
           "pipeline.extract", "pipeline.report")
#: Variables a stage's environment may differ in from the server's without changing what was imported:
#: the ones DVC sets per stage, PATH (checked separately: the interpreter) and the Ray node.
PER_STAGE_VARS = frozenset({"DVC_ROOT", "DVC_STAGE", "PATH", "LINGSHIFT_RAY_NODE"})
PROGRAM = ("python", "-m", "pipeline")
_START_LOCK = threading.Lock()
#: The environment this process's forkserver was started with (one server per process, started once).
_server_env: dict[str, str] | None = None
#: :func:`code_stamp` when the server started: the code it imported.
_server_code: tuple[tuple[str, int, int], ...] | None = None


def code_stamp() -> tuple[tuple[str, int, int], ...]:
    """``(module file, mtime_ns, size)`` of every module of this ``pipeline`` package, sorted: a change to the code
    on disk changes it (a few hundred ``stat`` calls, well under a millisecond)."""
    pkg = _package_dir()
    out = []
    for f in pkg.rglob("*.py"):
        st = f.stat()
        out.append((f.relative_to(pkg).as_posix(), st.st_mtime_ns, st.st_size))
    return tuple(sorted(out))


def _package_dir() -> Path:
    import pipeline

    return Path(pipeline.__file__).resolve().parent


def warm_argv(cmd: str, cwd: str, env: Mapping[str, str]) -> list[str] | None:
    """The arguments after ``python -m pipeline`` if ``cmd`` would run this code in this interpreter, else None:
    it is exactly that command (no shell syntax), ``python`` on the stage's PATH is this interpreter, and
    ``cwd`` holds this ``pipeline`` package or none (a cold run then imports the installed one: this)."""
    if any(c in cmd for c in "><|;&$`\\\n"):
        return None
    try:
        words = shlex.split(cmd)
    except ValueError:
        return None
    if tuple(words[:3]) != PROGRAM:
        return None
    python = shutil.which("python", path=env.get("PATH", ""))
    if python is None or os.path.abspath(python) != os.path.abspath(sys.executable):
        return None
    local = Path(cwd) / "pipeline" / "__init__.py"
    if local.is_file() and local.resolve().parent != _package_dir():
        return None
    return words[3:]


def same_imports(env: Mapping[str, str], server_env: Mapping[str, str]) -> bool:
    """Whether a stage with environment ``env`` imports what the server imported with ``server_env``: they are
    equal but for :data:`PER_STAGE_VARS`."""
    keys = (set(env) | set(server_env)) - PER_STAGE_VARS
    return all(env.get(k) == server_env.get(k) for k in keys)


@contextlib.contextmanager
def _environ(overrides: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def stage_main(argv: list[str], cwd: str, env: dict[str, str], log_file: str) -> None:
    """In a process forked from the server: run ``python -m pipeline *argv`` as a new interpreter would (working
    directory, environment, torch threads, stdout and stderr appended to ``log_file``, atexit handlers) and
    exit with its code."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.argv = [str(_package_dir() / "__main__.py"), *argv]
    logging.root.handlers.clear()  # as in a new interpreter, where cli.main's logging.basicConfig takes effect
    logging.root.setLevel(logging.WARNING)
    threads = env.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():
        import torch

        torch.set_num_threads(int(threads))  # what torch takes from OMP_NUM_THREADS when it starts cold
    code: int = 1
    try:
        from pipeline.cli import main

        code = main(argv)
    except SystemExit as stop:  # argparse's usage errors, as the interpreter reports them
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - a crash: the traceback goes to the log, as a cold run's would
        traceback.print_exc()
    finally:
        atexit._run_exitfuncs()  # a cold interpreter runs them at exit; the forked child ends with os._exit
        sys.stdout.flush()
        sys.stderr.flush()
    sys.exit(code)


def start_unpolled(proc: Any) -> None:
    """Start ``proc`` (a forkserver ``multiprocessing.Process``) so that only its own ``join()`` reads its exit code.

    ``Process.start()`` first polls every child this process started (``multiprocessing.process._cleanup``),
    and a forkserver child's exit code can be read only once: polled by another thread's ``start()`` while
    this thread's ``join()`` waits, ``join()`` finds it gone and reports 255 (seen once in 276 stages)."""
    with _START_LOCK:
        proc.start()
        multiprocessing.process._children.discard(proc)  # type: ignore[attr-defined]


def _run_warm(ctx: Any, argv: list[str], cmd: str, cwd: str, env: dict[str, str], log_file: Path,
              running: set[Any]) -> StageResult:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(f"$ {cmd}\n# warm: forked from the server that imported torch and transformers once\n",
                        encoding="utf-8")
    t0 = time.perf_counter()
    proc = ctx.Process(target=stage_main, args=(argv, cwd, env, str(log_file)), name=env.get("DVC_STAGE", "stage"))
    start_unpolled(proc)
    running.add(proc)
    try:
        proc.join()
    finally:
        running.discard(proc)
    code = proc.exitcode
    proc.close()
    return StageResult(code if code is not None else -1, time.perf_counter() - t0, "")


class WarmExecutor(LocalExecutor):
    """:class:`LocalExecutor` whose ``python -m pipeline`` commands fork from a preloaded server (module doc);
    ``env`` is the environment the stages get on top of this one (the thread variables)."""

    def __init__(self, jobs: int, env: Mapping[str, str]) -> None:
        super().__init__(jobs)
        self._ctx = multiprocessing.get_context("forkserver")
        self._env = dict(env)
        self.cold = 0
        self._warned = False
        self._forked: set[Any] = set()

    def _server(self) -> dict[str, str]:
        """Start the server on first use (a run with nothing to do starts none); return its environment."""
        global _server_env, _server_code
        if _server_env is None:
            _server_code = code_stamp()  # before the imports: an edit while they run counts as a change
            self._ctx.set_forkserver_preload(list(PRELOAD))
            with _environ(self._env):  # the server's libraries read their thread variables when they load
                multiprocessing.forkserver.ensure_running()
                _server_env = dict(os.environ)
        return _server_env  # a later run with other thread variables runs its stages cold

    def submit(self, stage: str, cmd: str, kwargs: dict[str, Any], log_file: Path, near: str = "") -> Future:
        """Fork ``cmd`` from the server when :func:`warm_argv` allows, else run it as :class:`LocalExecutor` does."""
        argv = warm_argv(cmd, str(kwargs["cwd"]), kwargs["env"])
        if argv is None or not same_imports(kwargs["env"], self._server()) or self._code_changed():
            self.cold += 1
            log.debug("%s runs cold: %s", stage, cmd)
            return super().submit(stage, cmd, kwargs, log_file, near)
        return self._pool.submit(_run_warm, self._ctx, argv, cmd, str(kwargs["cwd"]), dict(kwargs["env"]), log_file,
                                 self._forked)

    def terminate(self) -> None:
        """Stop every running stage, forked or cold (the run was interrupted): SIGTERM, SIGKILL after 10 s."""
        super().terminate()
        pids = []
        for proc in list(self._forked):
            try:
                pids.append(proc.pid)
                proc.terminate()
            except ValueError:  # it just finished and was closed by its own thread
                continue
        deadline = time.monotonic() + 10.0
        while pids and time.monotonic() < deadline:  # by pid: a forkserver child's exit code is its own join's
            pids = [pid for pid in pids if pid_alive(pid)]
            time.sleep(0.1)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _code_changed(self) -> bool:
        """Whether the package's code on disk differs from what the server imported (edited during the run): a
        forked stage would run the old code while DVC records the new files' hashes, so such stages run cold."""
        if code_stamp() == _server_code:
            return False
        if not self._warned:
            self._warned = True
            log.warning("the pipeline code changed on disk after the warm server started: the remaining stages run "
                        "cold, each in a new interpreter with the code as it is now")
        return True


__all__ = ["PER_STAGE_VARS", "PRELOAD", "WarmExecutor", "code_stamp", "same_imports", "stage_main", "start_unpolled",
           "warm_argv"]
