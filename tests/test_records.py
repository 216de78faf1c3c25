"""The result records: exact JSON round trips, validation errors that name the file and the field, the
schema version, and no run facts (timings, host) in any committed record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from resultkit import FLAT, correctness, finetune_record, layer_record, neuron_record, offline_like, write_layers

from pipeline.layout import ResultsLayout
from pipeline.records import (
    SCHEMA_VERSION,
    ClaimsFile,
    FinetuneResult,
    LayerResult,
    MetricsFile,
    NeuronResult,
    PackedCorrect,
    ResultsError,
    RunLog,
    load_results,
    read_run_log,
    read_run_logs,
    words_digest,
)

COMMITTED = (LayerResult, NeuronResult, FinetuneResult, ClaimsFile, MetricsFile)


@pytest.mark.parametrize("record", [layer_record("m", "base", "t", FLAT), neuron_record("m", "base", "t", [1, 2, 3]),
                                    finetune_record("m", "sentiment", 0.8)], ids=["layer", "neuron", "finetune"])
def test_json_round_trip_is_exact(record, tmp_path: Path) -> None:  # noqa: ANN001
    back = type(record).from_json(json.loads(json.dumps(record.to_json())))
    assert back == record and back.to_json() == record.to_json()
    path = record.write(tmp_path / "r.json")
    first = path.read_bytes()
    assert type(record).read(path).write(path).read_bytes() == first  # read + write changes no byte
    assert json.loads(first)["schema_version"] == SCHEMA_VERSION


def test_arrays_are_numpy_views_of_the_stored_numbers() -> None:
    r = layer_record("m", "base", "t", [0.5, 0.75, 0.9])
    assert isinstance(r.mean, np.ndarray) and r.mean.tolist() == list(r.test_accuracy.mean)
    assert r.correct().shape == (3, 2000) and r.correct().mean(1).tolist() == r.mean.tolist()
    n = neuron_record("m", "base", "t", [1, 0, 2], dim=4)
    assert n.neurons.tolist() == [0, 8, 9] and n.neuron_layers.tolist() == [0, 2, 2] and n.counts == [1, 0, 2]
    assert n.ranking[:3].tolist() == [0, 8, 9] and sorted(n.ranking.tolist()) == list(range(12))


def test_a_bad_field_is_named_with_its_file(tmp_path: Path) -> None:
    path = tmp_path / "layers" / "m" / "base" / "t.json"
    data = layer_record("m", "base", "t", FLAT).to_json()
    data["test_accuracy"]["mean"][3] = "lots"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=r"t\.json: field test_accuracy\.mean\.3: ") as err:
        LayerResult.read(path)
    assert "probe stage" in err.value.hint
    del data["test_correct"]
    with pytest.raises(ResultsError, match=r"field test_accuracy\.mean\.3: .* \(and 1 more problems\)"):
        LayerResult.from_json(data, path)


def test_schema_version_is_checked(tmp_path: Path) -> None:
    data = neuron_record("m", "base", "t", [1, 2]).to_json()
    data.pop("schema_version")
    with pytest.raises(ResultsError, match="has no schema_version") as err:
        NeuronResult.from_json(data, "x.json")
    assert "neurons stage" in err.value.hint
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ResultsError, match=f"x.json has schema_version {SCHEMA_VERSION + 1}"):
        NeuronResult.from_json(data, "x.json")
    with pytest.raises(ResultsError, match="not found"):
        NeuronResult.read(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ResultsError, match="cannot be read as JSON"):
        NeuronResult.read(tmp_path / "bad.json")
    with pytest.raises(ResultsError, match="holds list"):
        NeuronResult.from_json([1, 2])


def test_committed_records_hold_no_run_facts() -> None:
    """Timings and the host would change a committed file on every run; they are not fields of any record."""
    for cls in COMMITTED:
        schema = json.dumps(cls.model_json_schema())
        for word in ("seconds", "platform", "per_second", "elapsed", "hostname"):
            assert word not in schema, (cls.__name__, word)
    data = layer_record("m", "base", "t", FLAT).to_json()
    data["seconds"] = 7.7
    with pytest.raises(ResultsError, match="field seconds: Extra inputs are not permitted"):
        LayerResult.from_json(data)
    data = layer_record("m", "base", "t", FLAT).to_json()
    data["provenance"]["versions"]["platform"] = "Linux-6.1-x86_64"
    with pytest.raises(ResultsError, match="provenance.versions: .*host facts"):
        LayerResult.from_json(data)


def test_packed_correctness_round_trip_and_bad_data() -> None:
    c = correctness([0.5, 0.75], n_words=8, n_seeds=3)
    c[1, 0, :] = True
    packed = PackedCorrect.model_validate(PackedCorrect.encode(c).model_dump(mode="json"))
    np.testing.assert_allclose(packed.decode(), c.mean(0))
    with pytest.raises(ValueError):
        PackedCorrect.encode(c[0])
    with pytest.raises(ResultsError, match="not in the pipeline's encoding"):
        packed.model_copy(update={"data": "@@@"}).decode()


def test_words_digest_pairs_results_on_the_same_words() -> None:
    assert words_digest(["a", "b"], ["X", "Y"]) == words_digest(["a", "b"], ["X", "Y"])
    assert words_digest(["a", "b"], ["X", "Y"]) != words_digest(["a", "b"], ["X", "Z"])


def test_finetune_scores_of_several_test_splits() -> None:
    r = finetune_record("m", "mnli", 0.8)
    data = r.to_json()
    data["scores"] = {"dev": {"accuracy": 0.7}, "test_matched": {"accuracy": 0.81},
                      "test_mismatched": {"accuracy": 0.79}}
    data["majority_baseline"] = None
    r = FinetuneResult.from_json(data)
    assert (r.test_split, r.score, r.majority) == ("test_matched", 0.81, None)


def test_load_results_filters_and_checks_names(tmp_path: Path) -> None:
    offline_like(tmp_path)
    write_layers(tmp_path, "mpnet", "base", "pos-wsj", FLAT)
    res = load_results(tmp_path)
    seeded = [f"{t}-seed{s}" for t in ("hedge", "sentiment") for s in (42, 43, 44)]
    assert len(res.layers) == 15 and len(res.neurons) == 14
    assert set(res.finetune) == {("minilm", c) for c in seeded}
    assert res.models == ["minilm", "mpnet"] and res.variants("minilm") == ["base", *seeded]
    assert res.by_variant("minilm") == {"base": ["base"], "hedge": seeded[:3], "sentiment": seeded[3:]}
    assert [r.variant for r in res.seed_layers("minilm", "hedge", "pos-wsj")] == seeded[:3]
    only = load_results(tmp_path, models=["minilm"], variants=["base"], tasks=["pos-wsj"], sentence_tasks=["hedge"])
    assert list(only.layers) == [("minilm", "base", "pos-wsj")]
    assert sorted(only.finetune) == [("minilm", c) for c in seeded[:3]]
    # a file whose content is another result than its path says
    lay = ResultsLayout(tmp_path)
    lay.layer("minilm", "base", "pos-wsj").write_text(lay.layer("minilm", "hedge-seed43", "pos-wsj").read_text())
    with pytest.raises(ResultsError, match="holds the probe result of minilm/hedge-seed43/pos-wsj"):
        load_results(tmp_path)


def test_run_log_is_written_and_read_back(tmp_path: Path) -> None:
    lay = ResultsLayout(tmp_path)
    log = RunLog.now("probe", "m-base-t", {"stage": 1.23456, "seed0_fit": 0.5}, device="cpu")
    log.write(lay.run_log("probe", "m", "base", "t"))
    back = read_run_log(tmp_path / "runs" / "probe" / "m-base-t.json")
    assert back == log and back.seconds == 1.235 and back.facts == {"device": "cpu"}
    assert back.host["platform"] and back.finished_at.endswith("+00:00")
    (tmp_path / "runs" / "probe" / "broken.json").write_text("{")
    assert read_run_log(tmp_path / "runs" / "probe" / "broken.json") is None
    assert list(read_run_logs(tmp_path)) == [("probe", "m-base-t")]
