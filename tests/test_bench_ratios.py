"""The CI benchmark ratio gate (benchmarks/check_ratios.py) on hand-made pytest-benchmark JSON files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_gate() -> Any:
    spec = importlib.util.spec_from_file_location("check_ratios", ROOT / "benchmarks" / "check_ratios.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gate = load_gate()


def bench_file(path: Path, ratios: dict[str, dict[str, float]]) -> Path:
    """A pytest-benchmark JSON file: one benchmark per name, its ratios in extra_info (plus a non-ratio key)."""
    benches = [{"fullname": f"benchmarks/bench_x.py::{name}", "name": name,
                "extra_info": {"words": 10, **r}, "stats": {"median": 1.0}} for name, r in ratios.items()]
    path.write_text(json.dumps({"benchmarks": benches}), encoding="utf-8")
    return path


BASE = {"test_extract": {"ratio_vs_bare_forward": 0.9}, "test_neurox": {"ratio_vs_neurox": 20.0}}


@pytest.mark.parametrize(("current", "tolerance", "rc"), [
    ({"test_extract": {"ratio_vs_bare_forward": 0.5}, "test_neurox": {"ratio_vs_neurox": 19.0}}, 0.5, 0),
    ({"test_extract": {"ratio_vs_bare_forward": 0.44}, "test_neurox": {"ratio_vs_neurox": 30.0}}, 0.5, 1),
    ({"test_extract": {"ratio_vs_bare_forward": 0.8}, "test_neurox": {"ratio_vs_neurox": 9.0}}, 0.5, 1),
    ({"test_extract": {"ratio_vs_bare_forward": 0.8}, "test_neurox": {"ratio_vs_neurox": 19.0}}, 0.0, 1),
])
def test_fails_only_when_a_ratio_falls_below_its_floor(tmp_path: Path, current: dict, tolerance: float,
                                                       rc: int) -> None:
    base, cur = bench_file(tmp_path / "base.json", BASE), bench_file(tmp_path / "cur.json", current)
    assert gate.main([str(base), str(cur), "--tolerance", str(tolerance)]) == rc


def test_a_benchmark_that_did_not_run_is_listed_not_failed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = bench_file(tmp_path / "base.json", BASE)
    cur = bench_file(tmp_path / "cur.json", {"test_extract": {"ratio_vs_bare_forward": 0.9}})
    assert gate.main([str(base), str(cur)]) == 0
    out = capsys.readouterr().out
    assert "skipped (not run)" in out and "ratio_vs_neurox" in out and "1 not run" in out


def test_bad_inputs_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = bench_file(tmp_path / "base.json", BASE)
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    assert gate.main([str(base), str(tmp_path / "broken.json")]) == 2
    assert "not a readable pytest-benchmark JSON file" in capsys.readouterr().err
    assert gate.main([str(base), str(base), "--tolerance", "1.5"]) == 2
    empty = bench_file(tmp_path / "empty.json", {"test_extract": {}})
    assert gate.main([str(empty), str(base)]) == 2
