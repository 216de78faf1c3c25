"""Issue 12's layer statistics in the probe stage, on small real-format stores: the lexical baseline, the
sentence-level bootstrap, per-tag F1, control word types from the tokenizer, the stage's record (schema 2),
and the report, plots and tag losses built from it."""

from __future__ import annotations

import json
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from resultkit import layer_record, offline_like, project, write_layers
from test_probe import FAST

from pipeline.config import ConfigError, Params, load_params, validate
from pipeline.extract import tokenizer_is_uncased
from pipeline.layout import Layout
from pipeline.records import SCHEMA_VERSION, LayerResult, PackedBits, ResultsError, load_results
from pipeline.stages.probe import (
    SEEDS_VARY,
    control_task,
    layer_probe,
    lexical_baseline,
    per_tag,
    probe,
    store_uncased,
)
from pipeline.stats.resample import accuracy_over_seeds, cluster_bootstrap, percentile_interval
from pipeline.store import ActivationStore, ActivationWriter, StoreError
from pipeline.taglosses import tag_losses, top_third

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
TAGS = ("DT", "NN", "VB", "JJ")
# word -> the tags it may carry (weights): ambiguous words make the lexical baseline imperfect
VOCAB = {"the": ("DT",), "The": ("DT", "JJ"), "a": ("DT",), "dog": ("NN", "VB"), "cat": ("NN",),
         "run": ("VB", "NN"), "runs": ("VB",), "big": ("JJ",), "red": ("JJ", "NN"), "Café": ("NN",),
         "cafe": ("NN", "JJ"), "sees": ("VB",)}


def corpus(n_sent: int, seed: int, words: int = 8) -> tuple[list[list[str]], list[list[str]]]:
    """Random sentences over :data:`VOCAB`, each word tagged with one of its possible tags."""
    rng = np.random.default_rng(seed)
    vocab = sorted(VOCAB)
    sents, tags = [], []
    for _ in range(n_sent):
        n = int(rng.integers(words - 3, words + 4))
        ws = [vocab[i] for i in rng.integers(0, len(vocab), n)]
        sents.append(ws)
        tags.append([VOCAB[w][int(rng.integers(0, len(VOCAB[w])))] for w in ws])
    return sents, tags


def write_store(path: Path, sents: list[list[str]], tags: list[list[str]], splits: dict[str, tuple[int, int]],
                uncased: bool | None = True, n_layers: int = 3, dim: int = 6, seed: int = 0) -> ActivationStore:
    """A real-format store: layer 0 noise, layers 1+ encode the tag (plus noise); ``uncased`` goes into
    ``meta.json`` as the extract stage writes it (``None``: left out, as in stores from before it)."""
    names = sorted({t for s in tags for t in s})
    y = np.asarray([names.index(t) for s in tags for t in s])
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=0.5, size=(len(y), n_layers, dim)).astype(np.float32)
    X[np.arange(len(y)), 1:, y % dim] += 3.0
    meta = {"model": "toy", "aggregation": "last"} | ({} if uncased is None else {"tokenizer_uncased": uncased})
    with ActivationWriter(path, len(y), n_layers, dim) as w:
        w.write_rows(np.arange(len(y)), X)
        w.commit(np.concatenate([[0], np.cumsum([len(s) for s in sents])]), sents, y, names, splits, meta)
    return ActivationStore(path)


@pytest.fixture
def toy_store(tmp_path: Path) -> ActivationStore:
    sents, tags = corpus(80, seed=1)
    # a tie in training (first seen: NN, the smallest label id: JJ), and test words never seen in training
    sents[0], tags[0] = ["tie", "tie", "the"], ["NN", "JJ", "DT"]
    sents[70], tags[70] = ["tie", "unseen", "Unseen"], ["JJ", "VB", "JJ"]
    sents[71], tags[71] = ["tie", "the"], ["NN", "DT"]
    return write_store(tmp_path / "store", sents, tags, {"train": (0, 50), "dev": (50, 65), "test": (65, 80)})


