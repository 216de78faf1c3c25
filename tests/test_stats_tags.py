"""Per-tag precision/recall/F1 (against scikit-learn when installed, else a plain-Python reference)."""

from __future__ import annotations

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


def expected_prf(pred, gold, n_labels):
    """scikit-learn's scores when it is installed, else the plain reference."""
    try:
        from sklearn.metrics import precision_recall_fscore_support
    except ImportError:
        return reference_prf(pred, gold, n_labels)
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=list(range(n_labels)), average=None,
                                                 zero_division=0)
    return np.stack([p, r, f, s], axis=1)


def test_matches_reference_per_layer():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 6, 300)
    gold[gold == 5] = 4  # tag 5 has no gold words
    pred = np.where(rng.random((3, 300)) < 0.6, gold, rng.integers(0, 7, (3, 300)))
    pred[2][pred[2] == 3] = 0  # tag 3 never predicted in layer 2
    scores = per_tag_scores(pred, gold, n_labels=7)
    assert scores.f1.shape == (3, 7) and scores.support.tolist() == np.bincount(gold, minlength=7).tolist()
    for layer in range(3):
        ref = expected_prf(pred[layer].tolist(), gold.tolist(), 7)
        np.testing.assert_allclose(scores.precision[layer], ref[:, 0], atol=1e-12)
        np.testing.assert_allclose(scores.recall[layer], ref[:, 1], atol=1e-12)
        np.testing.assert_allclose(scores.f1[layer], ref[:, 2], atol=1e-12)
        assert scores.predicted[layer].tolist() == np.bincount(pred[layer], minlength=7).tolist()


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
