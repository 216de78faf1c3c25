"""The REST API through Flask's test client: every endpoint, every error status, bad input of every kind."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from app.probing import split_words
from app.settings import Settings
from pipeline.config import Params
from pipeline.records import LayerResult

CHECKPOINTS = Params().checkpoints  # base, sentiment-seed42, ..., hedge-seed44: what the API serves

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"
OK = {"sentence": "The cat sat on the mat .", "model": "minilm", "task": "pos-wsj"}


@pytest.fixture(scope="module")
def app(api_root: Path):  # noqa: ANN201
    return create_app(Settings(root=api_root, max_words=40, max_top_k=20))


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    return app.test_client()


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.content_type == PROBLEM
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    body = r.get_json(force=True)
    assert body["status"] == status and body["title"] and body["detail"] and body["instance"] == r.request.path
    assert body["type"] == "about:blank" or body["type"].startswith("https://")
    return body


# ---------------------------------------------------------------------------- results side


def test_health(client) -> None:  # noqa: ANN001
    assert client.get("/livez").get_json()["status"] == "ok"
    r = client.get("/readyz").get_json()
    assert r["status"] in ("ready", "degraded")
    assert r["models"]["minilm"] == {c: True for c in CHECKPOINTS}
    assert r["results"] == {"layers": 14, "neurons": 14, "finetune": 6}  # 7 checkpoints x 2 tasks; 2 tasks x 3 seeds


def test_models(client) -> None:  # noqa: ANN001
    r = client.get("/v1/models").get_json()
    assert r["profile"] == "offline" and r["tasks"] == ["pos-wsj", "chunk-wsj"]
    (m,) = r["models"]
    assert (m["name"], m["n_layers"], m["dim"]) == ("minilm", 7, 384)
    assert [v["name"] for v in m["variants"]] == CHECKPOINTS
    assert all(v["probe_ready"] and v["tasks"] == ["chunk-wsj", "pos-wsj"] for v in m["variants"])


def test_results_filters_and_pages(client, api_root: Path) -> None:  # noqa: ANN001
    all_rows = client.get("/v1/results?limit=500").get_json()
    assert all_rows["total"] == 7 * 2 * 7 and len(all_rows["items"]) == 98  # checkpoints x tasks x layers
    r = client.get("/v1/results?model=minilm&variant=sentiment-seed43&task=pos-wsj&layer=4").get_json()
    (row,) = r["items"]
    committed = LayerResult.read(api_root / "results/layers/minilm/sentiment-seed43/pos-wsj.json")
    base = LayerResult.read(api_root / "results/layers/minilm/base/pos-wsj.json")
    assert row["accuracy"] == committed.mean[4]
    assert row["delta"] == pytest.approx(committed.mean[4] - base.mean[4])
    assert row["ci_low"] <= row["accuracy"] <= row["ci_high"] and row["selectivity"] is not None
    assert row["lexical_baseline"] == committed.lexical_baseline.test_accuracy and row["bootstrap_unit"] == "sentence"
    assert row["headroom"] == pytest.approx(row["accuracy"] - row["lexical_baseline"])
    page = client.get("/v1/results?limit=10&offset=40").get_json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (98, 10, 40, 10)
    assert client.get("/v1/results?variant=base").get_json()["items"][0]["delta"] is None


def test_neurons_claims_provenance(client) -> None:  # noqa: ANN001
    items = client.get("/v1/neurons?task=pos-wsj").get_json()["items"]
    assert {i["variant"] for i in items} == set(CHECKPOINTS)
    assert all(sum(i["counts"]) == i["k"] and i["n_neurons"] == 2688 for i in items)
    claims = client.get("/v1/claims").get_json()
    assert [c["id"] for c in claims["claims"]] == ["C1", "C2", "C3", "C4", "C5"]
    assert {c["verdict"] for c in claims["claims"]} <= {"SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "NOT_APPLICABLE"}
    assert claims["proxy"] and all(c["proxy"] and "minilm" in c["proxy_reason"] for c in claims["claims"])
    assert len(claims["spec_sha256"]) == 64 and claims["spec_version"] == 3
    prov = client.get("/v1/provenance").get_json()
    assert prov["profile"] == "offline" and prov["seeds"]["probe"] == [0, 1, 2]
    assert len(prov["dvc_lock_sha256"]) == 64 and prov["versions"]["torch"].startswith("2.13")


def test_etag_and_cache_headers(client) -> None:  # noqa: ANN001
    r = client.get("/v1/results?task=pos-wsj")
    assert r.headers["ETag"] and "max-age" in r.headers["Cache-Control"]
    again = client.get("/v1/results?task=pos-wsj", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    other = client.get("/v1/results?task=chunk-wsj")
    assert other.headers["ETag"] != r.headers["ETag"]


def test_results_refresh_when_files_change(api_root: Path, tmp_path: Path, relock) -> None:  # noqa: ANN001
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(api_root, root, symlinks=True)
    app = create_app(Settings(root=root))
    app.extensions["lingshift.catalog"]._check_every = 0
    c = app.test_client()
    before = c.get("/v1/claims").headers["ETag"]
    f = root / "results" / "claims.json"
    data = json.loads(f.read_text())
    data["claims"][0]["verdict"] = "CONTRADICTED"
    f.write_text(json.dumps(data))
    relock(root)  # as the pipeline would: a file that differs from dvc.lock is left out
    r = c.get("/v1/claims")
    assert r.headers["ETag"] != before and r.get_json()["claims"][0]["verdict"] == "CONTRADICTED"


def test_results_side_works_without_models(api_root: Path, tmp_path: Path) -> None:
    """No weights or probes on the server: results still served, /readyz says what is degraded, probe -> 503."""
    import shutil

    root = tmp_path / "bare"
    root.mkdir()
    shutil.copy(api_root / "params.yaml", root / "params.yaml")
    shutil.copytree(api_root / "results", root / "results", ignore=shutil.ignore_patterns("probes"))
    c = create_app(Settings(root=root)).test_client()
    assert c.get("/v1/results").status_code == 200
    ready = c.get("/readyz").get_json()
    assert ready["status"] == "degraded" and "cannot probe minilm/base" in " ".join(ready["degraded"])
    body = _problem(c.post("/v1/probe", json=OK), 503)
    assert "no variant of minilm is ready" in body["detail"] and "make repro" in body["detail"]
    body = _problem(c.post("/v1/probe", json={**OK, "variants": ["base"]}), 503)
    assert "minilm/base is not materialised" in body["detail"]


def test_no_results_at_all(tmp_path: Path, api_root: Path) -> None:
    (tmp_path / "params.yaml").write_text((api_root / "params.yaml").read_text())
    c = create_app(Settings(root=tmp_path)).test_client()
    assert c.get("/readyz").status_code == 503
    assert c.get("/v1/results").get_json()["total"] == 0
    _problem(c.get("/v1/claims"), 503)
    assert c.get("/livez").status_code == 200


# ---------------------------------------------------------------------------- probe


def test_probe_sentence_all_variants_and_layers(client) -> None:  # noqa: ANN001
    r = client.post("/v1/probe", json={**OK, "top_k": 3})
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["words"] == ["The", "cat", "sat", "on", "the", "mat", "."]
    assert body["layers"] == list(range(7))
    # by default base and each variant's first fine-tuning seed; the other seeds on request
    assert [v["variant"] for v in body["variants"]] == ["base", "sentiment-seed42", "hedge-seed42"]
    base = body["variants"][0]
    assert [len(layer["tags"]) for layer in base["layers"]] == [7] * 7
    tags = [t["tag"] for t in base["layers"][3]["tags"]]
    assert tags[0] == "DT" and tags[-1] == "." and tags[3] == "IN"  # a real probe on real activations
    assert all(0 < t["probability"] <= 1 for layer in base["layers"] for t in layer["tags"])
    assert [n["rank"] for n in base["neurons"]] == [1, 2, 3]
    n = base["neurons"][0]
    assert n["neuron"] == n["layer"] * 384 + n["unit"] and len(n["activations"]) == 7


def test_probe_words_variants_layers(client) -> None:  # noqa: ANN001
    r = client.post("/v1/probe", json={"words": ["Stocks", "fell", "sharply", "."], "model": "minilm",
                                       "task": "pos-wsj", "variants": ["hedge-seed44"], "layers": [6, 1], "top_k": 0})
    body = r.get_json()
    assert r.status_code == 200 and body["layers"] == [6, 1] and body["words"][0] == "Stocks"
    (v,) = body["variants"]
    assert v["variant"] == "hedge-seed44" and [x["layer"] for x in v["layers"]] == [6, 1] and v["neurons"] == []


def test_probe_uses_the_pipeline_alignment(app) -> None:  # noqa: ANN001
    """Activations in the response equal the pipeline's extract_array on the same words."""
    import numpy as np

    from pipeline.extract import extract_array

    svc = app.extensions["lingshift.probe"]
    words = ["Unbelievably", ",", "tokenisation", "works", "."]
    out = svc.compute(words, "minilm", "pos-wsj", ["base"], None, 2)
    entry = svc._loaded["minilm/base"]
    X = extract_array(entry.tokenizer, entry.encoder, [words]).reshape(len(words), -1)
    for n in out["variants"][0]["neurons"]:
        np.testing.assert_allclose(n["activations"], X[:, n["neuron"]], atol=1e-3)


