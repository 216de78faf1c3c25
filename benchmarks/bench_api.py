"""Latency of POST /v1/probe through the Flask test client (pytest-benchmark; not part of the test suite).

A 20-word sentence, MiniLM, all 7 layers, top_k 5, on this checkout's real fine-tuned weights and trained
probes (``models/minilm/{base,sentiment-seed42,hedge-seed42}``, ``results/probes/minilm/*/pos-wsj``): each
single checkpoint, and the three in one request (the API's default: base and each variant's first seed).
Models load before timing (warm-up rounds); each round is one request: JSON parsing and
validation, extraction, the probes of every layer, LCA top-k and the JSON answer.
torch uses as many threads as one gunicorn worker gets (``gunicorn.conf.py``: cores // workers).
Before every timed request (pytest-benchmark's setup, not timed) the bare forward of the same sentence through
MiniLM base with hidden states runs once per variant of the request; ``extra_info["ratio_vs_bare_forward"]`` is
those forwards' median over the request's p50 (the share of a request that is the unavoidable forward; the CI
ratio gate, benchmarks/check_ratios.py, watches it).

Run from the repository root (see benchmarks/README-api.md)::

    OMP_WAIT_POLICY=PASSIVE python -m pytest benchmarks/bench_api.py -p no:cacheprovider \\
        --benchmark-json benchmarks/results/api_probe.json
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

pytest.importorskip("pytest_benchmark")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SENTENCE = ("The committee approved the revised budget on Tuesday , but several members said the cuts "
            "were n't deep enough .")  # 20 words as the API splits them
VARIANTS = ("base", "sentiment-seed42", "hedge-seed42")  # the default of a probe without `variants`
TASK = "pos-wsj"
ROUNDS = int(os.environ.get("LINGSHIFT_BENCH_ROUNDS", "30"))
TARGET_MS_PER_VARIANT = 50.0


def _torch_threads() -> int:
    """One gunicorn worker's share: cores // workers with workers = max(1, cores // 2) (gunicorn.conf.py)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, cores // 2))


@pytest.fixture(scope="module")
def client():  # noqa: ANN201
    from pipeline.config import load_params
    from pipeline.layout import Layout

    lay = Layout.of(load_params(REPO / "params.yaml")[0], REPO)
    missing = [str(p.relative_to(REPO)) for v in VARIANTS
               for p in (lay.model_dir("minilm", v) / "model.safetensors",
                         lay.results.probe_dir("minilm", v, TASK) / "probe.json",
                         lay.results.neurons("minilm", v, TASK)) if not p.is_file()]
    if missing:
        pytest.skip(f"needs the fine-tuned MiniLM weights and trained probes of this checkout; missing: "
                    f"{', '.join(missing)} (run: make repro)")
    import torch

    from app import create_app
    from app.settings import Settings

    before = torch.get_num_threads()
    torch.set_num_threads(_torch_threads())
    app = create_app(Settings(root=REPO, rate_limit="1000000/minute", probe_timeout_s=120))
    yield app.test_client()
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def bare(client) -> tuple[Any, Any]:  # noqa: ANN001  (after client: its skip applies)
    """MiniLM base's (tokenizer, model) for the bare forward."""
    from pipeline.models import load

    return load(REPO / "models" / "minilm" / "base", "cpu")


def _body(variants: tuple[str, ...]) -> dict[str, Any]:
    return {"sentence": SENTENCE, "model": "minilm", "task": TASK, "variants": list(variants), "top_k": 5}


@pytest.mark.parametrize("variants", [(v,) for v in VARIANTS] + [VARIANTS], ids=[*VARIANTS, "+".join(VARIANTS)])
def test_probe_latency(benchmark, client, bare, variants: tuple[str, ...]) -> None:  # noqa: ANN001
    import torch

    body = _body(variants)
    server_ms: list[float] = []

    def probe() -> dict[str, Any]:
        r = client.post("/v1/probe", json=body)
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
        out = r.get_json()
        server_ms.append(out["elapsed_ms"])
        return out

    out = probe()  # loads the models and probes (not timed)
    assert len(out["words"]) == 20 and out["layers"] == list(range(7))
    assert [v["variant"] for v in out["variants"]] == list(variants)
    server_ms.clear()
    tok, model = bare
    words = SENTENCE.split()
    bare_ms: list[float] = []

    def bare_forwards() -> None:  # setup: before every request, not timed
        t0 = time.perf_counter()
        with torch.inference_mode():
            for _ in variants:
                model(**tok([words], is_split_into_words=True, return_tensors="pt"), output_hidden_states=True)
        bare_ms.append((time.perf_counter() - t0) * 1000)

    benchmark.pedantic(probe, setup=bare_forwards, rounds=ROUNDS, warmup_rounds=3, iterations=1)

    p50_ms = benchmark.stats.stats.median * 1000
    per_variant = p50_ms / len(variants)
    benchmark.extra_info.update({
        "variants": list(variants), "words": 20, "layers": 7, "top_k": 5, "torch_threads": torch.get_num_threads(),
        "p50_ms": round(p50_ms, 2), "p50_ms_per_variant": round(per_variant, 2),
        "server_elapsed_p50_ms": round(statistics.median(server_ms), 2),
        "target_ms_per_variant": TARGET_MS_PER_VARIANT, "target_met": per_variant < TARGET_MS_PER_VARIANT,
        "bare_forward_p50_ms": round(statistics.median(bare_ms), 2),
        "ratio_vs_bare_forward": statistics.median(bare_ms) / p50_ms,
    })
    print(f"\n{'+'.join(variants)}: p50 {p50_ms:.1f} ms ({per_variant:.1f} ms per variant; "
          f"target < {TARGET_MS_PER_VARIANT:.0f}), compute p50 {statistics.median(server_ms):.1f} ms")
