"""Run the DVC pipeline's stages in parallel: ``python -m pipeline run -j N``.

``dvc repro`` runs one stage at a time, and one stage here keeps about one core busy: torch's second
thread gains little on these small matrices, and every stage spends seconds starting Python and
loading its inputs. On 2 cores, two stages with one thread each finish in about half the time of
the same two stages one after the other with two threads each (measured: two probe stages, 29.4 s
serial, 14.2 s in parallel, byte-identical results).

This module runs the same ``dvc.yaml`` with the same ``dvc.lock``: it asks DVC for the stage graph,
starts a stage's command once every stage it depends on has finished, and at most ``jobs`` commands
at once (each with ``cores // jobs`` threads). DVC's bookkeeping stays in this one process and
serial, exactly as ``dvc repro`` does it for one stage: whether the stage changed (skip it if not),
the run cache, removing stale outputs before the command, and saving, caching and locking the
outputs after it. DVC's repository lock is not safe for concurrent ``dvc repro`` processes (DVC
issues 755, 9805, 10465), so only the commands run concurrently, never DVC itself.

A failed stage is reported with the tail of its log; the stages that depend on it are skipped, the
others go on, and the run exits non-zero. Stage outputs are written atomically by the stages
themselves, DVC removes stale ones before a command starts, and whatever a failed command left at
its outputs' paths is removed, so nothing is left half-written and a re-run resumes where this one
stopped. Each command's output goes to ``results/runs/logs/<stage>.log`` (untracked), so parallel
stages do not interleave on the console.

On Ray (``--executor ray``), a stage that reads an activation store runs on the node that wrote it:
the probes and the neuron analysis of ``extract@X`` are submitted near the node that ran it
(:func:`store_producer`; a soft affinity, see :mod:`pipeline.executors`), so the store, the largest
output of the pipeline (``scripts/paper-plan.py`` sizes it at the paper's scale), is written and read
on one node. The repository itself (models, data, activations, results and DVC's cache) must be one
shared file system mounted at the same path on every node: the driver's DVC checks and hashes every
output after its stage, and a stage reads the models and data that other nodes wrote.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import LingShiftError
from pipeline.executors import Executor, LocalExecutor, RayExecutor, StageResult
from pipeline.threads import ENV, wait_policy
from pipeline.threads import cores as available_cores
from pipeline.warm import WarmExecutor

log = logging.getLogger(__name__)

#: Stage kinds (the name before ``@``) whose output is an activation store that the stages after it read.
STORE_STAGES = frozenset({"extract"})
#: Environment variables that set the thread count of every math library a stage may use.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class RunError(LingShiftError):
    """Some stages failed (the others finished); the message names each failed and skipped stage."""


@dataclass
class Outcome:
    """What happened to each stage of one run, by stage name (``addressing``)."""

    ran: dict[str, float] = field(default_factory=dict)      # name -> seconds
    skipped: list[str] = field(default_factory=list)         # unchanged (or restored from DVC's run cache)
    failed: dict[str, str] = field(default_factory=dict)     # name -> why
    not_run: dict[str, str] = field(default_factory=dict)    # name -> the failed stage it depends on
    nodes: dict[str, str] = field(default_factory=dict)      # name -> the Ray node id that ran it (Ray only)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_run


#: Memory one stage may take at its peak (the neuron analysis: 4.4 GB measured on MiniLM), for the default jobs.
GB_PER_JOB = 5


def default_jobs() -> int:
    """Parallel stage commands by default: the cores this process may use, at most one per
    :data:`GB_PER_JOB` of physical memory."""
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (AttributeError, ValueError, OSError):
        return available_cores()
    return max(1, min(available_cores(), int(memory_gb // GB_PER_JOB)))


def stage_env(jobs: int, cores: int | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment overrides for each command: ``cores // jobs`` threads (at least 1), and OpenMP's wait policy
    decided once for the run (:func:`pipeline.threads.wait_policy` on ``environ``, default this process's):
    ``OMP_WAIT_POLICY`` when one is chosen, else ``LINGSHIFT_OMP_WAIT_POLICY=default`` so that no stage
    decides otherwise on its own."""
    threads = str(max(1, (cores or available_cores()) // max(1, jobs)))
    policy = wait_policy(environ)
    return {**dict.fromkeys(THREAD_VARS, threads), **({"OMP_WAIT_POLICY": policy} if policy else {ENV: "default"})}


def log_path(root: Path, stage_name: str) -> Path:
    """Where a stage command's output goes: ``results/runs/logs/<stage name with @ kept>.log``."""
    safe = stage_name.replace("/", "_").replace(os.sep, "_")
    return root / "results" / "runs" / "logs" / f"{safe}.log"


def store_producer(upstream: Sequence[str]) -> str | None:
    """The stage among ``upstream`` (stage names a stage depends on) that wrote an activation store it reads
    (``extract@...``), or None."""
    return next((u for u in sorted(upstream) if u.split("@", 1)[0] in STORE_STAGES), None)


#: Seconds between two writes of ``dvc.lock`` during a run (:class:`_LockWriter`).
LOCK_INTERVAL = 30.0


class _LockWriter:
    """Records finished stages in ``dvc.lock`` in batches: at most once every ``interval`` seconds, and at the end.

    DVC rewrites the whole lock file for every stage it records (read, merge, dump with ruamel.yaml), which costs
    about a second for the offline profile's 52 stages and grows with the file: for the paper-mini rehearsal's 278
    stages it was the driver's largest cost, time in which no new stage could start. Batching writes the same
    file, since each stage's entry is computed when the stage finishes. An interrupted run writes what finished
    (``flush`` in a ``finally``); a killed one loses at most ``interval`` seconds of records, and the next run
    restores those stages from DVC's run cache or runs them again."""

    def __init__(self, interval: float = LOCK_INTERVAL) -> None:
        self.interval = interval
        self.pending: list[Any] = []
        self.last = time.monotonic()

    def add(self, stage: Any) -> None:
        """Record ``stage`` (saved and committed) at the next write; write now if the interval has passed."""
        self.pending.append(stage)
        self.flush_due()

    def flush_due(self) -> None:
        if self.pending and time.monotonic() - self.last >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Write every pending stage into its ``dvc.lock``, one read-modify-write per file."""
        by_file: dict[str, list[Any]] = {}
        for stage in self.pending:
            by_file.setdefault(stage.dvcfile.path, []).append(stage)
        for stages in by_file.values():
            stages[0].dvcfile.dump_stages(stages, update_pipeline=False)
        self.pending.clear()
        self.last = time.monotonic()


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def run_pipeline(root: Path | str, jobs: int | None = None, targets: Sequence[str] = (), force: bool = False,
                 dry: bool = False, on_event: Callable[[str], None] | None = None, executor: str = "local",
                 address: str | None = None, warm: bool = True) -> Outcome:
    """Reproduce the pipeline in ``root`` (or the stages ``targets`` and what they depend on) with at most
    ``jobs`` stage commands at once; return what ran, what was unchanged and what failed.

    ``force`` re-runs every stage, as ``dvc repro --force``; ``dry`` only lists the stages that would
    run (in an order that respects the dependencies). ``on_event`` receives one progress line per
    event (default: the log). ``executor``: ``local`` (threads on this machine) or ``ray`` (Ray tasks on
    the cluster at ``address``, or on an embedded local Ray without one; :mod:`pipeline.executors`). ``warm``
    (local only): ``python -m pipeline`` stage commands fork from a server that imported torch and transformers
    once (:mod:`pipeline.warm`; same outputs), rather than each starting a new interpreter."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    say = on_event or log.info
    if executor not in ("local", "ray"):
        raise LingShiftError(f"unknown executor {executor!r}", "Use --executor local or --executor ray.")
    if address and executor != "ray":
        raise LingShiftError("--address is for --executor ray", "Add --executor ray, or drop --address.")
    root = Path(root).resolve()
    try:
        repo = Repo(str(root))
    except DvcException as err:
        raise LingShiftError(f"{root} is not a DVC project: {err}", "Run it from the repository root.") from None
    dvc_log = logging.getLogger("dvc")
    level = dvc_log.level
    dvc_log.setLevel(logging.WARNING)  # one line per stage event is ours; DVC's "Updating lock file" is noise
    pool: Executor | None = None
    env: dict[str, str] = {}
    try:
        if not dry:
            if executor == "ray":
                pool, env = RayExecutor(jobs, address), stage_env(1, 1)  # Ray: 1 CPU per task
            else:
                slots = jobs or default_jobs()
                env = stage_env(slots)  # decided once: the warm server starts with what every stage gets
                pool = WarmExecutor(slots, env) if warm else LocalExecutor(slots)
        with _sigterm_as_interrupt():
            try:
                return _run(repo, root, pool, env, targets, force, dry, say)
            except BaseException:  # an interrupt (Ctrl-C, SIGTERM) or a crash: no stage outlives the run
                if pool is not None:
                    say("interrupted: stopping the running stages (what finished is recorded)")
                    pool.terminate()
                raise
    finally:
        dvc_log.setLevel(level)
        if pool is not None:
            pool.close()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the run lasts, SIGTERM (a job scheduler, ``timeout``, ``kill``) interrupts it as Ctrl-C does, so the
    running stages are stopped and what finished is recorded; outside the main thread nothing changes."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(repo: Any, root: Path, pool: Executor | None, env: dict[str, str], targets: Sequence[str], force: bool,
         dry: bool, say: Callable[[str], None]) -> Outcome:
    """:func:`run_pipeline` on an open DVC ``repo`` with the executor ``pool`` (None when ``dry``), every stage
    command getting the overrides ``env`` (:func:`stage_env`)."""
    from dvc.exceptions import DvcException
    from dvc.repo import lock_repo
    from dvc.repo.reproduce import get_active_graph, plan_repro

    out = Outcome()
    with contextlib.chdir(root), lock_repo(repo):  # DVC resolves stage paths against the working directory
        graph = get_active_graph(repo.index.graph)
        wanted = None
        if targets:
            wanted = []
            for t in targets:
                try:
                    wanted += repo.stage.collect(t)
                except DvcException as err:  # StageNotFound, a file that is no dvc.yaml, ...
                    raise LingShiftError(f"no stage {t!r} in dvc.yaml ({err})",
                                         "List the stages with `dvc stage list` (a matrix or foreach stage's "
                                         "items as NAME@ITEM, e.g. finetune@minilm-sentiment-seed42), or run "
                                         "without targets to reproduce them all.") from None
        order = [s for s in plan_repro(graph, wanted) if s.cmd]  # dependencies first
        position = {s: i for i, s in enumerate(order)}
        needs = {s: {u for u in graph.successors(s) if u in position} for s in order}  # edges: stage -> its deps
        if dry or pool is None:
            for s in order:
                say(f"would check {s.addressing}")
            return out
        jobs = pool.slots
        kind = " (warm: forked from a preloaded server)" if isinstance(pool, WarmExecutor) else ""
        say(f"{len(order)} stages, at most {jobs} at once{kind} with {env['OMP_NUM_THREADS']} thread(s) each; logs in "
            f"{log_path(root, 'x').parent.relative_to(root)}/")
        lock = _LockWriter()
        try:
            _schedule(order, needs, pool, env, root, force, lock, out, say)
        finally:  # also on an interrupt: what finished is recorded
            lock.flush()
    return out


def _schedule(order: list[Any], needs: dict[Any, set[Any]], pool: Executor, env: dict[str, str], root: Path,
              force: bool, lock: _LockWriter, out: Outcome, say: Callable[[str], None]) -> None:
    """Start each stage of ``order`` once its dependencies ``needs`` are done, at most ``pool.slots`` at once;
    DVC's checks before and bookkeeping after each command run here, serially (records go to ``lock``)."""
    from dvc.stage.cache import RunCacheNotFoundError
    from dvc.stage.run import prepare_kwargs

    jobs = pool.slots
    done: set[Any] = set()
    blocked: dict[Any, str] = {}
    running: dict[Future, tuple[Any, Path]] = {}
    pending = list(order)
    while pending or running:
        for s in list(pending):
            if len(running) >= jobs:
                break
            bad = next((u for u in needs[s] if u in blocked or u.addressing in out.failed), None)
            if bad is not None:
                pending.remove(s)
                blocked[s] = bad.addressing if bad.addressing in out.failed else blocked[bad]
                out.not_run[s.addressing] = blocked[s]
                say(f"skip {s.addressing}: it depends on {blocked[s]}, which failed")
                continue
            if not needs[s] <= done:
                continue
            pending.remove(s)
            upstream = list(needs[s])
            if not force and not s.changed(upstream=upstream):
                out.skipped.append(s.addressing)
                done.add(s)
                continue
            if not force:
                try:
                    s.repo.stage_cache.restore(s)
                    s.save()
                    s.commit()
                    lock.add(s)
                    out.skipped.append(s.addressing)
                    done.add(s)
                    say(f"restored {s.addressing} from DVC's run cache")
                    continue
                except RunCacheNotFoundError:
                    pass
            s.remove_outs(ignore_remove=False, force=False)
            s.save_deps()
            kwargs = prepare_kwargs(s, run_env=env)
            path = log_path(root, s.addressing)
            cmds = s.cmd if isinstance(s.cmd, list) else [s.cmd]
            producer = store_producer([u.addressing for u in needs[s]])
            near = out.nodes.get(producer, "") if producer else ""
            say(f"start {s.addressing} ({len(done) + len(out.failed) + len(blocked)} of {len(order)} "
                f"settled, {len(running) + 1} running)" + (f" near {producer} on node {near}" if near else ""))
            running[pool.submit(s.addressing, " && ".join(cmds), kwargs, path, near=near)] = (s, path)
        if not running:
            if pending:  # nothing can start: a cycle would have been refused by DVC already
                raise RunError(f"cannot schedule {[s.addressing for s in pending]}")
            break
        # a timeout, so that finished stages are recorded on time while a long one runs
        finished, _ = wait(list(running), timeout=lock.interval, return_when=FIRST_COMPLETED)
        lock.flush_due()
        for fut in finished:
            s, path = running.pop(fut)
            try:
                code, seconds, node = fut.result()
            except Exception as err:  # noqa: BLE001 - e.g. a Ray worker lost more often than retried
                code, seconds, node = StageResult(-1, 0.0, "")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"the command did not complete: {type(err).__name__}: {err}\n",
                                encoding="utf-8")
            if node:
                out.nodes[s.addressing] = node
            if code != 0:
                s.remove_outs(ignore_remove=False, force=False)  # whatever the command left is not an output
                out.failed[s.addressing] = f"exit {code}; last lines of {path.relative_to(root)}:\n" \
                                           f"{_tail(path)}"
                say(f"FAILED {s.addressing} (exit {code}, {seconds:.1f} s); log: {path.relative_to(root)}")
                continue
            # as Stage.run after its command: the run cache only when every output is cached
            no_cache_outs = any(not o.use_cache for o in s.outs if not (o.is_metric or o.is_plot))
            s.save(run_cache=not no_cache_outs)
            s.commit()
            lock.add(s)
            out.ran[s.addressing] = seconds
            done.add(s)
            say(f"done {s.addressing} in {seconds:.1f} s" + (f" on node {node}" if node else ""))


__all__ = ["Outcome", "RunError", "STORE_STAGES", "THREAD_VARS", "default_jobs", "log_path", "run_pipeline",
           "stage_env", "store_producer"]
