"""The claims engine on constructed results: every verdict path of every claim, the aggregation over
independent units, proxy marking, and that the numbers come from claims.yaml."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from resultkit import (
    DROP_TOP,
    FLAT,
    SMALL_DROP,
    correctness,
    layer_record,
    offline_like,
    rankings_block,
    salience_block,
    write_layers,
    write_neurons,
)

from pipeline.analysis.claims import ONE_SEED, Options, evaluate_claims, proxy_reason, short_reasons
from pipeline.analysis.intervals import Pair, delta_replicates, interval
from pipeline.analysis.spec import SpecError, load_spec, spec_path
from pipeline.records import ClaimVerdict, LayerResult, PackedCorrect, ResultsError, load_results

REPO = Path(__file__).resolve().parents[1]
SPEC = load_spec(spec_path(REPO))
PROXY = Options(n_boot=300, seed=1, proxy=True, proxy_reason="constructed results")


def _claims(results: Path, spec=SPEC, options: Options = PROXY) -> dict[str, ClaimVerdict]:  # noqa: ANN001
    return {c.id: c for c in evaluate_claims(load_results(results), spec, options)}


def _units(c: ClaimVerdict) -> dict[str, str]:
    return {u["unit"]: u["verdict"] for u in c.units}


def test_correctness_round_trip() -> None:
    c = correctness([0.5, 0.75], n_words=8, n_seeds=3)
    c[1, 0, :] = True
    back = PackedCorrect.model_validate(PackedCorrect.encode(c).model_dump(mode="json")).decode()
    np.testing.assert_allclose(back, c.mean(0))


def test_layer_record_sentence_ids_and_lexical() -> None:
    r = layer_record("m", "base", "pos-wsj", FLAT, n_words=25, sentence_length=10, lexical=0.8)
    np.testing.assert_array_equal(r.sentence_ids(), [0] * 10 + [1] * 10 + [2] * 5)
    assert r.lexical_correct().shape == (25,) and r.lexical_correct().sum() == 20
    old = {k: v for k, v in r.to_json().items() if k not in ("lexical_baseline", "test_sentence_lengths")}
    with pytest.raises(ResultsError, match="lexical_baseline"):  # an older file is refused with a re-run hint
        LayerResult.from_json(old)


# ---- offline-shaped results: C1 SUPPORTED, C2 units disagree, C3/C4 NOT_APPLICABLE, C5 gated ----------


def test_offline_shaped_results(tmp_path: Path) -> None:
    offline_like(tmp_path)
    cl = _claims(tmp_path)
    assert cl["C1"].verdict == "SUPPORTED"  # 10 points above the lexical baseline, r(2000) = 2.19
    assert cl["C1"].independent_units == {"minilm/wsj-sample": {"verdict": "SUPPORTED",
                                                                "members": ["minilm/chunk-wsj", "minilm/pos-wsj"]}}
    u = cl["C1"].units[0]
    assert u["statistic"] == pytest.approx(10.0) and u["threshold"] == pytest.approx(2.191, abs=1e-3)
    # C2: sentiment drops 5.3 points in the top third (SUPPORTED), hedge 0.3 (CONTRADICTED): the units disagree
    assert _units(cl["C2"]) == {"minilm/hedge/chunk-wsj": "CONTRADICTED", "minilm/hedge/pos-wsj": "CONTRADICTED",
                                "minilm/sentiment/chunk-wsj": "SUPPORTED", "minilm/sentiment/pos-wsj": "SUPPORTED"}
    assert cl["C2"].verdict == "INCONCLUSIVE" and "disagree" in cl["C2"].reason
    assert set(cl["C2"].independent_units) == {"minilm/hedge/wsj-sample", "minilm/sentiment/wsj-sample"}
    s = next(u for u in cl["C2"].units if u["unit"] == "minilm/sentiment/pos-wsj")
    assert s["delta_top"] == pytest.approx(-5.3, abs=0.01) and s["delta_top_ci"][1] < -2
    # three fine-tuning seeds 0.1 points apart: the hierarchical interval is wider than the sentences' alone
    assert cl["C2"].n_finetune_seeds == 3 and ONE_SEED not in cl["C2"].trust
    assert cl["C3"].verdict == "NOT_APPLICABLE" and cl["C3"].reason.endswith("(this profile has: hedge, sentiment)")
    assert cl["C4"].verdict == "NOT_APPLICABLE" and "roberta" in cl["C4"].reason
    # C5: the rankings are not salient (as on the real offline stores) -> INCONCLUSIVE with the reason
    assert cl["C5"].verdict == "INCONCLUSIVE"
    assert "ranking not salient for minilm/base/" in cl["C5"].reason
    for c in cl.values():
        assert c.proxy and c.proxy_reason == "constructed results"


# ---- C1 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("acc", "verdict"), [
    (FLAT, "SUPPORTED"),
    ([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.80], "CONTRADICTED"),   # the top layer sits at the lexical level
    ([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.822], "INCONCLUSIVE"),  # 2.2 points above: r = 2.19 is inside the interval
])
def test_c1_verdicts(tmp_path: Path, acc: list[float], verdict: str) -> None:
    write_layers(tmp_path, "minilm", "base", "pos-wsj", acc)
    c1 = _claims(tmp_path)["C1"]
    assert c1.verdict == verdict and c1.units[0]["verdict"] == verdict
    lo, hi = c1.units[0]["ci"]
    assert lo <= c1.units[0]["statistic"] <= hi and c1.min_detectable_effect >= 0


def test_c1_dependent_units_count_once(tmp_path: Path) -> None:
    """pos-wsj SUPPORTED and chunk-wsj CONTRADICTED share their sentences: one INCONCLUSIVE group. With an
    independent pos-brown SUPPORTED, 1 of 2 groups is SUPPORTED and 0 CONTRADICTED: not more than half."""
    write_layers(tmp_path, "minilm", "base", "pos-wsj", FLAT)
    write_layers(tmp_path, "minilm", "base", "chunk-wsj", [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.80])
    write_layers(tmp_path, "minilm", "base", "pos-brown", FLAT)
    c1 = _claims(tmp_path)["C1"]
    assert {g: d["verdict"] for g, d in c1.independent_units.items()} == {
        "minilm/wsj-sample": "INCONCLUSIVE", "minilm/pos-brown": "SUPPORTED"}
    assert c1.verdict == "INCONCLUSIVE" and c1.reason.startswith("1 of 2 independent units SUPPORTED")


def test_threshold_comes_from_claims_yaml(tmp_path: Path) -> None:
    """Edit C2's threshold in a copy of claims.yaml: the verdict follows the file, and the hash changes."""
    offline_like(tmp_path / "res")
    text = (REPO / "claims.yaml").read_text().replace("low_abs_max_points: 1.0", "low_abs_max_points: 0.0")
    (tmp_path / "claims.yaml").write_text(text)
    spec = load_spec(tmp_path / "claims.yaml")
    assert spec.sha256 == hashlib.sha256(text.encode()).hexdigest() != SPEC.sha256
    units = _units(_claims(tmp_path / "res", spec)["C2"])
    assert units["minilm/sentiment/pos-wsj"] == "CONTRADICTED"  # a low-third delta of 0 is not within +-0


