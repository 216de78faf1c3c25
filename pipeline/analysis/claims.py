"""The paper's five claims, evaluated as ``claims.yaml`` specifies them (the contract: thresholds, sides,
task groups, families and principles P1-P8 are read from there, never written here).

Per claim, each unit gets a statistic with a 95% interval (sentence-level bootstrap; hierarchical over
fine-tuning seeds for deltas) and a verdict from it (P1); units are grouped into independent units (P5)
and aggregated (P6). Verdicts of any profile but ``paper`` are proxy verdicts (P7). Numbers are
accuracy points (deltas: fine-tuned minus base).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.analysis.intervals import (
    NotComparable,
    Pair,
    delta_replicates,
    interval,
    margin_replicates,
    mde,
    missing_for_intervals,
    missing_lexical,
    pairs,
)
from pipeline.analysis.spec import CLAIM_IDS, ClaimSpec, Spec
from pipeline.analysis.units import all_of, claim_verdict, decide_within, resolution, thirds
from pipeline.config import REHEARSAL_PROFILES
from pipeline.layout import Key
from pipeline.records import ClaimVerdict, NeuronResult, Results
from pipeline.stats.salience import MIN_RANDOM_SETS
from pipeline.stats.verdicts import Verdict, decide

ONE_SEED = "1 fine-tuning seed: the interval does not cover fine-tuning variance"


@dataclass(frozen=True)
class Options:
    """Bootstrap settings and the proxy marking shared by every claim."""

    n_boot: int = 1000
    seed: int = 0
    proxy: bool = True
    proxy_reason: str | None = None


@dataclass
class Unit:
    """One unit's outcome: its name, independence group, verdict, why, and its numbers (JSON-friendly)."""

    name: str
    group: str
    verdict: Verdict
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)
    mde: float | None = None
    n_seeds: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.name, "group": self.group, "verdict": self.verdict.value, "reason": self.reason,
                "min_detectable_effect": _r(self.mde), **({"n_finetune_seeds": self.n_seeds} if self.n_seeds else {}),
                **self.numbers}


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or math.isnan(x) else float(round(float(x), nd))


def _ci(ci: tuple[float, float], nd: int = 3) -> list[float | None]:
    return [_r(ci[0], nd), _r(ci[1], nd)]


def proxy_reason(profile: str, models: list[str], paper_models: list[str], tasks: list[str],
                 paper_tasks: list[str], n_deviations: int) -> str | None:
    """P7: why a profile's verdicts are proxies for the paper's (None for the ``paper`` profile)."""
    if profile in REHEARSAL_PROFILES:
        return (f"REHEARSAL (profile '{profile}'): the paper's DAG on random stand-in models and generated data "
                "(scripts/make-paper-mini.py), to test the code paths; no verdict here is a finding")
    if profile == "paper":
        return None
    parts = [f"profile '{profile}', not 'paper'"]
    other_models = [m for m in models if m not in paper_models]
    if other_models:
        parts.append(f"models {', '.join(other_models)} instead of {', '.join(paper_models)}")
    other_tasks = [t for t in tasks if t not in paper_tasks]
    if other_tasks:
        parts.append(f"fine-tuning tasks {', '.join(other_tasks)} instead of {', '.join(paper_tasks)}")
    if n_deviations:
        parts.append(f"{n_deviations} settings differ from the paper profile")
    return "; ".join(parts) + ": a verdict here is not a finding about the paper's models"


# ---- C1 --------------------------------------------------------------------------------------------


