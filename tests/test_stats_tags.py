"""Per-tag precision/recall/F1 and confusion matrices (pipeline.stats.tags computes them with scikit-learn's
metrics; checked here against a plain-Python count, independent of scikit-learn)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import LingShiftError
from pipeline.stats.tags import f1_deltas, per_tag_scores, rank_tag_losses


def reference_prf(pred, gold, n_labels):
    """Plain-Python per-tag precision/recall/F1 (zero where undefined, as scikit-learn's zero_division=0)."""
    out = []
    for t in range(n_labels):
        tp = sum(p == t and g == t for p, g in zip(pred, gold, strict=True))
        n_pred = sum(p == t for p in pred)
        n_gold = sum(g == t for g in gold)
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold if n_gold else 0.0
        out.append((prec, rec, 2 * prec * rec / (prec + rec) if prec + rec else 0.0, n_gold))
    return np.array(out)


def test_matches_reference_per_layer():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 6, 300)
    gold[gold == 5] = 4  # tag 5 has no gold words
    pred = np.where(rng.random((3, 300)) < 0.6, gold, rng.integers(0, 7, (3, 300)))
    pred[2][pred[2] == 3] = 0  # tag 3 never predicted in layer 2
    scores = per_tag_scores(pred, gold, n_labels=7)
    assert scores.f1.shape == (3, 7) and scores.support.tolist() == np.bincount(gold, minlength=7).tolist()
    for layer in range(3):
        ref = reference_prf(pred[layer].tolist(), gold.tolist(), 7)
        np.testing.assert_allclose(scores.precision[layer], ref[:, 0], atol=1e-12)
        np.testing.assert_allclose(scores.recall[layer], ref[:, 1], atol=1e-12)
        np.testing.assert_allclose(scores.f1[layer], ref[:, 2], atol=1e-12)
        assert scores.predicted[layer].tolist() == np.bincount(pred[layer], minlength=7).tolist()
        hand = np.zeros((7, 7), dtype=np.int64)
        for g, p in zip(gold, pred[layer], strict=True):
            hand[g, p] += 1  # rows: gold tag, columns: predicted tag
        np.testing.assert_array_equal(scores.confusion[layer], hand)


def test_hand_example_and_default_n_labels():
    s = per_tag_scores([0, 1, 1, 2], [0, 1, 2, 2])
    assert s.precision.tolist() == [1.0, 0.5, 1.0]
    assert s.recall.tolist() == [1.0, 1.0, 0.5]
    np.testing.assert_allclose(s.f1, [1.0, 2 / 3, 2 / 3])


def test_deltas_and_ranking():
    gold = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    base = np.stack([gold, gold])
    ft = np.stack([gold, np.array([0, 0, 1, 1, 1, 1, 1, 2])])  # layer 1 loses tag 2 recall, tag 1 precision
    d = f1_deltas(base, ft, gold, n_labels=3)
    assert d.shape == (2, 3) and d[0].tolist() == [0, 0, 0]
    assert d[1, 2] < d[1, 1] < 0 == d[1, 0]
    # a seeds axis on the fine-tuned side is averaged
    np.testing.assert_allclose(f1_deltas(base, np.stack([ft, base]), gold, 3), d / 2)
    b = per_tag_scores(base, gold, 3)
    f = per_tag_scores(ft, gold, 3)
    rows = rank_tag_losses(b.f1[1], f.f1[1], b.support, ["DT", "NN", "VB"])
    assert [r["tag"] for r in rows] == ["VB", "NN", "DT"]
    assert rows[0] == {"tag": "VB", "label_id": 2, "support": 4, "f1_base": 1.0,
                       "f1_finetuned": pytest.approx(0.4), "delta": pytest.approx(-0.6)}  # p 1, r 1/4
    assert rows[1]["delta"] == pytest.approx(2 * 0.4 / 1.4 - 1)  # NN: p 2/5, r 1
    assert [r["tag"] for r in rank_tag_losses(b.f1[1], f.f1[1], b.support, ["DT", "NN", "VB"], min_support=3)] == \
        ["VB"]


@pytest.mark.parametrize("call", [
    lambda: per_tag_scores([0, 1], [0, 1, 1]),
    lambda: per_tag_scores([0, 5], [0, 1], n_labels=3),
    lambda: per_tag_scores([0, -1], [0, 1]),
    lambda: per_tag_scores([0.0, 1.0], [0, 1]),
    lambda: per_tag_scores([], []),
    lambda: f1_deltas([[0, 1]], [[0, 1], [1, 1]], [0, 1], 2),
    lambda: rank_tag_losses([1.0], [1.0, 0.5], [1, 1], ["A", "B"]),
])
def test_bad_input(call):
    with pytest.raises(LingShiftError):
        call()


# -- integration: the committed per-tag F1 recomputed from the saved seed-0 probes and the real stores ----------
ROOT = Path(__file__).resolve().parents[1]


def committed_layer_files() -> list[Path]:
    return sorted((ROOT / "results" / "layers").glob("*/*/*.json"))


@pytest.mark.integration
@pytest.mark.parametrize("path", committed_layer_files(), ids=lambda p: "/".join(p.with_suffix("").parts[-3:]))
def test_committed_per_tag_f1_is_what_the_scores_give(path: Path) -> None:
    """``per_tag`` of every committed layer result equals per_tag() of its saved probe on its store, to the byte
    of the JSON (the probe stage's rounding), so the scores' implementation cannot move a committed number."""
    from pipeline.probing.linear import LinearProbe
    from pipeline.records import LayerResult
    from pipeline.stages.probe import per_tag
    from pipeline.store import ActivationStore

    model, variant, task = path.with_suffix("").parts[-3:]
    store, saved = ROOT / "activations" / model / variant / task, ROOT / "results" / "probes" / model / variant / task
    if not (store / "meta.json").is_file() or not (saved / "probe.json").is_file():
        pytest.skip(f"needs {store.relative_to(ROOT)} and {saved.relative_to(ROOT)} (run: make repro)")
    committed = LayerResult.read(path).per_tag.model_dump(mode="json")
    recomputed = per_tag(ActivationStore(store), LinearProbe.load(saved, device="cpu"))
    assert json.dumps(recomputed, sort_keys=True) == json.dumps(committed, sort_keys=True)
