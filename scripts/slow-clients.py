#!/usr/bin/env python3
"""Slow clients (slowloris) against a local server, and a normal client's requests meanwhile.

Opens ``--slow`` connections (default 200) that send their headers slowly, their body slowly, or nothing;
once they are all open and mid-request, a normal client sends ``--requests`` requests (default 10, alternating
``GET /v1/results?limit=1`` and ``GET /readyz``, each on a new connection) and the script logs each one's status
and latency. Then it closes the slow connections and says how many were still open (that is, hanging) while
the normal client ran. Standard library only.

    python scripts/slow-clients.py --url http://127.0.0.1:8000
    python scripts/slow-clients.py --url http://127.0.0.1:8000 --slow 4 --kinds headers   # "four slow clients"

Exit status: 0 when every normal request was answered 200 within ``--max-latency`` (2 s), 1 otherwise, 2 for
bad arguments or a server that cannot be reached. Bounded: loopback addresses only, at most 1,000 slow
connections, 100 normal requests and 120 s in all.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import logging
import select
import socket
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("slow-clients")

KINDS = ("headers", "body", "idle")
PATHS = ("/v1/results?limit=1", "/readyz")
MAX_SLOW = 1000
MAX_REQUESTS = 100
MAX_SECONDS = 120.0


@dataclass
class SlowConnection:
    """One slow client: what it sends, and whether and when the server closed it (seconds after the start)."""

    kind: str
    opened: bool = False
    error: str | None = None
    closed_by_server_s: float | None = None
    server_said: str | None = None  # the status line the server sent before closing, if any


@dataclass
class NormalRequest:
    """One request of the normal client."""

    path: str
    status: int | None
    latency_ms: float
    error: str | None = None


@dataclass
class Outcome:
    """What a run saw: the slow connections, the normal requests, and whether the run passed."""

    slow: list[SlowConnection] = field(default_factory=list)
    requests: list[NormalRequest] = field(default_factory=list)
    normal_start_s: float = 0.0
    normal_end_s: float = 0.0
    max_latency_ms: float = 2000.0

    def hanging(self) -> int:
        """Slow connections still open while the normal client ran (not closed by the server before its end)."""
        return sum(1 for c in self.slow if c.opened and (c.closed_by_server_s is None
                                                          or c.closed_by_server_s > self.normal_end_s))

    def passed(self) -> bool:
        return bool(self.requests) and all(r.status == 200 and r.latency_ms <= self.max_latency_ms
                                           for r in self.requests)


def loopback_target(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``url``; refuses anything but an http URL on a loopback address."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--url {url!r}: give http://HOST:PORT (e.g. http://127.0.0.1:8000)")
    port = parts.port or 80
    addrs = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
    if not addrs or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs):
        raise ValueError(f"--url {url!r}: loopback addresses only (127.0.0.1, ::1, localhost); got {sorted(addrs)}")
    return parts.hostname, port


def _server_closed(sock: socket.socket) -> tuple[bool, str | None]:
    """Whether the server has closed the connection (or answered), without blocking; its status line if any."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False, None
    try:
        data = sock.recv(4096)
    except OSError:
        return True, None
    if not data:
        return True, None
    return True, data.split(b"\r\n", 1)[0].decode("latin-1")