def eval_c1(c: ClaimSpec, spec: Spec, res: Results, o: Options) -> list[Unit]:
    """Base model x probing task: smallest margin over transformer layers above the lexical baseline,
    against the test set's resolution r(n) (P3), above."""
    units = []
    for (m, v, t), r in sorted(res.layers.items()):
        if v != "base":
            continue
        name, group = f"{m}/{t}", f"{m}/{spec.group_of(t)}"
        why = missing_lexical(r) or missing_for_intervals(r)
        if why:
            units.append(Unit(name, group, Verdict.NOT_APPLICABLE, why))
            continue
        est, reps = margin_replicates(r, o.n_boot, o.seed)
        trans = list(range(1, len(est)))
        stat, stat_reps = float(est[trans].min()), reps[:, trans].min(1)
        ci, thr = interval(stat_reps), resolution(r.n_test_words)
        verdict = decide(ci, thr, c.side)
        worst = trans[int(est[trans].argmin())]
        units.append(Unit(name, group, verdict,
                          f"smallest margin above the lexical baseline {stat:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}] "
                          f"(layer {worst}) against r(n={r.n_test_words}) = {thr:.2f} points",
                          {"statistic": _r(stat), "ci": _ci(ci), "threshold": _r(thr), "worst_layer": worst,
                           "lexical_test_accuracy": _r(100 * r.lexical_baseline.test_accuracy),
                           "margin_per_layer": [_r(x, 2) for x in est], "headroom": _r(stat),
                           "n_test_words": r.n_test_words},
                          mde=mde(stat_reps)))
    return units


# ---- C2 --------------------------------------------------------------------------------------------


def _top_headroom(p: Pair) -> float:
    """Base accuracy above the lexical baseline, mean over the top third, in points."""
    _, top = thirds(len(p.base.mean))
    return float(((p.base.mean[top] - p.base.lexical_baseline.test_accuracy) * 100).mean())


def eval_c2(c: ClaimSpec, spec: Spec, res: Results, o: Options) -> list[Unit]:
    """Model x fine-tuned variant x probing task: low-third mean delta within +-low_abs_max_points and
    top-third mean delta below top_max_points, gated on top-third headroom above the lexical baseline."""
    low_max, top_max = c.number("low_abs_max_points"), c.number("top_max_points")
    units = []
    for p in pairs(res):
        name, group = f"{p.model}/{p.variant}/{p.task}", f"{p.model}/{p.variant}/{spec.group_of(p.task)}"
        why = missing_lexical(p.base) or missing_for_intervals(p.base)
        if why:
            units.append(Unit(name, group, Verdict.NOT_APPLICABLE, why, n_seeds=p.n_seeds))
            continue
        low, top = thirds(len(p.base.mean))
        est, reps = delta_replicates(p, o.n_boot, o.seed)
        d_low, d_top = float(est[low].mean()), float(est[top].mean())
        r_low, r_top = reps[:, low].mean(1), reps[:, top].mean(1)
        ci_low, ci_top = interval(r_low), interval(r_top)
        v_low, v_top = decide_within(ci_low, low_max), decide(ci_top, top_max, "below")
        headroom = _top_headroom(p)
        text = (f"low {d_low:+.2f} [{ci_low[0]:+.2f}, {ci_low[1]:+.2f}] ({v_low.value}), top {d_top:+.2f} "
                f"[{ci_top[0]:+.2f}, {ci_top[1]:+.2f}] ({v_top.value}); top-third headroom {headroom:.2f} points")
        if headroom < abs(top_max):
            verdict = Verdict.INCONCLUSIVE
            text += f" is smaller than the {abs(top_max):g}-point drop the threshold asks for (headroom gate)"
        else:
            verdict = all_of([v_low, v_top])
        units.append(Unit(name, group, verdict, text,
                          {"low_layers": low, "top_layers": top, "delta_low": _r(d_low), "delta_low_ci": _ci(ci_low),
                           "verdict_low": v_low.value, "delta_top": _r(d_top), "delta_top_ci": _ci(ci_top),
                           "verdict_top": v_top.value, "headroom_top": _r(headroom),
                           "headroom_gate_passed": bool(headroom >= abs(top_max)),
                           "delta_per_layer": [_r(x, 2) for x in est],
                           "min_detectable_effect_low": _r(mde(r_low)), "min_detectable_effect_top": _r(mde(r_top))},
                          mde=max(mde(r_low), mde(r_top)), n_seeds=p.n_seeds))
    return units


# ---- C3 --------------------------------------------------------------------------------------------


