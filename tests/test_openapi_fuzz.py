"""OpenAPI fuzzing of the REST API with schemathesis, in-process on the WSGI app (no server, no network).

Every operation in ``/openapi.json`` gets generated requests (valid and invalid, the coverage phase's edge
cases and Hypothesis' random ones; ``max_examples`` bounded, derandomized, no deadline). Each response must:

* not be a 5xx, except a 503 that carries ``Retry-After`` (busy / model unavailable, by design);
* carry ``X-Content-Type-Options: nosniff`` and never redirect;
* if it is a 4xx/5xx, be an RFC 9457 ``application/problem+json`` body whose ``status`` is the HTTP status;
* conform to the OpenAPI document: schemathesis' status-code, content-type, response-schema, header and
  negative-data checks. ``positive_data_acceptance`` is off on purpose: the schema's bounds are hard
  ceilings, and the handlers apply the configured (smaller) limits and the allow-lists of model, variant and
  task names (see ``app/schemas.py``), so a schema-valid request may rightly get 413 or 422.

The first run of this file found four places where the document and the app disagreed (error media type,
404 for unknown names, 400 for malformed JSON, 503 for missing claims); ``app.problems.document_problems`` now
documents them, and the tests at the end pin each one down with a deterministic request.

Hostile bodies (nested ~1,000 deep, malformed, empty, not UTF-8, a boolean where an integer belongs) and
hostile path segments (over-long file names) have their own generated tests below: none may get a 5xx.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", minversion="4.0")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
PROBLEM_JSON = "application/problem+json"
FUZZ = settings(max_examples=25, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])

# The OpenAPI document does not depend on the results or models present, so it is read from an app on the
# repository's own params.yaml at collection time (schemathesis 4.32's lazy ``from_fixture`` loader is broken
# on pytest 9: it sets ``request.node._nodeid``, which pytest 9 no longer has). Requests go to ``fuzz_app``
# (on the ``api_root`` checkout) through ``case.call(app=...)``; ``test_schema_is_the_served_one`` checks
# that both apps serve the same document.
CONFIG = schemathesis.Config.from_dict({
    "checks": {
        # 413: the body is over max_body_bytes before it is parsed; a correct rejection of an over-long field
        "negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428,
                                                          429, "5xx"]},
    },
})
schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app(Settings(root=REPO)), config=CONFIG)

@pytest.fixture(scope="module")
def fuzz_app(api_root: Path):  # noqa: ANN201
    """The app on the test checkout; the probe rate limit is lifted so fuzzing never meets a 429."""
    return create_app(Settings(root=api_root, rate_limit="100000/minute"))


# ---------------------------------------------------------------------------- checks


def _media_type(response: Any) -> str:
    return (response.headers.get("content-type") or [""])[0].split(";")[0].strip().lower()


def _check_status_and_problem(case: Any, response: Any) -> None:
    """No 5xx but a 503 with Retry-After; every 4xx/5xx an RFC 9457 problem with the response's status."""
    status = response.status_code
    where = f"{case.method} {case.formatted_path} -> {status}"
    assert response.headers.get("x-content-type-options") == ["nosniff"], f"{where} without nosniff"
    assert not 300 <= status < 400 or status == 304, f"{where} redirects to {response.headers.get('location')}"
    if status >= 500:
        assert status == 503, f"server error: {where}: {response.text[:500]}"
        assert response.headers.get("retry-after"), f"503 without Retry-After: {where}"
    if status >= 400:
        assert _media_type(response) == PROBLEM_JSON, f"{where} is {_media_type(response)!r}, not {PROBLEM_JSON}"
        body = json.loads(response.text)
        assert body.get("status") == status, f"{where}: problem status {body.get('status')!r}"
        assert isinstance(body.get("title"), str) and body["title"], f"{where}: problem without title"
        assert isinstance(body.get("type"), str) and body["type"], f"{where}: problem without type"
        assert isinstance(body.get("detail", ""), str), f"{where}: problem detail is not a string"
    elif 200 <= status < 300 and case.method.upper() != "OPTIONS":
        assert _media_type(response) == "application/json", f"{where} is {_media_type(response)!r}"


def _validate(case: Any, response: Any) -> None:
    _check_status_and_problem(case, response)
    # not_a_server_error is _check_status_and_problem's job (it allows a 503 with Retry-After)
    case.validate_response(response, excluded_checks=[positive_data_acceptance,
                                                      schemathesis.checks.not_a_server_error])


# ---------------------------------------------------------------------------- fuzz tests