def counter_baseline(st: ActivationStore) -> dict[str, np.ndarray]:
    """The lexical baseline recomputed independently: collections.Counter per word form (ties: first seen)."""
    words, names = st.flat_words(), st.label_names
    tr = st.split_rows("train")
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for w, t in zip(words[tr], st.labels[tr], strict=True):
        per[w][names[t]] += 1
    majority = Counter(names[t] for t in st.labels[tr]).most_common(1)[0][0]
    out = {}
    for split in ("dev", "test"):
        rows = st.split_rows(split)
        out[split] = np.asarray([(per[w].most_common(1)[0][0] if w in per else majority) == names[t]
                                 for w, t in zip(words[rows], st.labels[rows], strict=True)])
    return out


# ----------------------------------------------------------------------------------- lexical baseline
def test_lexical_baseline_equals_an_independent_counter_recomputation(toy_store: ActivationStore) -> None:
    lex = lexical_baseline(toy_store)
    ref = counter_baseline(toy_store)
    assert lex["dev_accuracy"] == ref["dev"].mean() and lex["test_accuracy"] == ref["test"].mean()
    np.testing.assert_array_equal(lex["test_correct"].decode(), ref["test"])
    assert 0.4 < lex["test_accuracy"] < 1.0  # ambiguous words: the baseline is informative but imperfect
    assert (lex["ties"], lex["word_types"]) == ("first_seen", "cased")
    assert lex["unseen_label"] in TAGS and lex["unseen_label"] in lex["rule"]
    test_words = toy_store.flat_words()[toy_store.split_rows("test")]
    assert lex["n_test_unseen"] == sum(w in ("unseen", "Unseen") for w in test_words) == 2


def test_lexical_ties_go_to_the_tag_seen_first_and_forms_stay_cased(toy_store: ActivationStore) -> None:
    lex = lexical_baseline(toy_store)
    rows = toy_store.split_rows("test")
    words, labels = toy_store.flat_words()[rows], toy_store.labels[rows]
    correct = lex["test_correct"].decode()
    tie = [i for i, w in enumerate(words) if w == "tie"]
    assert [toy_store.label_names[labels[i]] for i in tie] == ["JJ", "NN"]
    assert [bool(correct[i]) for i in tie] == [False, True]
    # "The" (DT or JJ in training) and "the" (always DT) are two forms: the JJ-tagged "The"s in test are
    # right only if "The" itself mostly carried JJ in training
    tr = toy_store.split_rows("train")
    the = Counter(toy_store.label_names[t] for w, t in zip(toy_store.flat_words()[tr], toy_store.labels[tr],
                                                            strict=True) if w == "The")
    upper_jj = [i for i, w in enumerate(words) if w == "The" and toy_store.label_names[labels[i]] == "JJ"]
    assert upper_jj and all(correct[i] == (the.most_common(1)[0][0] == "JJ") for i in upper_jj)


# ----------------------------------------------------------------------------------- sentence bootstrap
def test_sentence_bootstrap_is_wider_when_sentences_are_right_or_wrong_as_a_whole() -> None:
    lengths = np.full(50, 20)
    sid = np.repeat(np.arange(50), lengths)
    by_sentence = (np.arange(50) % 2 == 0)[sid]  # every other sentence all right: accuracy 0.5
    correct = np.stack([by_sentence[None]] * 3)  # [seeds, layers, words]
    res = accuracy_over_seeds(correct, sid, n_boot=500, seed=3)
    ci = res["bootstrap"]
    assert (ci["bootstrap_unit"], ci["n_sentences"], ci["n_words"]) == ("sentence", 50, 1000)
    lo, hi = percentile_interval(cluster_bootstrap(correct.mean(0), sid, n_boot=500, seed=3))
    assert (ci["ci_low"], ci["ci_high"]) == (lo.tolist(), hi.tolist())
    word_lo, word_hi = percentile_interval(cluster_bootstrap(correct.mean(0), np.arange(sid.shape[0]), n_boot=500,
                                                             seed=3))  # every word its own cluster
    assert ci["ci_high"][0] - ci["ci_low"][0] > 3 * (word_hi[0] - word_lo[0])
    assert res["mean"] == [0.5] and res["std"] == [0.0] and ci["accuracy"] == [0.5]


