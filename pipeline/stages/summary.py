"""``python -m pipeline summary``: a readable list of what the pipeline has produced."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Params
from pipeline.data.splits import SPLITS


def summary(params: Params, root: Path) -> str:
    """A readable table of the prepared corpora and activation stores under ``root``."""
    import json

    from pipeline.store import ActivationStore, StoreError

    lines = ["Probing corpora (data/):"]
    for meta_file in sorted((root / params.paths.data).glob("*/meta.json")):
        m = json.loads(meta_file.read_text(encoding="utf-8"))
        c = m["counts"]
        lines.append(f"  {m['task']:12s} {m['label_quality']:6s} {m['n_labels']:4d} labels  "
                     + "  ".join(f"{k} {c[k]['sentences']} sent / {c[k]['tokens']} tok" for k in SPLITS))
    lines.append("Activation stores (activations/MODEL/VARIANT/TASK):")
    for meta_file in sorted((root / params.paths.activations).glob("*/*/*/meta.json")):
        try:
            st = ActivationStore(meta_file.parent)
        except StoreError as err:
            lines.append(f"  {meta_file.parent}: unreadable ({err})")
            continue
        ex = st.meta.get("extraction", {})
        lines.append(f"  {st.meta['model']}/{st.meta['variant']}/{st.meta['task']}: {st.n_words} words x "
                     f"{st.n_layers} layers x {st.dim} dims, {st.meta['aggregation']} sub-word, "
                     f"{ex.get('words_per_second', float('nan')):.0f} words/s")
    res = root / params.paths.results
    ft = sorted(res.glob("finetune/*.json"))
    if ft:
        lines.append("Fine-tuned variants (results/finetune/): test score vs majority baseline")
        for f in ft:
            m = json.loads(f.read_text(encoding="utf-8"))
            metric = m.get("main_metric", "accuracy")
            base = m.get("majority_baseline", {}).get("test", {}).get(metric, float("nan"))
            lines.append(f"  {f.stem:20s} {metric} {m['test'][metric]:.3f} (majority {base:.3f}, "
                         f"{m.get('total_seconds', float('nan')):.0f} s)")
    layer_files = sorted(res.glob("layers/*/*/*.json"))
    if layer_files:
        lines.append("Layer probes (results/layers/): mean test accuracy per layer over seeds, embeddings first")
        for f in layer_files:
            m = json.loads(f.read_text(encoding="utf-8"))
            acc = " ".join(f"{a:.3f}" for a in m["test_accuracy"]["mean"])
            lines.append(f"  {m['model']}/{m['variant']:10s} {m['task']:10s} {acc}")
    for f in sorted(res.glob("neurons/*/*/*.json")):
        if f == next(iter(sorted(res.glob("neurons/*/*/*.json")))):
            lines.append("Minimal neuron sets (results/neurons/): size, mean layer, selected neurons per layer")
        m = json.loads(f.read_text(encoding="utf-8"))
        ms = m["minimal_set"]
        lines.append(f"  {m['model']}/{m['variant']:10s} {m['task']:10s} k={ms['k']:4d} of {m['n_neurons']}, "
                     f"mean layer {ms['layers']['mean_layer']:.2f}, per layer {ms['layers']['counts']}")
    return "\n".join(lines)
