"""The paper's five claims as data, and their evaluation on whatever results a profile produced.

Each :class:`Claim` holds the paper's statement, our operationalisation and its thresholds. They
were written down before the claims were evaluated and must not be tuned to a result:

* C2-C5 use ../shared/PAPER.md's example operationalisation unchanged (thresholds in points).
* C1 has no example there; its 10-point threshold is ours. It was set (2026-11-26) when the base
  MiniLM POS accuracies per layer were already known from the fine-tuning session (worst layer
  9.6 points below the best), so C1 on POS is not an independent test. This is said in the report.

Conventions shared by all claims:

* Layers: ``0`` is the embedding layer, ``1..L`` the transformer layers. "Lowest third" is layers
  ``1..round(L/3)``, "top third" the last ``round(L/3)``; the embedding layer is left out.
* Deltas are fine-tuned minus base, in accuracy points, on the same test words. Probe accuracy is the
  mean over the probe seeds.
* A claim is tested on *units* (e.g. one model x probing task x fine-tuned variant). A unit *holds*
  when the point estimate meets the threshold; it holds *confidently* when the whole 95% bootstrap
  interval does. The claim PASSes when it holds in more than half of its units, FAILs otherwise, and
  is NOT APPLICABLE when the profile has no unit for it (the reason says what is missing).
* Intervals: percentile bootstrap over test words (paired: every variant is rescored on the same
  resamples); for C5 over the selected neurons of each minimal set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from pipeline.records import ClaimVerdict, LayerResult, Results
from pipeline.stats.bootstrap import bootstrap_replicates

Status = Literal["PASS", "FAIL", "NOT APPLICABLE"]
ALPHA = 0.05
# C3: the GLUE tasks after which the paper sees the higher layers forget most vs keep more.
FORGETTING_TASKS = ("sst2", "qnli", "mnli")
KEEPING_TASKS = ("stsb", "rte", "mrpc")
# C4: the paper's three architectures (model families in pipeline.models).
C4_FAMILIES = ("bert", "roberta", "xlnet")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: its statement, our test of it, and the thresholds (fixed in advance)."""

    id: str
    title: str
    statement: str
    operationalisation: str
    thresholds: dict[str, float]
    unit: str
    needs: str
    evaluate: Callable[[Claim, Results, dict[str, Any]], Verdict] = field(repr=False, compare=False)


@dataclass
class Verdict:
    """A claim's outcome: status, one-line reason, and the numbers per unit (JSON-friendly)."""

    status: Status
    reason: str
    units: list[dict[str, Any]] = field(default_factory=list)

    def record(self, claim: Claim) -> ClaimVerdict:
        """The verdict as the record that ``results/claims.json`` holds."""
        return ClaimVerdict(id=claim.id, title=claim.title, statement=claim.statement,
                            operationalisation=claim.operationalisation, thresholds=claim.thresholds,
                            unit=claim.unit, needs=claim.needs, status=self.status, reason=self.reason,
                            n_units=len(self.units), n_hold=sum(u["holds"] for u in self.units),
                            n_hold_confidently=sum(u["confident"] for u in self.units), units=tuple(self.units))


def thirds(n_layers: int) -> tuple[list[int], list[int]]:
    """(lowest-third, top-third) transformer layer indices for a model with ``n_layers`` incl. embeddings."""
    L = n_layers - 1
    if L < 3:
        raise ValueError(f"{L} transformer layers are too few to split into thirds")
    m = max(1, round(L / 3))
    return list(range(1, m + 1)), list(range(L - m + 1, L + 1))


def _ci(x: np.ndarray) -> list[float]:
    """95% percentile interval ``[low, high]`` of bootstrap replicates ``x [replicates]``."""
    lo, hi = np.quantile(x, [ALPHA / 2, 1 - ALPHA / 2])
    return [float(lo), float(hi)]


def _r(x: float, nd: int = 2) -> float:
    return float(round(x, nd))


def _verdict(units: list[dict[str, Any]], what: str) -> Verdict:
    n, k = len(units), sum(u["holds"] for u in units)
    conf = sum(u["confident"] for u in units)
    status: Status = "PASS" if k * 2 > n else "FAIL"
    return Verdict(status, f"holds in {k} of {n} {what} ({conf} with the whole 95% interval); "
                           f"{'more' if status == 'PASS' else 'not more'} than half", units)


def _correct(r: LayerResult) -> np.ndarray:
    """Seed-averaged test correctness ``float [layers, words]`` of a layer result."""
    return r.correct()


