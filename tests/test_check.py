"""The regression gate on constructed results: passes within tolerance, fails on a regression."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from resultkit import FLAT, offline_like, write_claims, write_layers

from pipeline import check
from pipeline.cli import main
from pipeline.layout import ResultsLayout
from pipeline.provenance import cpu_model


def _claims_file(results: Path) -> None:
    write_claims(results)


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, Path]:
    """A results folder and a baseline made from it."""
    results = tmp_path / "results"
    offline_like(results)
    _claims_file(results)
    baseline = tmp_path / "baselines" / "offline.json"
    check.write_baseline(results, baseline, "offline")
    return results, baseline


def test_identical_run_passes(run: tuple[Path, Path]) -> None:
    code, table = check.run_check(*run)
    assert code == 0
    assert table.splitlines()[-1].endswith("-> PASS")
    assert "layer_accuracy/minilm/base/pos-wsj/0" in table and "claim C5" in table


def test_baseline_records_metrics_claims_and_tolerances(run: tuple[Path, Path]) -> None:
    b = json.loads(run[1].read_text())
    assert b["format"] == 1 and b["profile"] == "offline"
    assert b["metrics"]["layer_accuracy/minilm/base/pos-wsj/3"] == pytest.approx(90.0)
    assert b["metrics"]["finetune_score/minilm/sentiment-seed42"] == pytest.approx(84.0)
    assert b["metrics"]["finetune_score/minilm/hedge-seed44"] == pytest.approx(72.0)
    assert b["claims"] == {"C1": "SUPPORTED", "C2": "INCONCLUSIVE", "C3": "NOT_APPLICABLE", "C4": "NOT_APPLICABLE",
                           "C5": "INCONCLUSIVE"}
    assert b["tolerances"] == check.DEFAULT_TOLERANCES
    assert b["recorded_on"]["cpu"] == cpu_model() and b["recorded_on"]["versions"]["numpy"]


def _set_verdict(results: Path, claim: str, verdict: str) -> None:
    """Rewrite ``claim``'s verdict in ``results/claims.json`` (as a later run might have decided it)."""
    data = json.loads((results / "claims.json").read_text())
    for c in data["claims"]:
        if c["id"] == claim:
            c["verdict"] = verdict
    (results / "claims.json").write_text(json.dumps(data))


def _shift_layer(results: Path, variant: str, layer: int, delta: float) -> None:
    acc = list(FLAT)
    acc[layer] += delta
    write_layers(results, "minilm", variant, "pos-wsj", acc)


def test_change_within_tolerance_passes(run: tuple[Path, Path]) -> None:
    results, baseline = run
    _shift_layer(results, "base", 3, -0.009)  # 0.9 points < 1.0
    code, table = check.run_check(results, baseline)
    assert code == 0, table


def test_drop_beyond_tolerance_fails(run: tuple[Path, Path]) -> None:
    results, baseline = run
    _shift_layer(results, "base", 3, -0.02)
    code, table = check.run_check(results, baseline)
    assert code == 1
    bad = [line for line in table.splitlines() if "REGRESSION" in line]
    assert len(bad) == 1 and "layer_accuracy/minilm/base/pos-wsj/3" in bad[0] and "-2.00" in bad[0]
    assert table.splitlines()[-1].endswith("-> FAIL")
    # a wider tolerance for the family lets it through
    assert check.run_check(results, baseline, tolerance_overrides={"layer_accuracy": 2.5})[0] == 0


def test_gain_beyond_tolerance_fails_unless_allowed(run: tuple[Path, Path]) -> None:
    results, baseline = run
    _shift_layer(results, "base", 3, +0.03)
    assert check.run_check(results, baseline)[0] == 1
    code, table = check.run_check(results, baseline, allow_improvements=True)
    assert code == 0 and "improved" in table


