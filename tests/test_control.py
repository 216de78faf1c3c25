"""Control tasks (Hewitt & Liang 2019): labels are a function of the word type; selectivity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_probe import FAST, make_store

from pipeline.probing.control import control_labels, label_distribution, selectivity
from pipeline.probing.inputs import ProbeInputError
from pipeline.stages.probe import control_task, layer_probe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


WORDS = "the cat sat on the mat and the dog sat on the cat".split()


def test_control_label_is_a_function_of_the_word_type() -> None:
    lab = control_labels(WORDS, [0.2, 0.3, 0.5], seed=1)
    by_type: dict[str, set[int]] = {}
    for w, label in zip(WORDS, lab, strict=True):
        by_type.setdefault(w, set()).add(int(label))
    assert all(len(v) == 1 for v in by_type.values())
    # the same type keeps its label in another corpus order or a subset
    sub = control_labels(["mat", "dog", "the"], [0.2, 0.3, 0.5], seed=1)
    assert sub.tolist() == [next(iter(by_type[w])) for w in ("mat", "dog", "the")]


def test_control_labels_depend_on_seed_and_follow_the_distribution() -> None:
    words = [f"type{i}" for i in range(20000)]
    p = np.array([0.5, 0.0, 0.3, 0.2])
    lab = control_labels(words, p, seed=0)
    freq = np.bincount(lab, minlength=4) / len(lab)
    np.testing.assert_allclose(freq, p, atol=0.015)
    assert freq[1] == 0  # a label with probability 0 is never drawn
    assert (control_labels(words, p, seed=1) != lab).mean() > 0.3
    np.testing.assert_array_equal(control_labels(words, p, seed=0), lab)


def test_lowercase_merges_types() -> None:
    words = [f"W{i}" for i in range(50)] + [f"w{i}" for i in range(50)]
    lab = control_labels(words, [0.5, 0.5], seed=3, lowercase=True)
    np.testing.assert_array_equal(lab[:50], lab[50:])
    assert (control_labels(words, [0.5, 0.5], seed=3)[:50] != control_labels(words, [0.5, 0.5], seed=3)[50:]).any()


def test_label_distribution_and_validation() -> None:
    np.testing.assert_allclose(label_distribution(np.array([0, 2, 2, 2]), 4), [0.25, 0, 0.75, 0])
    with pytest.raises(ProbeInputError, match="class ids"):
        label_distribution(np.array([0.5, 1.0]))
    with pytest.raises(ProbeInputError, match="non-negative"):
        control_labels(["a"], [-0.1, 1.1])


def test_selectivity() -> None:
    assert selectivity([0.9, 0.8], [0.6, 0.7]) == pytest.approx([0.3, 0.1])
    with pytest.raises(ProbeInputError, match="differ"):
        selectivity([0.9], [0.6, 0.7])


def test_control_task_on_a_store(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store")
    _, task = layer_probe(store, FAST)
    res = control_task(store, FAST, task["test"]["accuracy"])
    json.dumps(res)
    assert res["layers"] == [0, 1, 2] and res["task_accuracy"] == task["test"]["accuracy"]
    assert res["selectivity"] == pytest.approx(np.subtract(res["task_accuracy"], res["control_accuracy"]).tolist())
    # the task is linearly separable in layers 1-2; its control labels follow word types, which the
    # activations do not encode, so those layers are selective
    assert min(res["selectivity"][1:]) > 0.3
    assert res["control"]["n_types"] <= 40