def test_split_words_like_the_treebank() -> None:
    assert split_words("He didn't say \"no\", John's 3.5% well-known U.S. view.") == [
        "He", "did", "n't", "say", '"', "no", '"', ",", "John", "'s", "3.5", "%", "well-known", "U.S", ".", "view",
        "."]


@pytest.mark.parametrize(("body", "needle"), [
    ({}, "model: Field required"),
    ({"sentence": "a", "task": "pos-wsj"}, "model: Field required"),
    ({**OK, "model": 7}, "model: Input should be a valid string"),
    ({**OK, "top_k": "many"}, "top_k"),
    ({**OK, "layers": "all"}, "layers"),
    ({**OK, "variants": []}, "variants"),
    ({**OK, "extra": 1}, "extra"),
    ({**OK, "sentence": ""}, "sentence"),
    ({**OK, "sentence": "   "}, "no words"),
    ({**OK, "sentence": "a", "words": ["a"]}, "exactly one of"),
    ({"model": "minilm", "task": "pos-wsj"}, "exactly one of"),
    ({**OK, "sentence": None, "words": ["ok", ""]}, "words[1]"),
    ({**OK, "sentence": None, "words": ["two words"]}, "whitespace"),
    ({**OK, "sentence": "bell \u0007 here"}, "U+0007"),
    ({**OK, "sentence": "zero\u200bwidth"}, "U+200B"),
    ({**OK, "sentence": " ".join(["w"] * 41)}, "41 words; at most 40"),
    ({**OK, "sentence": None, "words": ["w"] * 10_000}, "words"),
    ({**OK, "sentence": "x" * 65}, "at most 64"),
    ({**OK, "sentence": "a " * 3000}, "characters"),
    ({**OK, "model": "gpt-7"}, "unknown model 'gpt-7'"),
    ({**OK, "model": "../../etc/passwd"}, "model"),
    ({**OK, "task": "ner"}, "unknown task 'ner'"),
    ({**OK, "variants": ["base", "mnli"]}, "unknown variant"),
    ({**OK, "layers": [7]}, "out of range"),
    ({**OK, "layers": [-1]}, "out of range"),
    ({**OK, "top_k": 21}, "top_k 21 is above the maximum 20"),
    ({**OK, "top_k": 10**9}, "top_k"),
    ({**OK, "top_k": -1}, "top_k"),
    # booleans are not integers, nor are numeric strings or floats (JSON has real types)
    ({**OK, "top_k": True}, "top_k: Input should be a valid integer"),
    ({**OK, "layers": [True]}, "layers.0: Input should be a valid integer"),
    ({**OK, "layers": [1, False]}, "layers.1: Input should be a valid integer"),
    ({**OK, "top_k": "5"}, "top_k: Input should be a valid integer"),
    ({**OK, "layers": [1.0]}, "layers.0: Input should be a valid integer"),
])
def test_bad_probe_input_is_a_422_problem(client, body: dict[str, Any], needle: str) -> None:  # noqa: ANN001
    r = client.post("/v1/probe", json=body)
    if r.status_code == 413:  # 10,000 words exceed the body limit first: also a clear 4xx
        _problem(r, 413)
        return
    problem = _problem(r, 422)
    assert needle in problem["detail"], problem


