"""Activation store: round trip, layer-major layout, atomic writes, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.store import ACTS_FILE, ActivationStore, ActivationWriter, StoreError


def _write(path: Path, acts: np.ndarray, labels: list[int], offsets: list[int], rows_order: np.ndarray | None = None,
           buffer_mb: float = 1024):
    n, layers, dim = acts.shape
    words = [[f"w{i}" for i in range(offsets[s], offsets[s + 1])] for s in range(len(offsets) - 1)]
    with ActivationWriter(path, n, layers, dim, buffer_mb=buffer_mb) as w:
        order = rows_order if rows_order is not None else np.arange(n)
        for chunk in np.array_split(order, 3):
            w.write_rows(chunk, acts[chunk])
        w.commit(offsets, words, labels, ["A", "B", "C"], {"train": (0, 2), "dev": (2, 3), "test": (3, 4)},
                 {"model": "toy"})


@pytest.mark.parametrize("buffer_mb", [1024, 0], ids=["in-memory", "memmap"])
def test_round_trip_in_any_row_order(tmp_path: Path, buffer_mb: float) -> None:
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(10, 4, 6)).astype(np.float32)
    labels = rng.integers(0, 3, size=10).tolist()
    _write(tmp_path / "s", acts, labels, [0, 3, 6, 8, 10], rows_order=rng.permutation(10), buffer_mb=buffer_mb)
    st = ActivationStore(tmp_path / "s")
    assert st.activations.shape == (10, 4, 6)
    np.testing.assert_allclose(st.activations, acts.astype(np.float16))
    np.testing.assert_array_equal(st.layer(2), acts[:, 2].astype(np.float16))
    assert st.labels.tolist() == labels and st.label_names == ("A", "B", "C")
    assert st.split_rows("dev") == slice(6, 8) and st.split_rows("test") == slice(8, 10)
    assert st.flat_words()[:4] == ["w0", "w1", "w2", "w3"] and st.meta["model"] == "toy"


def test_layers_are_contiguous_on_disk(tmp_path: Path) -> None:
    acts = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    with ActivationWriter(tmp_path / "s", 2, 3, 4) as w:
        w.write_rows(np.arange(2), acts)
        w.commit([0, 2], [["a", "b"]], [0, 0], ["X"], {"train": (0, 1)}, {})
    raw = np.fromfile(tmp_path / "s" / ACTS_FILE, dtype=np.float16)
    # layer 1 of both words sits in one block: words x dim values after layer 0's block
    np.testing.assert_array_equal(raw[8:16], acts[:, 1].reshape(-1))
    layer = ActivationStore(tmp_path / "s").layer(1)
    assert isinstance(layer, np.memmap) and layer.flags["C_CONTIGUOUS"]


def test_failed_write_leaves_nothing_and_keeps_old_store(tmp_path: Path) -> None:
    acts = np.ones((2, 1, 2), dtype=np.float32)
    with ActivationWriter(tmp_path / "s", 2, 1, 2) as w:
        w.write_rows(np.arange(2), acts)
        w.commit([0, 2], [["a", "b"]], [0, 0], ["X"], {"train": (0, 1)}, {"gen": 1})
    with pytest.raises(RuntimeError), ActivationWriter(tmp_path / "s", 2, 1, 2) as w:
        w.write_rows(np.arange(2), acts * 2)
        raise RuntimeError("interrupted")
    assert ActivationStore(tmp_path / "s").meta["gen"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_commit_is_required(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="without commit"), ActivationWriter(tmp_path / "s", 1, 1, 1):
        pass
    assert not (tmp_path / "s").exists()


def test_inconsistent_index_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="offsets"), ActivationWriter(tmp_path / "s", 2, 1, 1) as w:
        w.commit([0, 3], [["a", "b", "c"]], [0, 0], ["X"], {}, {})
    with pytest.raises(StoreError, match="sorted"), ActivationWriter(tmp_path / "s", 2, 1, 1) as w:
        w.commit([0, 2], [["a", "b"]], [0, 1], ["b", "a"], {}, {})
    with pytest.raises(StoreError, match="does not fit"), ActivationWriter(tmp_path / "s", 2, 1, 1) as w:
        w.write_rows(np.arange(2), np.zeros((2, 2, 1)))


def test_open_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="extract stage"):
        ActivationStore(tmp_path / "nope")
    acts = np.ones((2, 1, 2), dtype=np.float32)
    with ActivationWriter(tmp_path / "s", 2, 1, 2) as w:
        w.write_rows(np.arange(2), acts)
        w.commit([0, 2], [["a", "b"]], [0, 0], ["X"], {"train": (0, 1)}, {})
    st = ActivationStore(tmp_path / "s")
    with pytest.raises(StoreError, match="layer 5 out of range"):
        st.layer(5)
    with pytest.raises(StoreError, match="split 'dev'"):
        st.split_rows("dev")
    with open(tmp_path / "s" / ACTS_FILE, "r+b") as fh:
        fh.truncate(3)
    with pytest.raises(StoreError, match="truncated"):
        ActivationStore(tmp_path / "s")
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    meta["format_version"] = 99
    (tmp_path / "s" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="format"):
        ActivationStore(tmp_path / "s")


def test_words_must_fit_the_one_word_per_line_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="line breaks"), ActivationWriter(tmp_path / "s", 2, 1, 1) as w:
        w.write_rows(np.arange(2), np.zeros((2, 1, 1)))
        w.commit([0, 2], [["a", "b\nc"]], [0, 0], ["X"], {}, {})
    assert not (tmp_path / "s").exists()


@pytest.mark.integration
def test_tasks_over_the_same_sentences_share_one_extraction(tmp_path: Path, minilm_dir: Path) -> None:
    """chunk-wsj after pos-wsj links pos-wsj's activations (same inode, no forward pass) and the store is byte for
    byte what a fresh extraction writes; with other extraction settings (another inputs digest) nothing is linked."""
    import filecmp
    import json
    import shutil

    from pipeline.config import Params
    from pipeline.stages.extract import extract
    from pipeline.stages.prepare import prepare

    params = Params()
    for task in ("pos-wsj", "chunk-wsj"):
        prepare(params, tmp_path, task)
    (tmp_path / "models" / "minilm").mkdir(parents=True)
    (tmp_path / "models" / "minilm" / "base").symlink_to(minilm_dir, target_is_directory=True)
    pos = extract(params, tmp_path, "minilm", "base", "pos-wsj")
    chunk = extract(params, tmp_path, "minilm", "base", "chunk-wsj")
    assert (pos / ACTS_FILE).stat().st_ino == (chunk / ACTS_FILE).stat().st_ino
    log = json.loads((tmp_path / "results" / "runs" / "extract" / "minilm-base-chunk-wsj.json").read_text())
    assert log["facts"]["linked_from"] == "pos-wsj"
    linked = tmp_path / "linked"
    shutil.copytree(chunk, linked)
    shutil.rmtree(pos)
    fresh = extract(params, tmp_path, "minilm", "base", "chunk-wsj")  # no sibling now: runs the model
    names = sorted(p.name for p in linked.iterdir())
    assert names == sorted(p.name for p in fresh.iterdir()) and "labels.npy" in names
    match, mismatch, errors = filecmp.cmpfiles(linked, fresh, names, shallow=False)
    assert mismatch == [] and errors == [] and len(match) == len(names)
    assert ActivationStore(fresh).label_names != ActivationStore(
        extract(params, tmp_path, "minilm", "base", "pos-wsj")).label_names  # own labels, shared activations
    other = params.model_copy(update={"extract": params.extract.model_copy(update={"batch_size": 8})})
    again = extract(other, tmp_path, "minilm", "base", "chunk-wsj")
    assert (again / ACTS_FILE).stat().st_ino != (pos / ACTS_FILE).stat().st_ino
    assert json.loads((again / "meta.json").read_text())["inputs_digest"] != json.loads(
        (pos / "meta.json").read_text())["inputs_digest"]
