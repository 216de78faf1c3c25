"""A compute and disk plan for the real paper run, scaled from a measured offline run.

Usage (after an offline run, e.g. ``make repro``, has left its timings in ``results/runs/``):

    python scripts/paper-plan.py [--seeds 3] [--gpu-tflops 50] [--gpus-per-node 1] [--cpus-per-node 8]

It reads the measured stage times (``results/runs/<kind>/*.json``: each stage's ``timings``), the
offline stores' word and sub-word counts (``activations/MODEL/base/TASK/meta.json``), the offline
corpora's counts (``data/TASK/meta.json``) and the offline model's shape (``models/MODEL/base/config.json``),
and scales them to the paper's design (the constants below; every one is an assumption that the
printout repeats). It prints Markdown: GPU-hours per stage kind (fine-tuning and extraction by FLOPs),
CPU core-hours (probes and the neuron analysis, scaled by words x neurons x classes), the activation
store size per (model, variant, task) in float16, and the disk: per worker at its peak, and in total.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# --- the paper's design (profiles/paper.yaml and /work/shared/PAPER.md) ---------------------------------
BASE_LAYERS, BASE_DIM, BASE_FFN = 12, 768, 3072  # BERT, RoBERTa and XLNet base alike
#: parameters of each base checkpoint (for its size on disk, float32 safetensors)
BASE_PARAMS = {"bert-base-cased": 108.3e6, "roberta-base": 124.6e6, "xlnet-base-cased": 116.7e6}
#: GLUE train / dev examples (MNLI: validation_matched)
GLUE = {"sst2": (67_349, 872), "mnli": (392_702, 9_815), "qnli": (104_743, 5_463), "rte": (2_490, 277),
        "mrpc": (3_668, 408), "stsb": (5_749, 1_500)}
EPOCHS, MAX_LENGTH = 3, 128  # the paper's fine-tuning recipe; every example padded to MAX_LENGTH (run_glue)
#: probing tasks: (classes, dev sentences, test sentences); train: the first 150,000 tokens of each
PROBES = {"pos-ptb": (48, 1_802, 1_963), "sem-pmb": (73, 5_301, 10_600), "chunk-conll2000": (22, 1_843, 2_011),
          "ccg-ccgbank": (1_272, 1_908, 2_404)}
TRAIN_TOKENS = 150_000
#: the offline task each paper probing task's measured time is taken from
MEASURED_AS = {"pos-ptb": "pos-wsj", "sem-pmb": "pos-wsj", "chunk-conll2000": "chunk-wsj", "ccg-ccgbank": "pos-wsj"}
GB = 1e9


def nonembedding_params(layers: int, dim: int, ffn: int) -> float:
    """Weights a token's forward pass multiplies by: attention (4 d^2) and feed-forward (2 d ffn) per layer."""
    return layers * (4 * dim * dim + 2 * dim * ffn)


@dataclass
class Measured:
    """What the offline run measured."""

    model: str
    layers: int          # transformer layers (the store has layers + 1)
    dim: int
    ffn: int
    finetune_train_s: float   # median seconds of one fine-tuning's training
    finetune_examples: int    # its train examples x epochs
    finetune_length: int      # its max_length
    extract_s: dict[str, float]      # task -> median extraction seconds
    words: dict[str, int]            # task -> words in the store (all splits)
    sentences: dict[str, int]        # task -> sentences in the store
    subwords: dict[str, int]         # task -> sub-word tokens in the store
    train_words: dict[str, int]      # task -> train words
    classes: dict[str, int]          # task -> labels
    probe_s: dict[str, float]        # task -> median probe stage seconds
    neurons_s: dict[str, float]      # task -> median neuron-analysis stage seconds


def _median_timings(runs: Path, kind: str, key: str) -> dict[str, list[float]]:
    """Run name -> the ``key`` timings of its run logs under ``runs/kind``; logs without that timing are left
    out (an extraction that linked the store of a task with the same sentences ran no model)."""
    out: dict[str, list[float]] = {}
    for f in sorted((runs / kind).glob("*.json")):
        rec = json.loads(f.read_text())
        if key in rec["timings"]:
            out.setdefault(rec["name"], []).append(rec["timings"][key])
    return out


def _linked_tasks(runs: Path, tasks: list[str]) -> dict[str, str]:
    """Task -> a task whose store its extraction linked (the same sentences), from the extract run logs."""
    out = {}
    for f in sorted((runs / "extract").glob("*.json")):
        rec = json.loads(f.read_text())
        task = next((t for t in tasks if rec["name"].endswith(f"-{t}")), None)
        if task and (rec.get("facts") or {}).get("linked_from"):
            out[task] = rec["facts"]["linked_from"]
    return out


