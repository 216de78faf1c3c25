"""Load test of the served API: gunicorn (gunicorn.conf.py) on a free loopback port + locust, headless.

1. starts ``gunicorn -c gunicorn.conf.py`` on 127.0.0.1:<free port> serving this checkout (``LINGSHIFT_ROOT``),
   with ``LINGSHIFT_RATE_LIMIT=1000000/minute`` so the per-client probe limit (429) cannot trigger: every
   locust client comes from 127.0.0.1 and would share one bucket;
2. waits for ``/readyz``, then warms every worker's models with a few sequential probes (not measured);
3. runs ``benchmarks/locustfile.py`` headless (default 16 users, spawned at once, 30 s);
4. stops gunicorn (SIGTERM to the process it started), then writes ``benchmarks/results/api_load.json``:
   requests, status counts, errors (non-2xx other than 503 + Retry-After on a probe), intended 503s,
   p50/p95/p99 per endpoint group, throughput, gunicorn workers/threads, CPU count and library versions;
   and prints a short table. Exit status 1 when there was any error.

Run from anywhere (see benchmarks/README-api.md)::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/load_api.py --users 16 --duration 30
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pipeline.provenance import cpu_model  # noqa: E402

RATE_LIMIT = "1000000/minute"
GROUPS = ("results", "claims", "models", "probe")
INTENDED = "probe 503 (intended)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def post_json(url: str, body: dict[str, Any], timeout: float = 60.0) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def wait_ready(base: str, proc: subprocess.Popen, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode} before it was ready")
        with contextlib.suppress(OSError):
            status, body = get(base + "/readyz", timeout=2)
            if status == 200:
                return json.loads(body)
        time.sleep(0.25)
    raise RuntimeError(f"/readyz not ready within {timeout_s:g} s")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("gunicorn", "locust", "flask", "apiflask", "werkzeug", "flask-limiter", "torch", "transformers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out



def percentiles(ms: list[float]) -> dict[str, float | int]:
    if not ms:
        return {"n": 0}
    a = np.asarray(ms)
    out: dict[str, float | int] = {"n": len(ms)}
    out.update({f"p{q}_ms": round(float(np.percentile(a, q)), 1) for q in (50, 95, 99)})
    out["max_ms"] = round(float(a.max()), 1)
    return out


def summarise(samples: list[list[Any]], duration_s: float) -> dict[str, Any]:
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
    return {
        "requests": len(samples),
        "ok_2xx": sum(len(v) for v in latency.values()),
        "intended_503": intended,
        "intended_503_latency": percentiles(intended_ms),
        "errors": sum(errors.values()),
        "errors_by_status": errors,
        "503_without_retry_after": no_retry_after,
        "status_counts": status_counts,
        "latency_2xx": {g: percentiles(v) for g, v in latency.items()},
        "throughput_rps": round(len(samples) / duration_s, 1),
        "throughput_2xx_rps": round(sum(len(v) for v in latency.values()) / duration_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--duration", type=int, default=30, help="seconds of load")
    ap.add_argument("--root", type=Path, default=REPO, help="checkout to serve (LINGSHIFT_ROOT)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "api_load.json")
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    args = ap.parse_args(argv)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, LINGSHIFT_BIND=f"127.0.0.1:{port}", LINGSHIFT_ROOT=str(args.root.resolve()),
               LINGSHIFT_RATE_LIMIT=RATE_LIMIT, OMP_WAIT_POLICY="PASSIVE")
    work = Path(tempfile.mkdtemp(prefix="lingshift-load-"))
    log_path, samples_path = work / "gunicorn.log", work / "samples.json"
    print(f"gunicorn on {base} (root {args.root}, LINGSHIFT_RATE_LIMIT={RATE_LIMIT}); logs in {work}")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py")],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = wait_ready(base, proc, args.ready_timeout)
        banner = re.search(r"(\d+) workers x (\d+) threads, torch threads per worker (\d+) \((\d+) cores\)",
                           log_path.read_text(errors="replace"))
        workers, threads, torch_threads, cores = (int(x) for x in banner.groups()) if banner else (None,) * 4
        t0 = time.perf_counter()
        warm = {"sentence": "The market rose sharply in early trading .", "model": "minilm", "task": "pos-wsj"}
        warm_status = [post_json(base + "/v1/probe", warm) for _ in range(3 * (workers or 1))]
        print(f"ready ({ready['status']}); warm-up probes {warm_status} in {time.perf_counter() - t0:.1f} s")

        cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "benchmarks" / "locustfile.py"), "--headless",
               "-u", str(args.users), "-r", str(args.users), "-t", f"{args.duration}s", "--host", base,
               "--only-summary", "--stop-timeout", "5", "--loglevel", "WARNING"]
        t_start = time.perf_counter()
        locust = subprocess.run(cmd, cwd=REPO, env=dict(env, LINGSHIFT_LOAD_SAMPLES=str(samples_path)),
                                capture_output=True, text=True, timeout=args.duration + 120)
        wall = time.perf_counter() - t_start
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(locust.stdout[-4000:] or locust.stderr[-4000:])
    if not samples_path.is_file():
        print(f"locust wrote no samples (exit {locust.returncode}):\n{locust.stderr[-3000:]}", file=sys.stderr)
        return 1

    samples = json.loads(samples_path.read_text())["samples"]
    summary = summarise(samples, float(args.duration))
    report = {
        "config": {"users": args.users, "spawn_rate": args.users, "duration_s": args.duration,
                   "wait_between_requests_s": [0.1, 0.5], "task_weights": {"results": 5, "claims": 1, "models": 1,
                                                                         "probe": 3},
                   "rate_limit": RATE_LIMIT, "max_concurrent_probes_per_worker":
                       int(os.environ.get("LINGSHIFT_MAX_CONCURRENT_PROBES", "2")),
                   "workers": workers, "threads": threads, "torch_threads_per_worker": torch_threads,
                   "cores": cores, "cpu_count": os.cpu_count(), "cpu": cpu_model(), "root": str(args.root),
                   "client": "locust FastHttpUser, same machine as the server"},
        **summary,
        "locust_wall_s": round(wall, 1),
        "locust_exit_code": locust.returncode,
        "gunicorn_exit_code": proc.returncode,
        "versions": versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print(f"\n{'group':<9}{'n 2xx':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for g in GROUPS:
        s = summary["latency_2xx"].get(g, {"n": 0})
        if s["n"]:
            print(f"{g:<9}{s['n']:>7}{s['p50_ms']:>9}{s['p95_ms']:>9}{s['p99_ms']:>9}")
    print(f"requests {summary['requests']} in {args.duration} s = {summary['throughput_rps']} req/s "
          f"({summary['throughput_2xx_rps']} 2xx/s); intended 503 (Retry-After) {summary['intended_503']}; "
          f"errors {summary['errors']} {summary['errors_by_status'] or ''}")
    print(f"gunicorn {workers} workers x {threads} threads, {cores} cores; wrote {args.out}")
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
