"""Attacks on the served API, through the front end users deploy: a probe burst, a worker kill, slow clients.

Each mode starts its own server on a free loopback port, like ``benchmarks/load_api.py`` (``--front nginx``,
the default: ``scripts/serve-prod.sh`` as ``make serve-prod`` runs it; ``--front gunicorn``: gunicorn alone),
serving ``--root`` (default this checkout; it needs the weights and trained probes of ``make repro``):

* ``burst``: on a freshly started server (no warm-up, so the first model loads race), ``--requests`` (64)
  ``POST /v1/probe`` fired at once from as many threads, over every checkpoint (``base``,
  ``sentiment-seed42..44``, ``hedge-seed42..44``; every eighth request the default variants) and both tasks.
  The default rate limit stays (64 < 600/minute). Reports the status counts, the Retry-After values, p50/p99.
* ``kill``: ``--clients`` (8) clients send a steady mix (5 results reads, 1 claims, 1 models, 3 probes; 0.1-0.5 s
  apart, new connection each) for ``--duration`` (30) s; after ``--kill-at`` (10) s one gunicorn worker gets
  SIGKILL. Reports the requests that ended before the kill, were in flight at it, started while no worker
  answered, and after; status counts and p50/p99 of each; when gunicorn had a new worker and when a request
  sent after the kill was first answered. ``LINGSHIFT_RATE_LIMIT=1000000/minute`` (every client is 127.0.0.1).
* ``slow``: ``scripts/slow-clients.py --slow N`` (200) against the server: N slow connections, and a normal
  client that must be answered within 2 s meanwhile.

Every error answer (status >= 400) must be ``application/problem+json`` with a matching ``status``; a
connection the server dropped has no answer and is counted apart. Each mode writes
``benchmarks/results/attack_<mode>.json`` with the machine (CPU, cores, load average before and after, library
versions) and exits 1 on any 500 or any error body that is not problem+json (``kill``: also when no request
sent after the kill was answered; ``slow``: also when slow-clients.py failed). Standard library, numpy, and
the server launcher of load_api.py; loopback only; bounded in requests and time::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/attack_api.py burst
    OMP_WAIT_POLICY=PASSIVE python benchmarks/attack_api.py kill --duration 30 --kill-at 10
    OMP_WAIT_POLICY=PASSIVE python benchmarks/attack_api.py slow --slow 200
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_api import FRONTS, RATE_LIMIT, REPO, Server, machine_facts, percentiles, serve  # noqa: E402

log = logging.getLogger("attack_api")

CHECKPOINTS = ("base", "sentiment-seed42", "sentiment-seed43", "sentiment-seed44",
               "hedge-seed42", "hedge-seed43", "hedge-seed44")
TASKS = ("pos-wsj", "chunk-wsj")
MODEL = "minilm"
VOCAB = ("the a this committee board market investors company shares prices analyst report year government bank "
         "plan deal growth rate profit said approved expects rose fell gained sold raised cut new strong weak "
         "in on at for with from after before about sharply slightly not also").split()
MAX_BURST, MAX_CLIENTS, MAX_DURATION_S = 256, 32, 120


@dataclass
class Sample:
    """One request: what it was, when it started and ended (seconds after the run's start) and what came back."""

    kind: str
    start_s: float
    end_s: float
    status: int  # 0: no answer (connection refused, reset or timed out)
    retry_after: str | None = None
    content_type: str | None = None
    problem_ok: bool | None = None  # None for a 2xx or no answer; else whether the body is valid problem+json
    detail: str | None = None
    error: str | None = None

    @property
    def ms(self) -> float:
        return (self.end_s - self.start_s) * 1000


def send(base: str, method: str, path: str, body: dict[str, Any] | None, t0: float, kind: str,
         timeout: float) -> Sample:
    """One request on a new connection; the error body checked against RFC 9457 (problem+json, same status)."""
    parts = urlsplit(base)
    start = time.monotonic() - t0
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"} if payload else {})
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, http.client.HTTPException) as err:
        return Sample(kind, start, time.monotonic() - t0, 0, error=f"{type(err).__name__}: {err}")
    finally:
        conn.close()
    sample = Sample(kind, start, time.monotonic() - t0, resp.status, resp.getheader("Retry-After"),
                    resp.getheader("Content-Type"))
    if resp.status >= 400:
        try:
            doc = json.loads(raw)
            sample.problem_ok = bool((sample.content_type or "").startswith("application/problem+json")
                                     and isinstance(doc, dict) and doc.get("status") == resp.status)
            sample.detail = str(doc.get("detail", ""))[:300] if isinstance(doc, dict) else None
        except ValueError:
            sample.problem_ok = False
            sample.detail = raw[:200].decode(errors="replace")
    return sample