def _pairs(res: Results) -> list[tuple[LayerResult, LayerResult]]:
    """(base, fine-tuned) layer results on the same test words, for every model, task and variant."""
    out = []
    for (m, v, t), r in sorted(res.layers.items()):
        base = res.layers.get((m, "base", t))
        if v == "base" or base is None:
            continue
        if base.test_words_sha256 != r.test_words_sha256:
            raise ValueError(f"{m}/{v}/{t} was not scored on the same test words as {m}/base/{t}; re-run both "
                             "probe stages from the same data")
        out.append((base, r))
    return out


# ---- C1 --------------------------------------------------------------------------------------------


def _eval_c1(claim: Claim, res: Results, opts: dict[str, Any]) -> Verdict:
    units = []
    for (m, v, t), r in sorted(res.layers.items()):
        if v != "base":
            continue
        (reps,) = bootstrap_replicates([_correct(r)], opts["n_boot"], opts["seed"])
        reps = reps * 100
        acc = r.mean * 100
        trans = list(range(1, len(acc)))
        gap = float(acc.max() - acc[trans].min())
        gap_reps = reps.max(1) - reps[:, trans].min(1)
        lim = claim.thresholds["max_gap_points"]
        ci = _ci(gap_reps)
        worst = trans[int(acc[trans].argmin())]
        units.append({"model": m, "task": t, "best_layer": int(acc.argmax()), "worst_layer": worst,
                      "best_accuracy": _r(acc.max()), "worst_accuracy": _r(acc[trans].min()),
                      "gap_points": _r(gap), "gap_ci": [_r(x) for x in ci],
                      "holds": bool(gap <= lim), "confident": bool(ci[1] <= lim)})
    if not units:
        return Verdict("NOT APPLICABLE", "no base-model probe results in this profile")
    return _verdict(units, "base model x probing task units")


# ---- C2 --------------------------------------------------------------------------------------------


def _delta_thirds(base: LayerResult, ft: LayerResult, opts: dict[str, Any]) -> dict[str, Any]:
    """Mean delta (points) over the lowest and the top third of layers, with paired bootstrap intervals."""
    low, top = thirds(len(base.mean))
    rb, rf = bootstrap_replicates([_correct(base), _correct(ft)], opts["n_boot"], opts["seed"])
    d, dr = (ft.mean - base.mean) * 100, (rf - rb) * 100
    return {"low_layers": low, "top_layers": top,
            "delta_low": float(d[low].mean()), "delta_low_ci": _ci(dr[:, low].mean(1)),
            "delta_top": float(d[top].mean()), "delta_top_ci": _ci(dr[:, top].mean(1)),
            "delta_per_layer": [_r(x) for x in d], "_top_reps": dr[:, top].mean(1)}


def _eval_c2(claim: Claim, res: Results, opts: dict[str, Any]) -> Verdict:
    th = claim.thresholds
    units = []
    for base, ft in _pairs(res):
        x = _delta_thirds(base, ft, opts)
        holds = abs(x["delta_low"]) <= th["low_abs_max_points"] and x["delta_top"] < th["top_max_points"]
        conf = (x["delta_low_ci"][0] >= -th["low_abs_max_points"] and x["delta_low_ci"][1] <= th["low_abs_max_points"]
                and x["delta_top_ci"][1] < th["top_max_points"])
        units.append({"model": base.model, "task": base.task, "variant": ft.variant,
                      "low_layers": x["low_layers"], "top_layers": x["top_layers"],
                      "delta_low": _r(x["delta_low"]), "delta_low_ci": [_r(v) for v in x["delta_low_ci"]],
                      "delta_top": _r(x["delta_top"]), "delta_top_ci": [_r(v) for v in x["delta_top_ci"]],
                      "delta_per_layer": x["delta_per_layer"], "holds": bool(holds), "confident": bool(conf)})
    if not units:
        return Verdict("NOT APPLICABLE", "needs probe results of a base model and at least one fine-tuned variant")
    return _verdict(units, "model x probing task x fine-tuned variant units")


# ---- C3 --------------------------------------------------------------------------------------------


