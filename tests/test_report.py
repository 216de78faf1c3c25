"""The report stage on constructed results: report, claims, metrics and plots, deterministic."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import pytest
from resultkit import offline_like, project

from pipeline.config import Params
from pipeline.layout import ResultsLayout
from pipeline.records import SCHEMA_VERSION, ClaimsFile, MetricsFile, RunLog
from pipeline.report import build_report, run_times

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def report(tmp_path: Path) -> Path:
    offline_like(tmp_path / "results")
    build_report(Params(), project(tmp_path))
    return tmp_path / "results"


def test_report_states_each_claim_and_why(report: Path) -> None:
    md = (report / "report.md").read_text()
    assert "| C1 | Spread over all layers | **SUPPORTED** (proxy) | 1 of 1 independent units SUPPORTED" in md
    assert "| C2 | Kept low, lost high | **INCONCLUSIVE** (proxy) | 1 of 2 independent units SUPPORTED, 1 " \
           "CONTRADICTED, 0 INCONCLUSIVE: the units disagree" in md
    assert "| C3 | Task dependence | **NOT_APPLICABLE** (proxy) | needs fine-tuned variants from both" in md
    assert "| C4 | Architecture dependence | **NOT_APPLICABLE** (proxy) | needs bert, roberta, xlnet" in md
    assert "| C5 | Neurons move down | **INCONCLUSIVE** (proxy) |" in md
    assert "**PASS**" not in md and "**FAIL**" not in md
    sha = hashlib.sha256((REPO / "claims.yaml").read_bytes()).hexdigest()
    assert f"sha256 `{sha}`" in md
    # trust, per claim: power, fine-tuning seeds, headroom, salience, independent units; the changelog
    for text in ("- Power (smallest effect the intervals resolve):", "- Fine-tuning seeds: 3.",
                 "3 fine-tuning seeds (hierarchical bootstrap: seeds, then sentences)",
                 "- Headroom above the lexical baseline (points): minilm/hedge/chunk-wsj 10.00",
                 "- Salience of the ranking (P8): minilm/hedge/chunk-wsj: not established",
                 "- Independent units: minilm/wsj-sample = minilm/chunk-wsj, minilm/pos-wsj (SUPPORTED).",
                 "### Specification changelog", "- **2026-11-26**: First specification"):
        assert text in md, text
    # deviations generated from params against the paper profile
    assert "- finetune.epochs: 1 (paper profile: 3)" in md
    for section in ("## Scope", "## Setup", "## Claims", "## Deviations from the paper, and why",
                    "## Fine-tuned task scores", "### minilm / pos-wsj: probe accuracy per layer (%)",
                    "### minilm / chunk-wsj: minimal neuron sets", "## Provenance"):
        assert section in md
    assert "This is a **proxy**" in md
    # per-layer table: base 90.0 everywhere; sentiment's last layer 84.1, 84.2, 84.3 over its three seeds ->
    # mean 84.2, delta -5.8
    assert "| 6 | 90.0 [" in md and "| 84.2 [84.1, 84.3] |" in md and "| -5.8 [" in md
    assert "| minilm + sentiment | 42 | accuracy | 84.0 | 50.0 | +34.0 |" in md
    assert "| minilm + sentiment | mean of 3 | accuracy | 84.5 (sd 0.5) | - | - |" in md


def test_claims_and_metrics_files(report: Path) -> None:
    claims = ClaimsFile.read(report / "claims.json")
    assert claims.profile == "offline" and claims.claims_defined == ("C1", "C2", "C3", "C4", "C5")
    assert [c.verdict for c in claims.claims] == ["SUPPORTED", "INCONCLUSIVE", "NOT_APPLICABLE", "NOT_APPLICABLE",
                                                  "INCONCLUSIVE"]
    assert claims.spec_sha256 == hashlib.sha256((REPO / "claims.yaml").read_bytes()).hexdigest()
    assert claims.spec_version == 3 and claims.bootstrap_unit == "sentence"
    assert claims.proxy and all(c.proxy and "minilm instead of" in c.proxy_reason for c in claims.claims)
    assert claims.provenance.versions["numpy"] and claims.n_boot == 1000
    assert "platform" not in claims.provenance.versions  # host facts go to the run log only
    metrics = MetricsFile.read(report / "metrics.json")
    assert metrics.claims == {"C1": 1, "C2": 0, "C3": None, "C4": None, "C5": 0}
    assert metrics.results["minilm"]["sentiment-seed43"]["pos-wsj"].last_layer_accuracy == pytest.approx(0.842)
    assert json.loads((report / "metrics.json").read_text())["schema_version"] == SCHEMA_VERSION


def test_plots_exist_are_linked_and_deterministic(report: Path, tmp_path: Path) -> None:
    plots = report / "plots"
    md = (report / "report.md").read_text()
    for stem in ("layers", "delta", "neurons", "selectivity"):
        png, svg = plots / f"{stem}-minilm.png", plots / f"{stem}-minilm.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
        assert f"(plots/{stem}-minilm.png)" in md
    rows = (plots / "layer_accuracy.csv").read_text().splitlines()
    # 7 checkpoints (base, 2 tasks x 3 seeds) x 2 probing tasks x 7 layers
    assert rows[0] == "series,model,task,variant,layer,accuracy,ci_low,ci_high" and len(rows) == 1 + 14 * 7
    assert (plots / "neuron_layers.csv").read_text().splitlines()[0] == "series,model,task,variant,layer,neurons,share"
    before = {p.name: p.read_bytes() for p in plots.iterdir()}
    build_report(Params(), tmp_path)
    assert {p.name: p.read_bytes() for p in plots.iterdir()} == before


def test_report_files_hold_no_run_facts_and_repeat_byte_for_byte(report: Path, tmp_path: Path) -> None:
    """A re-run on the same results leaves every committed report file unchanged (no timings, no host, no
    dvc.lock digest), while the console still gets the run times from the run log."""
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    names = ("report.md", "claims.json", "metrics.json")
    before = {n: (report / n).read_bytes() for n in names}
    build_report(Params(), tmp_path)
    assert {n: (report / n).read_bytes() for n in names} == before
    md = before["report.md"].decode()
    lock = hashlib.sha256((tmp_path / "dvc.lock").read_bytes()).hexdigest()
    assert "dvc.lock" not in md and lock not in md and platform.platform() not in md
    assert platform.platform() not in before["claims.json"].decode()
    assert "not recorded" in " ".join(run_times(Params(), tmp_path))
    RunLog.now("probe", "minilm-base-pos-wsj", {"stage": 3.25}).write(
        ResultsLayout(report).run_log("probe", "minilm", "base", "pos-wsj"))
    line = next(x for x in run_times(Params(), tmp_path) if x.startswith("probe") and "minilm-base-pos-wsj" in x)
    assert "3.2 s" in line or "3.3 s" in line


def test_report_keeps_to_the_profile(tmp_path: Path) -> None:
    """Results left over from other models or tasks are not mixed into the report."""
    offline_like(tmp_path / "results")
    from resultkit import FLAT, write_layers

    write_layers(tmp_path / "results", "mpnet", "base", "pos-wsj", FLAT)
    out = build_report(Params(), project(tmp_path))
    assert "mpnet" not in out["report"].read_text()