def test_schema_is_the_served_one(fuzz_app) -> None:  # noqa: ANN001
    served = fuzz_app.test_client().get("/openapi.json")
    assert served.status_code == 200
    assert served.get_json() == schema.raw_schema


@schema.parametrize()
@FUZZ
def test_openapi_fuzz(case, fuzz_app) -> None:  # noqa: ANN001
    """Every operation: generated requests (valid and invalid) get schema-conformant answers."""
    response = case.call(app=fuzz_app)
    _validate(case, response)


_VARIANTS = st.sampled_from([None, ["base"], ["base", "sentiment-seed42", "hedge-seed43"], ["hedge-seed44", "base"]])
# words as a client would send them: no whitespace, control or format characters (any script, emoji, ...)
_WORD = st.text(st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")), min_size=1,
                max_size=70)
_FORM = st.sampled_from(["clean-words", "sentence", "words", "as-generated"])
# booleans too: JSON's true is not the integer 1, so any boolean in layers or top_k must be refused (422)
_LAYERS = st.one_of(st.none(), st.lists(st.one_of(st.integers(-1, 8), st.booleans()), min_size=1, max_size=10))
_TOP_K = st.one_of(st.integers(0, 60), st.booleans())


@FUZZ
@given(case=schema["/v1/probe"]["POST"].as_strategy(), form=_FORM, keep=st.booleans(), variants=_VARIANTS,
       words=st.lists(_WORD, min_size=1, max_size=140), layers=_LAYERS, top_k=_TOP_K)
def test_probe_fuzz_real_model(fuzz_app, case, form, keep, variants, words, layers, top_k) -> None:  # noqa: ANN001
    """POST /v1/probe with the allow-listed model and task, so fuzzed words, sentences, layers, variants and
    top_k reach the real extraction and probes (the generic test almost never guesses a valid name, nor sends
    exactly one of sentence and words). ``keep`` keeps schemathesis' own variants, layers and top_k."""
    if isinstance(case.body, dict):
        body = case.body
        body["model"], body["task"] = "minilm", "pos-wsj"
        if not keep:
            body["variants"], body["layers"], body["top_k"] = variants, layers, top_k
        if form == "sentence":
            body["sentence"], body["words"] = body.get("sentence") or " ".join(words), None
        elif form == "words":
            body["words"], body["sentence"] = body.get("words") or words, None
        elif form == "clean-words":
            body["words"], body["sentence"] = words, None
    response = case.call(app=fuzz_app)
    _validate(case, response)
    if isinstance(case.body, dict) and (isinstance(case.body.get("top_k"), bool) or any(
            isinstance(x, bool) for x in case.body.get("layers") or [])):
        assert response.status_code == 422, f"a boolean for an integer got {response.status_code}"
    if response.status_code == 200:
        out = json.loads(response.text)
        n = len(out["words"])
        for v in out["variants"]:
            assert [row["layer"] for row in v["layers"]] == out["layers"]
            assert all(len(row["tags"]) == n for row in v["layers"])
            assert all(len(neuron["activations"]) == n for neuron in v["neurons"])
            assert len(v["neurons"]) <= case.body.get("top_k", 5)


def test_valid_probe_conforms(fuzz_app) -> None:  # noqa: ANN001
    """A plain valid probe (base and each variant's first seed) answers 200 and its body conforms to ProbeOut."""
    case = schema["/v1/probe"]["POST"].Case(
        body={"sentence": "The committee approved the plan on Tuesday , but critics said it was n't enough .",
              "model": "minilm", "task": "pos-wsj", "top_k": 5},
        media_type="application/json")
    response = case.call(app=fuzz_app)
    assert response.status_code == 200, response.text[:500]
    _validate(case, response)
    out = json.loads(response.text)
    assert [v["variant"] for v in out["variants"]] == ["base", "sentiment-seed42", "hedge-seed42"]


# ---------------------------------------------------------------------------- documented error answers


def _conforms(case: Any, response: Any, *checks: Any) -> None:
    case.validate_response(response, checks=list(checks))


def test_error_responses_documented_as_problem_json(fuzz_app) -> None:  # noqa: ANN001
    case = schema["/v1/results"]["GET"].Case(query={"limit": 0})
    response = case.call(app=fuzz_app)
    assert response.status_code == 422 and _media_type(response) == PROBLEM_JSON
    _conforms(case, response, content_type_conformance, response_schema_conformance)
    assert PROBLEM_JSON in schema.raw_schema["paths"]["/v1/results"]["get"]["responses"]["422"]["content"]