def test_json_that_is_not_an_object(client) -> None:  # noqa: ANN001
    for payload in ("[1, 2]", '"text"', "null", "3"):
        r = client.post("/v1/probe", data=payload, content_type="application/json")
        _problem(r, 422)


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), [
    ("get", "/v1/nothing", {}, 404),
    ("get", "/v1/results?model=gpt", {}, 404),
    ("get", "/v1/results?limit=0", {}, 422),
    ("get", "/v1/results?limit=100000", {}, 422),
    ("get", "/v1/results?layer=x", {}, 422),
    ("get", "/v1/results?colour=red", {}, 422),
    ("get", "/v1/neurons?task=../x", {}, 422),
    ("delete", "/v1/claims", {}, 405),
    ("get", "/v1/probe", {}, 405),
    ("post", "/v1/probe", {"data": "sentence=hi", "content_type": "application/x-www-form-urlencoded"}, 415),
    ("post", "/v1/probe", {"data": "{not json", "content_type": "application/json"}, 400),
    ("post", "/v1/probe", {"data": "{" + " " * 20_000 + "}", "content_type": "application/json"}, 413),
])
def test_error_statuses_are_problems(client, method: str, path: str, kwargs: dict[str, Any],  # noqa: ANN001
                                     status: int) -> None:
    _problem(getattr(client, method)(path, **kwargs), status)


