"""Stage ``probe``: layer-wise probes with seeds, sentence-level bootstrap intervals, the control task, the
lexical baseline and per-tag F1.

``probe.solver`` picks the estimator: ``ours`` (pipeline.probing.solver, the default) or ``sklearn`` (the
reference LogisticRegression of pipeline.probing.reference, C chosen on dev; deterministic, so one fit serves
every seed). The neuron analysis keeps our solver either way."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.atomic import atomic_dir
from pipeline.config import Params
from pipeline.layout import Layout
from pipeline.records import LayerResult, PackedBits, PackedCorrect, Provenance, RunLog, words_digest
from pipeline.stages.common import open_store, probe_kwargs
from pipeline.store import StoreError

if TYPE_CHECKING:
    from pipeline.probing.linear import LinearProbe
    from pipeline.probing.solver import SolverConfig
    from pipeline.store import ActivationStore

log = logging.getLogger(__name__)

#: What the probe seeds vary: probe weights start at zero (pipeline.probing.solver), so only the order of
#: the training batches depends on the seed.
SEEDS_VARY = "batch order (weights start at zero)"
#: ... and with ``probe.solver: sklearn`` (full-batch L-BFGS from zero: no randomness).
SEEDS_VARY_SKLEARN = "nothing (sklearn's L-BFGS is deterministic: one fit serves every seed)"
#: How the lexical baseline breaks ties (claims.yaml P4: the tag seen first in training order).
LEXICAL_TIES = "first_seen"


def probe(params: Params, root: Path, model_name: str, variant: str, task: str) -> Path:
    """Layer-wise probes on one store: accuracy per layer over seeds with bootstrap intervals,
    the control task's selectivity, and the trained probe (seed ``seeds[0]``) for the API.

    Writes ``results/layers/<model>/<variant>/<task>.json``, ``results/probes/<model>/<variant>/<task>/``
    and the run log ``results/runs/probe/<model>-<variant>-<task>.json``.
    """
    from pipeline.probing.solver import SolverConfig
    from pipeline.stats.resample import accuracy_over_seeds

    lay = Layout.of(params, root).results
    st = open_store(params, root, model_name, variant, task)
    uncased = store_uncased(st)
    seeds = params.probe.seeds
    config = SolverConfig(**probe_kwargs(params), seed=seeds[0])
    solver = params.probe.solver
    t0 = time.perf_counter()
    trained, first = layer_probe(st, config, solver)
    correct = seed_correct(st, seeds, config, trained, solver)
    unc = {"layers": trained.layer_ids, "seeds": [int(s) for s in seeds],
           **accuracy_over_seeds(correct, st.sentence_ids("test"), n_boot=params.probe.n_boot, seed=params.seed),
           "label_names": list(st.label_names)}
    test = st.split_rows("test")
    test_labels = [st.label_names[i] for i in st.labels[test]]
    control = control_task(st, config, first["test"]["accuracy"], uncased=uncased, solver=solver) \
        if params.probe.runs_control(variant) else None
    fit_seconds = first["history"].get("seconds")
    s0, s1 = st.splits["test"]
    result = LayerResult.model_validate({
        "model": model_name, "variant": variant, "task": task, "layers": unc["layers"],
        "test_accuracy": unc, "dev_accuracy": first["dev"]["accuracy"],
        "seed0": {**first, "history": {k: v for k, v in first["history"].items() if k != "seconds"}},
        "control": control, "n_test_words": int(test.stop - test.start),
        "majority_baseline": majority_baseline(st),
        "lexical_baseline": lexical_baseline(st),
        "test_correct": PackedCorrect.encode(correct),
        "test_words_sha256": words_digest(st.flat_words()[test], test_labels),
        "test_sentence_lengths": np.diff(st.offsets[s0:s1 + 1]).tolist(),
        "seeds_vary": SEEDS_VARY if solver == "ours" else SEEDS_VARY_SKLEARN,
        "per_tag": per_tag(st, trained),
        "store": {k: st.meta[k] for k in ("n_words", "n_layers", "dim", "aggregation", "splits")},
        "provenance": Provenance.collect(params.probe.provenance(), params.seed, st.meta.get("model_source")),
    })
    out = result.write(lay.layer(model_name, variant, task))
    with atomic_dir(lay.probe_dir(model_name, variant, task)) as tmp:
        trained.save(tmp)
    seconds = time.perf_counter() - t0
    timings = {"stage": seconds, **({"seed0_fit": fit_seconds} if fit_seconds else {})}
    RunLog.now("probe", f"{model_name}-{variant}-{task}", timings).write(
        lay.run_log("probe", model_name, variant, task))
    log.info("probe %s/%s/%s: test accuracy per layer %s (%.1f s) -> %s", model_name, variant, task,
             " ".join(f"{a:.3f}" for a in result.mean), seconds, out)
    return out


def fit_layers(X: Any, y: Any, X_dev: Any, y_dev: Any, config: SolverConfig, label_names: Any,
               solver: str = "ours") -> tuple[LinearProbe, dict[str, Any], dict[str, Any]]:
    """One probe per layer of ``X: float [words, layers, dim]`` with ``solver`` (``ours``: ``config``;
    ``sklearn``: the reference's defaults), the epoch (or ``C``) chosen on dev.

    Returns the probe, its settings and its history (JSON-friendly, with ``seconds``)."""
    from pipeline.probing.views import PerLayer

    if solver == "sklearn":
        from pipeline.probing.reference import fit_probe

        probe, history = fit_probe(X, y, X_dev, y_dev, label_names=label_names)
        assert probe.training is not None
        return probe, {**probe.training["params"], **PerLayer().to_json()}, history
    from pipeline.probing.solver import fit

    view = PerLayer()
    probe, hist = fit(X, y, X_dev, y_dev, view=view, config=config, label_names=label_names)
    return probe, {**config.to_dict(), **view.to_json()}, hist.to_dict()


def layer_probe(st: ActivationStore, config: SolverConfig, solver: str = "ours") -> tuple[LinearProbe, dict[str, Any]]:
    """Probes of every layer of store ``st``: trained on train, epochs selected on dev, scored on dev and test.

    Returns the probe and a JSON-friendly record (settings, label names, dev and test evaluation, history).
    """
    probe, settings, history = fit_layers(*st.split("train"), *st.split("dev"), config, st.label_names, solver)
    res = {
        "params": settings,
        "label_names": list(st.label_names),
        "train_label_names": probe.label_names,
        "dev": probe.evaluate(*st.split("dev")),
        "test": probe.evaluate(*st.split("test")),
        "history": {k: history[k] for k in ("dev_accuracy", "train_loss", "best_epoch", "seconds", "resident",
                                            "n_train")},
        "standardized": config.standardize if solver == "ours" else bool(settings["standardize"]),
    }
    return probe, res


def seed_correct(st: ActivationStore, seeds: list[int], config: SolverConfig,
                 trained: LinearProbe | None = None, solver: str = "ours") -> np.ndarray:
    """Test correctness ``bool [seeds, layers, words]`` of layer probes trained with each of ``seeds``.

    ``trained``: a probe already fitted on ``st`` with ``config`` (its seed included); it stands in for
    that seed instead of being trained again (with ``solver="sklearn"``, which has no seed: for every seed).
    """
    X_test, y_test = st.split("test")
    out = []
    for seed in seeds:
        if trained is not None and (config.seed == int(seed) or solver == "sklearn"):
            probe = trained
        else:
            probe, _, _ = fit_layers(*st.split("train"), *st.split("dev"), replace(config, seed=int(seed)),
                                     st.label_names, solver)
        out.append(probe.correct(X_test, y_test))
    return np.stack(out)


def control_task(st: ActivationStore, config: SolverConfig, task_accuracy: list[float],
                 uncased: bool = False, solver: str = "ours") -> dict[str, Any]:
    """Layer probes on the control task of store ``st`` (seed ``config.seed``) and their selectivity per layer.

    The control labels use the training split's label distribution; ``config`` should be the task probe's
    and ``task_accuracy`` its test accuracy per layer. Word types follow the tokenizer: ``uncased`` folds
    them as an uncased BERT tokenizer does (:func:`pipeline.stats.lexical.normalise_word`), so ``The`` and
    ``the`` are one type with one control label. JSON-friendly.
    """
    from pipeline.probing.control import control_labels, label_distribution, selectivity
    from pipeline.stats.lexical import normalise_word

    words = st.flat_words()
    types = [normalise_word(w, uncased=True) for w in words] if uncased else words
    dist = label_distribution(st.split("train")[1], len(st.label_names))
    ctrl = control_labels(types, dist, seed=config.seed)
    data = {s: (st.split(s)[0], ctrl[st.split_rows(s)]) for s in ("train", "dev", "test")}
    probe, settings, _ = fit_layers(*data["train"], *data["dev"], config, st.label_names, solver)
    control_test = probe.evaluate(*data["test"])
    return {
        "layers": control_test["layers"],
        "task_accuracy": task_accuracy,
        "control_accuracy": control_test["accuracy"],
        "selectivity": selectivity(task_accuracy, control_test["accuracy"]),
        "control": {"seed": config.seed, "word_types": "uncased" if uncased else "cased", "n_types": len(set(types)),
                    "distribution": dist.tolist()},
        "label_names": list(st.label_names),
        "params": settings,
    }


def majority_baseline(st: ActivationStore) -> dict[str, Any]:
    """Test accuracy of always predicting the most frequent training label of store ``st``."""
    train, test = st.split("train")[1], st.split("test")[1]
    top = int(np.bincount(train, minlength=len(st.label_names)).argmax())
    return {"label": st.label_names[top], "test_accuracy": float((test == top).mean())}


def store_uncased(st: ActivationStore) -> bool:
    """Whether the store's model has an uncased tokenizer (``meta.json``'s ``tokenizer_uncased``, written
    by the extract stage)."""
    flag = st.meta.get("tokenizer_uncased")
    if not isinstance(flag, bool):
        raise StoreError(f"{st.path}/meta.json does not say whether the tokenizer is uncased (tokenizer_uncased); "
                         "the store predates that field",
                         "Re-run the extract stage for this store: dvc repro extract")
    return flag


def lexical_baseline(st: ActivationStore) -> dict[str, Any]:
    """The lexical baseline of store ``st`` (claims.yaml P4): each word form's most frequent training tag
    (forms as written, ties to the tag seen first in training), unseen forms the majority training tag;
    its dev and test accuracy and its test correctness ``bool [test words]`` packed. JSON-friendly."""
    from pipeline.stats.lexical import fit_lexical

    words = st.flat_words()
    train = st.split_rows("train")
    model = fit_lexical(words[train], st.labels[train], normalise=None, ties=LEXICAL_TIES)
    scores = {}
    for split in ("dev", "test"):
        rows = st.split_rows(split)
        scores[split] = model.predict(words[rows]) == st.labels[rows]
    test_words = words[st.split_rows("test")]
    unseen = st.label_names[model.majority]
    return {"rule": "the most frequent training tag of each word form as written (cased); ties: the tag seen first "
                    f"in training order; unseen forms: the majority training tag ({unseen})",
            "ties": LEXICAL_TIES, "word_types": "cased", "unseen_label": unseen,
            "dev_accuracy": float(scores["dev"].mean()) if scores["dev"].size else float("nan"),
            "test_accuracy": float(scores["test"].mean()),
            "n_test_unseen": int((~model.seen(test_words)).sum()),
            "test_correct": PackedBits.encode(scores["test"])}


def per_tag(st: ActivationStore, probe: LinearProbe, digits: int = 4) -> dict[str, Any]:
    """Per-tag F1 on the test split of ``probe`` (one per layer) over the store's labels, rounded to
    ``digits``: ``{labels, support int [labels], f1 [layers][labels]}``."""
    from pipeline.stats.tags import per_tag_scores

    X, y = st.split("test")
    predicted = np.asarray(probe.predict(X)).T  # [layers, words]: the store's label ids
    scores = per_tag_scores(predicted.astype(np.int64), y.astype(np.int64), len(st.label_names))
    return {"labels": list(st.label_names), "support": scores.support.tolist(),
            "f1": np.round(scores.f1, digits).tolist()}
