"""Errors as RFC 9457 problem details (``application/problem+json``), for every 4xx and 5xx."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from apiflask import APIFlask, HTTPError
from flask import Response, request

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://lingshift.invalid/problems/"  # stable identifiers, not fetched by anyone


class Problem(HTTPError):
    """An HTTP error with a problem ``type`` slug, a human ``detail`` and optional extension members."""

    def __init__(self, status: int, detail: str, slug: str | None = None, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(status, message=HTTPStatus(status).phrase, detail=detail, headers=headers,
                         extra_data={"type": TYPE_BASE + slug if slug else "about:blank", **extra})


def problem_response(status: int, title: str, detail: Any, extra: dict[str, Any] | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    """A problem-details response: ``type``, ``title``, ``status``, ``detail``, ``instance`` + extensions."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    extra = dict(extra or {})
    if isinstance(detail, dict):  # a validation error: {location: {field: [messages]}}
        body["detail"] = "The request is not valid: " + "; ".join(_flatten(detail))
        body["errors"] = detail
    elif detail:
        body["detail"] = str(detail)
    body.update(extra)
    body["instance"] = request.path if request else None
    # backslashreplace: a lone surrogate echoed from the client (e.g. a field name "\ud800") becomes the JSON
    # escape \ud800 instead of failing to encode (a 500)
    text = json.dumps(body, ensure_ascii=False).encode("utf-8", "backslashreplace")
    resp = Response(text, status=status, mimetype=PROBLEM_JSON)
    for k, v in (headers or {}).items():
        if k.lower() != "content-type":
            resp.headers[k] = v
    return resp


def _flatten(detail: dict[str, Any], prefix: str = "") -> list[str]:
    """``{"json": {"top_k": ["msg"]}}`` -> ``["top_k: msg"]`` (the location level is dropped)."""
    out = []
    for key, val in detail.items():
        if not prefix and key in ("json", "query", "path"):
            name = ""
        else:
            name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(val, dict):
            out += _flatten(val, name)
        else:
            msgs = val if isinstance(val, list) else [val]
            out.append(f"{name or 'body'}: {', '.join(str(m) for m in msgs)}")
    return out


def install(app: APIFlask) -> None:
    """Route every error through :func:`problem_response`, including unhandled exceptions (500)."""

    @app.error_processor
    def _processor(error: HTTPError) -> Response:
        status = int(error.status_code)
        detail = error.detail or _DEFAULT_DETAIL.get(status, HTTPStatus(status).description)
        if status == 413 and not error.detail and app.config.get("MAX_CONTENT_LENGTH"):
            detail = f"the request body is over the limit of {app.config['MAX_CONTENT_LENGTH']} bytes; send less"
        return problem_response(status, HTTPStatus(status).phrase, detail, dict(error.extra_data or {}),
                                dict(error.headers or {}))

    @app.errorhandler(Exception)
    def _unhandled(err: Exception) -> Response:
        # HTTP errors never reach here: APIFlask's more specific handlers send them to _processor.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "Internal Server Error", "The server failed on this request; it is logged.")


_DEFAULT_DETAIL = {
    422: "The request is not valid.",
    404: "No such resource. GET /openapi.json lists every endpoint.",
    405: "This method is not allowed on this resource. GET /openapi.json lists the methods.",
    413: "The request body is too large.",
    415: "Send the body as JSON with Content-Type: application/json.",
    429: "Too many requests from this client; slow down and retry later.",
}


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "a URI naming the kind of problem, or about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what went wrong and how to fix it"},
        "instance": {"type": ["string", "null"], "description": "the request path"},
        "errors": {"type": "object", "description": "validation errors per location and field (422)"},
    },
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                                "schema": {"type": "string"}}}
_ALWAYS = {"500": "Internal error (logged; no details leak)"}
# Error statuses per operation beyond what the schemas imply, as the handlers answer them.
ERRORS_BY_PATH: dict[tuple[str, str], dict[str, str]] = {
    ("get", "/v1/results"): {"404": "Unknown model, variant or task name", "422": "Invalid query"},
    ("get", "/v1/neurons"): {"404": "Unknown model, variant or task name", "422": "Invalid query"},
    ("get", "/v1/claims"): {"503": "No claims yet (results/claims.json missing)"},
    ("get", "/readyz"): {"503": "No results to serve"},
    ("post", "/v1/probe"): {"400": "The body is empty, not UTF-8, or not valid JSON (the detail says where)",
                            "413": "Body too large (with or without Content-Length)", "415": "Not JSON",
                            "422": "Invalid input, or JSON nested too deep", "429": "Rate limited",
                            "503": "Busy, timed out, or the model is not on this server"},
}


def document_problems(spec: dict[str, Any]) -> dict[str, Any]:
    """Make /openapi.json say what the app does: every 4xx/5xx is ``application/problem+json`` (schema
    ``Problem``), with the statuses each operation can answer, and Retry-After on 429 and 503."""
    spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            extra = {**_ALWAYS, **ERRORS_BY_PATH.get((method, path), {})}
            for code in list(responses):
                if code.isdigit() and int(code) >= 400:
                    extra.setdefault(code, responses[code].get("description", HTTPStatus(int(code)).phrase))
            for code, text in extra.items():
                resp: dict[str, Any] = {"description": text, "content": {
                    PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
                if code in ("429", "503"):
                    resp["headers"] = _RETRY_AFTER
                responses[code] = resp
    for name in ("HTTPError", "ValidationError"):
        spec["components"]["schemas"].pop(name, None)
    return spec
