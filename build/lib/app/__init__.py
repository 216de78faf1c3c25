"""The LingShift REST API and results page (APIFlask).

``create_app()`` builds the service for the repository at ``Settings.root``: results endpoints
from the committed/produced result files, ``POST /v1/probe`` on the pipeline's own extraction and
trained probes, health checks, errors as RFC 9457 problem details, and the OpenAPI 3.1 document
at ``/openapi.json``. Nothing heavy loads at start-up: models and probes load on first use, once
per worker process.
"""

from __future__ import annotations

import logging

from apiflask import APIFlask
from flask import request

from app.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> APIFlask:
    """The WSGI application (``gunicorn 'app:create_app()'``)."""
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    from app import api, problems
    from app.catalog import Catalog
    from app.probing import ProbeService

    settings = settings or Settings.from_env()
    app = APIFlask(__name__, title="LingShift API", version="1", spec_path="/openapi.json", docs_path=None,
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
    catalog = Catalog(settings.root, settings.params_file)
    app.extensions["lingshift.settings"] = settings
    app.extensions["lingshift.catalog"] = catalog
    app.extensions["lingshift.probe"] = ProbeService(catalog, settings.max_concurrent_probes,
                                                     settings.probe_timeout_s, settings.device)
    problems.install(app)
    app.spec_processor(problems.document_problems)

    # Rate-limit headers stay off: they would overwrite the Retry-After of a busy 503. A 429 gets its own.
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://", default_limits=[])
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
