"""Claims on constructed results: each claim passes, fails, or is not applicable as constructed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from resultkit import DROP_TOP, FLAT, correctness, offline_like, write_layers, write_neurons

from pipeline.claims import CLAIMS, evaluate_claims, thirds
from pipeline.records import ClaimVerdict, PackedCorrect, load_results


def _claims(results: Path) -> dict[str, ClaimVerdict]:
    return {c.id: c for c in evaluate_claims(load_results(results), n_boot=300, seed=1)}


def test_claims_are_data_with_fixed_thresholds() -> None:
    assert [c.id for c in CLAIMS] == ["C1", "C2", "C3", "C4", "C5"]
    for c in CLAIMS:
        assert c.statement and c.operationalisation and c.thresholds
        for name in c.thresholds:  # every threshold is named in the operationalisation it belongs to
            assert f"`{name}`" in c.operationalisation
    c2 = next(c for c in CLAIMS if c.id == "C2")
    assert c2.thresholds == {"low_abs_max_points": 1.0, "top_max_points": -2.0}  # PAPER.md's example


def test_thirds() -> None:
    assert thirds(7) == ([1, 2], [5, 6])           # MiniLM: 6 transformer layers
    assert thirds(13) == ([1, 2, 3, 4], [9, 10, 11, 12])  # base models: 12
    with pytest.raises(ValueError):
        thirds(3)


def test_correctness_round_trip() -> None:
    c = correctness([0.5, 0.75], n_words=8, n_seeds=3)
    c[1, 0, :] = True
    packed = PackedCorrect.encode(c)
    back = PackedCorrect.model_validate(packed.model_dump(mode="json")).decode()
    assert back.shape == (2, 8)
    np.testing.assert_allclose(back, c.mean(0))


def test_offline_shaped_results(tmp_path: Path) -> None:
    offline_like(tmp_path)
    cl = _claims(tmp_path)
    # C1: every base layer equal -> gap 0 -> holds in both units
    assert cl["C1"].status == "PASS" and cl["C1"].n_hold == 2
    # C2: sentiment drops 5.5 points in the top third, hedge 0.5: 2 of 4 units -> not more than half
    assert cl["C2"].status == "FAIL"
    holds = {(u["task"], u["variant"]): u["holds"] for u in cl["C2"].units}
    assert holds == {("pos-wsj", "sentiment"): True, ("chunk-wsj", "sentiment"): True,
                     ("pos-wsj", "hedge"): False, ("chunk-wsj", "hedge"): False}
    u = next(u for u in cl["C2"].units if u["variant"] == "sentiment")
    assert u["delta_top"] == pytest.approx(-5.5, abs=0.01) and u["delta_low"] == pytest.approx(0.0, abs=0.01)
    lo, hi = u["delta_top_ci"]
    assert lo <= u["delta_top"] <= hi and hi < -2  # the drop is clear of the threshold
    # C3/C4: the proxy has neither GLUE task group nor the three architectures
    assert cl["C3"].status == "NOT APPLICABLE" and "sst2" in cl["C3"].reason
    assert cl["C3"].reason.endswith("(this profile has: hedge, sentiment)")
    assert cl["C4"].status == "NOT APPLICABLE" and "RoBERTa" in cl["C4"].reason
    # C5: both variants move neurons down
    assert cl["C5"].status == "PASS" and cl["C5"].n_hold == 4
    for u in cl["C5"].units:
        assert u["delta_mean_layer"] < 0 and u["delta_ci"][0] <= u["delta_mean_layer"] <= u["delta_ci"][1]


def test_c2_passes_when_most_top_layers_drop(tmp_path: Path) -> None:
    write_layers(tmp_path, "minilm", "base", "pos-wsj", FLAT)
    write_layers(tmp_path, "minilm", "sentiment", "pos-wsj", DROP_TOP)
    assert _claims(tmp_path)["C2"].status == "PASS"


def test_c2_fails_when_lower_layers_move(tmp_path: Path) -> None:
    write_layers(tmp_path, "minilm", "base", "pos-wsj", FLAT)
    write_layers(tmp_path, "minilm", "sentiment", "pos-wsj", [0.9, 0.85, 0.85, 0.9, 0.88, 0.85, 0.84])
    c2 = _claims(tmp_path)["C2"]
    assert c2.status == "FAIL" and c2.units[0]["delta_low"] == pytest.approx(-5.0, abs=0.01)


def test_c1_fails_when_a_layer_is_far_below_the_best(tmp_path: Path) -> None:
    write_layers(tmp_path, "minilm", "base", "pos-wsj", [0.8, 0.9, 0.95, 0.95, 0.9, 0.85, 0.80])
    c1 = _claims(tmp_path)["C1"]
    assert c1.status == "FAIL" and c1.units[0]["gap_points"] == pytest.approx(15.0)
    assert c1.units[0]["worst_layer"] == 6 and c1.units[0]["best_layer"] == 2


def test_nothing_to_test_is_not_applicable(tmp_path: Path) -> None:
    cl = _claims(tmp_path)
    assert {c.status for c in cl.values()} == {"NOT APPLICABLE"}
    write_layers(tmp_path, "minilm", "base", "pos-wsj", FLAT)
    cl = _claims(tmp_path)
    assert cl["C1"].status == "PASS"
    assert cl["C2"].status == "NOT APPLICABLE" and "fine-tuned" in cl["C2"].reason


def _glue(results: Path, forgetting_drop: float, keeping_drop: float) -> None:
    base = [0.9] * 13
    write_layers(results, "bert-base-cased", "base", "pos-ptb", base)
    for task, drop in (("sst2", forgetting_drop), ("mnli", forgetting_drop), ("rte", keeping_drop)):
        write_layers(results, "bert-base-cased", task, "pos-ptb", [0.9] * 9 + [0.9 - drop] * 4)


def test_c3_task_groups(tmp_path: Path) -> None:
    _glue(tmp_path / "a", forgetting_drop=0.06, keeping_drop=0.01)
    c3 = _claims(tmp_path / "a")["C3"]
    assert c3.status == "PASS"
    u = c3.units[0]
    assert u["forgetting_variants"] == ["mnli", "sst2"] and u["keeping_variants"] == ["rte"]
    assert u["difference"] == pytest.approx(5.0, abs=0.01) and u["difference_ci"][0] > 0
    _glue(tmp_path / "b", forgetting_drop=0.01, keeping_drop=0.06)
    assert _claims(tmp_path / "b")["C3"].status == "FAIL"


def _archs(results: Path, onsets: dict[str, int]) -> None:
    for model, onset in onsets.items():
        write_layers(results, model, "base", "pos-ptb", [0.9] * 13)
        write_layers(results, model, "sst2", "pos-ptb", [0.9] * onset + [0.85] * (13 - onset))


def test_c4_architectures(tmp_path: Path) -> None:
    _archs(tmp_path / "a", {"bert-base-cased": 10, "roberta-base": 5, "xlnet-base-cased": 4})
    c4 = _claims(tmp_path / "a")["C4"]
    assert c4.status == "PASS"
    assert c4.units[0]["onset_relative_depth"] == pytest.approx({"bert": 10 / 12, "roberta": 5 / 12,
                                                                    "xlnet": 4 / 12}, abs=1e-3)
    _archs(tmp_path / "b", {"bert-base-cased": 3, "roberta-base": 5, "xlnet-base-cased": 8})
    assert _claims(tmp_path / "b")["C4"].status == "FAIL"
    _archs(tmp_path / "c", {"bert-base-cased": 10, "roberta-base": 5})  # no XLNet
    assert _claims(tmp_path / "c")["C4"].status == "NOT APPLICABLE"


def test_c5_fails_when_neurons_move_up(tmp_path: Path) -> None:
    write_neurons(tmp_path, "minilm", "base", "pos-wsj", [3, 3, 3, 3, 1, 1, 1])
    write_neurons(tmp_path, "minilm", "sentiment", "pos-wsj", [1, 2, 3, 3, 3, 3, 3])
    c5 = _claims(tmp_path)["C5"]
    assert c5.status == "FAIL" and c5.units[0]["delta_mean_layer"] > 0


def test_variants_on_different_words_are_not_compared(tmp_path: Path) -> None:
    write_layers(tmp_path, "minilm", "base", "pos-wsj", FLAT)
    write_layers(tmp_path, "minilm", "sentiment", "pos-wsj", DROP_TOP, words="other")
    c2 = _claims(tmp_path)["C2"]
    assert c2.status == "NOT APPLICABLE" and "same test words" in c2.reason


def test_intervals_are_reproducible(tmp_path: Path) -> None:
    offline_like(tmp_path)
    assert evaluate_claims(load_results(tmp_path), n_boot=200, seed=3) == \
        evaluate_claims(load_results(tmp_path), n_boot=200, seed=3)
