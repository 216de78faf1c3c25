"""``python -m pipeline summary``'s stage times: sums per stage and model from the run logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.records import RunLog, read_run_logs
from pipeline.stages.summary import stage_times


def _logs(root: Path, times: dict[tuple[str, str], float]) -> None:
    for (stage, name), seconds in times.items():
        RunLog.now(stage, name, {"stage": seconds}).write(root / "runs" / stage / f"{name}.json")


def test_stage_times_sum_per_stage_and_model(tmp_path: Path) -> None:
    _logs(tmp_path, {("finetune", "minilm-hedge-seed42"): 300.0, ("finetune", "minilm-hedge-seed43"): 500.0,
                     ("finetune", "mpnet-hedge-seed42"): 1500.0, ("probe", "mpnet-base-pos-brown"): 900.0,
                     ("extract", "minilm-base-pos-wsj"): 8.0})
    lines = stage_times(read_run_logs(tmp_path), jobs=2)
    assert lines[0].startswith("Stage times")
    rows = [line.split() for line in lines[1:]]
    assert [r[:2] for r in rows[:-1]] == [["finetune", "minilm"], ["finetune", "mpnet"], ["extract", "minilm"],
                                         ["probe", "mpnet"]]  # the pipeline's order, then by model
    assert rows[0][2:5] == ["2", "x", "800"] and rows[0][6] == "(300-500"
    assert "3208 s  = 0.89 h; at 2 at once at least 0.45 h" in lines[-1]
    assert stage_times({}, jobs=2) == []


def test_summary_rejects_a_jobs_count_below_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = Path(__file__).resolve().parents[1]
    assert main(["--params", str(root / "params.yaml"), "summary", "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in caplog.text


def test_stage_times_group_a_hyphenated_model_name_whole(tmp_path: Path) -> None:
    _logs(tmp_path, {("probe", "my-bert-base-pos-wsj"): 10.0, ("probe", "my-bert-hedge-seed42-pos-wsj"): 20.0,
                     ("probe", "minilm-base-pos-wsj"): 5.0})
    rows = [line.split() for line in stage_times(read_run_logs(tmp_path), models=["minilm", "my-bert"])[1:-1]]
    assert [r[:5] for r in rows] == [["probe", "minilm", "1", "x", "5"], ["probe", "my-bert", "2", "x", "30"]]