@pytest.mark.parametrize("now", ["INCONCLUSIVE", "CONTRADICTED", "NOT_APPLICABLE"])
def test_claim_no_longer_supported_is_a_regression(run: tuple[Path, Path], now: str) -> None:
    results, baseline = run
    assert json.loads(baseline.read_text())["claims"]["C1"] == "SUPPORTED"
    _set_verdict(results, "C1", now)
    code, table = check.run_check(results, baseline, only_problems=True)
    assert code == 1
    assert [line.split()[:4] for line in table.splitlines()[1:-1]] == [["claim", "C1", "SUPPORTED", now]]


def test_claim_that_becomes_supported_is_an_improvement(run: tuple[Path, Path]) -> None:
    results, baseline = run
    _set_verdict(results, "C2", "SUPPORTED")
    code, table = check.run_check(results, baseline)
    assert code == 0 and "improved" in table


def test_baseline_of_pass_fail_is_rejected(run: tuple[Path, Path]) -> None:
    results, baseline = run
    b = json.loads(baseline.read_text())
    b["claims"]["C1"] = "PASS"
    baseline.write_text(json.dumps(b))
    with pytest.raises(check.GateError, match="not verdicts"):
        check.run_check(results, baseline)


def test_baseline_from_another_cpu_is_noted(run: tuple[Path, Path]) -> None:
    results, baseline = run
    b = json.loads(baseline.read_text())
    b["recorded_on"]["cpu"] = "Some Other CPU"
    baseline.write_text(json.dumps(b))
    code, table = check.run_check(results, baseline)
    assert code == 0 and "recorded on Some Other CPU" in table


def test_cpu_identity_tells_cpu_generations_apart(tmp_path: Path) -> None:
    """Two hypervisor CPUs both named "AMD EPYC": a Zen 4 with bfloat16 (where fine-tuning autocasts to bf16) and
    a Zen 3 without it compute different results; the identity in ``recorded_on`` tells them apart."""
    zen = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: {model}\nmodel name\t: AMD EPYC\n" \
          "flags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\nflags\t\t: other\n"
    (tmp_path / "zen4").write_text(zen.format(model=17, flags="avx2 fma avx512f avx512_bf16 avx512_vnni"))
    (tmp_path / "zen3").write_text(zen.format(model=1, flags="avx2 fma"))
    assert cpu_model(tmp_path / "zen4") == "AMD EPYC (family 25 model 17; avx2 fma avx512f avx512_vnni avx512_bf16)"
    assert cpu_model(tmp_path / "zen3") == "AMD EPYC (family 25 model 1; avx2 fma)"


def test_missing_result_fails(run: tuple[Path, Path]) -> None:
    results, baseline = run
    ResultsLayout(results).layer("minilm", "hedge-seed43", "chunk-wsj").unlink()
    code, table = check.run_check(results, baseline)
    assert code == 1 and table.count("MISSING") == 7


def test_new_results_are_reported_not_failed(run: tuple[Path, Path]) -> None:
    results, baseline = run
    write_layers(results, "minilm", "base", "pos-brown", FLAT)
    code, table = check.run_check(results, baseline)
    assert code == 0 and "7 new" in table and sum(line.endswith(" new") for line in table.splitlines()) == 7


