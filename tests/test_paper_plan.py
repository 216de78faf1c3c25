"""scripts/paper-plan.py reads a measured offline run, including extractions that linked a sibling's store."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _plan_module():
    spec = importlib.util.spec_from_file_location("paper_plan", ROOT / "scripts" / "paper-plan.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["paper_plan"] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _write(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _run(root: Path, stage: str, name: str, timings: dict[str, float], **facts: str) -> None:
    _write(root / "results" / "runs" / stage / f"{name}.json",
           {"stage": stage, "name": name, "timings": timings, "facts": facts})


@pytest.fixture
def offline_run(tmp_path: Path) -> Path:
    tasks = ["pos-wsj", "chunk-wsj"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"models": ["minilm"], "probe_tasks": tasks,
         "finetune": {"max_train_examples": 2000, "epochs": 1, "max_length": 64}}))
    _write(tmp_path / "models" / "minilm" / "base" / "config.json",
           {"num_hidden_layers": 6, "hidden_size": 384, "intermediate_size": 1536})
    for t in tasks:
        _write(tmp_path / "activations" / "minilm" / "base" / t / "meta.json",
               {"extraction": {"n_words": 25026, "n_sentences": 1001, "n_subwords": 29228}})
        _write(tmp_path / "data" / t / "meta.json",
               {"counts": {"train": {"tokens": 19947}}, "labels": ["a", "b", "c"]})
    _run(tmp_path, "finetune", "minilm-hedge-seed42", {"train_seconds": 50.0})
    # the POS store was extracted, the chunk store linked to it (the same sentences): no extraction time
    _run(tmp_path, "extract", "minilm-base-pos-wsj", {"extract": 10.0, "stage": 10.5})
    _run(tmp_path, "extract", "minilm-base-chunk-wsj", {"stage": 0.2}, linked_from="pos-wsj")
    for t in tasks:
        _run(tmp_path, "probe", f"minilm-base-{t}", {"stage": 12.0})
        _run(tmp_path, "neurons", f"minilm-base-{t}", {"stage": 20.0})
    return tmp_path


def test_a_linked_extraction_counts_with_its_siblings_time(offline_run: Path) -> None:
    m = _plan_module().measure(offline_run)
    assert m.extract_s == {"pos-wsj": 10.0, "chunk-wsj": 10.0}
    assert m.probe_s == {"pos-wsj": 12.0, "chunk-wsj": 12.0} and m.neurons_s["chunk-wsj"] == 20.0


def test_a_run_without_any_extraction_time_stops_with_a_clear_message(offline_run: Path) -> None:
    _run(offline_run, "extract", "minilm-base-pos-wsj", {"stage": 0.2}, linked_from="chunk-wsj")
    with pytest.raises(SystemExit, match="no measured timings .* for extract pos-wsj, extract chunk-wsj"):
        _plan_module().measure(offline_run)