def eval_c3(c: ClaimSpec, spec: Spec, res: Results, o: Options) -> list[Unit]:
    """Model x probing task: mean top-third drop after the forgetting tasks minus after the keeping tasks."""
    thr = c.number("threshold")
    by_unit: dict[tuple[str, str], dict[str, list[Pair]]] = {}
    for p in pairs(res):
        g = "forget" if p.variant in c.forgetting_tasks else "keep" if p.variant in c.keeping_tasks else None
        if g is not None:
            by_unit.setdefault((p.model, p.task), {"forget": [], "keep": []})[g].append(p)
    units = []
    for (m, t), gr in sorted(by_unit.items()):
        if not gr["forget"] or not gr["keep"]:
            continue
        name, group = f"{m}/{t}", f"{m}/{spec.group_of(t)}"
        ps = gr["forget"] + gr["keep"]
        why = missing_for_intervals(ps[0].base)
        if why:
            units.append(Unit(name, group, Verdict.NOT_APPLICABLE, why))
            continue
        _, top = thirds(len(ps[0].base.mean))
        drops = {}
        for p in ps:
            est, reps = delta_replicates(p, o.n_boot, o.seed)  # same sentences: replicates align
            drops[p.variant] = (-float(est[top].mean()), -reps[:, top].mean(1))
        f_names, k_names = [p.variant for p in gr["forget"]], [p.variant for p in gr["keep"]]
        drop_f = float(np.mean([drops[v][0] for v in f_names]))
        drop_k = float(np.mean([drops[v][0] for v in k_names]))
        reps = np.mean([drops[v][1] for v in f_names], axis=0) - np.mean([drops[v][1] for v in k_names], axis=0)
        diff, ci = drop_f - drop_k, interval(reps)
        numbers: dict[str, Any] = {"forgetting_variants": f_names, "keeping_variants": k_names,
                                   "top_drop_forgetting": _r(drop_f), "top_drop_keeping": _r(drop_k),
                                   "statistic": _r(diff), "ci": _ci(ci), "threshold": thr}
        if ps[0].base.lexical_baseline is not None:
            numbers["headroom_top"] = _r(_top_headroom(ps[0]))
        units.append(Unit(name, group, decide(ci, thr, c.side),
                          f"drop after {{{', '.join(f_names)}}} minus after {{{', '.join(k_names)}}}: "
                          f"{diff:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]", numbers, mde=mde(reps),
                          n_seeds=min(p.n_seeds for p in ps)))
    return units


def _c3_missing(c: ClaimSpec, res: Results) -> str:
    have = sorted({p.variant for p in pairs(res)})
    return (f"needs fine-tuned variants from both {{{', '.join(c.forgetting_tasks)}}} and "
            f"{{{', '.join(c.keeping_tasks)}}} (this profile has: {', '.join(have) or 'none'})")


# ---- C4 --------------------------------------------------------------------------------------------


def onset(delta: np.ndarray, limit: float) -> np.ndarray:
    """First transformer layer whose delta is below ``limit`` (``L + 1`` if none), over the last axis.

    delta: float ``[..., layers]`` incl. the embedding layer at 0; returns int ``[...]``.
    """
    below = delta[..., 1:] < limit
    L = below.shape[-1]
    return np.where(below.any(-1), below.argmax(-1) + 1, L + 1)


