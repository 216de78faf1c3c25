"""Load test of the served API, through the front end users deploy, with locust headless.

1. starts the server on a free loopback port serving this checkout (``LINGSHIFT_ROOT``), with
   ``LINGSHIFT_RATE_LIMIT=1000000/minute`` so the per-client probe limit (429) cannot trigger (every locust
   client comes from 127.0.0.1 and would share one bucket):
   ``--front nginx`` (default) runs ``scripts/serve-prod.sh`` (nginx -> gunicorn on a unix socket, the way
   ``make serve-prod`` deploys), ``--front gunicorn`` runs ``gunicorn -c gunicorn.conf.py`` alone;
2. waits for ``/readyz``, then warms every worker's models with a few sequential probes (not measured);
3. runs ``benchmarks/locustfile.py`` headless (default 16 users, spawned at once, 30 s);
4. stops the server (SIGTERM to what it started), then writes ``benchmarks/results/api_load_<front>.json``:
   requests, status counts, errors (non-2xx other than 503 + Retry-After on a probe), intended 503s,
   p50/p95/p99 per endpoint group, throughput, gunicorn workers/threads, the machine (CPU, cores, load
   average before and after) and library versions; and prints a short table. Exit status 1 on any error.

locust runs as ``python -m locust`` where this Python has it, else the ``locust`` on PATH (or ``--locust``).
Run from anywhere (see benchmarks/README-api.md)::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/load_api.py --users 16 --duration 30              # nginx front
    OMP_WAIT_POLICY=PASSIVE python benchmarks/load_api.py --users 16 --duration 30 --front gunicorn

The server launcher (:func:`serve`) and the machine facts (:func:`machine_facts`) are shared with
``benchmarks/attack_api.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pipeline.provenance import cpu_model  # noqa: E402

log = logging.getLogger("load_api")

RATE_LIMIT = "1000000/minute"
GROUPS = ("results", "claims", "models", "probe")
INTENDED = "probe 503 (intended)"
FRONTS = ("nginx", "gunicorn")
BANNER = re.compile(r"(\d+) workers x (\d+) threads, torch threads per worker (\d+) \((\d+) cores\)")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """``(status, body)`` of a GET, an HTTP error status included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def post_json(url: str, body: dict[str, Any], timeout: float = 60.0) -> int:
    """The status of a JSON POST, an HTTP error status included."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def wait_ready(base: str, proc: subprocess.Popen, timeout_s: float) -> dict[str, Any]:
    """``/readyz``'s body once it answers 200; RuntimeError when the server exits or the time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it was ready")
        with contextlib.suppress(OSError):
            status, body = get(base + "/readyz", timeout=2)
            if status == 200:
                return json.loads(body)
        time.sleep(0.25)
    raise RuntimeError(f"/readyz not ready within {timeout_s:g} s")


def versions() -> dict[str, str]:
    """Python and the versions of the libraries on the serving path (nginx's too, where it is installed)."""
    out = {"python": platform.python_version()}
    for dist in ("gunicorn", "locust", "flask", "apiflask", "werkzeug", "flask-limiter", "torch", "transformers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            said = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10).stderr.strip()
            out["nginx"] = said.rsplit("/", 1)[-1]
    return out


def machine_facts() -> dict[str, Any]:
    """CPU, cores, the 1/5/15-minute load average now, and the library versions, for a benchmark record."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return {"cpu": cpu_model(), "cores": cores, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "versions": versions()}


def locust_command(given: str | None) -> list[str]:
    """How to run locust: ``--locust``, else this Python's ``-m locust``, else ``locust`` on PATH."""
    if given:
        return [given]
    if importlib.util.find_spec("locust") is not None:
        return [sys.executable, "-m", "locust"]
    found = shutil.which("locust")
    if found:
        return [found]
    raise RuntimeError("locust not found: pip install 'locust>=2.30,<3' (make bench-venv), or give --locust PATH")


def locust_version(cmd: list[str]) -> str | None:
    """The version of the locust that ``cmd`` runs (it may live in another environment than this Python)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        said = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60).stdout
        m = re.search(r"locust ([0-9][^ ]*)", said)
        return m.group(1) if m else None
    return None


@dataclass
class Server:
    """A started server: its base URL, the process we started, its log, and gunicorn's sizing banner."""

    front: str
    base: str
    proc: subprocess.Popen
    log_path: Path
    ready: dict[str, Any]

    def banner(self) -> dict[str, int | None]:
        """gunicorn's ``workers x threads`` line from the log (None each where it is missing)."""
        m = BANNER.search(self.log_path.read_text(errors="replace"))
        values = [int(x) for x in m.groups()] if m else [None] * 4
        return dict(zip(("workers", "threads", "torch_threads_per_worker", "cores"), values, strict=True))

    def gunicorn_master(self) -> int | None:
        """The gunicorn master's pid: the process we started (gunicorn front) or serve-prod.sh's child."""
        if self.front == "gunicorn":
            return self.proc.pid
        return next((pid for pid in children(self.proc.pid) if "gunicorn" in cmdline(pid)), None)

    def workers(self) -> list[int]:
        """The pids of gunicorn's workers now."""
        master = self.gunicorn_master()
        return children(master) if master else []


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(stat.parent.name))
    return sorted(out)


