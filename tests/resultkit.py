"""Build result files through :mod:`pipeline.records` from chosen per-layer accuracies (for the claims,
report, gate and API tests). Every file is a real, validated record; only the numbers are made up."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.layout import ResultsLayout
from pipeline.records import (
    ClaimsFile,
    FinetuneResult,
    LayerResult,
    NeuronResult,
    PackedBits,
    PackedCorrect,
    Provenance,
    load_results,
    words_digest,
)
from pipeline.variants import checkpoint

REPO = Path(__file__).resolve().parents[1]
N_WORDS = 2000
LEXICAL = 0.80      # lexical-baseline accuracy of constructed layer results
SENTENCE = 10       # words per constructed test sentence
PROVENANCE = Provenance(config={"made_by": "tests/resultkit.py"}, seed=42, versions={"python": "3.11"})


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


def sentence_lengths(n_words: int = N_WORDS, sentence_length: int = SENTENCE) -> list[int]:
    """Test sentences of ``sentence_length`` words (the last one shorter) covering ``n_words`` words."""
    full, rest = divmod(n_words, sentence_length)
    return [sentence_length] * full + ([rest] if rest else [])


def layer_record(model: str, variant: str, task: str, acc: list[float], words: str = "same",
                 n_words: int = N_WORDS, lexical: float = LEXICAL, sentence_length: int = SENTENCE,
                 seed: int = 0, tag_f1: dict[str, list[float]] | None = None) -> LayerResult:
    """A probe-stage result whose seed-averaged test accuracy per layer is ``acc`` (rounded to words).

    ``lexical``: the lexical baseline's test accuracy (its correct words are the first ones in
    :func:`correctness`'s order, so they are a subset of any more accurate layer's); ``sentence_length``:
    words per test sentence; ``seed`` picks which words are right (another fine-tuning seed: another seed);
    ``tag_f1``: per-tag F1 per layer (tag -> ``[layers]``; default: NN and VB with the layer's accuracy).
    """
    c = correctness(acc, n_words, seed)
    mean = c.mean(-1)[0].tolist()
    ci = (1.96 * np.sqrt(np.asarray(mean) * (1 - np.asarray(mean)) / n_words)).tolist()
    layers = list(range(len(acc)))
    tag_f1 = tag_f1 if tag_f1 is not None else {"NN": mean, "VB": mean}
    tags = sorted(tag_f1)
    support = [n_words // len(tags)] * len(tags)
    support[0] += n_words - sum(support)
    labels = ["NN", "VB"]
    lex = correctness([lexical], n_words, seed)[0, 0]
    lengths = sentence_lengths(n_words, sentence_length)
    evaluation = {"layers": layers, "accuracy": mean, "n_words": n_words, "n_unseen_label_words": 0,
                  "unseen_labels": [], "label_names": labels}
    return LayerResult.model_validate({
        "model": model, "variant": variant, "task": task, "layers": layers,
        "test_accuracy": {"layers": layers, "label_names": labels, "seeds": [0], "per_seed": [mean], "mean": mean,
                          "std": [0.0] * len(acc),
                          "bootstrap": {"accuracy": mean, "ci_low": [m - d for m, d in zip(mean, ci, strict=True)],
                                        "ci_high": [m + d for m, d in zip(mean, ci, strict=True)],
                                        "n_words": n_words, "n_sentences": len(lengths), "n_boot": 100,
                                        "alpha": 0.05, "seed": 0, "bootstrap_unit": "sentence"}},
        "dev_accuracy": mean,
        "seed0": {"params": {"seed": 0}, "label_names": labels, "train_label_names": labels, "dev": evaluation,
                  "test": evaluation, "standardized": False,
                  "history": {"dev_accuracy": [mean], "train_loss": [[0.5] * len(acc)], "best_epoch": [1] * len(acc),
                              "resident": True, "n_train": 10 * n_words}},
        "control": {"layers": layers, "task_accuracy": mean, "control_accuracy": [0.5] * len(acc),
                    "selectivity": [m - 0.5 for m in mean], "label_names": labels, "params": {"seed": 0},
                    "control": {"seed": 0, "word_types": "uncased", "n_types": 100, "distribution": [0.5, 0.5]}},
        "n_test_words": n_words,
        "majority_baseline": {"label": "NN", "test_accuracy": 0.15},
        "lexical_baseline": {"rule": "most frequent training tag per word form (tests/resultkit.py)",
                             "ties": "first_seen", "word_types": "cased", "unseen_label": "NN",
                             "dev_accuracy": float(lex.mean()), "test_accuracy": float(lex.mean()), "n_test_unseen": 0,
                             "test_correct": PackedBits.encode(lex)},
        "test_correct": PackedCorrect.encode(c),
        "test_words_sha256": words_digest([f"w{i}" for i in range(n_words)], [words] * n_words),
        "test_sentence_lengths": lengths,
        "seeds_vary": "batch order (weights start at zero)",
        "per_tag": {"labels": tags, "support": support,
                    "f1": [[round(tag_f1[t][i], 4) for t in tags] for i in range(len(acc))]},
        "store": {"n_words": 12 * n_words, "n_layers": len(acc), "dim": 10, "aggregation": "last",
                  "splits": {"train": [0, 80], "dev": [80, 90], "test": [90, 100]}},
        "provenance": PROVENANCE,
    })


def _spread(ids: list[int], dim: int, n_layers: int) -> dict[str, object]:
    counts = [sum(1 for i in ids if i // dim == layer) for layer in range(n_layers)]
    total = max(1, len(ids))
    return {"counts": counts, "fractions": [c / total for c in counts],
            "mean_layer": sum(layer * c for layer, c in enumerate(counts)) / total}


def _salience(k: int, topk: float, rnd: float, topk_ablated: float, rnd_ablated: float,
              n_random: int = 100) -> dict[str, object]:
    """A salience block: the top-k at ``topk`` against random sets around ``rnd`` (+-0.01), ablation alike."""
    sel, abl = topk > rnd + 0.01, topk_ablated < rnd_ablated - 0.01

    def interval(m: float) -> dict[str, float]:
        return {"mean": m, "ci_low": m - 0.01, "ci_high": m + 0.01, "mean_ci_low": m - 0.001,
                "mean_ci_high": m + 0.001}

    return {"n_random": n_random, "k": k, "alpha": 0.05, "topk_accuracy": topk, "topk_accuracy_per_seed": [topk] * 5,
            "random_accuracy": interval(rnd), "selection_salient": sel, "salient": sel and abl,
            "ablation": {"topk_accuracy": topk_ablated, "topk_accuracy_per_seed": [topk_ablated] * 5,
                         "random_accuracy": interval(rnd_ablated), "salient": abl, "reason": "ablation"},
            "reason": "salient" if sel and abl else "not salient", "recipe": {"train_words": 80, "epochs": 4}}


def salience_block(salient: bool = True, n_random: int = 200, k: int = 10) -> dict[str, object]:
    """A salience block (claims.yaml P8): top-k 0.89 against random k-sets around 0.80 (or 0.89: not salient)."""
    return _salience(k, 0.89, 0.80 if salient else 0.89, 0.85, 0.88 if salient else 0.85, n_random=n_random)


def rankings_block(raw: list[float], standardised: list[float] | None = None) -> dict[str, list[float]]:
    """The minimal set's mean layer per oracle seed under the raw and the standardised ranking."""
    return {"raw": raw, "standardised": raw if standardised is None else standardised}


def neuron_record(model: str, variant: str, task: str, layer_counts: list[int], dim: int = 10, *,
                  salient: bool = True, standardised_counts: list[int] | None = None,
                  salience: dict[str, object] | None = None,
                  rankings: dict[str, list[float]] | None = None) -> NeuronResult:
    """A neurons-stage result whose minimal set has ``layer_counts[l]`` neurons in layer ``l`` (for all 5 oracle
    seeds; the standardised ranking's top-k: ``standardised_counts``, default the same); ``salient``: whether
    the top-k beats random k-sets in both salience tests. ``salience`` (:func:`salience_block`) and
    ``rankings`` (:func:`rankings_block`: mean layer per oracle seed) replace those blocks."""
    n_layers = len(layer_counts)
    neurons = [layer * dim + j for layer, c in enumerate(layer_counts) for j in range(c)]
    rest = [i for i in range(n_layers * dim) if i not in set(neurons)]
    k = len(neurons)
    std_counts = layer_counts if standardised_counts is None else standardised_counts
    raw_mean, std_mean = _spread(neurons, dim, n_layers)["mean_layer"], \
        sum(layer * c for layer, c in enumerate(std_counts)) / max(1, sum(std_counts))
    shared = sum(min(a, b) for a, b in zip(layer_counts, std_counts, strict=True)) / max(1, k)
    extra = {
        "oracle_seeds": {"seeds": [0, 1, 2, 3, 4], "dev": [0.9] * 5, "test": [0.9] * 5},
        "grid_scan": {"k": k, "reached": True, "target": 0.891, "ratio": 0.99, "oracle_dev": 0.9, "step": 0.01,
                      "max_k": k, "seeds": [0, 1, 2], "curve": [{"k": k, "dev_mean": 0.892, "dev_std": 0.001}],
                      "seed_k": [k, k, k], "k_spread": {"min": k, "max": k}, "scanned": 1},
        "layer_shift": {"k": k, "oracle_seeds": [0, 1, 2, 3, 4],
                        "raw": {"mean_layer": [raw_mean] * 5, "counts": [layer_counts] * 5},
                        "standardised": {"mean_layer": [std_mean] * 5, "counts": [std_counts] * 5},
                        "agreement": {"overlap": shared, "mean_layer_diff": std_mean - raw_mean,
                                      "overlap_per_seed": [shared] * 5,
                                      "mean_layer_diff_per_seed": [std_mean - raw_mean] * 5}},
        "salience": _salience(k, 0.89, 0.80 if salient else 0.89, 0.85, 0.88 if salient else 0.85),
    }
    if salience is not None:
        extra["salience"] = salience
    if rankings is not None:
        n_seeds = len(rankings["raw"])
        shift = extra["layer_shift"]
        shift.update(oracle_seeds=list(range(n_seeds)),
                     raw={"mean_layer": rankings["raw"], "counts": [layer_counts] * n_seeds},
                     standardised={"mean_layer": rankings["standardised"], "counts": [std_counts] * n_seeds})
        shift["agreement"].update(overlap_per_seed=[shared] * n_seeds, mean_layer_diff_per_seed=[
            s - r for s, r in zip(rankings["standardised"], rankings["raw"], strict=True)])
    return NeuronResult.model_validate({
        "model": model, "variant": variant, "task": task, "n_layers": n_layers, "dim": dim,
        "n_neurons": n_layers * dim, "label_names": ["NN", "VB"], "all_label_names": ["NN", "VB"],
        "params": {"seed": 0, "ratio": 0.99}, "oracle": {"dev": 0.9, "test": 0.9}, "target_dev": 0.891,
        "ordering": neurons + rest, "cutoffs": [k],
        "minimal_set": {"k": k, "reached": True, "evaluated": {str(k): 0.89}, "neurons": neurons,
                        "accuracy": {"dev": 0.89, "test": 0.89}, "layers": _spread(neurons, dim, n_layers)},
        "baselines": {"random": {"neurons": rest[:k], "accuracy": {"dev": 0.8, "test": 0.8},
                                 "layers": _spread(rest[:k], dim, n_layers)},
                      "bottom": {"neurons": rest[-k:], "accuracy": {"dev": 0.7, "test": 0.7},
                                 "layers": _spread(rest[-k:], dim, n_layers)}},
        "ablation": {"zero_selected": {"dev": 0.85, "test": 0.85}, "zero_random": {"dev": 0.88, "test": 0.88}},
        **extra,
        "provenance": PROVENANCE,
    })


def finetune_record(model: str, task: str, test: float, majority: float = 0.5, seed: int = 42) -> FinetuneResult:
    """A fine-tuning result (checkpoint ``<task>-seed<seed>``) with test accuracy ``test`` against a majority
    baseline of ``majority``."""
    return FinetuneResult.model_validate({
        "model": model, "variant": checkpoint(task, seed), "seed": seed, "task": task, "kind": "classification",
        "base": f"models/{model}/base",
        "main_metric": "accuracy", "scores": {"dev": {"accuracy": test}, "test": {"accuracy": test}},
        "majority_baseline": {s: {"label": "positive", "scores": {"accuracy": majority}} for s in ("dev", "test")},
        "examples": {"train": 100, "dev": 10, "test": 10}, "steps": 7, "epochs_run": 1.0, "train_loss": 0.4,
        "best_dev_step": None, "dev_curve": [], "provenance": PROVENANCE,
    })


def write_layers(results: Path, model: str, variant: str, task: str, acc: list[float], **kw: object) -> None:
    layer_record(model, variant, task, acc, **kw).write(ResultsLayout(results).layer(model, variant, task))


def write_neurons(results: Path, model: str, variant: str, task: str, counts: list[int], **kw: object) -> None:
    neuron_record(model, variant, task, counts, **kw).write(ResultsLayout(results).neurons(model, variant, task))


def write_finetune(results: Path, model: str, task: str, test: float, seed: int = 42) -> None:
    finetune_record(model, task, test, seed=seed).write(ResultsLayout(results).finetune(model, checkpoint(task, seed)))


FLAT = [0.90] * 7                                   # 6 transformer layers + embeddings
DROP_TOP = [0.90, 0.90, 0.90, 0.90, 0.88, 0.85, 0.84]  # lowest third unchanged, top third -5.5 points
SMALL_DROP = [0.90, 0.90, 0.90, 0.90, 0.90, 0.895, 0.895]


def write_claims(results: Path, n_boot: int = 200, profile: str = "offline") -> ClaimsFile:
    """Evaluate the claims of the repository's claims.yaml on ``results`` and write ``claims.json``."""
    from pipeline.analysis.claims import Options, evaluate_claims
    from pipeline.analysis.spec import CLAIM_IDS, load_spec, spec_path

    spec = load_spec(spec_path(Path(__file__).resolve().parents[1]))
    proxy = profile != "paper"
    why = "constructed results" if proxy else None
    cf = ClaimsFile(profile=profile, spec_sha256=spec.sha256, spec_version=spec.spec_version, proxy=proxy,
                    proxy_reason=why, bootstrap_unit="sentence", claims_defined=CLAIM_IDS, n_boot=n_boot,
                    claims=tuple(evaluate_claims(load_results(results), spec,
                                                 Options(n_boot=n_boot, proxy=proxy, proxy_reason=why))),
                    provenance=PROVENANCE)
    cf.write(ResultsLayout(results).claims)
    return cf


SEEDS = (42, 43, 44)


def _shifted(acc: list[float], i: int) -> list[float]:
    """``acc`` moved up by a small seed-dependent amount (the ``i``-th seed: 0.1, 0.2, 0.3, ... points)."""
    return [a + (i + 1) * 0.001 for a in acc]


def offline_like(results: Path, seeds: Sequence[int] = SEEDS) -> None:
    """A complete offline-profile-shaped results folder: minilm x base and ``sentiment``/``hedge`` checkpoints
    (one per fine-tuning seed in ``seeds``, accuracies a little apart) x pos/chunk."""
    for task in ("pos-wsj", "chunk-wsj"):
        write_layers(results, "minilm", "base", task, FLAT)
        # as measured on the offline stores: the top-k does not beat random k-sets (not salient)
        write_neurons(results, "minilm", "base", task, [1, 2, 3, 3, 3, 3, 3], salient=False)
        for i, seed in enumerate(seeds):
            write_layers(results, "minilm", checkpoint("sentiment", seed), task, _shifted(DROP_TOP, i))
            write_layers(results, "minilm", checkpoint("hedge", seed), task, _shifted(SMALL_DROP, i))
            write_neurons(results, "minilm", checkpoint("sentiment", seed), task, [3, 3, 3, 3, 1, 1, 1],
                          salient=False)
            write_neurons(results, "minilm", checkpoint("hedge", seed), task, [2, 3, 3, 3, 2, 2, 2], salient=False)
    for i, seed in enumerate(seeds):
        write_finetune(results, "minilm", "sentiment", 0.84 + 0.005 * i, seed)
        write_finetune(results, "minilm", "hedge", 0.71 + 0.005 * i, seed)


def project(root: Path) -> Path:
    """``root`` with the repository's claims.yaml and profiles (the report reads both)."""
    shutil.copy(REPO / "claims.yaml", root / "claims.yaml")
    shutil.copytree(REPO / "profiles", root / "profiles", dirs_exist_ok=True)
    return root