def eval_c4(c: ClaimSpec, spec: Spec, res: Results, o: Options) -> list[Unit]:
    """Probing task x fine-tuning task: BERT's onset depth minus the larger of the other families'."""
    from pipeline.models import MODELS

    fams, lim, thr = c.families, c.number("onset_delta_points"), c.number("threshold")
    by_unit: dict[tuple[str, str], dict[str, Pair]] = {}
    for p in pairs(res):
        info = MODELS.get(p.model)
        if info is not None and info.family in fams and info.source == "hub":  # the paper's checkpoints only
            by_unit.setdefault((p.task, p.variant), {}).setdefault(info.family, p)
    units = []
    for (t, v), per in sorted(by_unit.items()):
        if set(per) != set(fams):
            continue
        name, group = f"{t}/{v}", f"{spec.group_of(t)}/{v}"
        why = next((w for f in fams if (w := missing_for_intervals(per[f].base))), None)
        if why or len({per[f].base.test_words_sha256 for f in fams}) != 1:
            units.append(Unit(name, group, Verdict.NOT_APPLICABLE,
                              why or "the three models were not scored on the same test words"))
            continue
        on, on_reps = {}, {}
        for f in fams:
            est, reps = delta_replicates(per[f], o.n_boot, o.seed)
            L = len(est) - 1
            on[f], on_reps[f] = float(onset(est, lim)) / L, onset(reps, lim) / L
        first, rest = fams[0], fams[1:]
        stat = on[first] - max(on[f] for f in rest)
        reps = on_reps[first] - np.max([on_reps[f] for f in rest], axis=0)
        ci = interval(reps)
        units.append(Unit(name, group, decide(ci, thr, c.side),
                          f"{first} onset minus the deepest of {', '.join(rest)}: {stat:+.3f} "
                          f"[{ci[0]:+.3f}, {ci[1]:+.3f}] (relative depth)",
                          {"models": {f: per[f].model for f in fams},
                           "onset_relative_depth": {f: _r(x) for f, x in on.items()},
                           "statistic": _r(stat), "ci": _ci(ci), "threshold": thr},
                          mde=mde(reps), n_seeds=min(per[f].n_seeds for f in fams)))
    return units


def _c4_missing(c: ClaimSpec, res: Results) -> str:
    from pipeline.models import MODELS

    have = ", ".join(f"{m} ({MODELS[m].family if m in MODELS else '?'})" for m in res.models) or "none"
    return (f"needs {', '.join(c.families)} (the paper's hub checkpoints), each base and fine-tuned on the same "
            f"task (this profile has: {have})")


# ---- C5 --------------------------------------------------------------------------------------------


def salience_problem(n: NeuronResult) -> str | None:
    """P8: why the ranking of ``n`` is not established as salient, or None when it is."""
    s = n.salience
    if s.n_random < MIN_RANDOM_SETS:
        return (f"salience not established (needs >= {MIN_RANDOM_SETS} random k-sets; this result has "
                f"{s.n_random}): {'/'.join(n.key)}")
    if not s.salient:
        return (f"ranking not salient for {'/'.join(n.key)}: top-k {s.topk_accuracy:.4f} against random k-sets "
                f"{s.random_accuracy.mean:.4f} [{s.random_accuracy.ci_low:.4f}, {s.random_accuracy.ci_high:.4f}]"
                + (f" ({s.reason})" if s.reason else ""))
    return None


def _salience_numbers(n: NeuronResult) -> dict[str, Any]:
    s = n.salience
    return {"n_random": s.n_random, "k": s.k, "topk_accuracy": s.topk_accuracy,
            "random_accuracy": s.random_accuracy.model_dump(), "selection_salient": s.selection_salient,
            "ablation_salient": s.ablation.salient, "salient": s.salient}


def _shift(base: NeuronResult, fts: list[NeuronResult], ranking: str, n_boot: int,
           rng: np.random.Generator) -> tuple[float, np.ndarray] | str:
    """Mean-layer shift (fine-tuned minus base) under ``ranking`` and its replicates ``float [n_boot]``:
    fine-tuning seeds resampled, then oracle seeds of each result; or why it cannot be computed."""
    sets = [getattr(r.layer_shift, ranking) for r in [base, *fts]]
    if any(len(s.mean_layer) < 2 for s in sets):
        return f"the {ranking} ranking has fewer than 2 oracle seeds: no interval over oracle seeds"
    b, f = np.asarray(sets[0].mean_layer), [np.asarray(s.mean_layer) for s in sets[1:]]
    stat = float(np.mean([x.mean() for x in f]) - b.mean())

    def boot(x: np.ndarray) -> np.ndarray:
        return x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1)

    seed_pick = rng.integers(0, len(f), (n_boot, len(f)))                 # [n_boot, S]
    per_seed = np.stack([boot(x) for x in f], axis=1)                      # [n_boot, S]
    reps = np.take_along_axis(per_seed, seed_pick, axis=1).mean(1) - boot(b)
    return stat, reps


