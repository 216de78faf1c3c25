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


def classed(path: Path, ratios: dict[str, dict[str, float]], vendor: str, family: int, model: int) -> Path:
    """A baseline file recorded on a CPU of the given class (pytest-benchmark's ``machine_info``)."""
    bench_file(path, ratios)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["machine_info"] = {"cpu": {"vendor_id_raw": vendor, "family": family, "model": model}}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_each_run_is_gated_against_the_baseline_of_its_cpu_class(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    amd = classed(tmp_path / "0001_amd.json", {"test_probe": {"ratio_vs_dense": 0.52}}, "AuthenticAMD", 25, 1)
    xeon = classed(tmp_path / "0002_xeon.json", {"test_probe": {"ratio_vs_dense": 0.22}}, "GenuineIntel", 6, 167)
    on_xeon = classed(tmp_path / "cur.json", {"test_probe": {"ratio_vs_dense": 0.2}}, "GenuineIntel", 6, 167)
    assert gate.main([str(amd), str(xeon), str(on_xeon)]) == 0  # 0.2 >= 0.22 / 2
    assert "0002_xeon.json (same CPU class: GenuineIntel/6/167)" in capsys.readouterr().out
    on_amd = classed(tmp_path / "cur.json", {"test_probe": {"ratio_vs_dense": 0.2}}, "AuthenticAMD", 25, 1)
    assert gate.main([str(amd), str(xeon), str(on_amd)]) == 1  # 0.2 < 0.52 / 2: a regression on the AMD class
    other_intel = classed(tmp_path / "cur.json", {"test_probe": {"ratio_vs_dense": 0.2}}, "GenuineIntel", 6, 85)
    assert gate.main([str(amd), str(xeon), str(other_intel)]) == 0
    assert "same vendor only" in capsys.readouterr().out
    unknown = classed(tmp_path / "cur.json", {"test_probe": {"ratio_vs_dense": 0.1}}, "HygonGenuine", 24, 0)
    assert gate.main([str(amd), str(xeon), str(unknown)]) == 1  # the lowest baseline (0.22) still gates: 0.1 < 0.11
    assert "against the lowest of 2 baselines" in capsys.readouterr().out
