"""Every path comes from params.paths: the defaults match dvc.yaml's, and moving a folder moves its files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Params, Paths
from pipeline.errors import LingShiftError
from pipeline.layout import Layout, ResultsLayout


def test_default_layout_is_the_one_dvc_yaml_names(tmp_path: Path) -> None:
    lay = Layout.of(Params(), tmp_path)

    def rel(p: Path) -> str:
        return p.relative_to(tmp_path).as_posix()

    assert rel(lay.data_dir("pos-wsj")) == "data/pos-wsj" and rel(lay.split_file("pos-wsj", "dev")) == \
        "data/pos-wsj/dev.tsv"
    assert rel(lay.model_dir("minilm", "base")) == "models/minilm/base"
    assert rel(lay.activation_dir("minilm", "hedge", "chunk-wsj")) == "activations/minilm/hedge/chunk-wsj"
    r = lay.results
    assert rel(r.layer("minilm", "base", "pos-wsj")) == "results/layers/minilm/base/pos-wsj.json"
    assert rel(r.neurons("minilm", "base", "pos-wsj")) == "results/neurons/minilm/base/pos-wsj.json"
    assert rel(r.finetune("minilm", "sentiment-seed42")) == "results/finetune/minilm-sentiment-seed42.json"
    assert rel(r.probe_dir("minilm", "base", "pos-wsj")) == "results/probes/minilm/base/pos-wsj"
    assert [rel(p) for p in (r.claims, r.metrics, r.report, r.plots)] == [
        "results/claims.json", "results/metrics.json", "results/report.md", "results/plots"]
    assert rel(r.run_log("probe", "minilm", "base", "pos-wsj")) == "results/runs/probe/minilm-base-pos-wsj.json"
    assert rel(r.run_log("report")) == "results/runs/report/report.json"
    assert rel(lay.baseline("offline")) == "baselines/offline.json" and rel(lay.dvc_lock) == "dvc.lock"
    assert lay.cache is None and rel(lay.corpora) == "corpora"


def test_paths_in_params_move_everything(tmp_path: Path) -> None:
    params = Params(paths=Paths(data="d", models="w", activations="a", results="out", corpora="c", cache="k"))
    lay = Layout.of(params, tmp_path)
    assert lay.data_dir("t") == tmp_path / "d" / "t" and lay.model_dir("minilm", "base") == tmp_path / "w/minilm/base"
    assert lay.activation_dir("m", "v", "t") == tmp_path / "a/m/v/t" and lay.cache == tmp_path / "k"
    assert lay.results.layer("m", "v", "t") == tmp_path / "out/layers/m/v/t.json" and lay.corpora == tmp_path / "c"


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", ".hidden", "a\\b"])
def test_names_that_are_not_one_path_component_are_refused(bad: str) -> None:
    with pytest.raises(LingShiftError, match="invalid"):
        ResultsLayout(Path("results")).layer("minilm", bad, "pos-wsj")
    with pytest.raises(LingShiftError, match="invalid"):
        Layout.of(Params(), Path(".")).model_dir(bad, "base")


def test_listing_finds_what_the_paths_name(tmp_path: Path) -> None:
    r = ResultsLayout(tmp_path)
    for p in (r.layer("m", "base", "t"), r.neurons("m", "ft", "t"), r.finetune("m", "ft"), r.claims):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("{}")
    assert r.layer_files() == [(("m", "base", "t"), r.layer("m", "base", "t"))]
    assert r.neuron_files() == [(("m", "ft", "t"), r.neurons("m", "ft", "t"))]
    assert r.finetune_files() == [r.finetune("m", "ft")]
    assert r.served_files() == sorted([r.layer("m", "base", "t"), r.neurons("m", "ft", "t"), r.finetune("m", "ft"),
                                       r.claims])
