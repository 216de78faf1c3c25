"""The offline-full profile: what it asks for (always checked), and its committed results once they exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import load_profile

ROOT = Path(__file__).resolve().parents[1]
FULL = ROOT / "results" / "offline-full"


def test_offline_full_is_the_papers_recipe_on_two_architectures_and_brown() -> None:
    full, paper = load_profile("offline-full", ROOT), load_profile("paper", ROOT)
    assert full.models == ["minilm", "mpnet"] and full.probe_tasks == ["pos-wsj", "chunk-wsj", "pos-brown"]
    assert len(full.finetune.seeds) >= 3 and full.variants == ["base", "sentiment", "hedge"]
    recipe = ("epochs", "lr", "batch_size", "max_length", "max_train_examples", "eval_strategy")
    assert {k: getattr(full.finetune, k) for k in recipe} == {k: getattr(paper.finetune, k) for k in recipe}
    assert "minilm" not in full.finetune.model_max_train_examples  # MiniLM keeps the full recipe
    assert full.prepare.max_train_tokens == 150_000
    quick = load_profile("offline", ROOT)
    for folder in ("data", "models", "activations", "results"):  # nothing of the quick default is overwritten
        assert getattr(full.paths, folder) != getattr(quick.paths, folder)
    assert full.paths.results == "results/offline-full"


needs_results = pytest.mark.skipif(not (FULL / "lock.yaml").is_file(),
                                   reason="results/offline-full/ not committed yet (make repro-full)")


@needs_results
def test_committed_results_cover_every_model_seed_and_task() -> None:
    """Both models, each fine-tuned with every seed on both sentence tasks, probed on all three tasks; the claims
    are proxy verdicts; every served file is recorded in lock.yaml."""
    from pipeline.records import ClaimsFile, FinetuneResult, LayerResult, NeuronResult

    full = load_profile("offline-full", ROOT)
    lock = (FULL / "lock.yaml").read_text(encoding="utf-8")
    for m in full.models:
        for v in full.checkpoints:
            for t in full.probe_tasks:
                for kind, cls in (("layers", LayerResult), ("neurons", NeuronResult)):
                    f = FULL / kind / m / v / f"{t}.json"
                    rec = cls.from_json(json.loads(f.read_text(encoding="utf-8")), str(f))
                    assert rec.key == (m, v, t) and f"results/offline-full/{kind}/{m}/{v}/{t}.json" in lock
        for task in full.sentence_tasks:
            for seed in full.finetune.seeds:
                f = FULL / "finetune" / f"{m}-{task}-seed{seed}.json"
                ft = FinetuneResult.from_json(json.loads(f.read_text(encoding="utf-8")), str(f))
                assert ft.task == task and ft.seed == seed
    claims = ClaimsFile.from_json(json.loads((FULL / "claims.json").read_text(encoding="utf-8")), "claims.json")
    assert claims.profile == "offline-full" and claims.proxy and all(c.proxy for c in claims.claims)
    report = (FULL / "report.md").read_text(encoding="utf-8")
    assert "proxy" in report and "MPNet" in report and "raw Brown tags" in report.replace("RAW", "raw")


@needs_results
def test_mpnet_pos_matches_an_independent_recomputation() -> None:
    """benchmarks/recompute_mpnet.py's comparison refers to the committed result and is within its tolerance."""
    rec = json.loads((ROOT / "benchmarks" / "results" / "recompute-mpnet-pos.json").read_text(encoding="utf-8"))
    ours = json.loads((ROOT / rec["result_file"]).read_text(encoding="utf-8"))
    assert rec["pipeline"] == [round(a, 5) for a in ours["test_accuracy"]["mean"]]
    assert rec["within_tolerance"] and rec["max_abs_diff_points"] <= rec["tolerance_points"]


@needs_results
def test_committed_results_pass_their_own_regression_baseline() -> None:
    """``baselines/offline-full.json`` was recorded from the committed results (``python -m pipeline check
    --write-baseline`` in the worktree): the gate passes on them, and it names the same profile."""
    from pipeline.check import load_baseline, run_check

    baseline = ROOT / "baselines" / "offline-full.json"
    assert load_baseline(baseline)["profile"] == "offline-full"
    code, table = run_check(FULL, baseline)
    assert code == 0, table