def sentence(rng: random.Random) -> str:
    """A random 5-25-word sentence from a small vocabulary, ending with a period."""
    words = [rng.choice(VOCAB) for _ in range(rng.randint(4, 24))]
    return " ".join([words[0].capitalize(), *words[1:], "."])


def intended(s: Sample) -> bool:
    """A probe's 503 with a short Retry-After (at most 60 s): the service's intended back-pressure."""
    return s.kind == "probe" and s.status == 503 and (s.retry_after or "").isdigit() and int(s.retry_after) <= 60


def describe(samples: list[Sample]) -> dict[str, Any]:
    """Request and status counts, Retry-After values, p50/p99 (all answers, and 2xx only), error-body checks."""
    answered = [s for s in samples if s.status]
    return {
        "requests": len(samples),
        "status_counts": dict(sorted(Counter(str(s.status or "no answer") for s in samples).items())),
        "retry_after_values": {f"{status} Retry-After {value}": n for (status, value), n in sorted(
            Counter((s.status, s.retry_after) for s in samples if s.retry_after is not None).items())},
        "latency_all": percentiles([s.ms for s in answered]),
        "latency_2xx": percentiles([s.ms for s in answered if 200 <= s.status < 300]),
        "intended_503": sum(1 for s in samples if intended(s)),
        "retry_after_over_60s": sum(1 for s in samples if s.retry_after and s.retry_after.isdigit()
                                    and int(s.retry_after) > 60),
        "any_500": any(s.status == 500 for s in samples),
        "non_problem_errors": sum(1 for s in samples if s.problem_ok is False),
        "error_details": dict(Counter(f"{s.status} {s.detail}" for s in samples if s.status >= 400).most_common(10)),
        "no_answer_errors": dict(Counter(s.error for s in samples if not s.status).most_common(5)),
    }


def violations(samples: list[Sample]) -> list[str]:
    """What fails a run: a 500, or an error answer that is not problem+json with its status."""
    bad = [f"{s.kind} {s.status} {s.content_type}: {s.detail}" for s in samples
           if s.status == 500 or s.problem_ok is False]
    return bad[:20]


def run_burst(server: Server, n: int, timeout: float) -> tuple[list[Sample], dict[str, Any]]:
    """``n`` probes released at once by a barrier, over every checkpoint and both tasks."""
    barrier = threading.Barrier(n)
    samples: list[Sample | None] = [None] * n
    t0 = time.monotonic()

    def one(i: int) -> None:
        rng = random.Random(i)
        body: dict[str, Any] = {"sentence": sentence(rng), "model": MODEL, "task": TASKS[i % 2], "top_k": 3}
        if i % 8 != 7:
            body["variants"] = [CHECKPOINTS[i % len(CHECKPOINTS)]]
        barrier.wait(timeout=60)
        samples[i] = send(server.base, "POST", "/v1/probe", body, t0, "probe", timeout)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 30)
    done = [s for s in samples if s is not None]
    return done, {"threads": n, "variants": "one of " + ", ".join(CHECKPOINTS) + " in turn; every 8th the default",
                  "tasks": list(TASKS), "model": MODEL, "timeout_s": timeout,
                  "wall_s": round(max((s.end_s for s in done), default=0.0), 2)}


class Client(threading.Thread):
    """One client of the steady mix: results reads, claims, models and probes, until ``stop``."""

    def __init__(self, base: str, seed: int, t0: float, stop: threading.Event, timeout: float) -> None:
        super().__init__(daemon=True)
        self.base, self.rng, self.t0, self.stop, self.timeout = base, random.Random(seed), t0, stop, timeout
        self.samples: list[Sample] = []

    def run(self) -> None:
        while not self.stop.is_set():
            op = self.rng.choices(("results", "claims", "models", "probe"), weights=(5, 1, 1, 3))[0]
            if op == "probe":
                body: dict[str, Any] = {"sentence": sentence(self.rng), "model": MODEL, "task": "pos-wsj",
                                        "top_k": self.rng.randint(0, 10)}
                if self.rng.random() < 0.5:
                    body["variants"] = [self.rng.choice(("base", "sentiment-seed42", "hedge-seed42"))]
                s = send(self.base, "POST", "/v1/probe", body, self.t0, op, self.timeout)
            else:
                path = f"/v1/results?model={MODEL}&limit={self.rng.choice((10, 100))}" if op == "results" \
                    else f"/v1/{op}"
                s = send(self.base, "GET", path, None, self.t0, op, self.timeout)
            self.samples.append(s)
            pause = self.rng.uniform(0.1, 0.5)
            if s.status == 503 and s.retry_after:
                try:
                    pause = min(2.0, float(s.retry_after))
                except ValueError:
                    pass
            if s.status == 0:
                pause = 0.2  # no answer: a short pause before the next try
            self.stop.wait(pause)