def _neuron_seeds(res: Results) -> list[tuple[Key, list[NeuronResult]]]:
    """``((model, variant, task), [neuron result per fine-tuning seed])`` for every fine-tuned variant whose
    base model has a neuron result too; the checkpoints of a variant grouped as for the layer results."""
    out = []
    for m in res.models:
        for t in sorted({k[2] for k in res.neurons if k[0] == m}):
            if (m, "base", t) not in res.neurons:
                continue
            for v, cs in res.by_variant(m).items():
                fts = [res.neurons[(m, c, t)] for c in cs if (m, c, t) in res.neurons]
                if v != "base" and fts:
                    out.append(((m, v, t), fts))
    return out


def eval_c5(c: ClaimSpec, spec: Spec, res: Results, o: Options) -> list[Unit]:
    """Model x fine-tuned variant x probing task: mean-layer shift of the minimal set, gated on salience
    (P8); both rankings (raw, standardised) must agree."""
    thr = c.number("threshold")
    rng = np.random.default_rng(o.seed)
    units = []
    for (m, v, t), fts in _neuron_seeds(res):
        base = res.neurons[(m, "base", t)]
        name, group = f"{m}/{v}/{t}", f"{m}/{v}/{spec.group_of(t)}"
        numbers: dict[str, Any] = {
            "k_base": base.k, "k_finetuned": [ft.k for ft in fts],
            "delta_mean_layer_point": _r(float(np.mean([ft.mean_layer for ft in fts])) - base.mean_layer),
            "salience": {"base": _salience_numbers(base),
                         "finetuned": {ft.variant: _salience_numbers(ft) for ft in fts}}}
        gate = "; ".join(p for p in (salience_problem(r) for r in [base, *fts]) if p)
        if gate:
            units.append(Unit(name, group, Verdict.INCONCLUSIVE, gate, numbers, n_seeds=len(fts)))
            continue
        parts, mdes, texts = [], [], []
        for ranking in ("raw", "standardised"):
            got = _shift(base, fts, ranking, o.n_boot, rng)
            if isinstance(got, str):
                parts.append(Verdict.INCONCLUSIVE)
                texts.append(got)
                continue
            stat, reps = got
            ci = interval(reps)
            vr = decide(ci, thr, c.side)
            parts.append(vr)
            mdes.append(mde(reps))
            numbers[ranking] = {"statistic": _r(stat), "ci": _ci(ci), "verdict": vr.value,
                                "min_detectable_effect": _r(mde(reps))}
            texts.append(f"{ranking} {stat:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}] ({vr.value})")
        agree = parts[0] is parts[1]
        verdict = parts[0] if agree else Verdict.INCONCLUSIVE
        text = "; ".join(texts) + ("" if agree else "; the rankings disagree")
        units.append(Unit(name, group, verdict, text, numbers, mde=max(mdes) if mdes else None, n_seeds=len(fts)))
    return units


# ---- the claims ------------------------------------------------------------------------------------

Evaluator = Callable[[ClaimSpec, Spec, Results, Options], list[Unit]]
EVALUATORS: dict[str, Evaluator] = {"C1": eval_c1, "C2": eval_c2, "C3": eval_c3, "C4": eval_c4, "C5": eval_c5}
NO_UNITS: dict[str, Callable[[ClaimSpec, Results], str]] = {
    "C1": lambda c, res: "no base-model probe results in this profile",
    "C2": lambda c, res: "needs probe results of a base model and at least one fine-tuned variant",
    "C3": _c3_missing,
    "C4": _c4_missing,
    "C5": lambda c, res: "needs minimal neuron sets of a base model and a fine-tuned variant",
}