# ----------------------------------------------------------------------------------- per-tag F1
def test_per_tag_f1_of_every_layer_matches_a_hand_count(toy_store: ActivationStore) -> None:
    trained, _ = layer_probe(toy_store, FAST)
    tags = per_tag(toy_store, trained)
    X, y = toy_store.split("test")
    pred = np.asarray(trained.predict(X))  # [words, layers]
    assert tags["labels"] == list(toy_store.label_names) and sum(tags["support"]) == len(y)
    assert np.asarray(tags["f1"]).shape == (3, len(toy_store.label_names))
    for layer in range(3):
        for k in range(len(toy_store.label_names)):
            tp = int(((pred[:, layer] == k) & (y == k)).sum())
            p = tp / max(1, int((pred[:, layer] == k).sum()))
            r = tp / max(1, int((y == k).sum()))
            f1 = 2 * p * r / (p + r) if p + r else 0.0
            assert tags["f1"][layer][k] == round(f1, 4)
    assert min(tags["f1"][2]) > 0.9 and max(tags["f1"][0]) < 0.9  # tags are encoded in layers 1+, not in 0


# ----------------------------------------------------------------------------------- control word types
def test_control_types_follow_the_tokenizers_normalisation(toy_store: ActivationStore) -> None:
    acc = [0.5, 0.9, 0.9]
    uncased = control_task(toy_store, FAST, acc, uncased=True)["control"]
    cased = control_task(toy_store, FAST, acc, uncased=False)["control"]
    forms = set(toy_store.flat_words())
    assert cased["n_types"] == len(forms) and cased["word_types"] == "cased"
    # The/the, Café/cafe and Unseen/unseen fold into one type each
    assert uncased["n_types"] == len(forms) - 3 and uncased["word_types"] == "uncased"


def test_store_says_whether_its_tokenizer_is_uncased(tmp_path: Path) -> None:
    sents, tags = corpus(6, seed=0)
    split = {"train": (0, 4), "dev": (4, 5), "test": (5, 6)}
    assert store_uncased(write_store(tmp_path / "u", sents, tags, split, uncased=True)) is True
    assert store_uncased(write_store(tmp_path / "c", sents, tags, split, uncased=False)) is False
    with pytest.raises(StoreError, match="tokenizer_uncased") as err:
        store_uncased(write_store(tmp_path / "old", sents, tags, split, uncased=None))
    assert "extract" in err.value.hint


def test_tokenizer_is_uncased_reads_the_backend_normaliser() -> None:
    from tokenizers import Tokenizer, normalizers
    from tokenizers.models import WordLevel

    class Fast:  # the part of a transformers fast tokenizer that the check reads
        def __init__(self, normalizer: object | None) -> None:
            self.backend_tokenizer = Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
            if normalizer is not None:
                self.backend_tokenizer.normalizer = normalizer

    assert tokenizer_is_uncased(Fast(normalizers.BertNormalizer(lowercase=True)))
    assert not tokenizer_is_uncased(Fast(normalizers.BertNormalizer(lowercase=False)))
    assert not tokenizer_is_uncased(Fast(None))
    assert tokenizer_is_uncased(Fast(normalizers.Lowercase()))

    class Slow:
        do_lower_case = True

    assert tokenizer_is_uncased(Slow())


# ----------------------------------------------------------------------------------- the stage and its record
def stage_root(tmp_path: Path, uncased: bool | None = True) -> tuple[Params, Path, ActivationStore]:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    params, root = load_params(tmp_path / "params.yaml")
    sents, tags = corpus(90, seed=2)
    store = write_store(Layout.of(params, root).activation_dir("minilm", "base", "pos-wsj"), sents, tags,
                        {"train": (0, 60), "dev": (60, 70), "test": (70, 90)}, uncased=uncased)
    return params, root, store