def test_spec_is_validated(tmp_path: Path) -> None:
    assert SPEC.sha256 == hashlib.sha256((REPO / "claims.yaml").read_bytes()).hexdigest()
    assert SPEC.group_of("chunk-wsj") == SPEC.group_of("pos-wsj") != SPEC.group_of("pos-brown")
    assert [e.date.isoformat() for e in SPEC.changelog][0] == "2026-11-26"
    (tmp_path / "claims.yaml").write_text((REPO / "claims.yaml").read_text().replace("  C5:\n", "  C9:\n"))
    with pytest.raises(SpecError, match="does not specify claims"):
        load_spec(tmp_path / "claims.yaml")


# ---- C2 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ft", "lexical", "verdict", "why"), [
    (DROP_TOP, 0.80, "SUPPORTED", "low"),
    (SMALL_DROP, 0.80, "CONTRADICTED", "low"),
    ([0.9, 0.85, 0.85, 0.9, 0.88, 0.85, 0.84], 0.80, "CONTRADICTED", "low"),  # the lower layers move
    ([0.9, 0.9, 0.9, 0.9, 0.9, 0.88, 0.88], 0.80, "INCONCLUSIVE", "low"),     # top -2.0: on the threshold
    (DROP_TOP, 0.89, "INCONCLUSIVE", "headroom gate"),                        # 1 point of headroom < 2
])
def test_c2_verdicts(tmp_path: Path, ft: list[float], lexical: float, verdict: str, why: str) -> None:
    write_layers(tmp_path, "minilm", "base", "pos-wsj", FLAT, lexical=lexical)
    write_layers(tmp_path, "minilm", "sentiment", "pos-wsj", ft, lexical=lexical)
    c2 = _claims(tmp_path)["C2"]
    assert c2.verdict == verdict and why in c2.units[0]["reason"]


