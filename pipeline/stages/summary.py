"""``python -m pipeline summary``: a readable list of what the pipeline has produced, with the run times."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import Params
from pipeline.data.splits import SPLITS
from pipeline.layout import Layout
from pipeline.records import ResultsError, RunLog, load_results, read_run_logs

NOT_RECORDED = "not recorded"


def _took(log: RunLog | None) -> str:
    """``12.3 s`` from a run log, or "not recorded"."""
    return f"{log.seconds:.1f} s" if log is not None and log.seconds is not None else NOT_RECORDED


def _model_of(name: str, models: list[str]) -> str:
    """The model a run name (``<model>-<variant>[-<task>]``) belongs to: the longest of ``models`` it starts with
    (a model name may hold "-"), else its part before the first "-"."""
    return max((m for m in models if name.startswith(f"{m}-")), key=len, default=name.split("-", 1)[0])


def stage_times(runs: dict[tuple[str, str], RunLog], jobs: int = 1, models: list[str] | None = None) -> list[str]:
    """Lines of the run time per stage and model from the run logs (``runs``: ``(stage, name) -> RunLog``):
    invocations, total, fastest and slowest, then the sum over all stages and the wall time it implies at
    ``jobs`` stages at once (the sum / ``jobs``: a lower bound, reached when the slots stay full). The run
    logs' seconds include any time a stage spent paused."""
    groups: dict[tuple[str, str], list[float]] = {}
    for (stage, name), log in runs.items():
        if log.seconds is not None:
            groups.setdefault((stage, _model_of(name, models or [])), []).append(log.seconds)
    if not groups:
        return []
    order = {s: i for i, s in enumerate(("finetune", "extract", "probe", "neurons"))}
    lines = ["Stage times (results/runs/): invocations, total, fastest to slowest"]
    for (stage, model), secs in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0])):
        lines.append(f"  {stage:9s} {model:10s} {len(secs):3d} x  {sum(secs):9.0f} s  "
                     f"({min(secs):.0f}-{max(secs):.0f} s)")
    total = sum(sum(v) for v in groups.values())
    lines.append(f"  all       {sum(len(v) for v in groups.values()):14d} x  {total:9.0f} s  = {total / 3600:.2f} h; "
                 f"at {jobs} at once at least {total / jobs / 3600:.2f} h of wall time")
    return lines


def summary(params: Params, root: Path, jobs: int = 1) -> str:
    """A readable table of the prepared corpora, activation stores and results under ``root``.

    Timings and speeds come from the run logs (``results/runs/``), "not recorded" where there is none;
    the last block sums them per stage and model (:func:`stage_times`, ``jobs`` stages at once).
    """
    from pipeline.store import ActivationStore, StoreError

    lay = Layout.of(params, root)
    runs = read_run_logs(lay.results.root)
    lines = ["Probing corpora (data/):"]
    for meta_file in lay.data_meta_files():
        m = json.loads(meta_file.read_text(encoding="utf-8"))
        c = m["counts"]
        lines.append(f"  {m['task']:12s} {m['label_quality']:6s} {m['n_labels']:4d} labels  "
                     + "  ".join(f"{k} {c[k]['sentences']} sent / {c[k]['tokens']} tok" for k in SPLITS))
    lines.append("Activation stores (activations/MODEL/VARIANT/TASK):")
    for meta_file in lay.activation_meta_files():
        try:
            st = ActivationStore(meta_file.parent)
        except StoreError as err:
            lines.append(f"  {meta_file.parent}: unreadable ({err})")
            continue
        name = f"{st.meta['model']}-{st.meta['variant']}-{st.meta['task']}"
        log = runs.get(("extract", name))
        speed = log.timings.get("words_per_second") if log is not None else None
        lines.append(f"  {st.meta['model']}/{st.meta['variant']}/{st.meta['task']}: {st.n_words} words x "
                     f"{st.n_layers} layers x {st.dim} dims, {st.meta['aggregation']} sub-word, "
                     + (f"{speed:.0f} words/s" if speed is not None else f"words/s {NOT_RECORDED}"))
    try:
        res = load_results(lay.results.root)
    except ResultsError as err:
        lines.append(f"Results ({lay.results.root}): unreadable ({err})")
        return "\n".join(lines + stage_times(runs, jobs, list(params.models)))
    if res.finetune:
        lines.append("Fine-tuned variants (results/finetune/): test score vs majority baseline, time")
        for (m, c), r in sorted(res.finetune.items()):
            base = f"{r.majority:.3f}" if r.majority is not None else "-"
            lines.append(f"  {m}-{c:18s} {r.metric} {r.score:.3f} (majority {base}, "
                         f"{_took(runs.get(('finetune', f'{m}-{c}')))})")
    if res.layers:
        lines.append("Layer probes (results/layers/): mean test accuracy per layer over seeds, embeddings first; "
                     "time")
        for (m, v, t), r in sorted(res.layers.items()):
            acc = " ".join(f"{a:.3f}" for a in r.mean)
            lines.append(f"  {m}/{v:16s} {t:10s} {acc}  ({_took(runs.get(('probe', f'{m}-{v}-{t}')))})")
    if res.neurons:
        lines.append("Minimal neuron sets (results/neurons/): size, mean layer, selected neurons per layer; time")
        for (m, v, t), n in sorted(res.neurons.items()):
            lines.append(f"  {m}/{v:16s} {t:10s} k={n.k:4d} of {n.n_neurons}, mean layer {n.mean_layer:.2f}, "
                         f"per layer {n.counts} ({_took(runs.get(('neurons', f'{m}-{v}-{t}')))})")
    return "\n".join(lines + stage_times(runs, jobs, list(params.models)))
