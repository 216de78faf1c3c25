"""The report stage on constructed results: report, claims, metrics and plots, deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from resultkit import offline_like

from pipeline.config import Params
from pipeline.report import build_report


@pytest.fixture
def report(tmp_path: Path) -> Path:
    offline_like(tmp_path / "results")
    build_report(Params(), tmp_path)
    return tmp_path / "results"


def test_report_states_each_claim_and_why(report: Path) -> None:
    md = (report / "report.md").read_text()
    assert "| C5 | Neurons move down | **PASS** |" in md
    assert "| C2 | Kept low, lost high | **FAIL** | holds in 2 of 4" in md
    assert "| C3 | Task dependence | **NOT APPLICABLE** | needs fine-tuned variants from both" in md
    assert "| C4 | Architecture dependence | **NOT APPLICABLE** | needs BERT, RoBERTa and XLNet" in md
    for section in ("## Scope", "## Setup", "## Claims", "## Deviations from the paper, and why",
                    "## Fine-tuned task scores", "### minilm / pos-wsj: probe accuracy per layer (%)",
                    "### minilm / chunk-wsj: minimal neuron sets", "## Provenance"):
        assert section in md
    assert "This is a **proxy**" in md
    # per-layer table: base 90.0 everywhere, sentiment's last layer 84.0 -> delta -6.0
    assert "| 6 | 90.0 [" in md and "-6.0" in md
    assert "| minilm + sentiment | accuracy | 84.0 | 50.0 | +34.0 |" in md


def test_claims_and_metrics_files(report: Path) -> None:
    claims = json.loads((report / "claims.json").read_text())
    assert claims["profile"] == "offline" and claims["claims_defined"] == ["C1", "C2", "C3", "C4", "C5"]
    assert [c["status"] for c in claims["claims"]] == ["PASS", "FAIL", "NOT APPLICABLE", "NOT APPLICABLE", "PASS"]
    assert "versions" in claims and claims["n_boot"] == 1000
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["claims"] == {"C1": 1, "C2": 0, "C3": None, "C4": None, "C5": 1}
    assert metrics["minilm"]["sentiment"]["pos-wsj"]["last_layer_accuracy"] == pytest.approx(0.84)


def test_plots_exist_are_linked_and_deterministic(report: Path, tmp_path: Path) -> None:
    plots = report / "plots"
    md = (report / "report.md").read_text()
    for stem in ("layers", "delta", "neurons", "selectivity"):
        png, svg = plots / f"{stem}-minilm.png", plots / f"{stem}-minilm.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
        assert f"(plots/{stem}-minilm.png)" in md
    rows = (plots / "layer_accuracy.csv").read_text().splitlines()
    assert rows[0] == "series,model,task,variant,layer,accuracy,ci_low,ci_high" and len(rows) == 1 + 6 * 7
    assert (plots / "neuron_layers.csv").read_text().splitlines()[0] == "series,model,task,variant,layer,neurons,share"
    before = {p.name: p.read_bytes() for p in plots.iterdir()}
    build_report(Params(), tmp_path)
    assert {p.name: p.read_bytes() for p in plots.iterdir()} == before


def test_report_keeps_to_the_profile(tmp_path: Path) -> None:
    """Results left over from other models or tasks are not mixed into the report."""
    offline_like(tmp_path / "results")
    from resultkit import FLAT, write_layers

    write_layers(tmp_path / "results", "mpnet", "base", "pos-wsj", FLAT)
    out = build_report(Params(), tmp_path)
    assert "mpnet" not in out["report"].read_text()