def slow_client(conn: SlowConnection, host: str, port: int, interval: float, t0: float,
                opened: threading.Semaphore, stop: threading.Event) -> None:
    """Open a connection and keep it mid-request: one header line, one body byte, or nothing per ``interval``."""
    try:
        sock = socket.create_connection((host, port), timeout=5)
    except OSError as err:
        conn.error = f"{type(err).__name__}: {err}"
        opened.release()
        return
    conn.opened = True
    with sock:
        try:
            if conn.kind == "headers":
                sock.sendall(f"GET {PATHS[0]} HTTP/1.1\r\nHost: {host}\r\n".encode())
            elif conn.kind == "body":
                sock.sendall(f"POST /v1/probe HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                             f"Content-Length: 4096\r\n\r\n{{".encode())
        except OSError:
            conn.closed_by_server_s = time.monotonic() - t0
            opened.release()
            return
        opened.release()
        sent = 0
        while not stop.wait(interval):
            closed, said = _server_closed(sock)
            if not closed:
                try:
                    if conn.kind == "headers":
                        sock.sendall(f"X-Slow-{sent}: {sent}\r\n".encode())
                    elif conn.kind == "body":
                        sock.sendall(b" ")
                    sent += 1
                    continue
                except OSError:
                    closed = True
            conn.closed_by_server_s = time.monotonic() - t0
            conn.server_said = said
            return


def normal_client(host: str, port: int, count: int, timeout: float) -> list[NormalRequest]:
    """``count`` requests, alternating :data:`PATHS`, each on a new connection, with status and latency."""
    out = []
    for i in range(count):
        path = PATHS[i % len(PATHS)]
        start = time.perf_counter()
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            out.append(NormalRequest(path, resp.status, (time.perf_counter() - start) * 1000))
        except (OSError, http.client.HTTPException) as err:
            out.append(NormalRequest(path, None, (time.perf_counter() - start) * 1000, f"{type(err).__name__}: {err}"))
        finally:
            conn.close()
        log.info("  GET %-22s %s  %8.1f ms", path, out[-1].status or out[-1].error, out[-1].latency_ms)
    return out


def run(host: str, port: int, slow: int, kinds: list[str], requests: int, interval: float, settle: float,
        timeout: float, max_latency_ms: float, hold: float = 0.0) -> Outcome:
    """Open the slow connections, wait ``settle`` s, run the normal client, keep the slow ones ``hold`` s more
    (to see whether and when the server closes them), close everything."""
    outcome = Outcome(slow=[SlowConnection(kinds[i % len(kinds)]) for i in range(slow)],
                      max_latency_ms=max_latency_ms)
    t0 = time.monotonic()
    opened = threading.Semaphore(0)
    stop = threading.Event()
    threads = [threading.Thread(target=slow_client, args=(c, host, port, interval, t0, opened, stop), daemon=True)
               for c in outcome.slow]
    for t in threads:
        t.start()
    for _ in threads:  # every slow client has connected and sent its first bytes (or failed)
        if not opened.acquire(timeout=max(1.0, MAX_SECONDS / 4 - (time.monotonic() - t0))):
            break
    n_open = sum(c.opened for c in outcome.slow)
    log.info("slow connections: %d of %d open (%s), %.1f s; normal client starts in %.1f s", n_open, slow,
             ", ".join(f"{sum(c.kind == k for c in outcome.slow)} {k}" for k in kinds), time.monotonic() - t0, settle)
    stop.wait(settle)
    outcome.normal_start_s = time.monotonic() - t0
    outcome.requests = normal_client(host, port, requests, timeout)
    outcome.normal_end_s = time.monotonic() - t0
    stop.wait(hold)
    stop.set()
    for t in threads:
        t.join(timeout=max(0.1, MAX_SECONDS - (time.monotonic() - t0)))
    return outcome


def summarise(outcome: Outcome) -> dict:
    """The numbers the README quotes: answered, p50/max latency, slow connections hanging meanwhile."""
    lat = [r.latency_ms for r in outcome.requests]
    closed = [c for c in outcome.slow if c.closed_by_server_s is not None]
    return {
        "slow_connections": len(outcome.slow),
        "slow_opened": sum(c.opened for c in outcome.slow),
        "slow_hanging_during_normal_client": outcome.hanging(),
        "slow_closed_by_server": len(closed),
        "server_said": sorted({c.server_said for c in closed if c.server_said}),
        "requests": len(outcome.requests),
        "answered_200": sum(r.status == 200 for r in outcome.requests),
        "within_limit": sum(r.status == 200 and r.latency_ms <= outcome.max_latency_ms for r in outcome.requests),
        "p50_ms": round(statistics.median(lat), 1) if lat else None,
        "max_ms": round(max(lat), 1) if lat else None,
        "max_latency_ms": outcome.max_latency_ms,
        "normal_client_s": [round(outcome.normal_start_s, 2), round(outcome.normal_end_s, 2)],
        "closed_after_s": [round(min(c.closed_by_server_s for c in closed), 1),
                           round(max(c.closed_by_server_s for c in closed), 1)] if closed else None,
        "passed": outcome.passed(),
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="the server (loopback only)")
    ap.add_argument("--slow", type=int, default=200, help=f"slow connections (at most {MAX_SLOW})")
    ap.add_argument("--kinds", default=",".join(KINDS), help="what the slow connections do, in turn: "
                    "headers (a header line per interval, never the end), body (a body byte per interval), idle")
    ap.add_argument("--requests", type=int, default=10, help=f"normal requests (at most {MAX_REQUESTS})")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between two slow sends")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between opening them and the normal client")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds a normal request may take before it fails")
    ap.add_argument("--max-latency", type=float, default=2.0, help="seconds: a slower answer fails the run")
    ap.add_argument("--hold", type=float, default=0.0, help="seconds to keep the slow connections open after the "
                    "normal client, to see the server close them")
    ap.add_argument("--json", type=Path, help="also write the summary and every request here")
    args = ap.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    problems = [f"--kinds: unknown {k!r} (choose from {', '.join(KINDS)})" for k in kinds if k not in KINDS]
    if not 0 <= args.slow <= MAX_SLOW:
        problems.append(f"--slow {args.slow}: 0 to {MAX_SLOW}")
    if not 1 <= args.requests <= MAX_REQUESTS:
        problems.append(f"--requests {args.requests}: 1 to {MAX_REQUESTS}")
    budget = args.settle + args.requests * args.timeout + args.hold
    if min(args.interval, args.settle, args.timeout) <= 0 or args.hold < 0 or budget > MAX_SECONDS * 0.75:
        problems.append(f"--interval/--settle/--timeout must be > 0, --hold >= 0, and settle + requests x timeout + "
                        f"hold ({budget:.0f} s) at most {MAX_SECONDS * 0.75:.0f} s")
    try:
        host, port = loopback_target(args.url)
    except (ValueError, OSError) as err:
        problems.append(str(err))
    if problems or not kinds:
        for p in problems or ["--kinds: give at least one kind"]:
            log.error("slow-clients: %s", p)
        return 2
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as err:
        log.error("slow-clients: cannot connect to %s:%d (%s); start the server first", host, port, err)
        return 2

    outcome = run(host, port, args.slow, kinds, args.requests, args.interval, args.settle, args.timeout,
                  args.max_latency * 1000, args.hold)
    s = summarise(outcome)
    log.info("normal client: %d of %d answered 200, %d within %.0f ms; p50 %s ms, max %s ms",
             s["answered_200"], s["requests"], s["within_limit"], s["max_latency_ms"], s["p50_ms"], s["max_ms"])
    log.info("slow connections: %d of %d hanging while the normal client ran (%.1f-%.1f s); %d closed by the "
             "server by the end%s%s", s["slow_hanging_during_normal_client"], s["slow_connections"],
             *s["normal_client_s"], s["slow_closed_by_server"],
             " after {}-{} s".format(*s["closed_after_s"]) if s["closed_after_s"] else "",
             f" ({', '.join(s['server_said'])})" if s["server_said"] else "")
    log.info("%s", "PASS" if s["passed"] else "FAIL: a normal request failed or took longer than the limit")
    if args.json:
        args.json.write_text(json.dumps({"summary": s, "requests": [asdict(r) for r in outcome.requests],
                                         "slow": [asdict(c) for c in outcome.slow]}, indent=1) + "\n")
    return 0 if s["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