def test_cli_exit_codes_and_clear_errors(run: tuple[Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    results, baseline = run
    params = tmp_path / "params.yaml"
    params.write_text("profile: offline\npaths:\n  results: results\n")
    assert main(["--params", str(params), "check"]) == 0
    assert "-> PASS" in capsys.readouterr().out
    _shift_layer(results, "hedge-seed42", 6, -0.05)
    assert main(["--params", str(params), "check", "--only-problems"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "layer_accuracy/minilm/hedge-seed42/pos-wsj/6" in out
    # unusable input: exit 2 with one clear line, no traceback
    assert main(["--params", str(params), "check", "--baseline", "nope.json"]) == 2
    assert main(["--params", str(params), "check", "--tolerance", "layer_accuracy=lots"]) == 2
    baseline.write_text('{"format": 99}')
    assert main(["--params", str(params), "check"]) == 2
    err = caplog.text
    assert "nope.json not found" in err and "FAMILY=POINTS" in err and "format-1" in err
    assert "Traceback" not in err


def test_write_baseline_round_trip(tmp_path: Path) -> None:
    results = tmp_path / "results"
    offline_like(results)
    with pytest.raises(check.GateError, match="claims.json not found"):
        check.write_baseline(results, tmp_path / "b.json", "offline")
    _claims_file(results)
    check.write_baseline(results, tmp_path / "b.json", "offline", {"layer_accuracy": 0.5})
    assert json.loads((tmp_path / "b.json").read_text())["tolerances"]["layer_accuracy"] == 0.5
    assert check.run_check(results, tmp_path / "b.json")[0] == 0


# --- JUnit XML (--junit): one test case per metric and claim, a test suite per family -------------------------------


def _cases(xml: Path) -> dict[str, tuple[str, str, ET.Element | None]]:
    """``{test case name: (suite, outcome, outcome element)}`` of a JUnit file, after checking that every count
    attribute (on ``<testsuites>`` and each ``<testsuite>``) matches the test cases below it."""
    top = ET.parse(xml).getroot()
    assert top.tag == "testsuites"
    out: dict[str, tuple[str, str, ET.Element | None]] = {}
    for suite in top.findall("testsuite"):
        cases = suite.findall("testcase")
        for case in cases:
            kind = next((c for c in case if c.tag in ("failure", "skipped", "error")), None)
            assert case.get("classname") == f"lingshift.{suite.get('name')}"
            assert case.get("name") not in out, "test case names are unique"
            out[case.get("name")] = (suite.get("name"), "passed" if kind is None else kind.tag, kind)
        for attr, tag in (("failures", "failure"), ("skipped", "skipped"), ("errors", "error")):
            assert int(suite.get(attr)) == sum(c.find(tag) is not None for c in cases), (suite.get("name"), attr)
        assert int(suite.get("tests")) == len(cases)
    for attr in ("tests", "failures", "skipped", "errors"):
        assert int(top.get(attr)) == sum(int(s.get(attr)) for s in top.findall("testsuite")), attr
    return out


def _outcomes(cases: dict[str, tuple[str, str, ET.Element | None]], outcome: str) -> list[str]:
    return [name for name, (_, kind, _) in cases.items() if kind == outcome]


def test_junit_of_a_passing_run_has_no_failures(run: tuple[Path, Path], tmp_path: Path) -> None:
    xml = tmp_path / "gate.xml"
    code, table = check.run_check(*run, junit=xml)
    assert code == 0
    cases = _cases(xml)
    n_compared = int(table.splitlines()[-1].split()[0])
    assert len(cases) == n_compared == 7 * 2 * 7 + 6 + 2 * 7 + 5  # layers x tasks x checkpoints, scores, oracles
    assert _outcomes(cases, "passed") == list(cases)
    assert [s.get("name") for s in ET.parse(xml).getroot()] == ["layer_accuracy", "finetune_score", "oracle_accuracy",
                                                                 "claims"]
    assert cases["layer_accuracy/minilm/base/pos-wsj/0"][0] == "layer_accuracy"
    assert cases["finetune_score/minilm/hedge-seed44"][0] == "finetune_score"
    assert cases["oracle_accuracy/minilm/sentiment-seed43/chunk-wsj"][0] == "oracle_accuracy"
    assert {n for n, (suite, _, _) in cases.items() if suite == "claims"} == {"C1", "C2", "C3", "C4", "C5"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".gate.xml")] == [], "written atomically"


def test_junit_names_the_one_shifted_layer(run: tuple[Path, Path], tmp_path: Path) -> None:
    results, baseline = run
    _shift_layer(results, "base", 3, -0.02)
    code, _ = check.run_check(results, baseline, junit=tmp_path / "gate.xml")
    assert code == 1
    cases = _cases(tmp_path / "gate.xml")
    assert _outcomes(cases, "failure") == ["layer_accuracy/minilm/base/pos-wsj/3"]
    failure = cases["layer_accuracy/minilm/base/pos-wsj/3"][2]
    assert failure.get("type") == "REGRESSION"
    assert failure.get("message") == ("REGRESSION: baseline 90.00, current 88.00, delta -2.00, "
                                      "tolerance 1 (accuracy points)")
    # the same rows as the table: a wider tolerance passes in both
    assert check.run_check(results, baseline, tolerance_overrides={"layer_accuracy": 2.5},
                           junit=tmp_path / "gate.xml")[0] == 0
    assert _outcomes(_cases(tmp_path / "gate.xml"), "failure") == []


def test_junit_claim_that_lost_supported_fails(run: tuple[Path, Path], tmp_path: Path) -> None:
    results, baseline = run
    _set_verdict(results, "C1", "INCONCLUSIVE")
    assert check.run_check(results, baseline, junit=tmp_path / "gate.xml")[0] == 1
    cases = _cases(tmp_path / "gate.xml")
    assert _outcomes(cases, "failure") == ["C1"]
    suite, _, failure = cases["C1"]
    assert suite == "claims"
    assert failure.get("message").startswith("REGRESSION: baseline SUPPORTED, current INCONCLUSIVE, delta changed")


def test_junit_missing_fails_and_new_is_skipped(run: tuple[Path, Path], tmp_path: Path) -> None:
    results, baseline = run
    ResultsLayout(results).layer("minilm", "hedge-seed43", "chunk-wsj").unlink()
    write_layers(results, "minilm", "base", "pos-brown", FLAT)
    assert check.run_check(results, baseline, junit=tmp_path / "gate.xml")[0] == 1
    cases = _cases(tmp_path / "gate.xml")
    assert _outcomes(cases, "failure") == [f"layer_accuracy/minilm/hedge-seed43/chunk-wsj/{i}" for i in range(7)]
    assert all(cases[n][2].get("type") == "MISSING" and "current missing" in cases[n][2].get("message")
               for n in _outcomes(cases, "failure"))
    assert _outcomes(cases, "skipped") == [f"layer_accuracy/minilm/base/pos-brown/{i}" for i in range(7)]
    assert "baseline missing" in cases["layer_accuracy/minilm/base/pos-brown/0"][2].get("message")


def test_cli_junit_keeps_exit_codes(run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    results, baseline = run
    params = tmp_path / "params.yaml"
    params.write_text("profile: offline\npaths:\n  results: results\n")
    monkeypatch.chdir(tmp_path / "baselines")  # --junit is relative to the working directory
    assert main(["--params", str(params), "check", "--junit", "out.xml"]) == 0
    assert _outcomes(_cases(tmp_path / "baselines" / "out.xml"), "failure") == []
    _shift_layer(results, "hedge-seed42", 6, -0.05)
    assert main(["--params", str(params), "check", "--only-problems", "--junit", "out.xml"]) == 1
    assert _outcomes(_cases(tmp_path / "baselines" / "out.xml"), "failure") == [
        "layer_accuracy/minilm/hedge-seed42/pos-wsj/6"]
    # unusable input: exit 2, and the report says why instead of being absent or stale
    assert main(["--params", str(params), "check", "--baseline", "nope.json", "--junit", "out.xml"]) == 2
    cases = _cases(tmp_path / "baselines" / "out.xml")
    assert list(cases) == ["inputs"] and cases["inputs"][1] == "error"
    assert "nope.json not found" in cases["inputs"][2].get("message")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # nothing to report when recording a baseline
        main(["--params", str(params), "check", "--write-baseline", "--junit", "out.xml"])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
