"""The JSON API: results (read-only, ETag-cached), claims, provenance, health, and POST /v1/probe."""

from __future__ import annotations

import hashlib
from typing import Any

from apiflask import APIBlueprint
from flask import Response, current_app, jsonify, request

from app.catalog import Catalog
from app.probing import Busy, ProbeRequestError, ProbeService, Unavailable, check_text, split_words
from app.problems import Problem
from app.schemas import (
    ClaimsOut,
    ModelsOut,
    NeuronQuery,
    NeuronsOut,
    ProbeIn,
    ProbeOut,
    ProvenanceOut,
    ResultsOut,
    ResultsQuery,
    StatusOut,
)
from app.settings import Settings

bp = APIBlueprint("api", __name__, tag="results")
probe_bp = APIBlueprint("probe", __name__, tag="probe")
health_bp = APIBlueprint("health", __name__, tag="health")


def _catalog() -> Catalog:
    """The catalog of the request's ``?profile=`` (allow-listed: the served profiles), else the active one."""
    return catalog_for(request.args.get("profile"))


def catalog_for(profile: str | None) -> Catalog:
    """The served catalog of ``profile`` (None: the active profile's); an unserved name is a 404."""
    if profile is None:
        return current_app.extensions["lingshift.catalog"]
    catalogs: dict[str, Catalog] = current_app.extensions["lingshift.catalogs"]
    if profile not in catalogs:
        raise Problem(404, f"unknown profile {profile!r}; served: {', '.join(catalogs)}", "unknown-profile")
    return catalogs[profile]


def _service() -> ProbeService:
    return current_app.extensions["lingshift.probe"]


def _settings() -> Settings:
    return current_app.extensions["lingshift.settings"]


def _cached(payload: dict[str, Any]) -> Response:
    """JSON with an ETag of the results snapshot (and of the query); 304 when the client has it."""
    snap = _catalog().snapshot()
    resp = jsonify(payload)
    query = hashlib.sha256(request.query_string).hexdigest()[:12]  # the same in every worker
    resp.set_etag(f"{snap.etag}-{query}")
    resp.cache_control.public = True
    resp.cache_control.max_age = _settings().cache_max_age_s
    return resp.make_conditional(request)


Key = tuple[str, str, str]


def _selected(q: ResultsQuery | NeuronQuery, items: dict[Key, Any]) -> list[tuple[Key, Any]]:
    """``items`` (keyed by model, variant, task) that match the query's filters; unknown names are a 404."""
    c = _catalog()
    for value, allowed, what in ((q.model, c.models, "model"), (q.variant, c.variants, "variant"),
                                 (q.task, c.tasks, "task")):
        if value is not None and value not in allowed:
            raise Problem(404, f"unknown {what} {value!r}; allowed: {', '.join(allowed)}", "unknown-name")
    return [(k, r) for k, r in sorted(items.items())
            if (q.model in (None, k[0])) and (q.variant in (None, k[1])) and (q.task in (None, k[2]))]


# ---------------------------------------------------------------------------- results


@bp.get("/v1/models")
@bp.output(ModelsOut)
@bp.doc(summary="Models, their variants, and which variants can be probed on this server")
def models() -> Response:
    c, snap, svc = _catalog(), _catalog().snapshot(), _service()
    active = c is current_app.extensions["lingshift.catalog"]  # sentences are probed on the active profile only
    out = []
    for m in c.models:
        info = c.model_info(m)
        shape = next(((n.n_layers, n.dim) for k, n in snap.results.neurons.items() if k[0] == m), (None, None))
        variants = [{"name": v, "tasks": sorted(k[2] for k in snap.results.layers if k[:2] == (m, v)),
                     "probe_ready": active and any(svc.ready(m, v, t) for t in c.tasks)} for v in c.variants]
        out.append({"name": m, **info, "n_layers": shape[0],
                    "dim": shape[1], "variants": variants})
    return _cached({"profile": c.params.profile, "profiles": sorted(current_app.extensions["lingshift.catalogs"]),
                    "models": out, "tasks": c.tasks, "omitted": snap.omitted_json()})


