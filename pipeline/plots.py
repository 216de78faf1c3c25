"""The report's figures (SVG + PNG) and the tidy CSVs behind DVC's ``plots:``.

Per model: accuracy per layer (base vs each fine-tuned variant, bootstrap bands, the lexical baseline as a
dashed line), the delta heatmap (layers x fine-tuned variants), the minimal-set neurons per layer (base vs
fine-tuned) and the control-task selectivity per layer, one panel per probing task; and the per-tag F1
change after fine-tuning (tags x layers), one panel per probing task and fine-tuned variant.
Deterministic output: fixed SVG
hash salt and no timestamps, so re-running the report leaves the files unchanged.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np

from pipeline.atomic import write_bytes, write_text
from pipeline.records import Results
from pipeline.taglosses import MIN_SUPPORT, tag_losses

log = logging.getLogger(__name__)

# Colour-blind-safe (Okabe-Ito); base is always black.
_COLOURS = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7", "#F0E442", "#999999"]
_SVG_META = {"Date": None, "Creator": "LingShift"}


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "lingshift", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "figure.dpi": 110})
    return plt


def _colour(i: int) -> str:
    return _COLOURS[i % len(_COLOURS)]


def _save(fig, out: Path, stem: str) -> list[Path]:  # noqa: ANN001
    """Write ``stem.svg`` and ``stem.png`` under ``out`` atomically; return their paths."""
    paths = []
    for ext, meta in (("svg", _SVG_META), ("png", {"Software": "LingShift"})):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, metadata=meta, bbox_inches="tight")
        write_bytes(out / f"{stem}.{ext}", buf.getvalue())
        paths.append(out / f"{stem}.{ext}")
    return paths


def _finish(plt, fig, out: Path, stem: str, title: str) -> list[Path]:  # noqa: ANN001
    """Title, save as SVG + PNG, close."""
    fig.suptitle(title)
    paths = _save(fig, out, stem)
    plt.close(fig)
    return paths


def _label(ax, title: str, ylabel: str) -> None:  # noqa: ANN001
    """Panel title and axis labels of a per-layer panel."""
    ax.set_title(title)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(ylabel)


def _panels(plt, n: int, width: float = 4.2, height: float = 3.2, sharey: bool = False):  # noqa: ANN001, ANN202
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False, layout="constrained", sharey=sharey)
    return fig, list(axes[0])


def layer_curves(res: Results, model: str, out: Path) -> list[Path]:
    """Accuracy per layer, base vs each fine-tuned variant, one panel per task: base with its 95% bootstrap
    band; a fine-tuned variant as the mean over its fine-tuning seeds (thick) and each seed (thin)."""
    plt = _plt()
    tasks = res.tasks(model)
    groups = res.by_variant(model)
    fig, axes = _panels(plt, len(tasks))
    for ax, t in zip(axes, tasks, strict=True):
        present = []
        for i, v in enumerate(groups):
            rs = res.seed_layers(model, v, t)
            if not rs:
                continue
            present += rs
            x = np.asarray(rs[0].layers)
            mean = np.mean([r.mean for r in rs], axis=0) * 100
            label = v if len(rs) == 1 else f"{v} (mean of {len(rs)} seeds)"
            ax.plot(x, mean, marker="o", ms=3, color=_colour(i), label=label, lw=1.6)
            if v == "base":
                ax.fill_between(x, rs[0].ci_low * 100, rs[0].ci_high * 100, color=_colour(i), alpha=0.15, lw=0)
            elif len(rs) > 1:
                for r in rs:
                    ax.plot(x, r.mean * 100, color=_colour(i), lw=0.6, alpha=0.45)
        lexical = present[0].lexical * 100  # a property of the task: the same in every variant's result
        ax.axhline(lexical, color="#777777", ls="--", lw=1.0, label="lexical baseline")
        _label(ax, t, "probe accuracy (%)")
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
        lo = min([lexical] + [float((r.ci_low * 100).min()) for r in present])
        ax.set_ylim(max(0.0, lo - 3), 100)
    axes[-1].legend(frameon=False, fontsize=8, loc="upper right", ncol=2)
    return _finish(plt, fig, out, f"layers-{model}",
                   f"{model}: probe accuracy per layer, base vs fine-tuned (band: base's 95% bootstrap over test "
                   "sentences; thin lines: single fine-tuning seeds; dashed: lexical baseline)")


def delta_heatmap(res: Results, model: str, out: Path) -> list[Path]:
    """Accuracy change (fine-tuned - base, points, mean over fine-tuning seeds) as a heatmap: fine-tuned
    variants x layers, per task."""
    plt = _plt()
    tasks = res.tasks(model)
    variants = [v for v in res.by_variant(model) if v != "base"]
    if not variants:
        return []
    fig, axes = _panels(plt, len(tasks), width=4.0, height=0.5 * len(variants) + 1.8, sharey=True)
    grids = {}
    for t in tasks:
        base = res.layers.get((model, "base", t))
        seeds = {v: res.seed_layers(model, v, t) for v in variants}
        rows = [(np.mean([r.mean for r in seeds[v]], axis=0) - base.mean) * 100 if base is not None and seeds[v]
                else None for v in variants]
        n = len(base.mean) if base is not None else 0
        grids[t] = np.asarray([r if r is not None else np.full(n, np.nan) for r in rows])
    vmax = max(1.0, max(float(np.nanmax(np.abs(g))) if g.size else 0.0 for g in grids.values()))
    im = None
    for ax, t in zip(axes, tasks, strict=True):
        g = grids[t]
        im = ax.imshow(g, cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto")
        for (i, j), val in np.ndenumerate(g):
            if np.isfinite(val):
                ax.text(j, i, f"{val:+.1f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(val) > 0.6 * vmax else "black")
        ax.set_xticks(range(g.shape[1]))
        ax.set_xlabel("layer")
        ax.set_title(t)
    axes[0].set_yticks(range(len(variants)), variants)
    if im is not None:
        fig.colorbar(im, ax=axes, label="accuracy change (points)", shrink=0.9)
    return _finish(plt, fig, out, f"delta-{model}",
                   f"{model}: probe accuracy change after fine-tuning (fine-tuned - base, mean over fine-tuning "
                   "seeds)")


def neuron_layers(res: Results, model: str, out: Path) -> list[Path]:
    """Share of the minimal neuron set in each layer, base vs fine-tuned (grouped bars: the mean share over a
    variant's fine-tuning seeds, whiskers from the lowest to the highest seed), per task."""
    plt = _plt()
    tasks = sorted({k[2] for k in res.neurons if k[0] == model})
    if not tasks:
        return []
    groups = res.by_variant(model)
    fig, axes = _panels(plt, len(tasks))
    for ax, t in zip(axes, tasks, strict=True):
        present = {v: [res.neurons[(model, c, t)] for c in cs if (model, c, t) in res.neurons]
                   for v, cs in groups.items()}
        present = {v: ns for v, ns in present.items() if ns}
        width = 0.8 / max(1, len(present))
        for i, (v, ns) in enumerate(present.items()):
            fracs = np.asarray([np.asarray(n.counts, dtype=float) / max(1, n.k) * 100 for n in ns])
            frac = fracs.mean(0)
            x = np.arange(len(frac)) + (i - (len(present) - 1) / 2) * width
            n_salient = sum(n.salience.salient for n in ns)
            gate = ("salient" if n_salient == len(ns) else "not salient" if n_salient == 0
                    else f"salient in {n_salient} of {len(ns)}")
            ks = sorted(n.k for n in ns)
            k_text = f"k={ks[0]}" if len(ks) == 1 else f"k={ks[0]}-{ks[-1]}"
            mean_layer = float(np.mean([n.mean_layer for n in ns]))
            err = None if len(ns) == 1 else np.vstack([frac - fracs.min(0), fracs.max(0) - frac])
            ax.bar(x, frac, width=width, color=_colour(list(groups).index(v)), yerr=err, capsize=1.5,
                   error_kw={"lw": 0.6},
                   label=f"{v}{'' if len(ns) == 1 else f' ({len(ns)} seeds)'} ({k_text}, mean layer "
                         f"{mean_layer:.2f}, {gate})")
        _label(ax, t, "share of minimal-set neurons (%)")
        ax.set_xticks(range(len(frac)))
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # room for the legend above the bars
        ax.legend(frameon=False, fontsize=7, loc="upper right")
    return _finish(plt, fig, out, f"neurons-{model}",
                   f"{model}: where the minimal neuron set lives, base vs fine-tuned (whiskers: fine-tuning seeds)\n"
                   "(oracle seed 0, raw ranking; 'not salient': the top-k probes no better than random k-sets, "
                   "so its place is no evidence)")


def selectivity(res: Results, model: str, out: Path) -> list[Path]:
    """Control-task selectivity (task - control accuracy, points) per layer and variant, per task."""
    plt = _plt()
    tasks = [t for t in res.tasks(model) if any(r.selectivity is not None for k, r in res.layers.items()
                                                  if k[0] == model and k[2] == t)]
    if not tasks:
        return []
    fig, axes = _panels(plt, len(tasks))
    for ax, t in zip(axes, tasks, strict=True):
        for i, v in enumerate(res.by_variant(model)):
            rs = [r for r in res.seed_layers(model, v, t) if r.selectivity is not None]
            if not rs:
                continue
            label = v if len(rs) == 1 else f"{v} (mean of {len(rs)} seeds)"
            ax.plot(rs[0].layers, np.mean([r.selectivity for r in rs], axis=0) * 100, marker="o", ms=3,
                    color=_colour(i), label=label)
        _label(ax, t, "selectivity (points)")
        ax.grid(alpha=0.3)
    axes[-1].legend(frameon=False, fontsize=8)
    return _finish(plt, fig, out, f"selectivity-{model}",
                   f"{model}: selectivity = task accuracy - control-task accuracy (Hewitt & Liang), seed 0")


def tag_heatmap(res: Results, model: str, out: Path, n_tags: int = 15) -> list[Path]:
    """Per-tag F1 change (fine-tuned - base, points) as a heatmap, tags x layers, for the ``n_tags`` tags that
    lose most at the top layers (at least ``MIN_SUPPORT`` test words); one panel per task x fine-tuned variant."""
    pairs = [(t, v) for t in res.tasks(model) for v in res.by_variant(model)
             if v != "base" and (model, "base", t) in res.layers and res.seed_layers(model, v, t)]
    if not pairs:
        return []
    panels = []
    for t, v in pairs:
        tl = tag_losses(res.layers[(model, "base", t)], res.seed_layers(model, v, t))
        worst = tl.ranked[:n_tags]
        grid = np.asarray([tl.delta[:, r["label_id"]] for r in worst]).reshape(len(worst), len(tl.layers)) * 100
        names = [f"{r['tag']} ({r['support']})" for r in worst]
        panels.append((t, v, tl, grid, names))
    plt = _plt()
    rows = max(len(p[4]) for p in panels)
    fig, axes = _panels(plt, len(panels), width=3.6, height=0.26 * max(rows, 4) + 1.6)
    vmax = max([5.0] + [float(np.abs(p[3]).max()) for p in panels if p[3].size])
    im = None
    for ax, (t, v, tl, grid, names) in zip(axes, panels, strict=True):
        if not names:
            ax.set_axis_off()
            ax.set_title(f"{t} / {v}: no tag with {MIN_SUPPORT}+ test words")
            continue
        im = ax.imshow(grid, cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto")
        for (i, j), val in np.ndenumerate(grid):
            ax.text(j, i, f"{val:+.0f}" if abs(val) >= 0.5 else "0", ha="center", va="center", fontsize=6.5,
                    color="white" if abs(val) > 0.6 * vmax else "black")
        ax.set_xticks(range(len(tl.layers)), [str(x) for x in tl.layers])
        ax.set_yticks(range(len(names)), names, fontsize=7.5)
        top = [tl.layers.index(x) for x in tl.top_layers]
        ax.axvline(min(top) - 0.5, color="#444444", lw=0.8, ls=":")  # the top layers the tags are ranked on
        ax.set_xlabel("layer (top third right of the dotted line)")
        ax.set_title(f"{t} / {v}")
    if im is not None:
        fig.colorbar(im, ax=axes, label="F1 change (points)", shrink=0.8)
    return _finish(plt, fig, out, f"tags-{model}",
                   f"{model}: per-tag F1 change after fine-tuning (fine-tuned - base, seed-0 probes, test words, "
                   "mean over fine-tuning seeds)\n"
                   f"the tags that lose most at the top layers, at most {n_tags}, with {MIN_SUPPORT}+ test words "
                   "(count in brackets)")


def _csv(rows: list[dict[str, object]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def plot_data(res: Results, out: Path) -> list[Path]:
    """Tidy CSVs for ``dvc plots``: ``layer_accuracy.csv`` and ``neuron_layers.csv`` (one row per
    model, task, variant, layer; ``series`` = ``model/task/variant`` for DVC's colour grouping)."""
    paths = []
    rows = [{"series": f"{m}/{t}/{v}", "model": m, "task": t, "variant": v, "layer": layer,
             "accuracy": round(float(r.mean[i]), 5), "ci_low": round(float(r.ci_low[i]), 5),
             "ci_high": round(float(r.ci_high[i]), 5)}
            for (m, v, t), r in sorted(res.layers.items()) for i, layer in enumerate(r.layers)]
    if rows:
        write_text(out / "layer_accuracy.csv", _csv(rows))
        paths.append(out / "layer_accuracy.csv")
    rows = [{"series": f"{m}/{t}/{v}", "model": m, "task": t, "variant": v, "layer": i, "neurons": c,
             "share": round(c / max(1, n.k), 5)}
            for (m, v, t), n in sorted(res.neurons.items()) for i, c in enumerate(n.counts)]
    if rows:
        write_text(out / "neuron_layers.csv", _csv(rows))
        paths.append(out / "neuron_layers.csv")
    return paths


def all_plots(res: Results, out: Path) -> list[Path]:
    """Every figure for every model in ``res`` plus the tidy CSVs; returns the written paths."""
    paths: list[Path] = []
    for m in res.models:
        for fn in (layer_curves, delta_heatmap, neuron_layers, selectivity, tag_heatmap):
            paths += fn(res, m, out)
    paths += plot_data(res, out)
    log.info("wrote %d plot files to %s", len(paths), out)
    return paths
