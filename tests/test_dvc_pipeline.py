"""The DVC pipeline: its DAG resolves for both profiles, the profile switch, and the paper profile's
clear failure at its first hub access when there is no network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.config import load_params, load_profile
from pipeline.profiles import resolved_text

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python` = this venv's
    env["HF_HUB_OFFLINE"] = "1"  # never reach for the hub, even on a machine that could
    env.pop("DVC_NO_ANALYTICS", None)
    return env


def _dvc(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, env=_env(), capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the pipeline definition and code in a DVC project without git."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("profiles", "pipeline"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".dvc" / "plots", tmp_path / ".dvc" / "plots")
    (tmp_path / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    return tmp_path


def _stages(out: str) -> list[str]:
    return [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage '")]


_RESOLVE = """
import json
from dvc.repo import Repo
index = Repo(".").index
print(json.dumps({
    "stages": {s.addressing: {"cmd": s.cmd, "deps": sorted(str(d.def_path) for d in s.deps),
                              "outs": sorted(str(o.def_path) for o in s.outs),
                              "cached": sorted(str(o.def_path) for o in s.outs if o.use_cache)}
               for s in index.stages},
    "metrics": sorted("/".join(key) for keys in index.metric_keys.values() for key in keys),
    "plots": sorted("/".join(key) for keys in index.plot_keys.values() for key in keys),
}))
"""


def _resolved(project: Path) -> dict:
    """The DAG as DVC resolves it (templates filled in): each stage's cmd, deps and outs, and the
    top-level metrics and plot files."""
    r = subprocess.run([sys.executable, "-c", _RESOLVE], cwd=project, env=_env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_default_params_are_the_offline_profile() -> None:
    assert (ROOT / "params.yaml").read_text() == resolved_text(ROOT, "offline")
    off, _ = load_params(ROOT / "params.yaml")
    assert off == load_profile("offline", ROOT)
    paper = load_profile("paper", ROOT)
    assert off.profile == "offline" and off.models == ["minilm"] and off.variants == ["base", "sentiment", "hedge"]
    assert paper.profile == "paper"
    assert paper.models == ["bert-base-cased", "roberta-base", "xlnet-base-cased"]
    assert set(paper.sentence_tasks) == {"sst2", "mnli", "qnli", "rte", "mrpc", "stsb"}
    assert paper.probe_tasks == ["pos-ptb", "sem-pmb", "chunk-conll2000", "ccg-ccgbank"]
    assert (paper.finetune.epochs, paper.finetune.lr, paper.finetune.batch_size) == (3, 5e-5, 8)


def test_dag_resolves_for_both_profiles(project: Path) -> None:
    r = _dvc(project, "repro", "--dry", "--force")
    assert r.returncode == 0, r.stderr + r.stdout
    stages = _stages(r.stdout)
    # 1 model, 2 corpora, 2 tasks x 3 seeds fine-tuned, 7 checkpoints x 2 tasks x (extract, probe, neurons),
    # the report
    assert len(stages) == 1 + 2 + 2 * 3 + 7 * 6 + 1 and stages[0] == "model@minilm" and stages[-1] == "report"
    assert {"finetune@minilm-sentiment-43", "extract@minilm-sentiment-seed44-chunk-wsj"} <= set(stages)
    assert main(["--params", str(project / "params.yaml"), "profile", "paper"]) == 0
    r = _dvc(project, "repro", "--dry", "--force")
    assert r.returncode == 0, r.stderr + r.stdout
    stages = _stages(r.stdout)
    # 3 models, 4 corpora, 3 x 6 tasks x 3 seeds, 3 x (1 + 6 x 3) checkpoints x 4 tasks x 3 stages, the report
    assert len(stages) == 3 + 4 + 3 * 6 * 3 + 3 * 19 * 4 * 3 + 1
    assert stages[0] == "model@bert-base-cased" and stages[-1] == "report"
    assert "neurons@xlnet-base-cased-stsb-seed44-ccg-ccgbank" in stages
    # and back
    assert main(["--params", str(project / "params.yaml"), "profile", "offline"]) == 0
    assert (project / "params.yaml").read_text() == (ROOT / "params.yaml").read_text()


def test_paper_profile_fails_clearly_at_its_first_hub_access(project: Path) -> None:
    assert main(["--params", str(project / "params.yaml"), "profile", "paper"]) == 0
    r = _dvc(project, "repro")
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert _stages(r.stdout) == ["model@bert-base-cased"]
    assert "cannot download bert-base-cased at revision " in out
    assert "python -m pipeline profile offline" in out
    assert "Traceback" not in out


def test_report_stage_depends_on_exactly_its_inputs(project: Path) -> None:
    stages = _resolved(project)["stages"]
    rep = stages["report"]
    assert {"results/layers", "results/neurons", "results/finetune", "claims.yaml",
            "pipeline/analysis"} <= set(rep["deps"])
    assert not any(d.startswith(("activations", "models", "data")) for d in rep["deps"])
    for name, st in stages.items():  # every stage depends on its own stage module
        assert f"pipeline/stages/{name.split('@')[0]}.py" in st["deps"], name


def test_resolved_dag_is_the_locked_one(project: Path) -> None:
    """Templating the paths keeps the stages, commands and outputs that dvc.lock records."""
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    stages = _resolved(project)["stages"]
    assert sorted(stages) == sorted(lock)
    for name, st in stages.items():
        assert st["cmd"] == lock[name]["cmd"], name
        assert st["outs"] == sorted(o["path"] for o in lock[name].get("outs", [])), name
    assert stages["probe@minilm-base-pos-wsj"]["outs"] == ["results/layers/minilm/base/pos-wsj.json",
                                                          "results/probes/minilm/base/pos-wsj"]


def test_every_data_path_comes_from_params_paths(project: Path) -> None:
    """dvc.yaml spells no data, model, activation or result folder itself: moving one in params.yaml's
    ``paths:`` moves every dep, out, metric and plot under it."""
    default = _resolved(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    moved = {key: f"elsewhere/{key}2" for key in ("data", "models", "activations", "results")}
    params["paths"].update(moved)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    now = _resolved(project)

    def move(path: str) -> str:
        head, _, rest = path.partition("/")
        return f"{moved[head]}/{rest}" if head in moved else path

    assert now["stages"].keys() == default["stages"].keys()
    for name, st in default["stages"].items():
        assert now["stages"][name]["outs"] == sorted(move(o) for o in st["outs"]), name
        assert now["stages"][name]["deps"] == sorted(move(d) for d in st["deps"]), name
    assert now["metrics"] == sorted(move(m) for m in default["metrics"])
    assert "elsewhere/results2/metrics.json" in now["metrics"]
    assert now["plots"] == sorted(move(p) for p in default["plots"])
    finetunes = [n for n in now["stages"] if n.startswith("finetune@")]
    assert len(now["plots"]) == 2 + len(finetunes)  # the report's two + one training-curve folder per fine-tune


@pytest.mark.parametrize("profile", ["offline", "offline-full"])
def test_activation_stores_stay_out_of_the_dvc_cache(project: Path, profile: str) -> None:
    """An extraction store is as large as its text (a base-size model's Brown store is about 3 GB): a
    cached copy next to the workspace's would double the disk (issue 13), so no out under
    ``paths.activations`` is cached, and every extract stage has its store as an out (deleting one
    makes ``dvc repro`` re-extract it)."""
    assert main(["--params", str(project / "params.yaml"), "profile", profile]) == 0
    root = yaml.safe_load((project / "params.yaml").read_text())["paths"]["activations"]
    stages = _resolved(project)["stages"]
    extracts = {n: st for n, st in stages.items() if n.startswith("extract@")}
    assert extracts
    for name, st in extracts.items():
        assert any(o.startswith(f"{root}/") for o in st["outs"]), name
    cached = sorted(o for st in stages.values() for o in st["cached"] if o.startswith(f"{root}/"))
    assert not cached, f"activation stores in DVC's cache (set `cache: false` on them in dvc.yaml): {cached}"


def test_profile_command_errors(project: Path, caplog: pytest.LogCaptureFixture) -> None:
    params = str(project / "params.yaml")
    assert main(["--params", params, "profile", "gpu-cluster"]) == 2
    assert "unknown profile 'gpu-cluster'; available: offline, offline-full, paper" in caplog.text
    (project / "profiles" / "broken.yaml").write_text("profile: broken\nmodels: [gpt-7]\n")
    assert main(["--params", params, "profile", "broken"]) == 2
    assert (project / "params.yaml").read_text() == (ROOT / "params.yaml").read_text()  # untouched


def test_finetune_stage_tracks_the_recipe_but_not_the_seed_list() -> None:
    """Adding a fine-tuning seed trains only the new one: the finetune stage lists every recipe key but
    ``seeds`` (its own seed is in its command), so a recipe key added to the config must be added here too."""
    from pipeline.config import FinetuneParams

    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["finetune"]
    assert stage["params"] == [f"finetune.{k}" for k in FinetuneParams.model_fields if k != "seeds"]
    assert "--seed ${item.seed}" in stage["cmd"] and stage["matrix"]["seed"] == "${finetune.seeds}"


def test_committed_training_curves_hold_loss_and_dev_per_run() -> None:
    """`dvc plots show` draws, for every committed fine-tuning run, its training loss and its dev curve: the
    offline preset evaluates dev during training (`finetune.eval_strategy`), and the curve's points are the ones
    the run's result records."""
    runs = sorted((ROOT / "results" / "finetune").glob("*.json"))
    assert len(runs) == len(load_params(ROOT / "params.yaml")[0].finetune.seeds) * 2  # sentiment and hedge
    for path in runs:
        record = json.loads(path.read_text(encoding="utf-8"))
        curves = ROOT / "results" / "train" / path.stem / "plots" / "metrics"
        loss = (curves / "loss.tsv").read_text(encoding="utf-8").splitlines()
        dev = [line.split("\t") for line in (curves / "eval" / "accuracy.tsv").read_text().splitlines()]
        assert loss[0] == "step\tloss" and len(loss) > 10, path.stem
        assert dev[0] == ["step", "accuracy"] and len(dev) - 1 >= 3, path.stem
        assert [{"step": int(s), "accuracy": float(v)} for s, v in dev[1:]] == record["dev_curve"], path.stem