def _eval_c3(claim: Claim, res: Results, opts: dict[str, Any]) -> Verdict:
    groups: dict[tuple[str, str], dict[str, list[tuple[str, dict[str, Any]]]]] = {}
    for base, ft in _pairs(res):
        g = "forget" if ft.variant in FORGETTING_TASKS else "keep" if ft.variant in KEEPING_TASKS else None
        if g is not None:
            groups.setdefault((base.model, base.task), {"forget": [], "keep": []})[g].append(
                (ft.variant, _delta_thirds(base, ft, opts)))
    units = []
    for (m, t), gr in sorted(groups.items()):
        if not gr["forget"] or not gr["keep"]:
            continue
        # drop = -delta; difference of group-mean drops, replicate by replicate (all on the same resamples)
        drop_f = -np.mean([x["delta_top"] for _, x in gr["forget"]])
        drop_k = -np.mean([x["delta_top"] for _, x in gr["keep"]])
        reps = (-np.mean([x["_top_reps"] for _, x in gr["forget"]], axis=0)
                + np.mean([x["_top_reps"] for _, x in gr["keep"]], axis=0))
        diff, ci = float(drop_f - drop_k), _ci(reps)
        units.append({"model": m, "task": t, "forgetting_variants": [v for v, _ in gr["forget"]],
                      "keeping_variants": [v for v, _ in gr["keep"]], "top_drop_forgetting": _r(drop_f),
                      "top_drop_keeping": _r(drop_k), "difference": _r(diff), "difference_ci": [_r(v) for v in ci],
                      "holds": bool(diff > claim.thresholds["min_difference_points"]),
                      "confident": bool(ci[0] > claim.thresholds["min_difference_points"])})
    if not units:
        have = sorted({ft.variant for _, ft in _pairs(res)})
        fg, kg = ", ".join(FORGETTING_TASKS), ", ".join(KEEPING_TASKS)
        return Verdict("NOT APPLICABLE", f"needs fine-tuned variants from both {{{fg}}} and {{{kg}}} "
                                         f"(this profile has: {', '.join(have) or 'none'})")
    return _verdict(units, "model x probing task units")


# ---- C4 --------------------------------------------------------------------------------------------


def _onset(delta: np.ndarray, limit: float) -> np.ndarray:
    """First transformer layer whose delta is below ``limit`` (``L + 1`` if none), over the last axis.

    delta: float ``[..., layers]`` incl. the embedding layer at 0; returns int ``[...]``.
    """
    below = delta[..., 1:] < limit
    L = below.shape[-1]
    return np.where(below.any(-1), below.argmax(-1) + 1, L + 1)


def _eval_c4(claim: Claim, res: Results, opts: dict[str, Any]) -> Verdict:
    from pipeline.models import MODELS

    fam = {m: MODELS[m].family if m in MODELS else None for m in res.models}
    lim = claim.thresholds["onset_delta_points"]
    by_unit: dict[tuple[str, str], dict[str, tuple[LayerResult, LayerResult]]] = {}
    for base, ft in _pairs(res):
        f = fam.get(base.model)
        if f in C4_FAMILIES and MODELS[base.model].source == "hub":  # the paper's checkpoints, not proxies
            by_unit.setdefault((base.task, ft.variant), {}).setdefault(f, (base, ft))
    units = []
    for (t, v), per in sorted(by_unit.items()):
        if set(per) != set(C4_FAMILIES):
            continue
        corr = [c for f in C4_FAMILIES for c in (_correct(per[f][0]), _correct(per[f][1]))]
        same = len({per[f][0].test_words_sha256 for f in C4_FAMILIES}) == 1
        reps = bootstrap_replicates(corr, opts["n_boot"], opts["seed"]) if same else None
        on, on_ci = {}, {}
        for i, f in enumerate(C4_FAMILIES):
            base, ft = per[f]
            L = len(base.mean) - 1
            on[f] = float(_onset((ft.mean - base.mean) * 100, lim)) / L
            if reps is not None:
                on_ci[f] = _ci(_onset((reps[2 * i + 1] - reps[2 * i]) * 100, lim) / L)
        holds = on["bert"] > on["roberta"] and on["bert"] > on["xlnet"]
        conf = bool(on_ci) and on_ci["bert"][0] > max(on_ci["roberta"][1], on_ci["xlnet"][1])
        units.append({"task": t, "variant": v, "models": {f: per[f][0].model for f in C4_FAMILIES},
                      "onset_relative_depth": {f: _r(x, 3) for f, x in on.items()},
                      "onset_ci": {f: [_r(x, 3) for x in c] for f, c in on_ci.items()},
                      "holds": bool(holds), "confident": bool(conf)})
    if not units:
        have = ", ".join(f"{m} ({fam[m]})" for m in res.models) or "none"
        return Verdict("NOT APPLICABLE", f"needs BERT, RoBERTa and XLNet (the paper's hub checkpoints), each base and "
                                         f"fine-tuned on the same task (this profile has: {have})")
    return _verdict(units, "probing task x fine-tuning task units")


# ---- C5 --------------------------------------------------------------------------------------------


