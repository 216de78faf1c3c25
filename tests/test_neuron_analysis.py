"""The neurons stage's salience-gated analysis on small synthetic stores: planted neurons and pure noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.config import NeuronParams, Params
from pipeline.layout import Layout
from pipeline.probing.neuron_analysis import analyse_neurons, scan_grid
from pipeline.probing.solver import SolverConfig
from pipeline.records import NeuronResult
from pipeline.stages.neurons import neurons
from pipeline.store import ActivationStore, ActivationWriter

PLANTED = np.array([5, 17, 23, 31])  # 4 informative neurons among 4 layers x 10 dims
FAST = SolverConfig(batch_size=64, lr=1e-2)
SMALL = NeuronParams(oracle_seeds=[0, 1, 2], grid_step=0.05, grid_seeds=[0, 1], grid_block=4, n_random=100,
                     train_words=800, epochs=6)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def planted_store(path: Path, informative: bool = True, n_sent: int = 200, words: int = 10) -> ActivationStore:
    """A real-format store of 4 layers x 10 dims of noise, 3 classes; planted neuron ``j`` marks class ``j % 3``.
    Splits by sentence: 120 / 40 / 40."""
    n = n_sent * words
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 40)).astype(np.float32)
    if informative:
        X[:, PLANTED] += 2.5 * (y[:, None] == np.arange(len(PLANTED)) % 3)
    sents = [[f"w{i}" for i in rng.integers(0, 50, words)] for _ in range(n_sent)]
    with ActivationWriter(path, n, 4, 10) as w:
        w.write_rows(np.arange(n), X.reshape(n, 4, 10))
        w.commit(np.arange(0, n + 1, words), sents, y, ["A", "B", "C"],
                 {"train": (0, 120), "dev": (120, 160), "test": (160, 200)}, {"model": "toy"})
    return ActivationStore(path)


def analyse(store: ActivationStore, params: NeuronParams = SMALL) -> dict:
    return analyse_neurons(*store.split("train"), *store.split("dev"), *store.split("test"),
                           label_names=store.label_names, params=params, config=FAST)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return analyse(planted_store(tmp_path_factory.mktemp("planted") / "store"))


def test_planted_neurons_rank_first_and_are_salient(planted: dict) -> None:
    res = planted
    ls, sal = res["layer_shift"], res["salience"]
    k = res["grid_scan"]["k"]
    assert res["grid_scan"]["reached"] is True and 1 <= k <= 20 and res["minimal_set"]["k"] == k
    for counts in ls["raw"]["counts"] + ls["standardised"]["counts"]:  # every oracle seed, both rankings
        assert len(counts) == 4 and sum(counts) == k
    assert set(res["ordering"][:4]) == set(PLANTED.tolist())
    assert len(ls["raw"]["mean_layer"]) == len(SMALL.oracle_seeds) == len(res["oracle_seeds"]["dev"])
    assert sal["salient"] is True and sal["selection_salient"] and sal["ablation"]["salient"]
    assert sal["reason"].startswith("salient") and sal["n_random"] == 100 and sal["k"] == k
    assert sal["topk_accuracy"] > sal["random_accuracy"]["ci_high"]
    assert sal["ablation"]["topk_accuracy"] < sal["ablation"]["random_accuracy"]["ci_low"]
    assert sal["recipe"] == {"train_words": 800, "epochs": 6}
    assert res["minimal_set"]["neurons"] == res["ordering"][:k]


def test_grid_scan_block_is_recorded(planted: dict) -> None:
    scan = planted["grid_scan"]
    ks = [p["k"] for p in scan["curve"]]
    assert ks == sorted(ks) and ks[0] == 2 and scan["scanned"] == len(ks) and scan["max_k"] == 20
    assert scan["target"] == pytest.approx(0.99 * np.mean(planted["oracle_seeds"]["dev"]))
    assert scan["k"] == next(p["k"] for p in scan["curve"] if p["dev_mean"] >= scan["target"])
    assert len(scan["seed_k"]) == 2
    assert planted["minimal_set"]["evaluated"] == {str(p["k"]): p["dev_mean"] for p in scan["curve"]}
    agree = planted["layer_shift"]["agreement"]
    assert agree["overlap"] == pytest.approx(np.mean(agree["overlap_per_seed"])) and 0 <= agree["overlap"] <= 1


def test_a_noise_ranking_is_not_salient_and_says_why(tmp_path: Path) -> None:
    res = analyse(planted_store(tmp_path / "store", informative=False))
    sal = res["salience"]
    assert sal["salient"] is False and sal["selection_salient"] is False
    assert sal["reason"].startswith("not salient: selection")


def test_scan_grid_caps_k() -> None:
    assert scan_grid(40, 0.05, 0.5).tolist() == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert scan_grid(2688, 0.01, 0.5)[-1] == 1344 and len(scan_grid(2688, 0.01, 0.5)) == 50
    assert scan_grid(10, 0.5, 0.01).tolist() == [5]  # a cap below the first point keeps the first point


def test_neurons_stage_writes_a_record_that_reads_back(tmp_path: Path) -> None:
    params = Params(neurons=SMALL, probe={"batch_size": 64, "lr": 1e-2})
    planted_store(Layout.of(params, tmp_path).activation_dir("toy", "base", "t"))
    out = neurons(params, tmp_path, "toy", "base", "t")
    rec = NeuronResult.read(out)
    assert rec.k == rec.grid_scan.k == rec.salience.k and rec.salience.n_random >= 100
    assert rec.params["epochs"] == SMALL.epochs and rec.params["oracle_seeds"] == [0, 1, 2]
    assert rec.oracle.dev == rec.oracle_seeds.dev[0] and len(rec.layer_shift.raw.counts) == 3