def run_kill(server: Server, clients: int, duration: float, kill_at: float,
             timeout: float) -> tuple[list[Sample], dict[str, Any]]:
    """The steady mix for ``duration`` s, one gunicorn worker SIGKILLed at ``kill_at`` s; the timeline."""
    stop = threading.Event()
    t0 = time.monotonic()
    pool = [Client(server.base, seed, t0, stop, timeout) for seed in range(clients)]
    for c in pool:
        c.start()
    stop.wait(kill_at)
    workers = server.workers()
    if not workers:
        stop.set()
        raise RuntimeError("found no gunicorn worker to kill")
    victim = workers[0]
    t_kill = time.monotonic() - t0
    os.kill(victim, signal.SIGKILL)
    log.info("t=%.2f s: SIGKILL to gunicorn worker %d (workers were %s)", t_kill, victim, workers)
    t_new: float | None = None
    new_workers: list[int] = []
    while time.monotonic() - t0 < duration:
        if t_new is None:
            now = [w for w in server.workers() if w not in workers]
            if now:
                t_new, new_workers = time.monotonic() - t0, now
                log.info("t=%.2f s: new gunicorn worker(s) %s", t_new, now)
        time.sleep(0.02)
    stop.set()
    for c in pool:
        c.join(timeout + 5)
    samples = sorted((s for c in pool for s in c.samples), key=lambda s: s.start_s)
    after_kill_2xx = [s for s in samples if s.start_s >= t_kill and 200 <= s.status < 300]
    t_answered = min((s.end_s for s in after_kill_2xx), default=None)
    t_probe = min((s.end_s for s in after_kill_2xx if s.kind == "probe"), default=None)
    recovered = t_answered if t_answered is not None else float("inf")
    phases = {
        "before": [s for s in samples if s.end_s <= t_kill],
        "in_flight_at_kill": [s for s in samples if s.start_s < t_kill < s.end_s],
        "during": [s for s in samples if t_kill <= s.start_s < recovered],
        "after": [s for s in samples if s.start_s >= recovered],
    }
    return samples, {
        "clients": clients, "duration_s": duration, "kill_at_s": round(t_kill, 3), "killed_worker": victim,
        "workers_before": workers, "new_workers": new_workers,
        "new_worker_after_s": round(t_new - t_kill, 3) if t_new is not None else None,
        "first_answer_after_kill_s": round(t_answered - t_kill, 3) if t_answered is not None else None,
        "first_probe_answer_after_kill_s": round(t_probe - t_kill, 3) if t_probe is not None else None,
        "phases": {name: describe(group) for name, group in phases.items()},
        "failed_not_in_flight": sum(1 for s in samples if not (s.start_s < t_kill < s.end_s)
                                    and not (200 <= s.status < 300) and not intended(s)),
    }


