"""The WSGI entry point behind the front end (scripts/serve-prod.sh): ``app:create_app()`` that trusts one proxy.

Behind nginx every request reaches gunicorn from nginx, so without this the per-client rate limit of
``POST /v1/probe`` would count all clients as one. deploy/nginx.conf sets ``X-Forwarded-For`` to the client's
address (replacing whatever the client sent), and gunicorn listens on a unix socket in a folder only the
serving user can reach, so the one forwarded address is the client's. Never use this entry point where
clients reach gunicorn directly: they could then choose their own address.
"""

from __future__ import annotations

from apiflask import APIFlask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import create_app as create_api
from app.settings import Settings


def create_app(settings: Settings | None = None) -> APIFlask:
    """The API with ``request.remote_addr`` taken from the one ``X-Forwarded-For`` that nginx sets."""
    app = create_api(settings)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=0, x_host=0, x_port=0, x_prefix=0)
    return app