def cmdline(pid: int) -> str:
    """A process's command line ('' when it has gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@contextlib.contextmanager
def serve(front: str, root: Path, env: dict[str, str], work: Path, ready_timeout: float = 60.0) -> Iterator[Server]:
    """Start the API behind ``front`` on a free loopback port, wait for ``/readyz``, and stop it on exit.

    ``env`` is the whole environment for the server (``LINGSHIFT_BIND`` and ``LINGSHIFT_ROOT`` are set here).
    nginx: ``scripts/serve-prod.sh`` with the venv's gunicorn, as ``make serve-prod`` runs it; gunicorn:
    ``python -m gunicorn -c gunicorn.conf.py``. Both log to ``work/server.log``.
    """
    if front not in FRONTS:
        raise ValueError(f"front {front!r}: choose from {', '.join(FRONTS)}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(env, LINGSHIFT_BIND=f"127.0.0.1:{port}", LINGSHIFT_ROOT=str(root.resolve()))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if front == "nginx":
        gunicorn = Path(sys.executable).with_name("gunicorn")
        env.setdefault("GUNICORN", str(gunicorn) if gunicorn.exists() else "gunicorn")
        cmd = ["bash", str(REPO / "scripts" / "serve-prod.sh")]
    else:
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py")]
    log_path = work / "server.log"
    log.info("%s front on %s (root %s); log %s", front, base, root, log_path)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        ready = wait_ready(base, proc, ready_timeout)
        yield Server(front, base, proc, log_path, ready)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            log.warning("the server did not stop within 45 s of SIGTERM; killing its process group")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def percentiles(ms: list[float]) -> dict[str, float | int]:
    """n, p50/p95/p99 and max of latencies in milliseconds."""
    if not ms:
        return {"n": 0}
    a = np.asarray(ms)
    out: dict[str, float | int] = {"n": len(ms)}
    out.update({f"p{q}_ms": round(float(np.percentile(a, q)), 1) for q in (50, 95, 99)})
    out["max_ms"] = round(float(a.max()), 1)
    return out


def summarise(samples: list[list[Any]], duration_s: float) -> dict[str, Any]:
    """Counts, errors and latency per endpoint group of locust's samples."""
    status_counts: dict[str, dict[str, int]] = {}
    errors: dict[str, int] = {}
    latency: dict[str, list[float]] = {g: [] for g in GROUPS}
    intended = no_retry_after = 0
    intended_ms: list[float] = []
    for name, status, ms, has_retry_after in samples:
        group = "probe" if name == INTENDED else name
        counts = status_counts.setdefault(group, {})
        counts[str(status)] = counts.get(str(status), 0) + 1
        if group == "probe" and status == 503 and has_retry_after:
            intended += 1
            intended_ms.append(ms)
        elif 200 <= status < 300:
            latency.setdefault(group, []).append(ms)
        else:
            key = f"{group} {status or 'connection-error'}"
            errors[key] = errors.get(key, 0) + 1
            if status == 503:
                no_retry_after += 1
    all_ms = [ms for _, status, ms, _ in samples if 200 <= status < 300]
    return {
        "requests": len(samples),
        "ok_2xx": sum(len(v) for v in latency.values()),
        "intended_503": intended,
        "intended_503_latency": percentiles(intended_ms),
        "errors": sum(errors.values()),
        "errors_by_status": errors,
        "503_without_retry_after": no_retry_after,
        "status_counts": status_counts,
        "latency_2xx_all": percentiles(all_ms),
        "latency_2xx": {g: percentiles(v) for g, v in latency.items()},
        "throughput_rps": round(len(samples) / duration_s, 1),
        "throughput_2xx_rps": round(sum(len(v) for v in latency.values()) / duration_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--front", choices=FRONTS, default="nginx",
                    help="nginx: scripts/serve-prod.sh (make serve-prod); gunicorn: gunicorn.conf.py alone")
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--duration", type=int, default=30, help="seconds of load")
    ap.add_argument("--root", type=Path, default=REPO, help="checkout to serve (LINGSHIFT_ROOT)")
    ap.add_argument("--out", type=Path, help="default benchmarks/results/api_load_<front>.json")
    ap.add_argument("--locust", help="the locust executable (default: this Python's, else the one on PATH)")
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    if not 1 <= args.users <= 256 or not 1 <= args.duration <= 600:
        ap.error("--users 1 to 256, --duration 1 to 600 s")
    out_path = args.out or REPO / "benchmarks" / "results" / f"api_load_{args.front}.json"
    locust_cmd = locust_command(args.locust)

    before = machine_facts()
    before["versions"]["locust"] = locust_version(locust_cmd)
    env = dict(os.environ, LINGSHIFT_RATE_LIMIT=RATE_LIMIT)
    work = Path(tempfile.mkdtemp(prefix="lingshift-load-"))
    samples_path = work / "samples.json"
    log.info("LINGSHIFT_RATE_LIMIT=%s; load average before %s", RATE_LIMIT, before["load_average"])
    with serve(args.front, args.root, env, work, args.ready_timeout) as server:
        sizing = server.banner()
        t0 = time.perf_counter()
        warm = {"sentence": "The market rose sharply in early trading .", "model": "minilm", "task": "pos-wsj"}
        warm_status = [post_json(server.base + "/v1/probe", warm) for _ in range(3 * (sizing["workers"] or 1))]
        log.info("ready (%s); warm-up probes %s in %.1f s", server.ready["status"], warm_status,
                 time.perf_counter() - t0)
        cmd = [*locust_cmd, "-f", str(REPO / "benchmarks" / "locustfile.py"), "--headless",
               "-u", str(args.users), "-r", str(args.users), "-t", f"{args.duration}s", "--host", server.base,
               "--only-summary", "--stop-timeout", "5", "--loglevel", "WARNING"]
        t_start = time.perf_counter()
        locust = subprocess.run(cmd, cwd=REPO, env=dict(env, LINGSHIFT_LOAD_SAMPLES=str(samples_path)),
                                capture_output=True, text=True, timeout=args.duration + 120)
        wall = time.perf_counter() - t_start
        load_after = [round(x, 2) for x in os.getloadavg()]
    log.info("%s", locust.stdout[-4000:] or locust.stderr[-4000:])
    if not samples_path.is_file():
        log.error("locust wrote no samples (exit %s):\n%s", locust.returncode, locust.stderr[-3000:])
        return 1

    samples = json.loads(samples_path.read_text())["samples"]
    summary = summarise(samples, float(args.duration))
    report = {
        "config": {"front": args.front, "users": args.users, "spawn_rate": args.users, "duration_s": args.duration,
                   "wait_between_requests_s": [0.1, 0.5], "task_weights": {"results": 5, "claims": 1, "models": 1,
                                                                         "probe": 3},
                   "rate_limit": RATE_LIMIT, "max_concurrent_probes_per_worker":
                       int(os.environ.get("LINGSHIFT_MAX_CONCURRENT_PROBES", "2")),
                   **sizing, "root": str(args.root),
                   "client": "locust FastHttpUser, same machine as the server"},
        "machine": {**{k: v for k, v in before.items() if k != "load_average"},
                    "load_average_before": before["load_average"], "load_average_after": load_after},
        **summary,
        "locust_wall_s": round(wall, 1),
        "locust_exit_code": locust.returncode,
        "server_exit_code": server.proc.returncode,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    log.info("\n%-9s%7s%9s%9s%9s", "group", "n 2xx", "p50 ms", "p95 ms", "p99 ms")
    for g in GROUPS:
        s = summary["latency_2xx"].get(g, {"n": 0})
        if s["n"]:
            log.info("%-9s%7d%9s%9s%9s", g, s["n"], s["p50_ms"], s["p95_ms"], s["p99_ms"])
    log.info("requests %d in %d s = %s req/s (%s 2xx/s); intended 503 (Retry-After) %d; errors %d %s",
             summary["requests"], args.duration, summary["throughput_rps"], summary["throughput_2xx_rps"],
             summary["intended_503"], summary["errors"], summary["errors_by_status"] or "")
    log.info("%s front, gunicorn %s workers x %s threads, %s cores; load average %s -> %s; wrote %s", args.front,
             sizing["workers"], sizing["threads"], sizing["cores"], report["machine"]["load_average_before"],
             load_after, out_path)
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
