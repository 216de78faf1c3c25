"""Locust load profile for the LingShift API (run by benchmarks/load_api.py; usable on its own too)::

    locust -f benchmarks/locustfile.py --headless -u 16 -r 16 -t 30s --host http://127.0.0.1:8000

Each simulated client waits 0.1-0.5 s between requests and sends this mix (task weights):

* 5  GET /v1/results with varied filters (model, variant, task, layer, limit 10-500, offset), all valid names;
* 1  GET /v1/claims,  1  GET /v1/models;
* 3  POST /v1/probe: a random 5-25-word sentence (seeded vocabulary), MiniLM, pos-wsj; half with every
  ready variant (the default), a quarter one variant, a quarter a few layers; top_k 0-10.

Request names are the endpoint groups ``results``, ``claims``, ``models``, ``probe``. A 503 from a probe
with ``Retry-After`` is the service's intended back-pressure: it is counted as ``probe 503 (intended)``,
not a failure, and the client waits Retry-After (at most 2 s) like a polite client would. A 503 without
Retry-After, and any other non-2xx, is a failure. With ``LINGSHIFT_LOAD_SAMPLES=path``, every request's
(group, status, milliseconds, Retry-After present) is written there as JSON at the end of the run.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time

from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

_VOCAB = ("the a this every some committee board market investors company shares prices analyst report year "
          "quarter government bank plan deal growth rate profit loss sales week month city court judge law "
          "said says approved rejected expects reported rose fell gained dropped sold bought raised cut "
          "announced may will would could new big small early late strong weak recent major local "
          "in on at for with from by after before about over under against quickly sharply slightly "
          "not also again only still").split()
_VARIANTS = ("base", "sentiment-seed42", "hedge-seed42")
_SAMPLES: list[tuple[str, int, float, bool]] = []
_LOCK = threading.Lock()
_seed = iter(range(1_000_000))


def _sentence(rng: random.Random) -> str:
    n = rng.randint(5, 25)  # words, the final period included
    words = [rng.choice(_VOCAB) for _ in range(n - 1)]
    return " ".join([words[0].capitalize(), *words[1:], "."])


@events.request.add_listener
def _record(name, response_time, response, exception, **_kw) -> None:  # noqa: ANN001
    status = getattr(response, "status_code", 0) or 0
    headers = getattr(response, "headers", None) or {}
    with _LOCK:
        _SAMPLES.append((name, int(status), float(response_time), bool(headers.get("Retry-After"))))


@events.test_stop.add_listener
def _dump(**_kw) -> None:  # noqa: ANN003
    path = os.environ.get("LINGSHIFT_LOAD_SAMPLES")
    if path:
        with _LOCK, open(path, "w", encoding="utf-8") as f:
            json.dump({"written_at": time.time(), "samples": _SAMPLES}, f)


class ApiUser(FastHttpUser):
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.rng = random.Random(next(_seed))

    @task(5)
    def results(self) -> None:
        r = self.rng
        q: dict[str, object] = {"limit": r.choice([10, 50, 100, 500])}
        if r.random() < 0.7:
            q["model"] = "minilm"
        if r.random() < 0.5:
            q["variant"] = r.choice(_VARIANTS)
        if r.random() < 0.5:
            q["task"] = r.choice(["pos-wsj", "chunk-wsj"])
        if r.random() < 0.3:
            q["layer"] = r.randint(0, 6)
        if r.random() < 0.2:
            q["offset"] = r.choice([5, 20])
        self._get("/v1/results", "results", q)

    @task(1)
    def claims(self) -> None:
        self._get("/v1/claims", "claims", None)

    @task(1)
    def models(self) -> None:
        self._get("/v1/models", "models", None)

    @task(3)
    def probe(self) -> None:
        r = self.rng
        body: dict[str, object] = {"sentence": _sentence(r), "model": "minilm", "task": "pos-wsj",
                                   "top_k": r.randint(0, 10)}
        kind = r.random()
        if kind < 0.25:
            body["variants"] = [r.choice(_VARIANTS)]
        elif kind < 0.5:
            body["layers"] = sorted(r.sample(range(7), r.randint(1, 3)))
        wait = 0.0
        with self.client.post("/v1/probe", json=body, name="probe", catch_response=True) as resp:
            if resp.status_code == 503 and resp.headers.get("Retry-After"):
                resp.request_meta["name"] = "probe 503 (intended)"
                resp.success()
                wait = min(2.0, float(resp.headers["Retry-After"]))
            elif resp.status_code == 200:
                resp.success()
            else:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
        if wait:
            time.sleep(wait)  # gevent-patched: only this simulated client waits

    def _get(self, path: str, name: str, params: dict[str, object] | None) -> None:
        with self.client.get(path, params=params, name=name, catch_response=True) as resp:
            if resp.status_code == 200:
                resp.success()
            else:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
