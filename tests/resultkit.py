"""Build result files in the pipeline's real JSON formats from chosen per-layer accuracies (for the
claims, report and gate tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.results import encode_correct, words_digest

N_WORDS = 2000


def correctness(acc: list[float], n_words: int = N_WORDS, seed: int = 0, n_seeds: int = 1) -> np.ndarray:
    """``bool [seeds, layers, words]`` whose per-layer accuracy is exactly ``round(acc * n) / n``.

    Words are ordered so that a layer with higher accuracy gets a superset of the correct words of a
    lower one (as for nearby layers and variants), which keeps paired deltas tight.
    """
    order = np.random.default_rng(seed).permutation(n_words)
    out = np.zeros((n_seeds, len(acc), n_words), dtype=bool)
    for i, a in enumerate(acc):
        out[:, i, order[: int(round(a * n_words))]] = True
    return out


def layer_json(model: str, variant: str, task: str, acc: list[float], words: str = "same",
               n_words: int = N_WORDS) -> dict[str, Any]:
    """A probe-stage result object (the fields the pipeline writes that readers use)."""
    c = correctness(acc, n_words)
    mean = c.mean(-1)[0]
    ci = 1.96 * np.sqrt(mean * (1 - mean) / n_words)
    return {
        "model": model, "variant": variant, "task": task, "layers": list(range(len(acc))),
        "test_accuracy": {"mean": mean.tolist(), "std": [0.0] * len(acc), "seeds": [0], "per_seed": [mean.tolist()],
                          "bootstrap": {"ci_low": (mean - ci).tolist(), "ci_high": (mean + ci).tolist()}},
        "control": {"selectivity": (mean - 0.5).tolist()},
        "majority_baseline": {"label": "NN", "test_accuracy": 0.15},
        "n_test_words": n_words,
        "test_correct": encode_correct(c),
        "test_words_sha256": words_digest([f"w{i}" for i in range(n_words)], [words] * n_words),
    }


def neuron_json(model: str, variant: str, task: str, layer_counts: list[int], dim: int = 10) -> dict[str, Any]:
    """A neurons-stage result whose minimal set has ``layer_counts[l]`` neurons in layer ``l``."""
    neurons = [layer * dim + j for layer, c in enumerate(layer_counts) for j in range(c)]
    total = max(1, sum(layer_counts))
    mean_layer = sum(layer * c for layer, c in enumerate(layer_counts)) / total
    return {"model": model, "variant": variant, "task": task, "n_layers": len(layer_counts), "dim": dim,
            "n_neurons": len(layer_counts) * dim, "oracle": {"dev": 0.9, "test": 0.9},
            "minimal_set": {"k": len(neurons), "neurons": neurons, "accuracy": {"dev": 0.89, "test": 0.89},
                            "layers": {"counts": layer_counts, "mean_layer": mean_layer,
                                       "fractions": [c / total for c in layer_counts]}},
            "baselines": {"random": {"accuracy": {"dev": 0.8, "test": 0.8}},
                          "bottom": {"accuracy": {"dev": 0.7, "test": 0.7}}},
            "ablation": {"zero_selected": {"dev": 0.85, "test": 0.85}}}


def finetune_json(task: str, test: float, majority: float = 0.5) -> dict[str, Any]:
    return {"task": task, "main_metric": "accuracy", "test": {"accuracy": test},
            "majority_baseline": {"test": {"accuracy": majority}}}


def write(path: Path, obj: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def write_layers(results: Path, model: str, variant: str, task: str, acc: list[float], **kw: Any) -> None:
    write(results / "layers" / model / variant / f"{task}.json", layer_json(model, variant, task, acc, **kw))


def write_neurons(results: Path, model: str, variant: str, task: str, counts: list[int]) -> None:
    write(results / "neurons" / model / variant / f"{task}.json", neuron_json(model, variant, task, counts))


def write_finetune(results: Path, model: str, task: str, test: float) -> None:
    write(results / "finetune" / f"{model}-{task}.json", finetune_json(task, test))


FLAT = [0.90] * 7                                   # 6 transformer layers + embeddings
DROP_TOP = [0.90, 0.90, 0.90, 0.90, 0.88, 0.85, 0.84]  # lowest third unchanged, top third -5.5 points
SMALL_DROP = [0.90, 0.90, 0.90, 0.90, 0.90, 0.895, 0.895]


def offline_like(results: Path) -> None:
    """A complete offline-profile-shaped results folder (minilm x base/sentiment/hedge x pos/chunk)."""
    for task in ("pos-wsj", "chunk-wsj"):
        write_layers(results, "minilm", "base", task, FLAT)
        write_layers(results, "minilm", "sentiment", task, DROP_TOP)
        write_layers(results, "minilm", "hedge", task, SMALL_DROP)
        write_neurons(results, "minilm", "base", task, [1, 2, 3, 3, 3, 3, 3])
        write_neurons(results, "minilm", "sentiment", task, [3, 3, 3, 3, 1, 1, 1])
        write_neurons(results, "minilm", "hedge", task, [2, 3, 3, 3, 2, 2, 2])
    write_finetune(results, "minilm", "sentiment", 0.84)
    write_finetune(results, "minilm", "hedge", 0.71)
