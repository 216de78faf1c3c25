"""The LingShift REST API and results page (APIFlask).

``create_app()`` builds the service for the repository at ``Settings.root``: results endpoints
from the committed/produced result files, ``POST /v1/probe`` on the pipeline's own extraction and
trained probes, health checks, errors as RFC 9457 problem details, and the OpenAPI 3.1 document
at ``/openapi.json``. Nothing heavy loads at start-up: models and probes load on first use, once
per worker process.

No client input reaches a 500: bodies are parsed by ``app.bodies`` (UTF-8 only, nesting-limited JSON, 413 for
an oversized chunked body), the URL map never redirects (so no ``Location`` built from the client's Host), and
every response carries ``X-Content-Type-Options: nosniff``. Rate limits live in
``Settings.ratelimit_storage`` (memory per worker by default; Redis to share them between workers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from apiflask import APIFlask
from flask import request
from werkzeug.routing import Map

from app.bodies import ApiRequest, LimitedJSONProvider
from app.settings import Settings

log = logging.getLogger(__name__)

SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff")]


class NoRedirectMap(Map):
    """werkzeug's URL map without its redirects: ``//static//app.js`` (merge_slashes) or a missing trailing
    slash (strict_slashes) would answer 308 to a URL built from the client's Host header; here they are 404."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.update(merge_slashes=False, strict_slashes=False)
        super().__init__(*args, **kwargs)


class LingShiftFlask(APIFlask):
    """APIFlask with the request class, JSON provider and URL map above."""

    request_class = ApiRequest
    json_provider_class = LimitedJSONProvider
    url_map_class = NoRedirectMap


def security_headers(wsgi_app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware adding :data:`SECURITY_HEADERS` to every response the app sends, errors included."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {k.lower() for k, _ in headers}
            headers.extend((k, v) for k, v in SECURITY_HEADERS if k.lower() not in present)
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start)

    return app


def _storage_options(uri: str) -> dict[str, Any]:
    """Time-outs for a Redis rate-limit store: an unreachable one must not hang requests (the limiter then
    falls back to memory in each worker, and retries the store)."""
    if uri.split(":", 1)[0] in ("redis", "rediss", "redis+unix", "redis+sentinel"):
        return {"socket_connect_timeout": 1, "socket_timeout": 1}
    return {}


def create_app(settings: Settings | None = None) -> APIFlask:
    """The WSGI application (``gunicorn 'app:create_app()'``)."""
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    from app import api, problems
    from app.catalog import Catalog, served_profiles
    from app.probing import ProbeService

    settings = settings or Settings.from_env()
    app = LingShiftFlask(__name__, title="LingShift API", version="1", spec_path="/openapi.json", docs_path=None,
                   json_errors=True)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SPEC_FORMAT="json",
        VALIDATION_ERROR_STATUS_CODE=422,
        INFO={"description": "Results of the LingShift reproduction of Durrani et al. (2021), and on-demand "
                             "probing of a sentence's activations. Errors are RFC 9457 problem details."},
        TAGS=[{"name": "results", "description": "read-only results of the pipeline"},
              {"name": "probe", "description": "probe a sentence"},
              {"name": "health", "description": "liveness and readiness"}],
    )
    app.json.max_depth = settings.max_json_depth  # type: ignore[attr-defined]
    app.wsgi_app = security_headers(app.wsgi_app)  # type: ignore[method-assign]
    catalog = Catalog(settings.root, settings.params_file)
    app.extensions["lingshift.settings"] = settings
    app.extensions["lingshift.catalog"] = catalog
    app.extensions["lingshift.catalogs"] = served_profiles(settings.root, catalog)
    app.extensions["lingshift.probe"] = ProbeService(catalog, settings.max_concurrent_probes,
                                                     settings.probe_timeout_s, settings.device)
    problems.install(app)
    app.spec_processor(problems.document_problems)

    # Rate-limit headers stay off: they would overwrite the Retry-After of a busy 503. A 429 gets its own.
    # A store that stops answering: the limits go on in memory per worker (logged) and the store is retried.
    limiter = Limiter(get_remote_address, app=app, storage_uri=settings.ratelimit_storage,
                      storage_options=_storage_options(settings.ratelimit_storage), key_prefix="lingshift",
                      in_memory_fallback_enabled=True, swallow_errors=True, default_limits=[])
    limiter.limit(lambda: settings.rate_limit)(api.probe_bp)  # the blueprint holds only POST /v1/probe

    @app.errorhandler(429)
    def _too_many(err: Exception):  # noqa: ANN202
        import math
        import time

        lim = limiter.current_limit
        wait = max(1, math.ceil(lim.reset_at - time.time())) if lim is not None else 60
        return problems.problem_response(429, "Too Many Requests",
                                         f"rate limit of {settings.rate_limit} per client exceeded; retry in {wait} s",
                                         {"type": problems.TYPE_BASE + "rate-limited"}, {"Retry-After": str(wait)})

    @app.before_request
    def _require_json() -> None:
        if request.method == "POST" and request.path == "/v1/probe" and not request.is_json:
            from app.problems import Problem

            raise Problem(415, "send the body as JSON with Content-Type: application/json", "not-json")

    app.register_blueprint(api.bp)
    app.register_blueprint(api.probe_bp)
    app.register_blueprint(api.health_bp)
    try:
        from app import page
    except ImportError:  # the page is optional for API-only deployments
        page = None
    if page is not None:
        app.register_blueprint(page.bp)
    return app