def run_slow(server: Server, slow: int, work: Path) -> tuple[int, dict[str, Any]]:
    """``scripts/slow-clients.py --slow N`` against the server; its exit status and its summary."""
    out = work / "slow.json"
    cmd = [sys.executable, str(REPO / "scripts" / "slow-clients.py"), "--url", server.base, "--slow", str(slow),
           "--json", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=200)
    log.info("%s", done.stdout[-3000:] + done.stderr[-2000:])
    summary = json.loads(out.read_text())["summary"] if out.is_file() else {}
    return done.returncode, {"command": f"scripts/slow-clients.py --slow {slow}", "exit_code": done.returncode,
                             **summary}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("burst", "kill", "slow"))
    ap.add_argument("--front", choices=FRONTS, default="nginx",
                    help="nginx: scripts/serve-prod.sh (make serve-prod); gunicorn: gunicorn.conf.py alone")
    ap.add_argument("--root", type=Path, default=REPO, help="checkout to serve (LINGSHIFT_ROOT)")
    ap.add_argument("--out", type=Path, help="default benchmarks/results/attack_<mode>.json")
    ap.add_argument("--requests", type=int, default=64, help=f"burst: probes at once (at most {MAX_BURST})")
    ap.add_argument("--clients", type=int, default=8, help=f"kill: clients (at most {MAX_CLIENTS})")
    ap.add_argument("--duration", type=float, default=30.0, help=f"kill: seconds of load (at most {MAX_DURATION_S})")
    ap.add_argument("--kill-at", type=float, default=10.0, help="kill: seconds into the load")
    ap.add_argument("--slow", type=int, default=200, help="slow: slow connections (slow-clients.py)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds one request may take")
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    if not 1 <= args.requests <= MAX_BURST or not 1 <= args.clients <= MAX_CLIENTS:
        ap.error(f"--requests 1 to {MAX_BURST}, --clients 1 to {MAX_CLIENTS}")
    if not 0 < args.kill_at < args.duration <= MAX_DURATION_S or not 1 <= args.timeout <= 120:
        ap.error(f"0 < --kill-at < --duration <= {MAX_DURATION_S} s; --timeout 1 to 120 s")
    out_path = args.out or REPO / "benchmarks" / "results" / f"attack_{args.mode}.json"

    env = dict(os.environ)
    if args.mode == "kill":
        env["LINGSHIFT_RATE_LIMIT"] = RATE_LIMIT  # 8 clients from 127.0.0.1 share one per-client bucket
    else:
        env.pop("LINGSHIFT_RATE_LIMIT", None)  # the default limit: 64 probes stay under 600/minute
    before = machine_facts()
    work = Path(tempfile.mkdtemp(prefix=f"lingshift-attack-{args.mode}-"))
    log.info("%s through %s; load average before %s; rate limit %s", args.mode, args.front, before["load_average"],
             env.get("LINGSHIFT_RATE_LIMIT", "default"))
    samples: list[Sample] = []
    exit_code = 0
    with serve(args.front, args.root, env, work, args.ready_timeout) as server:
        sizing = server.banner()
        if args.mode == "burst":
            samples, details = run_burst(server, args.requests, args.timeout)
        elif args.mode == "kill":
            warm = {"sentence": "The market rose sharply .", "model": MODEL, "task": "pos-wsj"}
            warm_status = [send(server.base, "POST", "/v1/probe", warm, time.monotonic(), "warm", 120).status
                           for _ in range(2 * (sizing["workers"] or 1))]
            log.info("warm-up probes (not counted): %s", warm_status)
            samples, details = run_kill(server, args.clients, args.duration, args.kill_at, args.timeout)
            if details["first_answer_after_kill_s"] is None:
                exit_code = 1
        else:
            exit_code, details = run_slow(server, args.slow, work)
        load_after = [round(x, 2) for x in os.getloadavg()]
    bad = violations(samples)
    summary = describe(samples) if samples else {}
    report = {
        "mode": args.mode,
        "config": {"front": args.front, "root": str(args.root), **sizing,
                   "rate_limit": env.get("LINGSHIFT_RATE_LIMIT", "default (600/minute)"),
                   "client": "scripts/slow-clients.py, same machine" if args.mode == "slow" else
                   "Python threads (http.client, a new connection per request), same machine"},
        "machine": {**{k: v for k, v in before.items() if k != "load_average"},
                    "load_average_before": before["load_average"], "load_average_after": load_after},
        **details, **summary,
        "violations": bad,
        "server_exit_code": server.proc.returncode,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if summary:
        log.info("%d requests; status %s; Retry-After %s; p50/p99 %s/%s ms (2xx %s/%s ms); 500: %s; "
                 "non-problem+json errors: %d", summary["requests"], summary["status_counts"],
                 summary["retry_after_values"], summary["latency_all"].get("p50_ms"),
                 summary["latency_all"].get("p99_ms"), summary["latency_2xx"].get("p50_ms"),
                 summary["latency_2xx"].get("p99_ms"), summary["any_500"], summary["non_problem_errors"])
    if args.mode == "kill":
        for name, phase in details["phases"].items():
            log.info("  %-18s %4d requests, status %s, p50/p99 %s/%s ms", name, phase["requests"],
                     phase["status_counts"], phase["latency_all"].get("p50_ms"), phase["latency_all"].get("p99_ms"))
        log.info("new worker %s s after the kill; first answer to a request sent after it %s s; first probe %s s",
                 details["new_worker_after_s"], details["first_answer_after_kill_s"],
                 details["first_probe_answer_after_kill_s"])
    if summary.get("retry_after_over_60s"):
        log.warning("%d answers had a Retry-After above 60 s (a transient failure should say seconds)",
                    summary["retry_after_over_60s"])
    for line in bad:
        log.error("violation: %s", line)
    log.info("load average %s -> %s; wrote %s", before["load_average"], load_after, out_path)
    return 1 if bad or exit_code else 0


if __name__ == "__main__":
    sys.exit(main())