def test_c2_not_applicable(tmp_path: Path) -> None:
    write_layers(tmp_path, "minilm", "base", "pos-wsj", FLAT)
    assert _claims(tmp_path)["C2"].verdict == "NOT_APPLICABLE"  # no fine-tuned variant


def test_c2_different_test_words_not_applicable(tmp_path: Path) -> None:
    write_layers(tmp_path, "minilm", "base", "pos-wsj", FLAT)
    write_layers(tmp_path, "minilm", "sentiment", "pos-wsj", DROP_TOP, words="other")
    c2 = _claims(tmp_path)["C2"]
    assert c2.verdict == "NOT_APPLICABLE" and "same test words" in c2.reason


def test_hierarchical_delta_over_finetuning_seeds() -> None:
    """S seeds: the estimate is the seed mean; seeds that disagree widen the interval beyond either seed's."""
    base = layer_record("m", "base", "pos-wsj", FLAT)
    ft = [layer_record("m", "sst2", "pos-wsj", DROP_TOP, seed=s) for s in (0, 1)]
    drop2 = layer_record("m", "sst2", "pos-wsj", [0.9, 0.9, 0.9, 0.9, 0.86, 0.81, 0.80], seed=2)
    est, reps = delta_replicates(Pair(base, (ft[0], drop2)), 400, 0)
    np.testing.assert_allclose(est[6], ((0.84 + 0.80) / 2 - 0.90) * 100, atol=1e-9)
    one_lo, one_hi = interval(delta_replicates(Pair(base, (ft[0],)), 400, 0)[1][:, 6])
    two_lo, two_hi = interval(reps[:, 6])
    assert two_hi - two_lo > one_hi - one_lo


# ---- C3 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("forget", "keep", "verdict"), [
    (DROP_TOP, FLAT, "SUPPORTED"),
    (FLAT, DROP_TOP, "CONTRADICTED"),
])
def test_c3_verdicts(tmp_path: Path, forget: list[float], keep: list[float], verdict: str) -> None:
    write_layers(tmp_path, "m", "base", "pos-wsj", FLAT)
    write_layers(tmp_path, "m", "sst2", "pos-wsj", forget)
    write_layers(tmp_path, "m", "stsb", "pos-wsj", keep)
    c3 = _claims(tmp_path)["C3"]
    assert c3.verdict == verdict and c3.units[0]["forgetting_variants"] == ["sst2"]


def test_c3_inconclusive_when_the_difference_is_noise(tmp_path: Path) -> None:
    write_layers(tmp_path, "m", "base", "pos-wsj", FLAT)
    write_layers(tmp_path, "m", "sst2", "pos-wsj", FLAT, seed=1)  # same accuracy, other words right
    write_layers(tmp_path, "m", "stsb", "pos-wsj", FLAT, seed=2)
    c3 = _claims(tmp_path)["C3"]
    lo, hi = c3.units[0]["ci"]
    assert c3.verdict == "INCONCLUSIVE" and lo < 0 < hi


def test_c3_not_applicable_with_one_group(tmp_path: Path) -> None:
    write_layers(tmp_path, "m", "base", "pos-wsj", FLAT)
    write_layers(tmp_path, "m", "sst2", "pos-wsj", DROP_TOP)
    assert _claims(tmp_path)["C3"].verdict == "NOT_APPLICABLE"


# ---- C4 ------------------------------------------------------------------------------------------------


def _c4(tmp_path: Path, bert: list[float], others: list[float], bert_seed: int = 0) -> ClaimVerdict:
    for m in ("bert-base-cased", "roberta-base", "xlnet-base-cased"):
        write_layers(tmp_path, m, "base", "pos-wsj", FLAT)
        write_layers(tmp_path, m, "sst2", "pos-wsj", bert if m.startswith("bert") else others,
                     seed=bert_seed if m.startswith("bert") else 0)
    return _claims(tmp_path)["C4"]


def test_c4_supported(tmp_path: Path) -> None:
    c4 = _c4(tmp_path, FLAT, DROP_TOP)
    assert c4.verdict == "SUPPORTED" and c4.units[0]["onset_relative_depth"]["roberta"] == pytest.approx(4 / 6, 1e-3)


def test_c4_contradicted(tmp_path: Path) -> None:
    assert _c4(tmp_path, DROP_TOP, FLAT).verdict == "CONTRADICTED"


