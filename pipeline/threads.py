"""OpenMP's wait policy for the pipeline's processes, chosen before torch loads (OpenMP reads it once, then).

With the library default, an OpenMP thread that runs out of work spins for a while before it sleeps: on
cores nobody else wants that is the fast choice (``benchmarks/wait_policy.py``), but on cores other jobs keep
busy the spinning threads steal their own team's time, and fine-tuning was measured 6-10x slower here.
``OMP_WAIT_POLICY=PASSIVE`` sleeps at once: safe under contention, slower when quiet.

``LINGSHIFT_OMP_WAIT_POLICY`` chooses (an ``OMP_WAIT_POLICY`` already set always wins):

- ``auto`` (default): PASSIVE when the one-minute load average says the cores this process may use are
  already busy (at least ``cores - 0.5``), else OpenMP's default;
- ``passive``: always PASSIVE;
- ``default``: never set it.

:func:`pipeline.parallel.stage_env` decides once per run, so every stage of a run gets the same policy (and
the warm server, :mod:`pipeline.warm`, the one its stages would get). A stage given one thread (``-j`` equal
to the cores) has no OpenMP team to wait in: the policy then changes nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, MutableMapping

log = logging.getLogger(__name__)

ENV = "LINGSHIFT_OMP_WAIT_POLICY"
MODES = ("auto", "passive", "default")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def busy(load: float | None = None, n_cores: int | None = None) -> bool:
    """Whether other work already keeps this process's cores busy (one-minute load average >= cores - 0.5)."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return False
    return load >= (n_cores or cores()) - 0.5


def wait_policy(environ: Mapping[str, str] | None = None, load: float | None = None,
                n_cores: int | None = None) -> str | None:
    """The ``OMP_WAIT_POLICY`` a process should start torch with: ``"PASSIVE"``, or None for OpenMP's default.

    An ``OMP_WAIT_POLICY`` in ``environ`` (default: this process's) is kept as it is (returned). ``load`` and
    ``n_cores`` are for tests (default: measured)."""
    env = os.environ if environ is None else environ
    if env.get("OMP_WAIT_POLICY"):
        return env["OMP_WAIT_POLICY"]
    mode = env.get(ENV, "auto").strip().lower()
    if mode not in MODES:
        log.warning("%s=%r is not one of %s; using auto", ENV, env.get(ENV), ", ".join(MODES))
        mode = "auto"
    if mode == "passive" or (mode == "auto" and busy(load, n_cores)):
        return "PASSIVE"
    return None


def apply_wait_policy(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set ``OMP_WAIT_POLICY`` in ``environ`` (default: this process's) as :func:`wait_policy` says; return it."""
    env = os.environ if environ is None else environ
    policy = wait_policy(env)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    return policy


__all__ = ["ENV", "MODES", "apply_wait_policy", "busy", "cores", "wait_policy"]