def measure(root: Path) -> Measured:
    """Read the offline run's figures under ``root`` (see the module doc)."""
    import yaml

    params = yaml.safe_load((root / "params.yaml").read_text())
    model = params["models"][0]
    cfg = json.loads((root / "models" / model / "base" / "config.json").read_text())
    runs = root / "results" / "runs"
    if not (runs / "finetune").is_dir():
        sys.exit(f"no measured timings under {runs}: run the offline pipeline first (make repro)")
    tasks = params["probe_tasks"]
    ft = [t for ts in _median_timings(runs, "finetune", "train_seconds").values() for t in ts]
    by_task: dict[str, dict[str, list[float]]] = {"extract": {}, "probe": {}, "neurons": {}}
    for kind, key in (("extract", "extract"), ("probe", "stage"), ("neurons", "stage")):
        for name, ts in _median_timings(runs, kind, key).items():
            task = next(t for t in tasks if name.endswith(t))
            by_task[kind].setdefault(task, []).extend(ts)
    for task, sibling in _linked_tasks(runs, tasks).items():  # the same sentences: the same extraction time
        if task not in by_task["extract"] and sibling in by_task["extract"]:
            by_task["extract"][task] = by_task["extract"][sibling]
    missing = [f"{kind} {t}" for kind in by_task for t in tasks if t not in by_task[kind]]
    if missing:
        sys.exit(f"no measured timings under {runs} for {', '.join(missing)}: run the offline pipeline first "
                 "(make repro)")
    words, sentences, subwords, train_words, classes = {}, {}, {}, {}, {}
    for task in tasks:
        ext = json.loads((root / "activations" / model / "base" / task / "meta.json").read_text())["extraction"]
        words[task], sentences[task], subwords[task] = ext["n_words"], ext["n_sentences"], ext["n_subwords"]
        data = json.loads((root / "data" / task / "meta.json").read_text())
        train_words[task], classes[task] = data["counts"]["train"]["tokens"], len(data["labels"])
    fc = params["finetune"]
    return Measured(model, cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"],
                    statistics.median(ft), int(fc["max_train_examples"] * fc["epochs"]), fc["max_length"],
                    {t: statistics.median(v) for t, v in by_task["extract"].items()}, words, sentences, subwords,
                    train_words, classes,
                    {t: statistics.median(v) for t, v in by_task["probe"].items()},
                    {t: statistics.median(v) for t, v in by_task["neurons"].items()})