def test_c4_inconclusive_when_bert_is_noisy(tmp_path: Path) -> None:
    c4 = _c4(tmp_path, FLAT, DROP_TOP, bert_seed=1)  # no drop on average, but other words right: noisy onsets
    assert c4.verdict == "INCONCLUSIVE", c4.units[0]


def test_c4_not_applicable_for_proxies(tmp_path: Path) -> None:
    offline_like(tmp_path)
    assert _claims(tmp_path)["C4"].verdict == "NOT_APPLICABLE"


# ---- C5 ------------------------------------------------------------------------------------------------

DOWN = ([3.0, 3.1, 2.9, 3.05, 2.95], [2.0, 2.1, 1.9, 2.05, 1.95])


def _c5(tmp_path: Path, base_rank: dict, ft_rank: dict, base_sal: dict | None = None,  # noqa: ANN001
        ft_sal: dict | None = None) -> ClaimVerdict:
    write_neurons(tmp_path, "minilm", "base", "pos-wsj", [1, 2, 3, 3, 3, 3, 3],
                  salience=base_sal or salience_block(), rankings=base_rank)
    write_neurons(tmp_path, "minilm", "sentiment", "pos-wsj", [3, 3, 3, 3, 1, 1, 1],
                  salience=ft_sal or salience_block(), rankings=ft_rank)
    return _claims(tmp_path)["C5"]


def test_c5_supported_when_salient_and_both_rankings_move_down(tmp_path: Path) -> None:
    c5 = _c5(tmp_path, rankings_block(DOWN[0]), rankings_block(DOWN[1]))
    u = c5.units[0]
    assert c5.verdict == "SUPPORTED" and u["raw"]["statistic"] == pytest.approx(-1.0)
    assert u["raw"]["ci"][1] < 0 and u["salience"]["base"]["salient"]


def test_c5_contradicted_when_neurons_move_up(tmp_path: Path) -> None:
    assert _c5(tmp_path, rankings_block(DOWN[1]), rankings_block(DOWN[0])).verdict == "CONTRADICTED"


def test_c5_inconclusive_when_rankings_disagree(tmp_path: Path) -> None:
    c5 = _c5(tmp_path, rankings_block(DOWN[0], DOWN[1]), rankings_block(DOWN[1], DOWN[0]))
    assert c5.verdict == "INCONCLUSIVE" and "rankings disagree" in c5.units[0]["reason"]


@pytest.mark.parametrize(("sal", "why"), [
    (salience_block(salient=False), "ranking not salient"),
    (salience_block(n_random=50), "this result has 50"),
])
def test_c5_inconclusive_when_not_salient(tmp_path: Path, sal: dict, why: str) -> None:
    c5 = _c5(tmp_path, rankings_block(DOWN[0]), rankings_block(DOWN[1]), ft_sal=sal)
    assert c5.verdict == "INCONCLUSIVE" and why in c5.reason
    assert any("salience" in t for t in c5.trust)


def test_c5_inconclusive_with_one_oracle_seed(tmp_path: Path) -> None:
    c5 = _c5(tmp_path, rankings_block([3.0]), rankings_block([2.0]))
    assert c5.verdict == "INCONCLUSIVE" and "fewer than 2 oracle seeds" in c5.units[0]["reason"]


def test_c5_inconclusive_when_the_shift_is_noise(tmp_path: Path) -> None:
    c5 = _c5(tmp_path, rankings_block([2.0, 3.0, 2.5, 2.2, 2.8]), rankings_block([2.9, 2.1, 2.6, 2.3, 2.4]))
    lo, hi = c5.units[0]["raw"]["ci"]
    assert c5.verdict == "INCONCLUSIVE" and lo < 0 < hi


