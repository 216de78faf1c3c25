"""Gunicorn settings for the LingShift API: ``gunicorn -c gunicorn.conf.py`` (from any directory).

Sizing (CPU-bound torch work, so processes for parallelism and a few threads for the cheap I/O requests):

* ``cores``   = CPUs this process may run on (``os.sched_getaffinity``; ``os.cpu_count()`` elsewhere);
* ``workers`` = max(1, cores // 2)   -- each worker holds its own copy of the models (~100 MB per MiniLM variant);
* ``threads`` = 4 per worker         -- results reads are served while probes run (probes themselves are
  bounded by ``LINGSHIFT_MAX_CONCURRENT_PROBES`` per worker; more answer 503 with Retry-After);
* torch intra-op threads per worker  = max(1, cores // workers), set after the fork.

Environment: ``LINGSHIFT_BIND`` (default ``127.0.0.1:8000``: loopback only; put a reverse proxy in front for
anything else), ``LINGSHIFT_WORKERS`` / ``LINGSHIFT_THREADS`` (override the formulas), ``LINGSHIFT_ROOT``
(checkout to serve; default: this file's folder) and every other ``LINGSHIFT_*`` service setting
(``app/settings.py``), read by ``create_app()`` in each worker.

``preload_app`` is off: the master never imports torch or loads a model (forking after OpenMP/torch started
its thread pools is unsafe, and lazy loading per worker is what ``app.probing`` expects). Each worker imports
the transformers classes when it builds the app, before it serves a request (``app.probing.import_model_classes``:
transformers' lazy imports are not thread-safe), and checks every result and probe file against ``dvc.lock``
(``app.catalog``; a damaged file leaves out only its unit, logged and listed by ``/readyz``).
"""

from __future__ import annotations

import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    return max(1, int(value)) if value else default


cores = _cores()
workers = _int_env("LINGSHIFT_WORKERS", max(1, cores // 2))
threads = _int_env("LINGSHIFT_THREADS", 4)
worker_class = "gthread"
torch_threads = max(1, cores // workers)

# Passive OpenMP waiting: spinning threads of idle workers would steal the cores of busy ones.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("LINGSHIFT_ROOT", str(_HERE))

wsgi_app = "app:create_app()"
chdir = str(_HERE)  # so `app` imports from this checkout wherever gunicorn is started
bind = [os.environ.get("LINGSHIFT_BIND", "127.0.0.1:8000")]
preload_app = False
proc_name = "lingshift-api"

# A probe answers 503 after LINGSHIFT_PROBE_TIMEOUT_S (default 20 s); the worker timeout must stay well above
# it (and above the first request's model loading), or gunicorn kills a worker that is merely busy.
_probe_timeout_s = float(os.environ.get("LINGSHIFT_PROBE_TIMEOUT_S", "20"))
timeout = max(60, int(2 * _probe_timeout_s) + 10)
graceful_timeout = 30
keepalive = 5
if Path("/dev/shm").is_dir():
    worker_tmp_dir = "/dev/shm"  # heartbeat file off the (possibly slow, possibly read-only) disk

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LINGSHIFT_LOG_LEVEL", "info")
# %(M)s: request time in milliseconds; %(p)s: <worker pid>
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(B)s %(M)sms %(p)s "%(a)s"'
# gunicorn >= 27 opens a control socket at $HOME/.gunicorn/gunicorn.ctl by default: one per user, so a second
# instance (e.g. benchmarks/load_api.py next to a running server) would fight over it. Not needed here.
control_socket_disable = True


def when_ready(server) -> None:  # noqa: ANN001
    server.log.info("LingShift API on %s: %d workers x %d threads, torch threads per worker %d (%d cores), root %s",
                    ", ".join(bind), workers, threads, torch_threads, cores, os.environ["LINGSHIFT_ROOT"])


def post_fork(server, worker) -> None:  # noqa: ANN001
    """In each worker, before the app is loaded: its share of the cores for torch."""
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import torch

    torch.set_num_threads(torch_threads)