def plan(m: Measured, seeds: int, gpu_tflops: float, gpus_per_node: int, cpus_per_node: int) -> str:
    """The plan as Markdown (see the module doc)."""
    p_tiny = nonembedding_params(m.layers, m.dim, m.ffn)
    p_base = nonembedding_params(BASE_LAYERS, BASE_DIM, BASE_FFN)
    n_models, n_glue, n_probe = len(BASE_PARAMS), len(GLUE), len(PROBES)
    n_finetune = n_models * n_glue * seeds
    n_variants = 1 + n_glue * seeds
    n_stores = n_models * n_variants * n_probe
    gpu_rate = gpu_tflops * 1e12
    lines = []

    # fine-tuning: 6 FLOPs per weight per token trained, 2 per token evaluated (dev after every epoch)
    tiny_flops = 6 * p_tiny * m.finetune_examples * m.finetune_length
    cpu_rate_ft = tiny_flops / m.finetune_train_s
    ft_task = {t: n_models * seeds * EPOCHS * MAX_LENGTH * p_base * (6 * tr + 2 * dev) for t, (tr, dev) in GLUE.items()}
    ft_flops = sum(ft_task.values())
    # extraction: 2 FLOPs per weight per sub-word; the paper's stores: 150k train tokens + dev + test words
    ratio = statistics.median(m.subwords[t] / m.words[t] for t in m.words)
    per_sent = statistics.median(m.words[t] / m.sentences[t] for t in m.words)
    paper_words = {t: TRAIN_TOKENS + round((dev + test) * per_sent) for t, (_, dev, test) in PROBES.items()}
    cpu_rate_ex = statistics.median(2 * p_tiny * m.subwords[t] / m.extract_s[t] for t in m.extract_s)
    ex_flops = sum(n_models * n_variants * 2 * p_base * w * ratio for w in paper_words.values())
    # probes (CPU): words x neurons x classes; the neuron analysis: neurons x classes (fixed word subsample)
    n_tiny, n_base = (m.layers + 1) * m.dim, (BASE_LAYERS + 1) * BASE_DIM
    src = {t: MEASURED_AS[t] if MEASURED_AS[t] in m.probe_s else next(iter(m.probe_s)) for t in PROBES}
    probe_s = {t: m.probe_s[src[t]] * (TRAIN_TOKENS * n_base * c) / (m.train_words[src[t]] * n_tiny
                                                                       * m.classes[src[t]])
               for t, (c, _, _) in PROBES.items()}
    neuron_s = {t: m.neurons_s[src[t]] * (n_base * c) / (n_tiny * m.classes[src[t]]) for t, (c, _, _) in PROBES.items()}
    probe_h = n_models * n_variants * sum(probe_s.values()) / 3600
    neuron_h = n_models * n_variants * sum(neuron_s.values()) / 3600

    store = {t: w * (BASE_LAYERS + 1) * BASE_DIM * 2 for t, w in paper_words.items()}
    stores_total = n_models * n_variants * sum(store.values())
    model_bytes = sum(p * 4 * (1 + n_glue * seeds) for p in BASE_PARAMS.values())
    per_worker = (gpus_per_node + cpus_per_node) * max(store.values()) + sum(p * 4 for p in BASE_PARAMS.values())

    lines += [f"Measured on the offline profile ({m.model}: {m.layers} layers x {m.dim}; median of its stages):",
              f"- fine-tuning: {m.finetune_train_s:.1f} s of training for {m.finetune_examples} examples x "
              f"{m.finetune_length} tokens = {cpu_rate_ft / 1e9:.1f} GFLOP/s on one CPU thread",
              f"- extraction: {cpu_rate_ex / 1e9:.1f} GFLOP/s; {ratio:.2f} sub-words per word; "
              f"{per_sent:.1f} words per sentence",
              *(f"- {t}: probe {m.probe_s[t]:.1f} s, neurons {m.neurons_s[t]:.1f} s "
                f"({m.train_words[t]} train words, {m.classes[t]} classes)" for t in m.probe_s),
              "",
              f"Paper run: {n_models} models x {n_glue} GLUE tasks x {seeds} seeds = {n_finetune} fine-tunings; "
              f"{n_variants} variants per model x {n_probe} probing tasks = {n_stores} extractions, probes and "
              "neuron analyses.",
              "",
              "| stage kind | stages | FLOPs | GPU-hours | on one CPU thread at the measured rate |",
              "|---|---|---|---|---|",
              f"| finetune | {n_finetune} | {ft_flops:.2e} | {ft_flops / gpu_rate / 3600:.1f} | "
              f"{ft_flops / cpu_rate_ft / 3600:,.0f} h |",
              f"| extract | {n_stores} | {ex_flops:.2e} | {ex_flops / gpu_rate / 3600:.1f} | "
              f"{ex_flops / cpu_rate_ex / 3600:,.0f} h |",
              f"| probe | {n_stores} | - | (CPU) | {probe_h:,.0f} core-hours |",
              f"| neurons | {n_stores} | - | (CPU) | {neuron_h:,.0f} core-hours |",
              "",
              "Fine-tuning GPU-hours per GLUE task (all models and seeds): "
              + ", ".join(f"{t} {f / gpu_rate / 3600:.2f}" for t, f in ft_task.items()) + ".",
              "",
              "| probing task | classes | words per store | store (float16) | probe, per store | neurons, per store |",
              "|---|---|---|---|---|---|",
              *(f"| {t} | {PROBES[t][0]:,} | {paper_words[t]:,} | {store[t] / GB:.2f} GB | {probe_s[t] / 60:.0f} min | "
                f"{neuron_s[t] / 60:.0f} min |" for t in PROBES),
              "",
              f"Disk: {n_stores} stores = {stores_total / GB:,.0f} GB; models (float32 safetensors, "
              f"{n_models} base + {n_finetune} fine-tuned) = {model_bytes / GB:,.0f} GB; total "
              f"{(stores_total + model_bytes) / GB:,.0f} GB (the stores stay out of DVC's cache; the models are "
              f"cached, another {model_bytes / GB:,.0f} GB as copies with the default cache.type). Peak per worker "
              f"({gpus_per_node} GPU + {cpus_per_node} CPU slots, each "
              f"on at most one store, plus the base models in the hub cache): {per_worker / GB:.0f} GB.",
              "",
              f"Assumptions: {gpu_tflops:g} TFLOP/s effective per GPU (--gpu-tflops); FLOPs = 6 (train) or 2 "
              "(forward) x non-embedding weights x tokens, attention's length-squared term left out; every "
              f"fine-tuning example padded to {MAX_LENGTH} tokens, the offline ones counted at "
              f"{m.finetune_length} (they are padded per batch to fewer, so the CPU rate above is an upper bound); "
              "dev evaluated after each epoch; the paper's stores hold the first "
              f"{TRAIN_TOKENS:,} train tokens plus dev and test at the offline words per sentence and "
              "sub-words per word (PMB's sentences are shorter, so sem-pmb's store is overstated); dev/test sentence "
              "counts from PAPER.md (a hint); probe time scales with "
              "train words x neurons x classes and the neuron analysis with neurons x classes (its word "
              "subsample is fixed), each from the offline task named in MEASURED_AS; probes and the neuron "
              "analysis run on CPUs, one thread each, as the Ray executor asks."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="the repository with the measured offline run")
    ap.add_argument("--seeds", type=int, default=3, help="fine-tuning seeds per (model, GLUE task)")
    ap.add_argument("--gpu-tflops", type=float, default=50.0, help="effective TFLOP/s of one GPU")
    ap.add_argument("--gpus-per-node", type=int, default=1)
    ap.add_argument("--cpus-per-node", type=int, default=8)
    args = ap.parse_args()
    print(plan(measure(args.root), args.seeds, args.gpu_tflops, args.gpus_per_node, args.cpus_per_node))


if __name__ == "__main__":
    main()