def test_busy_is_a_503_with_retry_after(api_root: Path) -> None:
    app = create_app(Settings(root=api_root, max_concurrent_probes=1, retry_after_s=2))
    svc = app.extensions["lingshift.probe"]
    gate = threading.Event()
    real = svc.compute

    def slow(*a: Any, **k: Any) -> Any:
        gate.wait(30)
        return real(*a, **k)

    svc.compute = slow
    c = app.test_client()
    first: dict[str, Any] = {}
    t = threading.Thread(target=lambda: first.update(r=c.post("/v1/probe", json=OK)))
    t.start()
    deadline = time.monotonic() + 10
    while svc._slots._value != 0 and time.monotonic() < deadline:  # noqa: SLF001
        time.sleep(0.01)
    r = app.test_client().post("/v1/probe", json=OK)
    body = _problem(r, 503)
    assert r.headers["Retry-After"] == "2" and "busy" in body["detail"]
    gate.set()
    t.join(30)
    assert first["r"].status_code == 200
    assert app.test_client().post("/v1/probe", json=OK).status_code == 200  # the slot came back


def test_timeout_is_a_503(api_root: Path) -> None:
    app = create_app(Settings(root=api_root, probe_timeout_s=0.05))
    svc = app.extensions["lingshift.probe"]
    real = svc.compute
    svc.compute = lambda *a, **k: (time.sleep(0.5), real(*a, **k))[1]
    r = app.test_client().post("/v1/probe", json=OK)
    assert "did not finish within 0.05 s" in _problem(r, 503)["detail"] and r.headers["Retry-After"]


def test_rate_limit_is_a_429(api_root: Path) -> None:
    c = create_app(Settings(root=api_root, rate_limit="2/minute")).test_client()
    assert [c.post("/v1/probe", json=OK).status_code for _ in range(2)] == [200, 200]
    r = c.post("/v1/probe", json=OK)
    _problem(r, 429)
    assert "Retry-After" in r.headers