@pytest.mark.parametrize("path", ["/v1/results", "/v1/neurons"])
def test_unknown_name_404_documented(fuzz_app, path: str) -> None:  # noqa: ANN001
    case = schema[path]["GET"].Case(query={"model": "nosuchmodel"})
    response = case.call(app=fuzz_app)
    assert response.status_code == 404
    _conforms(case, response, status_code_conformance, response_schema_conformance)


def test_malformed_json_400_documented(fuzz_app) -> None:  # noqa: ANN001
    response = fuzz_app.test_client().post("/v1/probe", data=b"\x00", content_type="application/json")
    assert response.status_code == 400 and response.mimetype == PROBLEM_JSON
    assert PROBLEM_JSON in schema.raw_schema["paths"]["/v1/probe"]["post"]["responses"]["400"]["content"]


def test_claims_503_documented() -> None:
    documented = schema.raw_schema["paths"]["/v1/claims"]["get"]["responses"]["503"]
    assert PROBLEM_JSON in documented["content"] and "Retry-After" in documented["headers"]


# ---------------------------------------------------------------------------- hostile bodies and path segments


def _nested(depth: int, kind: str) -> str:
    opener, closer = {"array": ("[", "]"), "object": ('{"a": ', "}"), "words": ('{"words": [', "]}")}[kind]
    return opener * depth + ("1" if kind == "object" else "") + closer * depth


_RAW_BODY = st.one_of(
    st.builds(_nested, st.one_of(st.integers(0, 40), st.integers(900, 3_000)),  # around the limit; past recursion
              st.sampled_from(["array", "object", "words"])),
    st.binary(max_size=300),                                                     # not UTF-8, not JSON, empty
    st.text(max_size=300),
    st.builds(lambda s, cut: s[:cut], st.just('{"sentence": "The cat .", "model": "minilm", "task": "pos-wsj"}'),
              st.integers(0, 63)),                                                # cut anywhere
)


@FUZZ
@given(raw=_RAW_BODY)
def test_probe_raw_bodies_never_a_server_error(fuzz_app, raw: str | bytes) -> None:  # noqa: ANN001
    """Any body at all to POST /v1/probe: a documented 4xx problem (400 unreadable, 422 invalid or nested too
    deep, 413 too large), never a 5xx."""
    case = schema["/v1/probe"]["POST"].Case(media_type="application/json")
    response = case.call(app=fuzz_app, data=raw, headers={"Content-Type": "application/json"})
    _validate(case, response)
    assert response.status_code in (400, 413, 422), response.text[:300]


@pytest.mark.parametrize(("raw", "status", "detail"), [
    ("[" * 1000 + "]" * 1000, 422, "JSON nested deeper than 32 levels"),
    ('{"sentence": x}', 400, "invalid JSON at line 1, column 14"),
    ("", 400, "empty body"),
    (b'{"sentence":"\xff"}', 400, "not valid UTF-8 (byte 0xff at position 13)"),
    ('{"sentence": "a", "model": "minilm", "task": "pos-wsj", "top_k": true}', 422, "top_k"),
    ('{"sentence": "a", "model": "minilm", "task": "pos-wsj", "layers": [true]}', 422, "layers.0"),
])
def test_hostile_bodies_documented(fuzz_app, raw: str | bytes, status: int, detail: str) -> None:  # noqa: ANN001
    case = schema["/v1/probe"]["POST"].Case(media_type="application/json")
    response = case.call(app=fuzz_app, data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == status and detail in json.loads(response.text)["detail"]
    _conforms(case, response, status_code_conformance, content_type_conformance, response_schema_conformance)


_SEGMENT = st.one_of(st.text(st.characters(codec="utf-8", exclude_characters="/?#"), max_size=600),
                     st.integers(200, 6_000).map(lambda n: "a" * n + ".svg"))


@FUZZ
@given(prefix=st.sampled_from(["/plots/", "/static/", "//static//", "/v1//"]), segment=_SEGMENT)
def test_page_paths_never_a_server_error(fuzz_app, prefix: str, segment: str) -> None:  # noqa: ANN001
    """The routes that read files (``/plots/<name>``, ``/static/<path>``) with any name, over-long ones included
    (ENAMETOOLONG was a 500): 200 or a 404 problem, never a redirect."""
    path_info = (prefix + segment).encode("utf-8").decode("latin-1")  # WSGI's PATH_INFO: decoded, as latin-1
    r = fuzz_app.test_client().get("/", environ_overrides={"PATH_INFO": path_info})
    assert r.status_code in (200, 404), (prefix, segment[:80], r.status_code)
    assert r.headers["X-Content-Type-Options"] == "nosniff" and "Location" not in r.headers
    if r.status_code == 404:
        assert r.mimetype == PROBLEM_JSON and r.get_json()["status"] == 404