def test_c5_groups_fine_tuning_seeds_and_gates_on_every_seed(tmp_path: Path) -> None:
    """Three seeds of one variant are one unit: the shift averages them (interval over oracle and fine-tuning
    seeds), and one seed whose ranking is not salient makes the unit INCONCLUSIVE, naming that checkpoint."""
    write_neurons(tmp_path, "minilm", "base", "pos-wsj", [1, 2, 3, 3, 3, 3, 3], salience=salience_block(),
                  rankings=rankings_block(DOWN[0]))
    shifts = {42: [2.0, 2.1, 1.9, 2.05, 1.95], 43: [2.5, 2.6, 2.4, 2.55, 2.45], 44: [1.5, 1.6, 1.4, 1.55, 1.45]}
    for seed, layers in shifts.items():
        write_neurons(tmp_path, "minilm", f"sentiment-seed{seed}", "pos-wsj", [3, 3, 3, 3, 1, 1, 1],
                      salience=salience_block(), rankings=rankings_block(layers))
    c5 = _claims(tmp_path)["C5"]
    (u,) = c5.units
    assert u["unit"] == "minilm/sentiment/pos-wsj" and u["n_finetune_seeds"] == 3 and c5.verdict == "SUPPORTED"
    assert u["raw"]["statistic"] == pytest.approx(-1.0)
    assert sorted(u["salience"]["finetuned"]) == ["sentiment-seed42", "sentiment-seed43", "sentiment-seed44"]
    one_seed = _c5(tmp_path / "one", rankings_block(DOWN[0]), rankings_block(DOWN[1]))
    assert u["raw"]["ci"][1] - u["raw"]["ci"][0] > one_seed.units[0]["raw"]["ci"][1] - one_seed.units[0]["raw"]["ci"][0]
    write_neurons(tmp_path, "minilm", "sentiment-seed43", "pos-wsj", [3, 3, 3, 3, 1, 1, 1],
                  salience=salience_block(salient=False), rankings=rankings_block(shifts[43]))
    c5 = _claims(tmp_path)["C5"]
    assert c5.verdict == "INCONCLUSIVE" and "ranking not salient for minilm/sentiment-seed43/pos-wsj" in c5.reason


def test_c5_not_applicable_without_base(tmp_path: Path) -> None:
    write_neurons(tmp_path, "minilm", "sentiment", "pos-wsj", [3, 3, 3, 3, 1, 1, 1])
    assert _claims(tmp_path)["C5"].verdict == "NOT_APPLICABLE"


# ---- proxy ---------------------------------------------------------------------------------------------


def test_proxy_marking(tmp_path: Path) -> None:
    offline_like(tmp_path)
    paper = _claims(tmp_path, options=Options(n_boot=200, proxy=False, proxy_reason=None))
    assert all(not c.proxy and c.proxy_reason is None for c in paper.values())
    assert proxy_reason("paper", ["bert-base-cased"], ["bert-base-cased"], ["sst2"], ["sst2"], 0) is None
    why = proxy_reason("offline", ["minilm"], ["bert-base-cased"], ["sentiment"], ["sst2"], 11)
    assert "minilm instead of bert-base-cased" in why and "sentiment instead of sst2" in why


def test_fine_tuning_seeds_are_grouped_and_widen_the_interval(tmp_path: Path) -> None:
    """Three checkpoints <task>-seed<N> form one unit; seeds that disagree widen the delta's interval (the
    hierarchical bootstrap resamples them), seeds that agree do not."""
    top = [0.90, 0.90, 0.90, 0.90, 0.88, 0.85, 0.84]
    for name, offsets in (("same", [0.0, 0.0, 0.0]), ("spread", [-0.02, 0.0, 0.02])):
        write_layers(tmp_path / name, "minilm", "base", "pos-wsj", FLAT)
        for seed, off in zip((42, 43, 44), offsets, strict=True):
            write_layers(tmp_path / name, "minilm", f"sentiment-seed{seed}", "pos-wsj", [a + off for a in top])
    units = {}
    for name in ("same", "spread"):
        c2 = _claims(tmp_path / name)["C2"]
        (u,) = c2.units
        assert u["unit"] == "minilm/sentiment/pos-wsj" and u["n_finetune_seeds"] == 3 and c2.n_finetune_seeds == 3
        units[name] = u
    width = {n: u["delta_top_ci"][1] - u["delta_top_ci"][0] for n, u in units.items()}
    assert units["same"]["delta_top"] == pytest.approx(units["spread"]["delta_top"], abs=1e-6)
    assert width["spread"] > 1.5 * width["same"]


def test_a_claims_one_line_reason_names_each_unit_without_an_interval_once() -> None:
    """Units share checkpoints (a base model is in every unit of its model), so the claims table names each
    finding once, by its head, and leaves the numbers (which hold "; " and ":" in brackets) to the sections."""
    a = ("ranking not salient for m/base/pos: top-k 0.85 against random k-sets 0.85 [0.84, 0.86] (not salient: "
         "selection failed (accuracy (0.85) is not above (0.86); ablated accuracy (0.78) is below (0.81)))")
    b = "ranking not salient for m/ft-seed1/pos: top-k 0.80 (x; y)"
    assert short_reasons([f"{a}; {b}", a, "no minimal set"]) == [
        "no minimal set", "ranking not salient for m/base/pos", "ranking not salient for m/ft-seed1/pos"]