def test_probe_stage_writes_the_layer_statistics(tmp_path: Path) -> None:
    params, root, st = stage_root(tmp_path)
    out = probe(params, root, "minilm", "base", "pos-wsj")
    r = LayerResult.read(out)
    assert json.loads(out.read_text())["schema_version"] == SCHEMA_VERSION
    test = st.split_rows("test")
    np.testing.assert_array_equal(r.sentence_ids(), st.sentence_ids("test"))
    assert r.test_sentence_lengths == tuple(np.diff(st.offsets[70:91]).tolist())
    boot = r.test_accuracy.bootstrap
    assert (boot.bootstrap_unit, boot.n_sentences, boot.n_words) == ("sentence", 20, test.stop - test.start)
    lo, hi = percentile_interval(cluster_bootstrap(r.correct(), r.sentence_ids(), n_boot=params.probe.n_boot,
                                                   seed=params.seed))
    np.testing.assert_array_equal(r.ci_low, lo)  # any later bootstrap can be rebuilt from the file alone
    np.testing.assert_array_equal(r.ci_high, hi)
    ref = counter_baseline(st)
    np.testing.assert_array_equal(r.lexical_correct(), ref["test"])
    assert r.lexical == ref["test"].mean() and r.lexical_baseline.dev_accuracy == ref["dev"].mean()
    np.testing.assert_allclose(r.headroom, r.mean - r.lexical)
    assert r.seeds_vary == SEEDS_VARY == "batch order (weights start at zero)"
    assert r.per_tag.f1_array().shape == (3, len(st.label_names))
    assert r.per_tag.labels == st.label_names and sum(r.per_tag.support) == r.n_test_words
    assert r.control is not None and r.control.control.word_types == "uncased"


def test_probe_stage_refuses_a_store_without_the_tokenizer_flag(tmp_path: Path) -> None:
    params, root, _ = stage_root(tmp_path, uncased=None)
    with pytest.raises(StoreError, match="tokenizer_uncased"):
        probe(params, root, "minilm", "base", "pos-wsj")
    assert not Layout.of(params, root).results.layer("minilm", "base", "pos-wsj").exists()


def test_packed_bits_round_trip_and_reject_a_wrong_length() -> None:
    flags = np.random.default_rng(0).random(13) < 0.5
    packed = PackedBits.encode(flags)
    np.testing.assert_array_equal(packed.decode(), flags)
    assert len(packed.data) == 4  # two bytes of bits, as base64
    with pytest.raises(ResultsError, match="cannot hold"):
        PackedBits(encoding=packed.encoding, n_words=40, data=packed.data).decode()


def test_layer_record_checks_that_per_word_fields_cover_the_same_words() -> None:
    data = layer_record("minilm", "base", "pos-wsj", [0.9] * 7).to_json()
    LayerResult.from_json(data)
    bad = {**data, "test_sentence_lengths": data["test_sentence_lengths"][:-1]}
    with pytest.raises(ResultsError, match="test_sentence_lengths"):
        LayerResult.from_json(bad)
    with pytest.raises(ResultsError, match="schema_version 1"):
        LayerResult.from_json({**data, "schema_version": 1})


# ----------------------------------------------------------------------------------- tag losses, report, plots
def test_top_third_of_the_transformer_layers() -> None:
    assert top_third(list(range(7))) == [5, 6]  # MiniLM: layers 1..6, top third 5, 6
    assert top_third(list(range(13))) == [9, 10, 11, 12]
    assert top_third([0, 1]) == [1]


def tagged(tmp_path: Path) -> Path:
    """Offline-like results where fine-tuning (sentiment, POS) costs VB 30 F1 points at the top layers, on
    average over the three fine-tuning seeds (20, 30 and 40 points)."""
    results = tmp_path / "results"
    offline_like(results)
    flat = [0.9] * 7
    write_layers(results, "minilm", "base", "pos-wsj", flat, tag_f1={"NN": flat, "VB": flat})
    for seed, vb in ((42, 0.7), (43, 0.6), (44, 0.5)):
        write_layers(results, "minilm", f"sentiment-seed{seed}", "pos-wsj", flat,
                     tag_f1={"NN": [0.92] * 7, "VB": [0.9] * 5 + [vb, vb]})
    return results