def _eval_c5(claim: Claim, res: Results, opts: dict[str, Any]) -> Verdict:
    rng = np.random.default_rng(opts["seed"])
    units = []
    for (m, v, t), ft in sorted(res.neurons.items()):
        base = res.neurons.get((m, "base", t))
        if v == "base" or base is None:
            continue
        lb, lf = base.neuron_layers.astype(np.float64), ft.neuron_layers.astype(np.float64)
        if len(lb) == 0 or len(lf) == 0:
            continue
        d = float(lf.mean() - lb.mean())
        n = opts["n_boot"]
        reps = (lf[rng.integers(0, len(lf), (n, len(lf)))].mean(1) - lb[rng.integers(0, len(lb), (n, len(lb)))].mean(1))
        ci = _ci(reps)
        lim = claim.thresholds["max_delta_mean_layer"]
        units.append({"model": m, "task": t, "variant": v, "k_base": base.k, "k_finetuned": ft.k,
                      "mean_layer_base": _r(lb.mean(), 3), "mean_layer_finetuned": _r(lf.mean(), 3),
                      "delta_mean_layer": _r(d, 3), "delta_ci": [_r(x, 3) for x in ci],
                      "holds": bool(d < lim), "confident": bool(ci[1] < lim)})
    if not units:
        return Verdict("NOT APPLICABLE", "needs minimal neuron sets of a base model and a fine-tuned variant")
    return _verdict(units, "model x probing task x fine-tuned variant units")


CLAIMS: list[Claim] = [
    Claim("C1", "Spread over all layers",
          "Pre-trained models spread linguistic information over all layers.",
          "In the base model, the worst transformer layer's probe accuracy is at most `max_gap_points` below the "
          "best layer's (any layer incl. embeddings).",
          {"max_gap_points": 10.0}, "base model x probing task", "probe results of a base model", _eval_c1),
    Claim("C2", "Kept low, lost high",
          "After fine-tuning, linguistic information is kept in the lower layers and lost in the higher layers: "
          "probe accuracy barely changes in lower layers and drops in the top layers.",
          "Mean accuracy change over the lowest third of transformer layers within +-`low_abs_max_points`, and over "
          "the top third below `top_max_points`.",
          {"low_abs_max_points": 1.0, "top_max_points": -2.0}, "model x probing task x fine-tuned variant",
          "a base model and at least one fine-tuned variant", _eval_c2),
    Claim("C3", "Task dependence",
          "With SST-2, QNLI and MNLI the higher layers forget most; with STS-B, RTE and MRPC linguistic "
          "information stays deeper.",
          "The mean top-third drop after {SST-2, QNLI, MNLI} exceeds the mean top-third drop after {STS-B, RTE, MRPC} "
          "by more than `min_difference_points`.",
          {"min_difference_points": 0.0}, "model x probing task", "fine-tuned variants from both GLUE task groups",
          _eval_c3),
    Claim("C4", "Architecture dependence",
          "BERT keeps linguistic information deeper (its drop starts later) than RoBERTa and XLNet, which push it "
          "to the lower layers.",
          "The first transformer layer whose change is below `onset_delta_points` (relative depth = layer / L; L + 1 "
          "when none is) is deeper for BERT than for both RoBERTa and XLNet.",
          {"onset_delta_points": -1.0}, "probing task x fine-tuning task", "BERT, RoBERTa and XLNet", _eval_c4),
    Claim("C5", "Neurons move down",
          "The salient neurons of the minimal set move from higher to lower layers after fine-tuning.",
          "The mean layer index of the minimal-set neurons after fine-tuning minus before is below "
          "`max_delta_mean_layer`.",
          {"max_delta_mean_layer": 0.0}, "model x probing task x fine-tuned variant",
          "minimal neuron sets of a base model and a fine-tuned variant", _eval_c5),
]


def evaluate_claims(res: Results, n_boot: int = 1000, seed: int = 0) -> list[ClaimVerdict]:
    """Evaluate every claim on ``res``; the verdicts in claim order.

    A claim whose evaluation fails on inconsistent results (e.g. variants scored on different test
    words) is NOT APPLICABLE with that reason rather than an exception.
    """
    opts = {"n_boot": int(n_boot), "seed": int(seed)}
    out = []
    for c in CLAIMS:
        try:
            v = c.evaluate(c, res, opts)
        except ValueError as err:
            v = Verdict("NOT APPLICABLE", f"the results cannot be compared: {err}")
        out.append(v.record(c))
    return out


def claim_status(claims: list[ClaimVerdict]) -> dict[str, str]:
    """``{claim id: status}`` of :func:`evaluate_claims`'s output."""
    return {c.id: c.status for c in claims}


def format_interval(x: float, ci: list[float], nd: int = 2) -> str:
    """``-1.23 [-1.9, -0.5]`` (NaN-safe)."""
    if any(math.isnan(v) for v in [x, *ci]):
        return "n/a"
    return f"{x:+.{nd}f} [{ci[0]:+.{nd}f}, {ci[1]:+.{nd}f}]"