@bp.get("/v1/results")
@bp.input(ResultsQuery, location="query", arg_name="q")
@bp.output(ResultsOut)
@bp.doc(summary="Per-layer probe accuracy with 95% intervals, the lexical baseline and headroom above it, deltas "
                "to base and selectivity (paged)")
def results(q: ResultsQuery) -> Response:
    snap = _catalog().snapshot()
    res = snap.results
    if q.limit > _settings().max_page_size:
        raise Problem(422, f"limit {q.limit} is above the maximum page size {_settings().max_page_size}",
                      "page-too-large")
    rows = []
    for (m, v, t), r in _selected(q, res.layers):
        base = res.layers.get((m, "base", t))
        for i, layer in enumerate(r.layers):
            if q.layer is not None and layer != q.layer:
                continue
            rows.append({"model": m, "variant": v, "task": t, "layer": layer, "accuracy": float(r.mean[i]),
                         "std": float(r.std[i]), "ci_low": float(r.ci_low[i]), "ci_high": float(r.ci_high[i]),
                         "bootstrap_unit": r.test_accuracy.bootstrap.bootstrap_unit,
                         "lexical_baseline": float(r.lexical), "headroom": float(r.headroom[i]),
                         "delta": float(r.mean[i] - base.mean[i]) if base is not None and v != "base" else None,
                         "selectivity": float(r.selectivity[i]) if r.selectivity is not None else None})
    page = rows[q.offset:q.offset + q.limit]
    return _cached({"total": len(rows), "limit": q.limit, "offset": q.offset, "items": page,
                    "omitted": snap.omitted_json(("layers",), q.model, q.variant, q.task)})


@bp.get("/v1/neurons")
@bp.input(NeuronQuery, location="query", arg_name="q")
@bp.output(NeuronsOut)
@bp.doc(summary="Minimal neuron sets: size, spread over layers, accuracy against random and bottom baselines")
def neurons(q: NeuronQuery) -> Response:
    items, snap = [], _catalog().snapshot()
    for (m, v, t), n in _selected(q, snap.results.neurons):
        items.append({"model": m, "variant": v, "task": t, "k": n.k, "n_neurons": n.n_layers * n.dim,
                      "mean_layer": n.mean_layer, "counts": n.counts, "oracle_accuracy": n.oracle_test,
                      "minimal_set_accuracy": n.minimal_set.accuracy.test,
                      "random_accuracy": n.baselines.random.accuracy.test,
                      "bottom_accuracy": n.baselines.bottom.accuracy.test,
                      "ablation_accuracy": n.ablation.zero_selected.test})
    return _cached({"items": items, "omitted": snap.omitted_json(("neurons",), q.model, q.variant, q.task)})


@bp.get("/v1/claims")
@bp.output(ClaimsOut)
@bp.doc(summary="The paper's five claims: SUPPORTED / CONTRADICTED / INCONCLUSIVE / NOT_APPLICABLE, the proxy flag, "
                "reasons, independent units and numbers; spec_sha256 of claims.yaml")
def claims() -> Response:
    snap = _catalog().snapshot()
    if snap.claims is None:
        raise Problem(503, "no claims yet: results/claims.json is missing (run: dvc repro)", "no-claims",
                      headers={"Retry-After": "60"})
    cf = snap.claims
    return _cached({"profile": cf.profile, "spec_sha256": cf.spec_sha256, "spec_version": cf.spec_version,
                    "proxy": cf.proxy, "proxy_reason": cf.proxy_reason,
                    "claims": [c.model_dump(mode="json") for c in cf.claims]})


@bp.get("/v1/provenance")
@bp.output(ProvenanceOut)
@bp.doc(summary="Active parameters, seeds, library versions and the dvc.lock digest")
def provenance() -> Response:
    return _cached(_catalog().provenance())


# ---------------------------------------------------------------------------- probe