def test_tag_losses_rank_the_tag_that_loses_most_first(tmp_path: Path) -> None:
    res = load_results(tagged(tmp_path))
    base, seeds = res.layers[("minilm", "base", "pos-wsj")], res.seed_layers("minilm", "sentiment", "pos-wsj")
    tl = tag_losses(base, seeds)
    assert [r["tag"] for r in tl.ranked] == ["VB", "NN"] and tl.top_layers == (5, 6)
    assert tl.ranked[0]["delta"] == pytest.approx(-0.3)  # the mean over seeds of -0.2, -0.3, -0.4
    np.testing.assert_allclose(tl.delta[:, 1], [0, 0, 0, 0, 0, -0.3, -0.3])
    assert tag_losses(base, seeds[2]).ranked[0]["delta"] == pytest.approx(-0.4)  # one seed alone
    assert tag_losses(base, seeds, min_support=10**6).ranked == []
    with pytest.raises(ValueError, match="at least one fine-tuned result"):
        tag_losses(base, [])


def test_report_shows_lexical_baseline_headroom_and_tag_losses(tmp_path: Path) -> None:
    from pipeline.report import build_report

    results = tagged(tmp_path)
    build_report(Params(), project(tmp_path))
    md = (results / "report.md").read_text()
    assert "headroom base" in md and "Lexical baseline (each word form's most frequent training tag" in md
    assert "### minilm / pos-wsj / sentiment: tags that lose most F1 after fine-tuning" in md
    assert "| VB | 1000 | 90.0 | 60.0 | -30.0 |" in md
    assert md.index("| VB | 1000 |") < md.index("| NN | 1000 | 90.0 | 92.0 | +2.0 |")
    r = LayerResult.read(results / "layers/minilm/base/pos-wsj.json")
    assert "| 0 | 90.0 [" in md and f"+{100 * (0.9 - r.lexical):.1f}" in md
    assert "tags-minilm.png" in md


def test_tag_heatmap_and_lexical_line_are_drawn_deterministically(tmp_path: Path) -> None:
    from pipeline.plots import layer_curves, tag_heatmap

    res = load_results(tagged(tmp_path))
    out = tmp_path / "plots"
    paths = tag_heatmap(res, "minilm", out)
    assert sorted(p.name for p in paths) == ["tags-minilm.png", "tags-minilm.svg"]
    first = [p.read_bytes() for p in paths]
    tag_heatmap(res, "minilm", out)
    assert [p.read_bytes() for p in paths] == first
    svg = (out / "tags-minilm.svg").read_text()
    assert "VB (1000)" in svg and "pos-wsj / sentiment" in svg
    layer_curves(res, "minilm", out)
    assert "lexical baseline" in (out / "layers-minilm.svg").read_text()
    base_only = load_results(tagged(tmp_path), variants=["base"])
    assert tag_heatmap(base_only, "minilm", tmp_path / "none") == []


def test_control_task_base_runs_it_on_the_pretrained_checkpoint_only(tmp_path: Path) -> None:
    """``probe.control_task: base`` (offline-full's budget choice): the base store gets its selectivity, a
    fine-tuned checkpoint's store none; ``true`` runs it on both."""
    params, root, _ = stage_root(tmp_path)
    sents, tags = corpus(90, seed=3)
    write_store(Layout.of(params, root).activation_dir("minilm", "sentiment-seed42", "pos-wsj"), sents, tags,
                {"train": (0, 60), "dev": (60, 70), "test": (70, 90)}, uncased=True)
    for setting, tuned_has_control in (("base", False), (True, True)):
        p = params.model_copy(update={"probe": params.probe.model_copy(update={"control_task": setting})})
        assert LayerResult.read(probe(p, root, "minilm", "base", "pos-wsj")).selectivity is not None
        tuned = LayerResult.read(probe(p, root, "minilm", "sentiment-seed42", "pos-wsj"))
        assert (tuned.selectivity is not None) is tuned_has_control
    assert validate({"probe": {"control_task": "base"}}, "test").probe.control_task == "base"
    with pytest.raises(ConfigError, match="control_task"):
        validate({"probe": {"control_task": "finetuned"}}, "test")
