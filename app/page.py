"""The results page: the claims (rendered here), the report's plots, and a form that probes a sentence.

A plain Flask blueprint, so it stays out of the OpenAPI document. Everything the page loads comes
from this server (``/static/``, ``/plots/``, the JSON API): no CDN, no inline script or style, which
the page's Content-Security-Policy enforces.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request, send_from_directory

from app.catalog import Catalog

bp = Blueprint("page", __name__, template_folder="templates", static_folder="static", static_url_path="/static")

# At most 128 characters: well under any file system's name limit (255 bytes), so no name reaches ENAMETOOLONG.
PLOT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,124}\.(svg|png)$")

# The report's figures, in the report's order (pipeline/report.py): file stem -> caption.
PLOT_CAPTIONS = {
    "layers": "Probe accuracy per layer",
    "delta": "Accuracy change after fine-tuning",
    "neurons": "Minimal-set neurons per layer",
    "selectivity": "Selectivity per layer",
}
STATUS_CLASS = {"SUPPORTED": "pass", "CONTRADICTED": "fail", "INCONCLUSIVE": "inconclusive", "NOT_APPLICABLE": "na"}

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# Plots are matplotlib SVGs with an inline <style>; opened on their own they may run nothing.
PLOT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def _catalog() -> Catalog:
    """The catalog of ``?profile=`` (a served profile; anything else is a 404), else the active one."""
    name = request.args.get("profile")
    if name is None:
        return current_app.extensions["lingshift.catalog"]
    catalogs = current_app.extensions["lingshift.catalogs"]
    if name not in catalogs:
        abort(404)
    return catalogs[name]


def _plots_dir() -> Path:
    return _catalog().layout.results.plots


def _plot_groups(catalog: Catalog) -> list[dict[str, Any]]:
    """Every SVG under ``results/plots``, grouped by model (``<kind>-<model>.svg``), in the report's order."""
    folder = catalog.layout.results.plots
    svgs = sorted(p for p in folder.glob("*.svg") if PLOT_NAME.match(p.name)) if folder.is_dir() else []
    order = list(PLOT_CAPTIONS)
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in svgs:
        kind, model = p.stem, "other"
        for m in sorted(catalog.models, key=len, reverse=True):
            if p.stem.endswith(f"-{m}"):
                kind, model = p.stem[: -len(m) - 1], m
                break
        caption = PLOT_CAPTIONS.get(kind, kind.replace("_", " ").replace("-", " ").capitalize())
        png = p.with_suffix(".png")
        groups.setdefault(model, []).append({
            "name": p.name, "caption": caption, "alt": f"{caption}, {model}" if model != "other" else caption,
            "png": png.name if png.is_file() else None,
            "rank": order.index(kind) if kind in order else len(order)})
    known = [m for m in catalog.models if m in groups] + [m for m in sorted(groups) if m not in catalog.models]
    return [{"model": m, "plots": sorted(groups[m], key=lambda d: (d["rank"], d["name"]))} for m in known]


@bp.get("/")
def index() -> Response:
    catalog = _catalog()
    snap = catalog.snapshot()
    claims = None
    if snap.claims is not None:
        claims = [{"id": c.id, "title": c.title, "statement": c.statement, "verdict": c.verdict,
                   "status_class": STATUS_CLASS.get(c.verdict, "na"), "reason": c.reason, "proxy": c.proxy,
                   "proxy_reason": c.proxy_reason, "trust": [t for t in c.trust if not t.startswith("proxy")]}
                  for c in snap.claims.claims]
    profile = snap.claims.profile if snap.claims is not None else catalog.params.profile
    proxy_reason = snap.claims.proxy_reason if snap.claims is not None and snap.claims.proxy else None
    active = current_app.extensions["lingshift.catalog"]
    selected = request.args.get("profile")
    html = render_template("index.html", claims=claims, plot_groups=_plot_groups(catalog), profile=profile,
                           proxy_reason=proxy_reason, problems=snap.problems,
                           profiles=sorted(current_app.extensions["lingshift.catalogs"]),
                           active_profile=active.params.profile, shown_profile=catalog.params.profile,
                           plot_profile=selected if catalog is not active else None)
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = PAGE_CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.cache_control.no_cache = True
    return resp


def _is_file(path: Path) -> bool:
    """``path.is_file()``, but False for any OS error (a too-long name, a permission problem), not a 500."""
    try:
        return path.is_file()
    except OSError:
        return False


@bp.get("/plots/<name>")
def plot(name: str) -> Response:
    """A figure from ``results/plots`` (SVG or PNG); anything else is a 404."""
    if not PLOT_NAME.match(name) or not _is_file(_plots_dir() / name):
        abort(404)
    max_age = current_app.extensions["lingshift.settings"].cache_max_age_s
    resp = send_from_directory(_plots_dir(), name, max_age=max_age)
    resp.cache_control.public = True
    resp.headers["Content-Security-Policy"] = PLOT_CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