@probe_bp.post("/v1/probe")
@probe_bp.input(ProbeIn, arg_name="body")
@probe_bp.output(ProbeOut)
@probe_bp.doc(summary="What each layer's probe thinks each word is, per variant, with the top-k LCA-ranked neurons",
              responses={413: "Body too large", 415: "Not JSON", 422: "Invalid input", 429: "Rate limited",
                         503: "Busy, timed out, or the model is not on this server"})
def probe(body: ProbeIn) -> Response:
    s, c = _settings(), _catalog()
    if (body.sentence is None) == (body.words is None):
        raise Problem(422, "send exactly one of 'sentence' (text) or 'words' (a list of words)", "bad-input")
    if body.sentence is not None:
        if len(body.sentence) > s.max_sentence_chars:
            raise Problem(422, f"sentence has {len(body.sentence)} characters; at most {s.max_sentence_chars}",
                          "too-long")
        _text(body.sentence, "sentence")
        words = split_words(body.sentence)
        if not words:
            raise Problem(422, "the sentence has no words", "bad-input")
    else:
        words = list(body.words or [])
        for i, w in enumerate(words):
            if not w or w != w.strip() or any(ch.isspace() for ch in w):
                raise Problem(422, f"words[{i}] is empty or contains whitespace; send one word per item",
                              "bad-input")
            _text(w, f"words[{i}]")
    if len(words) > s.max_words:
        raise Problem(422, f"{len(words)} words; at most {s.max_words} per request", "too-many-words")
    long = [i for i, w in enumerate(words) if len(w) > s.max_word_chars]
    if long:
        raise Problem(422, f"word {long[0]} has {len(words[long[0]])} characters; at most {s.max_word_chars}",
                      "word-too-long")
    if body.top_k > s.max_top_k:
        raise Problem(422, f"top_k {body.top_k} is above the maximum {s.max_top_k}", "top-k-too-large")
    if body.model not in c.models:
        raise Problem(422, f"unknown model {body.model!r}; allowed: {', '.join(c.models)}", "unknown-name")
    if body.task not in c.tasks:
        raise Problem(422, f"unknown task {body.task!r}; allowed: {', '.join(c.tasks)}", "unknown-name")
    try:
        return _service().probe(words, body.model, body.task, body.variants, body.layers, body.top_k)
    except ProbeRequestError as err:
        raise Problem(422, str(err), "bad-input") from None
    except Unavailable as err:
        raise Problem(503, f"{err}", "model-unavailable", headers={"Retry-After": "3600"}) from None
    except Busy as err:
        raise Problem(503, f"{err}; retry shortly", "busy", headers={"Retry-After": str(s.retry_after_s)}) from None


def _text(text: str, what: str) -> None:
    try:
        check_text(text, what)
    except ProbeRequestError as err:
        raise Problem(422, str(err), "bad-input") from None


# ---------------------------------------------------------------------------- health


@health_bp.get("/livez")
@health_bp.output(StatusOut)
@health_bp.doc(summary="The process is up")
def livez() -> dict[str, Any]:
    return {"status": "ok"}


@health_bp.get("/readyz")
@health_bp.output(StatusOut)
@health_bp.doc(summary="Ready to serve: results loaded; which models can be probed (degraded otherwise)",
               responses={503: "No results to serve"})
def readyz() -> Any:
    snap, svc = _catalog().snapshot(), _service()
    avail = svc.availability()
    degraded = list(snap.problems)
    missing = [f"{m}/{v}" for m, vs in avail.items() for v, ok in vs.items() if not ok]
    if missing:
        degraded.append(f"cannot probe {', '.join(missing)}: weights or trained probes not on this server "
                        "(run: make repro)")
    counts = {"layers": len(snap.results.layers), "neurons": len(snap.results.neurons),
              "finetune": len(snap.results.finetune)}
    if not snap.results.layers:
        return {"status": "unavailable", "degraded": degraded, "results": counts, "models": avail}, 503
    return {"status": "degraded" if degraded else "ready", "degraded": degraded, "results": counts, "models": avail}