def test_unhandled_error_is_a_500_problem_without_internals(app, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    svc = app.extensions["lingshift.probe"]
    monkeypatch.setattr(svc, "compute", lambda *a, **k: 1 / 0)
    r = app.test_client().post("/v1/probe", json=OK)
    body = _problem(r, 500)
    assert "ZeroDivision" not in json.dumps(body) and "Traceback" not in json.dumps(body)


def test_openapi_document(client) -> None:  # noqa: ANN001
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    assert {"/v1/probe", "/v1/results", "/v1/neurons", "/v1/claims", "/v1/models", "/v1/provenance",
            "/livez", "/readyz"} <= set(spec["paths"])
    assert "ProbeIn" in json.dumps(spec["components"]) and "ProbeOut" in json.dumps(spec["components"])


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.errors import ConfigError

    monkeypatch.setenv("LINGSHIFT_MAX_WORDS", "64")
    assert Settings.from_env().max_words == 64
    monkeypatch.setenv("LINGSHIFT_MAX_WORDS", "lots")
    with pytest.raises(ConfigError, match="LINGSHIFT_MAX_WORDS"):
        Settings.from_env()


def test_a_probe_that_cannot_be_loaded_is_a_503_not_a_500(api_root: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(api_root, root, symlinks=True)
    (root / "results/probes/minilm/hedge-seed44/pos-wsj/probe.safetensors").write_bytes(b"not a safetensors file")
    c = create_app(Settings(root=root)).test_client()
    body = _problem(c.post("/v1/probe", json={**OK, "variants": ["hedge-seed44"]}), 503)
    assert "probe or neuron ranking of minilm/hedge-seed44/pos-wsj cannot be loaded" in body["detail"]
    assert str(root) not in body["detail"]  # no server paths in answers
    assert c.post("/v1/probe", json={**OK, "variants": ["base"]}).status_code == 200


# ---------------------------------------------------------------------------- hostile input: never a 500


def _post_raw(client, data: bytes | str, **kwargs: Any) -> Any:  # noqa: ANN001
    return client.post("/v1/probe", data=data, content_type="application/json", **kwargs)


@pytest.mark.parametrize("data", [
    "[" * 1000 + "]" * 1000,                      # the reported 500 (RecursionError), well under 16 KiB
    '{"a": ' * 1000 + "1" + "}" * 1000,
    '{"words": ' + "[" * 33 + "]" * 33 + "}",      # one level over the limit
    "[" * 5000,                                   # unbalanced too
])
def test_deeply_nested_json_is_a_422(client, data: str) -> None:  # noqa: ANN001
    body = _problem(_post_raw(client, data), 422)
    assert body["detail"].startswith("JSON nested deeper than 32 levels") and body["type"].endswith("/too-deep")


def test_nesting_at_the_limit_and_brackets_in_strings_are_parsed(client) -> None:  # noqa: ANN001
    from app.bodies import nesting_depth

    at_limit = '{"words": ' + "[" * 31 + "]" * 31 + "}"  # 32 levels: parsed, then refused by the schema
    assert nesting_depth(at_limit) == 32
    assert "words" in _problem(_post_raw(client, at_limit), 422)["detail"]
    brackets = json.dumps({**OK, "sentence": "[" * 500 + ' \\" {'})  # inside a string: text, not nesting
    assert nesting_depth(brackets) == 1
    assert "nested" not in _problem(_post_raw(client, brackets), 422)["detail"]


@pytest.mark.parametrize(("data", "status", "detail"), [
    ('{"sentence": x}', 400, "invalid JSON at line 1, column 14: Expecting value"),
    ('{"sentence": "a",\n "model": }', 400, "invalid JSON at line 2, column 11: Expecting value"),
    ("", 400, "empty body: send a JSON object"),
    (" \n\t ", 400, "empty body: send a JSON object"),
    (b'{"sentence":"\xff"}', 400, "the body is not valid UTF-8 (byte 0xff at position 13)"),
    (b"\xfe\xff\x00{", 400, "the body is not valid UTF-8 (byte 0xfe at position 0)"),
    ('{"top_k": ' + "9" * 5000 + "}", 400, "invalid JSON: a number has too many digits"),
])
def test_unreadable_body_is_a_400_that_says_why(client, data: bytes | str, status: int,  # noqa: ANN001
                                                 detail: str) -> None:
    body = _problem(_post_raw(client, data), status)
    assert body["detail"].startswith(detail), body


def _chunked(client, data: bytes) -> Any:  # noqa: ANN001
    """A body sent as gunicorn passes a chunked one: no Content-Length, the stream terminated by the server."""
    import io

    return client.post("/v1/probe", input_stream=io.BytesIO(data),
                       headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


def test_oversized_chunked_body_is_a_413(client) -> None:  # noqa: ANN001
    big = json.dumps({**OK, "sentence": "a " * 20_000}).encode()
    r = _chunked(client, big)
    assert r.request.content_length is None  # chunked: werkzeug ignores any Content-Length
    assert "over the limit of 16384 bytes" in _problem(r, 413)["detail"]
    exact = json.dumps({**OK, "top_k": 99}).encode()
    exact = exact[:-1] + b" " * (16_384 - len(exact)) + b"}"  # exactly at the limit: parsed
    assert len(exact) == 16_384
    assert "top_k 99 is above the maximum 20" in _problem(_chunked(client, exact), 422)["detail"]
    assert _chunked(client, json.dumps({**OK, "sentence": None}).encode()).status_code == 422  # small: parsed


def test_body_over_the_content_length_limit_says_the_limit(client) -> None:  # noqa: ANN001
    r = _post_raw(client, json.dumps({**OK, "sentence": "a " * 20_000}))
    assert "over the limit of 16384 bytes" in _problem(r, 413)["detail"]


@pytest.mark.parametrize("path", [
    "/plots/" + "a" * 252 + ".svg",  # the reported 500 (ENAMETOOLONG)
    "/plots/" + "a" * 300 + ".png",
    "/plots/" + "a" * 5000,
    "/plots/" + "a" * 124 + ".svg",
    "/static/" + "a" * 300 + ".js",
    "/static/" + "a/" * 200 + "b" * 300,
    "/static/" + "a" * 5000,
    "/plots/%ff.svg",
    "/plots/..%2f..%2fparams.yaml",
])
def test_long_or_odd_path_segments_are_a_404(client, path: str) -> None:  # noqa: ANN001
    _problem(client.get(path), 404)


@pytest.mark.parametrize("path", ["//static//app.js", "/static//app.js", "/v1//results", "/v1/results/",
                                  "/plots//x.svg", "/v1/probe/", "//plots//layers-minilm.svg"])
def test_no_redirect_to_the_clients_host(client, path: str) -> None:  # noqa: ANN001
    """werkzeug would answer 308 to http://<the client's Host>/...; here a path serves or is a 404, never a redirect."""
    r = client.get("/", environ_overrides={"PATH_INFO": path, "HTTP_HOST": "evil.example"})
    assert r.status_code in (200, 404, 405) and "Location" not in r.headers, (r.status_code, r.headers)
    assert r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/", 200), ("get", "/static/app.js", 200), ("get", "/static/style.css", 200),
    ("get", "/plots/layers-minilm.svg", 200), ("get", "/openapi.json", 200), ("get", "/v1/results", 200),
    ("get", "/readyz", 200), ("get", "/livez", 200), ("post", "/v1/probe", 415), ("get", "/nothing", 404),
])
def test_nosniff_on_every_response(client, method: str, path: str, status: int) -> None:  # noqa: ANN001
    r = getattr(client, method)(path)
    assert r.status_code == status and r.headers["X-Content-Type-Options"] == "nosniff"
    if status == 200 and path.startswith("/v1/"):
        again = client.get(path, headers={"If-None-Match": r.headers["ETag"]})
        assert again.status_code == 304 and again.headers["X-Content-Type-Options"] == "nosniff"


# ---------------------------------------------------------------------------- rate limits shared through Redis


@pytest.fixture
def redis_uri(tmp_path: Path):  # noqa: ANN201
    """A throw-away redis-server on a free loopback port (Debian's ``redis-server``), stopped afterwards."""
    import shutil
    import socket
    import subprocess

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server): shared rate limits not tested")
    pytest.importorskip("redis", reason="the redis Python client is not installed (pip install 'redis>=5,<8')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def _statuses(clients: list[Any], n: int) -> list[int]:
    """``n`` probe requests, taking turns over ``clients`` (cheap ones: an empty object is a 422 once counted)."""
    return [clients[i % len(clients)].post("/v1/probe", json={}).status_code for i in range(n)]


def test_two_workers_share_one_limit_in_redis(api_root: Path, redis_uri: str) -> None:
    """Two app instances (two gunicorn workers) on one Redis: the limit holds for the client across both."""
    settings = Settings(root=api_root, rate_limit="3/minute", ratelimit_storage=redis_uri)
    workers = [create_app(settings).test_client() for _ in range(2)]
    assert _statuses(workers, 5) == [422, 422, 422, 429, 429]
    r = workers[0].post("/v1/probe", json={})
    assert "rate limit of 3/minute per client exceeded" in _problem(r, 429)["detail"] and r.headers["Retry-After"]
    # a restarted worker (a new instance) still sees the count
    assert _statuses([create_app(settings).test_client()], 1) == [429]


def test_in_memory_limits_are_per_worker(api_root: Path) -> None:
    """The default (memory://): each instance counts on its own, so two workers let twice the limit through."""
    settings = Settings(root=api_root, rate_limit="3/minute")
    assert settings.ratelimit_storage == "memory://"
    workers = [create_app(settings).test_client() for _ in range(2)]
    assert _statuses(workers, 8) == [422] * 6 + [429] * 2


def test_redis_down_falls_back_to_memory_not_a_500(api_root: Path, redis_uri: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket is closed
    c = create_app(Settings(root=api_root, rate_limit="2/minute",
                            ratelimit_storage=f"redis://127.0.0.1:{closed}/0")).test_client()
    assert _statuses([c], 3) == [422, 422, 429]  # the limit still holds, in this worker's memory


def test_rate_limit_storage_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINGSHIFT_RATELIMIT_STORAGE", "redis://cache:6379/1")
    assert Settings.from_env().ratelimit_storage == "redis://cache:6379/1"


# ---------------------------------------------------------------------------- profiles


def _with_full_profile(api_root: Path, tmp_path: Path) -> Path:
    """A copy of the API checkout that also holds offline-full results: the active results copied under
    results/offline-full/ with a lock.yaml whose paths point there (what make repro-full commits)."""
    import shutil

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path / "two"
    shutil.copytree(api_root, root, symlinks=True)
    shutil.copytree(repo / "profiles", root / "profiles")
    full = root / "results" / "offline-full"
    for part in ("layers", "neurons", "finetune", "plots"):
        shutil.copytree(root / "results" / part, full / part)
    for name in ("claims.json", "report.md", "metrics.json"):
        shutil.copy(root / "results" / name, full / name)
    (full / "lock.yaml").write_text((root / "dvc.lock").read_text().replace("path: results/",
                                                                            "path: results/offline-full/"))
    return root


def test_results_of_another_profile_are_served_by_name(api_root: Path, tmp_path: Path) -> None:
    """?profile=offline-full serves results/offline-full/ checked against its lock.yaml; the active profile stays
    the default; an unserved profile name is a 404 problem; a changed file is left out of its profile only."""
    root = _with_full_profile(api_root, tmp_path)
    c = create_app(Settings(root=root)).test_client()
    models = c.get("/v1/models").get_json()
    assert models["profile"] == "offline" and models["profiles"] == ["offline", "offline-full"]
    full = c.get("/v1/models?profile=offline-full").get_json()
    assert full["profile"] == "offline-full" and [m["name"] for m in full["models"]] == ["minilm", "mpnet"]
    assert not any(v["probe_ready"] for m in full["models"] for v in m["variants"])
    mine = c.get("/v1/results?task=pos-wsj&limit=500")
    theirs = c.get("/v1/results?task=pos-wsj&limit=500&profile=offline-full")
    assert theirs.status_code == 200 and theirs.get_json()["total"] == mine.get_json()["total"] > 0
    assert theirs.get_json()["omitted"] == [] and theirs.headers["ETag"] != mine.headers["ETag"]
    assert c.get("/v1/claims?profile=offline-full").get_json()["profile"] == "offline"  # the copied file's
    assert c.get("/v1/neurons?profile=offline-full").status_code == 200
    body = _problem(c.get("/v1/results?profile=paper"), 404)
    assert "unknown profile 'paper'" in body["detail"] and "offline-full" in body["detail"]
    _problem(c.get("/v1/results?profile=../etc"), 422)
    f = root / "results" / "offline-full" / "layers" / "minilm" / "base" / "pos-wsj.json"
    f.write_text(f.read_text().replace('"minilm"', '"minilm" ', 1))
    c2 = create_app(Settings(root=root)).test_client()
    assert [o["unit"] for o in c2.get("/v1/results?profile=offline-full").get_json()["omitted"]] == [
        "minilm/base/pos-wsj"]
    assert c2.get("/v1/results").get_json()["omitted"] == []


def test_page_switches_profile(api_root: Path, tmp_path: Path) -> None:
    """The page lists the served profiles, shows the chosen one's claims and plots (plot links carry the
    profile), and 404s an unserved name."""
    root = _with_full_profile(api_root, tmp_path)
    c = create_app(Settings(root=root)).test_client()
    page = c.get("/").get_data(as_text=True)
    assert 'id="profiles"' in page and 'href="/?profile=offline-full"' in page
    full = c.get("/?profile=offline-full").get_data(as_text=True)
    assert '<strong aria-current="page">offline-full</strong>' in full and "profile=offline-full" in full
    plot = next(p for p in (root / "results" / "offline-full" / "plots").glob("*.svg"))
    assert c.get(f"/plots/{plot.name}?profile=offline-full").status_code == 200
    assert c.get("/?profile=nope").status_code == 404