def _trust(cid: str, units: list[Unit], outcome_members: dict[str, list[str]], o: Options) -> list[str]:
    """What limits how far the verdict can be trusted, one line each."""
    notes = []
    if o.proxy:
        notes.append(f"proxy verdict: {o.proxy_reason}")
    seeds = [u.n_seeds for u in units if u.n_seeds]
    if seeds and min(seeds) == 1:
        notes.append(ONE_SEED)
    elif seeds:
        notes.append(f"{min(seeds)} fine-tuning seeds (hierarchical bootstrap: seeds, then sentences)")
    merged = [f"{g}: {', '.join(us)}" for g, us in outcome_members.items() if len(us) > 1]
    if merged:
        notes.append("units sharing their sentences count once (P5): " + "; ".join(merged))
    mdes = [u.mde for u in units if u.mde is not None]
    if mdes:
        notes.append(f"power: the intervals resolve effects of {min(mdes):.2f} to {max(mdes):.2f} "
                     f"{'layers' if cid == 'C5' else 'points'} from the threshold")
    if cid == "C5" and any(u.verdict is Verdict.INCONCLUSIVE and "salien" in u.reason for u in units):
        notes.append("salience: the ranking is not established as salient (P8), so the neuron shift is not evidence")
    return notes


#: The head of one finding in a unit's reason: at its start or after "; ", up to a ":" with no brackets between.
_HEAD = re.compile(r"(?:^|; )([^:;()]+?):")


def short_reasons(reasons: Iterable[str]) -> list[str]:
    """The distinct heads of unit reasons for a claim's one-line reason (``"ranking not salient for
    minilm/base/pos-wsj: top-k ... (...; ...)"`` -> ``"ranking not salient for minilm/base/pos-wsj"``; a reason
    without a head stays whole), each once (units share checkpoints), sorted."""
    out: set[str] = set()
    for r in reasons:
        heads = [h.strip() for h in _HEAD.findall(r)]
        out.update(heads or [r])
    return sorted(out)


def evaluate_claims(res: Results, spec: Spec, options: Options | None = None) -> list[ClaimVerdict]:
    """Evaluate every claim of ``spec`` on ``res``: the verdicts in claim order (see module doc).

    Results that cannot be compared (variants scored on different test words) make that claim
    NOT_APPLICABLE with the reason rather than raising.
    """
    o = options or Options()
    out = []
    for cid in CLAIM_IDS:
        c = spec.claim(cid)
        try:
            units = EVALUATORS[cid](c, spec, res, o)
            no_units = NO_UNITS[cid](c, res) if not units else ""
        except NotComparable as err:
            units, no_units = [], f"the results cannot be compared: {err}"
        outcome = claim_verdict({u.name: u.verdict for u in units}, {u.name: u.group for u in units})
        reason = no_units or outcome.reason
        if units and outcome.verdict is Verdict.NOT_APPLICABLE:
            reason = "no unit can be tested: " + "; ".join(sorted({u.reason for u in units}))
        no_interval = short_reasons(u.reason for u in units if u.verdict is Verdict.INCONCLUSIVE and u.mde is None)
        if outcome.verdict is Verdict.INCONCLUSIVE and no_interval:
            reason = (outcome.reason.split(":")[0] + "; without an interval: " + "; ".join(no_interval)
                      + " (each unit's numbers: its section and claims.json)")
        mdes = [u.mde for u in units if u.mde is not None]
        seeds = [u.n_seeds for u in units if u.n_seeds]
        out.append(ClaimVerdict(
            id=cid, title=c.title, statement=c.statement, statistic=c.statistic,
            threshold=c.threshold if c.threshold is not None else "see thresholds", thresholds=dict(c.thresholds),
            side=c.side, unit=c.unit, needs=c.needs, verdict=outcome.verdict.value, reason=reason,
            proxy=o.proxy, proxy_reason=o.proxy_reason, aggregation="P5 groups, then P6 majority",
            independent_units={g: {"verdict": v.value, "members": outcome.members[g]}
                               for g, v in outcome.groups.items()},
            units=tuple(u.to_dict() for u in units),
            min_detectable_effect=_r(max(mdes)) if mdes else None,
            n_finetune_seeds=min(seeds) if seeds else None,
            trust=tuple(_trust(cid, units, outcome.members, o))))
    return out


def format_interval(x: float | None, ci: list[float | None], nd: int = 2) -> str:
    """``-1.23 [-1.90, -0.50]`` (n/a for missing or NaN values)."""
    vals = [x, *ci]
    if any(v is None or math.isnan(v) for v in vals):
        return "n/a"
    return f"{x:+.{nd}f} [{ci[0]:+.{nd}f}, {ci[1]:+.{nd}f}]"
