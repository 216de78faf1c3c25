"""Sub-word -> word alignment of the extractor for BERT-, RoBERTa- and XLNet-style tokenizers.

Everything is built offline inside the test session: three tiny tokenizers are trained with the
``tokenizers`` library on an in-test corpus (WordPiece + BertNormalizer/BertPreTokenizer, byte-level
BPE with ``Ġ`` space marks, Unigram with ``▁`` metaspace), wrapped in the matching transformers
tokenizer classes, saved with ``save_pretrained`` next to a tiny randomly initialised encoder
(2 layers, hidden 32, 2 heads) and loaded back through :func:`pipeline.models.load`, so the real
loading code is what the extractor sees.

The reference word vectors are computed without the extractor and without ``word_ids()``: each
word is encoded on its own, the pieces are concatenated and wrapped in the family's special tokens
(``[CLS] .. [SEP]``, ``<s> .. </s>``, ``.. <sep> <cls>``), the model runs on that ONE unpadded
sentence in float32, and each word's first / last / mean piece is taken from every hidden state
(embeddings included).

Tolerances. The extractor returns float16, which keeps 11 significant bits: rounding a float32
value costs at most 2**-11 ~ 4.9e-4 of its magnitude. On top of that, running a sentence inside a
padded batch changes float32 results by ~1e-6 (different reduction order, masked pads). So
extractor-vs-reference uses ``rtol=1e-3`` (2x the float16 rounding bound) plus ``atol=1e-5`` for
values near zero; batched-vs-one-at-a-time compares two float16 roundings of nearly equal values,
which can land one float16 step (<= 2**-10 ~ 9.8e-4 relative) apart, so it uses ``rtol=2e-3``.
Activations of these models are O(1) after LayerNorm (XLNet's raw embedding layer is O(0.02),
hence relative tolerances), and a wrong alignment (neighbouring piece, special or padding token)
moves a vector by O(1): :func:`test_tolerance_separates_neighbouring_tokens` checks that the
tolerance is orders of magnitude below the gap between different positions.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pipeline import models as lingshift_models
from pipeline.extract import (
    ExtractionInputError,
    ExtractStats,
    Window,
    extract_array,
    extract_to_store,
    iter_activations,
    plan_windows,
    unknown_stand_in,
)
from pipeline.store import ActivationStore

FAMILIES = ("bert", "roberta", "xlnet")
AGGS = ("first", "last", "mean")

#: extractor (float16) vs float32 reference; see the module docstring.
RTOL, ATOL = 1e-3, 1e-5
#: two float16 results of nearly equal float32 values (batched vs one at a time).
RTOL_F16, ATOL_F16 = 2e-3, 1e-5

# ---------------------------------------------------------------------------------------------
# corpus
# ---------------------------------------------------------------------------------------------

_BASE_WORDS = (
    "the a an of to in on at by for with from and or but not is was are were be been has had have "
    "cat dog bird fox horse mouse house garden river mountain city street market school teacher "
    "student book paper letter window door table chair water coffee bread cheese apple orange "
    "walk walked walking walks run running ran jump jumped jumping quick quickly slow slowly "
    "lazy brown happy sad large small old new young beautiful strange wonderful terrible "
    "say said tell told think thought know knew see saw look looked find found give gave "
    "government company president minister people children morning evening yesterday tomorrow "
    "international national relationship understanding information development environment "
    "he she it they we you I his her their our this that these those who which what where "
    "Monday Tuesday January February London Paris Berlin John Mary Smith"
).split()
_UNICODE_WORDS = ["café", "naïve", "Zürich", "日本", "Ölkanne", "façade", "São", "Paulo", "résumé", "Москва", "東京"]
_NUMBERS = ["3.14", "1,000", "42", "2021", "0.5", "10,000,000", "7"]
_PUNCT = [".", ",", "!", "?", ";", ":", "(", ")", "\"", "'", "-", "--", "...", "'s", "n't", "$", "%"]


def _corpus() -> list[str]:
    """A few hundred short English-like sentences, deterministic."""
    rng = random.Random(1234)
    out = ["the quick brown fox jumps over the lazy dog", "pack my box with five dozen liquor jugs",
           "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG", "zebra vex jinx quiz wyvern kayak"]
    for _ in range(400):
        n = rng.randint(3, 14)
        toks = []
        for _ in range(n):
            r = rng.random()
            toks.append(rng.choice(_BASE_WORDS if r < 0.75 else _UNICODE_WORDS if r < 0.83
                                   else _NUMBERS if r < 0.9 else _PUNCT))
        toks[0] = toks[0].capitalize()
        toks.append(rng.choice([".", "!", "?"]))
        out.append(" ".join(toks))
    return out


def _random_word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(n))


LONG_WORD = _random_word(random.Random(99), 60)
#: words some tokenizer turns into no tokens at all (BERT's normalizer drops U+200B; XLNet's
#: NFKD + StripAccents drops a lone combining accent); byte-level BPE has no such word.
NULL_WORD = {"bert": "\u200b", "roberta": None, "xlnet": "\u0301"}


def edge_sentences() -> list[list[str]]:
    """Sentences of very different lengths with the edge cases in them."""
    rng = random.Random(7)
    corpus = _corpus()
    sents = [
        ["The", "cat", "sat", "on", "the", "mat", "."],
        ["Hello"],                                                   # one word
        ["It", "costs", "3.14", "or", "1,000", "dollars", "(", "roughly", ")", "!"],
        ["Zürich", ",", "café", "naïve", "日本", "Москва", "?"],       # unicode
        [LONG_WORD, "ends", "here"],                                 # many sub-words
        ["\"", "Don", "n't", "--", "...", "'s", "$", "%", ";"],       # punctuation only-ish
        ["a", "\u200b", "zero", "\u0301", "width"],                  # words mapped to nothing
        ["Internationalization", "misunderstandings", "xqzjvk", "Paris"],
        ["New York", "has", "10 000", "people", "dog "],             # words with spaces inside / around
        ["<unk>", "[SEP]", "<s>", "<sep>", "<pad>", "[CLS]", "<cls>"],  # special-token text as words
        ["."],
    ]
    for s in rng.sample(corpus, 14):
        sents.append(s.split())
    return sents


# ---------------------------------------------------------------------------------------------
# tiny tokenizers + models, trained / initialised offline and loaded through pipeline.models
# ---------------------------------------------------------------------------------------------

@dataclass
class Family:
    name: str
    path: Path
    tok: Any
    model: Any
    prefix: list[int]   # special token ids before the words
    suffix: list[int]   # special token ids after the words
    padding_side: str


def _train_bert(corpus: list[str], out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tk = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=False,
                                               strip_accents=None)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.decoder = decoders.WordPiece(prefix="##")
    tk.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials,
                                                            show_progress=False))
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tk.token_to_id("[CLS]")), ("[SEP]", tk.token_to_id("[SEP]"))])
    hf = BertTokenizerFast(vocab=tk.get_vocab(), do_lower_case=False, strip_accents=None)
    _check_same_encoding(tk, hf, corpus)
    hf.save_pretrained(out)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(hf), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, pad_token_id=hf.pad_token_id)
    BertModel(cfg).save_pretrained(out, safe_serialization=True)


def _train_roberta(corpus: list[str], out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=500, special_tokens=specials, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.post_processor = processors.RobertaProcessing(("</s>", tk.token_to_id("</s>")), ("<s>", tk.token_to_id("<s>")),
                                                     trim_offsets=True, add_prefix_space=True)
    model = json.loads(tk.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    hf = RobertaTokenizerFast(vocab=model["vocab"], merges=merges, add_prefix_space=True)
    _check_same_encoding(tk, hf, corpus)
    hf.save_pretrained(out)
    torch.manual_seed(1)
    cfg = RobertaConfig(vocab_size=len(hf), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=130, type_vocab_size=1,
                        pad_token_id=hf.pad_token_id, bos_token_id=hf.bos_token_id, eos_token_id=hf.eos_token_id)
    RobertaModel(cfg).save_pretrained(out, safe_serialization=True)


def _train_xlnet(corpus: list[str], out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import XLNetConfig, XLNetModel, XLNetTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>"]
    tk = Tokenizer(models.Unigram())
    # the normalizer and pre-tokenizer XLNetTokenizer itself builds (it always strips accents)
    tk.normalizer = normalizers.Sequence([normalizers.Replace("``", '"'), normalizers.Replace("''", '"'),
                                          normalizers.NFKD(), normalizers.StripAccents()])
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tk.train_from_iterator(corpus, trainers.UnigramTrainer(vocab_size=300, special_tokens=specials, unk_token="<unk>",
                                                           show_progress=False))
    # XLNet style: the special tokens go at the END, <sep> then <cls>
    tk.post_processor = processors.TemplateProcessing(
        single="$A:0 <sep>:0 <cls>:2", pair="$A:0 <sep>:0 $B:1 <sep>:1 <cls>:2",
        special_tokens=[("<sep>", tk.token_to_id("<sep>")), ("<cls>", tk.token_to_id("<cls>"))])
    vocab = [tuple(v) for v in json.loads(tk.to_str())["model"]["vocab"]]
    hf = XLNetTokenizerFast(vocab=vocab, unk_id=0)
    assert hf.padding_side == "left"
    _check_same_encoding(tk, hf, corpus)
    hf.save_pretrained(out)
    torch.manual_seed(2)
    # initializer_range 0.3 (default 0.02): with the default, a random XLNet's relative attention barely
    # mixes context (a word's vector changes ~1e-2 between sentences); with 0.3 context moves it O(1),
    # so a vector taken from the wrong window or sentence cannot pass as the right one.
    cfg = XLNetConfig(vocab_size=len(hf), d_model=32, n_layer=2, n_head=2, d_inner=64, initializer_range=0.3,
                      pad_token_id=hf.pad_token_id, bos_token_id=hf.bos_token_id, eos_token_id=hf.eos_token_id)
    XLNetModel(cfg).save_pretrained(out, safe_serialization=True)


def _check_same_encoding(trained: Any, hf: Any, corpus: list[str]) -> None:
    """The transformers wrapper tokenizes exactly like the trained ``tokenizers`` pipeline."""
    for text in corpus[:60]:
        assert trained.encode(text).ids == hf(text)["input_ids"], text


_TRAIN = {"bert": _train_bert, "roberta": _train_roberta, "xlnet": _train_xlnet}
_LAYOUT = {"bert": (["[CLS]"], ["[SEP]"]), "roberta": (["<s>"], ["</s>"]), "xlnet": ([], ["<sep>", "<cls>"])}
_CLASS = {"bert": "BertTokenizer", "roberta": "RobertaTokenizer", "xlnet": "XLNetTokenizer"}
_MODEL_CLASS = {"bert": "BertModel", "roberta": "RobertaModel", "xlnet": "XLNetModel"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def _family_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny_models")


_CACHE: dict[str, Family] = {}


def _build(name: str, root: Path) -> Family:
    if name not in _CACHE:
        out = root / name
        out.mkdir()
        _TRAIN[name](_corpus(), out)
        assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
        tok, model = lingshift_models.load(out)
        assert type(tok).__name__ == _CLASS[name] and type(model).__name__ == _MODEL_CLASS[name]
        pre, suf = _LAYOUT[name]
        prefix, suffix = tok.convert_tokens_to_ids(pre), tok.convert_tokens_to_ids(suf)
        assert tok.unk_token_id not in prefix + suffix
        _CACHE[name] = Family(name, out, tok, model, prefix, suffix, tok.padding_side)
    return _CACHE[name]


@pytest.fixture(scope="session", params=FAMILIES)
def fam(request: pytest.FixtureRequest, _family_root: Path) -> Family:
    return _build(request.param, _family_root)


@pytest.fixture(scope="session")
def families(_family_root: Path) -> dict[str, Family]:
    return {n: _build(n, _family_root) for n in FAMILIES}


# ---------------------------------------------------------------------------------------------
# the independent reference
# ---------------------------------------------------------------------------------------------

def word_pieces(fam: Family, word: str) -> list[int]:
    """The word's token ids, encoded on its own as literal text (a word spelled like a special token is not
    that token); a word with none is replaced by the extractor's stand-in for the unknown token."""
    ids = fam.tok(word, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    return ids or fam.tok(unknown_stand_in(fam.tok), add_special_tokens=False, split_special_tokens=True)["input_ids"]


@dataclass
class Ref:
    vectors: np.ndarray          # [words, layers, dim] float32
    hidden: np.ndarray           # [layers, tokens, dim] float32 (whole single-sentence run)
    spans: list[range]           # token positions of each word in ``hidden``
    special_positions: list[int]


def reference(fam: Family, words: list[str], aggregation: str, budget: int | None = None) -> Ref:
    """Word vectors from a single unpadded float32 run on ``words`` with the family's special tokens.

    ``budget`` (sub-words) truncates the pieces from the right, as the extractor does for a single
    word longer than a whole window.
    """
    words = [w.strip() for w in words]  # the extractor strips the whitespace around a word
    pieces = [word_pieces(fam, w) for w in words]
    flat = [i for p in pieces for i in p]
    if budget is not None:
        flat = flat[:budget]
    ids = fam.prefix + flat + fam.suffix
    # sanity: the tokenizer's own encoding of the pre-split sentence is exactly this layout
    fixed = [w if fam.tok(w, add_special_tokens=False, split_special_tokens=True)["input_ids"]
             else unknown_stand_in(fam.tok) for w in words]
    own = fam.tok(fixed, is_split_into_words=True, truncation=budget is not None, split_special_tokens=True,
                  max_length=None if budget is None else budget + len(fam.prefix) + len(fam.suffix))
    assert own["input_ids"] == ids, (fam.name, words)
    inputs = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
    if "token_type_ids" in own:   # BERT: all 0
        inputs["token_type_ids"] = torch.tensor([own["token_type_ids"]])
    elif fam.name == "xlnet":     # XLNet's pre-training segments: words and <sep> 0, the final <cls> 2
        inputs["token_type_ids"] = torch.tensor([[0] * (len(ids) - 1) + [2]])
    with torch.inference_mode():
        hidden = torch.stack(fam.model(**inputs).hidden_states)[:, 0].float().numpy()
    spans, pos = [], len(fam.prefix)
    for p in pieces:
        n = min(len(p), len(fam.prefix) + len(flat) - pos)
        spans.append(range(pos, pos + n))
        pos += len(p)
    vecs = []
    for sp in spans:
        assert len(sp) >= 1, "reference: a word lost all its pieces"
        h = hidden[:, list(sp)]
        vecs.append({"first": h[:, 0], "last": h[:, -1], "mean": h.mean(axis=1)}[aggregation])
    special = list(range(len(fam.prefix))) + list(range(len(ids) - len(fam.suffix), len(ids)))
    return Ref(np.stack(vecs), hidden, spans, special)


def reference_windowed(fam: Family, words: list[str], aggregation: str, max_length: int,
                       context: int | None) -> np.ndarray:
    """Reference for a sentence cut into windows: each owned word from a single run on its window."""
    budget = max_length - len(fam.prefix) - len(fam.suffix)
    lens = [len(word_pieces(fam, w)) for w in words]
    ctx = budget // 4 if context is None else context
    out = np.empty((len(words),) + reference(fam, words[:1], aggregation).vectors.shape[1:], dtype=np.float32)
    for w in plan_windows(0, lens, budget, ctx):
        ref = reference(fam, words[w.start:w.end], aggregation, budget=budget)
        out[w.own_start:w.own_end] = ref.vectors[w.own_start - w.start:w.own_end - w.start]
    return out


#: the models stay on the CPU (pipeline.models.load moves them only when given a device), and the
#: reference runs there in float32, so the extractor is pinned to the CPU too (see the xfail below).
DEVICE = "cpu"


def extract(fam: Family, sentences: Any, **kwargs: Any) -> np.ndarray:
    """:func:`extract_array` on the family's tokenizer and model, on the CPU."""
    return extract_array(fam.tok, fam.model, sentences, device=DEVICE, **kwargs)


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float = RTOL, atol: float = ATOL, what: str = "") -> None:
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert np.isfinite(got).all(), what
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


def far_from(v: np.ndarray, u: np.ndarray) -> bool:
    """``v`` and ``u`` ([layers, dim]) differ well beyond the tolerance in every layer."""
    gap = np.abs(v - u).max(axis=-1)
    scale = np.abs(u).max(axis=-1)
    return bool(np.all(gap > 50 * (RTOL * scale + ATOL)))


# ---------------------------------------------------------------------------------------------
# setup sanity: the tiny tokenizers really behave like their families
# ---------------------------------------------------------------------------------------------

def test_families_have_their_tokenizer_traits(families: dict[str, Family]) -> None:
    b, r, x = families["bert"].tok, families["roberta"].tok, families["xlnet"].tok
    bt = b.convert_ids_to_tokens(b(["3.14"], is_split_into_words=True)["input_ids"])
    assert bt == ["[CLS]", "3", ".", "14", "[SEP]"]
    assert any(t.startswith("##") for t in b.convert_ids_to_tokens(b(LONG_WORD)["input_ids"]))
    rt = r.convert_ids_to_tokens(r(["cat", "café"], is_split_into_words=True)["input_ids"])
    assert rt[0] == "<s>" and rt[-1] == "</s>" and rt[1].startswith("Ġ")
    assert all(r.convert_ids_to_tokens(word_pieces(families["roberta"], w))[0].startswith("Ġ") for w in ("cat", "café"))
    xt = x.convert_ids_to_tokens(x(["cat", "dog"], is_split_into_words=True)["input_ids"])
    assert xt[-2:] == ["<sep>", "<cls>"] and xt[0].startswith("▁")
    assert (b.padding_side, r.padding_side, x.padding_side) == ("right", "right", "left")
    # the edge sentences really exercise multi-piece words in every family
    for f in families.values():
        lens = [len(word_pieces(f, w)) for s in edge_sentences() for w in s]
        assert max(lens) >= 10 and sum(n > 1 for n in lens) >= 10, f.name
        assert len(word_pieces(f, LONG_WORD)) >= 15, f.name
    assert b(NULL_WORD["bert"], add_special_tokens=False)["input_ids"] == []
    assert x(NULL_WORD["xlnet"], add_special_tokens=False)["input_ids"] == []


def test_tolerance_separates_neighbouring_tokens(fam: Family) -> None:
    """Different token positions differ by far more than the tolerance, so a misalignment cannot pass."""
    words = edge_sentences()[0] + edge_sentences()[2] + edge_sentences()[3]
    ref = reference(fam, words, "first")
    ids = fam.prefix + [i for w in words for i in word_pieces(fam, w)] + fam.suffix
    h = ref.hidden
    n_checked = 0
    for t in range(h.shape[1] - 1):
        if ids[t] != ids[t + 1]:   # XLNet's embedding layer has no position: equal ids, equal layer-0 vector
            assert far_from(h[:, t], h[:, t + 1]), (fam.name, t)
            n_checked += 1
    assert n_checked > 20
    # the same word in two sentences (another window, another sentence) differs beyond the tolerance
    a = reference(fam, ["cat", "sat", "on", "the", "mat"], "first").vectors[0]
    b = reference(fam, ["the", "big", "dog", "saw", "a", "cat"], "first").vectors[-1]
    assert far_from(a[1:], b[1:])


# ---------------------------------------------------------------------------------------------
# alignment against the reference
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("aggregation", AGGS)
def test_batch_matches_single_sentence_reference(fam: Family, aggregation: str) -> None:
    sents = edge_sentences()
    stats = ExtractStats()
    got = extract(fam, sents, aggregation=aggregation, batch_size=8, stats=stats)
    assert got.dtype == np.float32 and got.shape[0] == sum(map(len, sents))
    assert got.shape[1:] == (fam.model.config.num_hidden_layers + 1, 32)
    assert stats.n_windows == len(sents) and stats.n_windowed_sentences == 0
    row = 0
    for s in sents:
        want = reference(fam, s, aggregation).vectors
        assert_close(got[row:row + len(s)], want, what=f"{fam.name} {aggregation} {s}")
        row += len(s)


def test_aggregations_differ_on_multi_piece_words(fam: Family) -> None:
    """first / last / mean really pick different pieces (so the checks above can tell them apart)."""
    s = [LONG_WORD, "ends", "here"]
    out = {a: extract(fam, [s], aggregation=a) for a in AGGS}
    ref = reference(fam, s, "first")
    sp = ref.spans[0]
    assert len(sp) > 2
    assert_close(out["first"][0], ref.hidden[:, sp[0]])
    assert_close(out["last"][0], ref.hidden[:, sp[-1]])
    assert far_from(out["first"][0], out["last"][0])
    assert far_from(out["mean"][0], out["first"][0]) and far_from(out["mean"][0], out["last"][0])


@pytest.mark.parametrize("aggregation", AGGS)
def test_special_tokens_never_reach_a_word(fam: Family, aggregation: str) -> None:
    s = ["Zürich", "3.14", "cat", LONG_WORD[:12], "."]
    got = extract(fam, [s], aggregation=aggregation)
    ref = reference(fam, s, aggregation)
    assert_close(got, ref.vectors)
    assert ref.special_positions, fam.name
    for p in ref.special_positions:   # e.g. XLNet: the last word is neither <sep> nor <cls>
        for j in range(len(s)):
            assert far_from(got[j], ref.hidden[:, p]), (fam.name, aggregation, j, p)


def test_words_spelled_like_special_tokens_are_literal_text(fam: Family) -> None:
    """``[SEP]``, ``<pad>``, ``</s>``, ``<cls>`` as words get the vectors of their literal pieces (none of
    which is a special token id), as in the single-sentence reference (so on RoBERTa a literal ``<pad>``
    no longer shifts the positions of the words after it)."""
    specials = [t for t in (fam.tok.sep_token, fam.tok.pad_token, fam.tok.cls_token, fam.tok.eos_token,
                            fam.tok.bos_token, "[SEP]", "<pad>", "</s>", "<cls>") if t]
    s = ["The", *dict.fromkeys(specials), "cat", "sat", "."]
    special_ids = set(fam.tok.all_special_ids) - {fam.tok.unk_token_id}  # tiny vocabularies lack "[" and "<"
    for w in s:  # the tiny SentencePiece model (XLNet) learned "<sep>" as an ordinary piece of its vocabulary
        assert fam.name == "xlnet" or not set(word_pieces(fam, w)) & special_ids, (fam.name, w)
    got = extract(fam, [s], aggregation="last")
    ref = reference(fam, s, "last")
    assert_close(got, ref.vectors, what=fam.name)
    for p in ref.special_positions if fam.name != "xlnet" else []:  # no word reads the real special tokens
        for j in range(len(s)):
            assert far_from(got[j], ref.hidden[:, p]), (fam.name, j, p)


def test_whitespace_around_words_is_stripped(fam: Family) -> None:
    """``"a "`` and ``" cat\t"`` read as ``a`` and ``cat`` (on byte-level BPE a trailing space would be a
    sub-word of its own); the pipeline's corpora and the API share this cleaning."""
    padded = extract(fam, [["A ", " cat\t", "sat", " ."]], aggregation="last")
    clean = extract(fam, [["A", "cat", "sat", "."]], aggregation="last")
    assert_close(padded, clean, what=fam.name)


@pytest.mark.parametrize("aggregation", AGGS)
def test_padding_positions_never_reach_a_word(fam: Family, aggregation: str) -> None:
    """Short sentence padded next to a long one (left padding for XLNet): its words come from real tokens."""
    short, long_ = ["Hi", "there", "!"], edge_sentences()[2] + edge_sentences()[3]
    got = extract(fam, [short, long_], aggregation=aggregation, batch_size=2)
    # the batch exactly as the extractor would pad it, run here to find the padding positions
    enc = fam.tok([short, long_], is_split_into_words=True, padding=True, return_tensors="pt")
    if fam.name == "xlnet":   # XLNet's segment ids, as in reference(): <cls> 2, padding 3
        enc["token_type_ids"] = torch.zeros_like(enc["input_ids"])
        enc["token_type_ids"][:, -1] = 2
        enc["token_type_ids"][enc["attention_mask"] == 0] = 3
    inputs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.inference_mode():
        hidden = torch.stack(fam.model(**inputs).hidden_states)[:, 0].float().numpy()   # sentence 0
    mask = enc["attention_mask"][0].numpy()
    pads = np.flatnonzero(mask == 0)
    assert len(pads) > 5
    if fam.padding_side == "left":
        assert pads[0] == 0 and np.all(mask[: len(pads)] == 0)
    else:
        assert pads[-1] == len(mask) - 1 and np.all(mask[-len(pads):] == 0)
    ref = reference(fam, short, aggregation)
    assert_close(got[:3], ref.vectors)
    shift = len(pads) if fam.padding_side == "left" else 0
    for j, sp in enumerate(ref.spans):        # same vectors read straight off the padded batch
        h = hidden[:, [t + shift for t in sp]]
        want = {"first": h[:, 0], "last": h[:, -1], "mean": h.mean(axis=1)}[aggregation]
        assert_close(got[j], want)
        for p in pads:
            assert far_from(got[j], hidden[:, p]), (fam.name, j, p)


def test_word_with_no_tokens_gets_one_vector(fam: Family) -> None:
    """A word the tokenizer maps to nothing is encoded as the unknown token (WordPiece: exactly ``[UNK]``;
    SentencePiece: the word marker and ``<unk>``) and keeps its row."""
    null = NULL_WORD[fam.name] or "\u200b"   # RoBERTa: no such word; the same sentence must still align
    s = ["before", null, "after"]
    stats = ExtractStats()
    got = extract(fam, [s, ["x"]], aggregation="last", stats=stats)
    assert got.shape[0] == 4
    assert stats.n_empty_words == (1 if NULL_WORD[fam.name] else 0)
    assert stats.n_words == 4
    ref = reference(fam, s, "last")
    assert_close(got[:3], ref.vectors)
    if NULL_WORD[fam.name]:
        unk = reference(fam, ["before", unknown_stand_in(fam.tok), "after"], "last")
        assert_close(got[:3], unk.vectors)
        assert word_pieces(fam, null)[-1] == fam.tok.unk_token_id
        if fam.name == "bert":
            assert word_pieces(fam, null) == [fam.tok.unk_token_id]


def test_default_device_is_where_the_model_is(families: dict[str, Family], monkeypatch: pytest.MonkeyPatch) -> None:
    fam = families["bert"]
    want = extract(fam, [["The", "cat"]])
    assert next(fam.model.parameters()).device.type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)   # a GPU host; the model stays on the CPU
    got = extract_array(fam.tok, fam.model, [["The", "cat"]])
    np.testing.assert_array_equal(got, want)


def test_store_holds_what_extract_array_returns(families: dict[str, Family], tmp_path: Path) -> None:
    fam = families["xlnet"]
    sents = edge_sentences()[:6]
    labels = [["X"] * len(s) for s in sents]
    stats = extract_to_store(fam.tok, fam.model, sents, labels, {"train": (0, 4), "test": (4, 6)},
                             tmp_path / "store", {"model": "tiny-xlnet"}, aggregation="mean", batch_size=4,
                             progress=False, device=DEVICE)
    store = ActivationStore(tmp_path / "store")
    want = extract(fam, sents, aggregation="mean", batch_size=4)
    assert stats.n_words == store.n_words == want.shape[0]
    np.testing.assert_array_equal(np.asarray(store.activations, dtype=np.float32), want)
    assert store.words == sents


# ---------------------------------------------------------------------------------------------
# windows (sentences longer than max_length)
# ---------------------------------------------------------------------------------------------

def _long_sentences() -> list[list[str]]:
    corpus = _corpus()
    long1 = " ".join(corpus[10:16]).split()                        # ~50 words, many pieces
    long2 = corpus[20].split() + [LONG_WORD] + corpus[21].split()  # a word longer than a window
    return [long1, ["short", "one", "."], long2, ["Zürich"]]


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("context", [None, 0, 5])
def test_windows_keep_every_word(fam: Family, aggregation: str, context: int | None) -> None:
    max_length = 16
    sents = _long_sentences()
    stats = ExtractStats()
    got = extract(fam, sents, aggregation=aggregation, max_length=max_length, context=context, batch_size=8,
                  stats=stats)
    assert got.shape[0] == sum(map(len, sents))
    assert np.isfinite(got).all()
    assert stats.n_windowed_sentences == 2 and stats.n_windows > 6
    assert stats.n_truncated_words == 1
    row = 0
    for s in sents:
        want = reference_windowed(fam, s, aggregation, max_length, context)
        assert_close(got[row:row + len(s)], want, what=f"{fam.name} {aggregation} ctx={context}")
        row += len(s)


def greedy_chunks(fam: Family, s: list[str], budget: int) -> list[tuple[int, int]]:
    """With ``context=0`` the windows are a greedy packing of whole words: each chunk is the longest
    run of the remaining words that fits the budget (a word with no tokens counts as one, the unk)."""
    lens = [len(word_pieces(fam, w)) for w in s]
    assert max(lens) <= budget
    chunks, start = [], 0
    while start < len(s):
        end, size = start, 0
        while end < len(s) and size + lens[end] <= budget:
            size += lens[end]
            end += 1
        chunks.append((start, end))
        start = end
    return chunks


def test_context_zero_is_greedy_packing(fam: Family) -> None:
    """Independent of plan_windows: every word equals the plain reference run on exactly its chunk."""
    max_length, s = 16, _long_sentences()[0]
    budget = max_length - len(fam.prefix) - len(fam.suffix)
    got = extract(fam, [s], aggregation="last", max_length=max_length, context=0)
    assert got.shape[0] == len(s)
    chunks = greedy_chunks(fam, s, budget)
    assert len(chunks) >= 3
    for a, b in chunks:
        assert_close(got[a:b], reference(fam, s[a:b], "last").vectors, what=f"{fam.name} chunk {a}:{b}")
    # context matters: the first word of the second chunk differs from its vector with left context
    a, b = chunks[1]
    with_context = reference(fam, s[a - 1:b], "last").vectors[1]
    assert not np.allclose(got[a], with_context, rtol=RTOL, atol=ATOL)


def test_word_with_no_tokens_counts_as_one_in_windows(fam: Family) -> None:
    """The stand-in that replaces a token-less word takes room in its window like any word of as many pieces."""
    null = NULL_WORD[fam.name] or "\u200b"
    one = [w for w in _BASE_WORDS if len(word_pieces(fam, w)) == 1][:6]
    assert len(one) == 6, fam.name
    max_length = 10
    budget = max_length - len(fam.prefix) - len(fam.suffix)
    s = [null] + [one[k % 6] for k in range(3 * budget)] + [null, null]
    got = extract(fam, [s, ["short"]], aggregation="mean", max_length=max_length, context=0)
    assert got.shape[0] == len(s) + 1
    chunks = greedy_chunks(fam, s, budget)
    if NULL_WORD[fam.name] and len(word_pieces(fam, null)) == 1:  # one unk: the first window is `budget` words
        assert chunks[0] == (0, budget)
    for a, b in chunks:
        assert_close(got[a:b], reference(fam, s[a:b], "mean").vectors, what=f"{fam.name} chunk {a}:{b}")


@pytest.mark.parametrize("aggregation", ["last"])
def test_default_max_length_follows_the_model(fam: Family, aggregation: str) -> None:
    """Without max_length, a sentence longer than the model takes is windowed at the model's limit.

    BERT: max_position_embeddings (128); RoBERTa: max_position_embeddings - 2 (130 - 2); XLNet has
    no position table: 512.
    """
    expected = {"bert": 128, "roberta": 128, "xlnet": 512}[fam.name]
    corpus, words = _corpus(), []
    for text in corpus[100:]:
        words += text.split()
        if sum(len(word_pieces(fam, w)) for w in words) > expected + 20:
            break
    stats = ExtractStats()
    got = extract(fam, [words, ["short"]], aggregation=aggregation, stats=stats)
    assert got.shape[0] == len(words) + 1
    assert stats.n_windowed_sentences == 1
    assert_close(got[:-1], reference_windowed(fam, words, aggregation, expected, None))
    with pytest.raises(AssertionError):   # a different limit gives different windows, hence other vectors
        assert_close(got[:-1], reference_windowed(fam, words, aggregation, expected - 8, None))


def test_iter_activations_yields_every_row_once(fam: Family) -> None:
    sents = edge_sentences() + _long_sentences()
    rows, shapes = [], []
    for r, acts in iter_activations(fam.tok, fam.model, sents, batch_size=5, max_length=16, progress=False,
                                    device=DEVICE):
        assert acts.dtype == np.float16 and acts.shape[1] == len(r)
        rows.append(r)
        shapes.append(acts.shape)
    allrows = np.concatenate(rows)
    assert sorted(allrows.tolist()) == list(range(sum(map(len, sents))))
    assert {s[0] for s in shapes} == {fam.model.config.num_hidden_layers + 1}


# ---------------------------------------------------------------------------------------------
# batched == one sentence at a time
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("aggregation", AGGS)
def test_batched_equals_one_at_a_time(fam: Family, aggregation: str) -> None:
    sents = edge_sentences() + _long_sentences()
    for max_length in (None, 16):
        a = extract(fam, sents, aggregation=aggregation, batch_size=8, max_length=max_length)
        b = extract(fam, sents, aggregation=aggregation, batch_size=1, max_length=max_length)
        assert_close(a, b, rtol=RTOL_F16, atol=ATOL_F16, what=f"{fam.name} {aggregation} max_length={max_length}")


# ---------------------------------------------------------------------------------------------
# input errors
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sentences, kwargs, message", [
    ([["a"], []], {}, "sentence 1 is empty"),
    ([], {}, "no sentences"),
    ([["a", "  "]], {}, "sentence 0, word 1 is '  '"),
    ([["a", ""]], {}, "sentence 0, word 1 is ''"),
    ([["a", "\t\n"]], {}, "words must be non-blank strings"),
    ([["a", None]], {}, "sentence 0, word 1 is None"),
    (["a sentence as a string"], {}, "is a string, not a list of words"),
    ([["a"]], {"aggregation": "max"}, "aggregation 'max' is not one of first, last, mean"),
    ([["a"]], {"batch_size": 0}, "batch_size must be at least 1"),
    ([["a"]], {"max_length": 2}, "max_length 2 leaves no room for words"),
])
def test_bad_input_is_rejected_clearly(families: dict[str, Family], sentences: Any, kwargs: dict, message: str) -> None:
    for fam in families.values():
        with pytest.raises(ExtractionInputError) as err:
            extract(fam, sentences, **kwargs)
        assert message in str(err.value), (fam.name, str(err.value))


# ---------------------------------------------------------------------------------------------
# plan_windows
# ---------------------------------------------------------------------------------------------

def check_plan(lens: list[int], budget: int, context: int, ws: list[Window], sent: int = 0) -> None:
    """Every word owned once, in order; windows within the budget; context bounded and greedy."""
    n = len(lens)
    cap = [min(x, budget) for x in lens]
    ctx = max(0, min(context, (budget - 1) // 2))
    owned = [j for w in ws for j in range(w.own_start, w.own_end)]
    assert owned == list(range(n)), (lens, budget, context, ws)
    for w in ws:
        assert w.sent == sent
        assert 0 <= w.start <= w.own_start < w.own_end <= w.end <= n, w
        assert w.n_sub == sum(cap[w.start:w.end]) <= budget, w
    if sum(cap) <= budget:
        assert ws == [Window(sent, 0, n, 0, n, sum(cap))]
        return
    assert ws[0].start == 0 and ws[-1].end == n
    for w in ws:
        left = sum(cap[w.start:w.own_start])
        assert left <= ctx, ("left context over the limit", w)
        # left context: the longest run of whole words within ``ctx``, trimmed from the left until
        # it and the first owned word fit the budget
        g, used = w.own_start, 0
        while g > 0 and used + cap[g - 1] <= ctx:
            g -= 1
            used += cap[g]
        while used + cap[w.own_start] > budget:
            used -= cap[g]
            g += 1
        assert w.start == g, ("left context", w)
        # greedy right context: one more word would not fit
        if w.end < n:
            assert w.n_sub + cap[w.end] > budget, ("right context not filled", w)
        # an owned span of several words leaves room for the right context
        if w.own_end < n and w.own_end - w.own_start > 1:
            assert sum(cap[w.start:w.own_end]) <= budget - ctx, ("no room for right context", w)


@pytest.mark.parametrize("lens, budget, context", [
    ([1, 1, 1], 3, 1),                 # fits exactly: one window
    ([1] * 10, 4, 1),
    ([2, 2, 2, 2, 2, 2], 5, 2),
    ([1, 30, 1, 1], 6, 2),             # a word longer than the budget is capped
    ([6, 6, 6], 6, 3),                 # every word fills a window
    ([1] * 20, 7, 100),                # context larger than the budget is clamped
    ([3, 1, 1, 1, 1, 3, 3, 1], 6, 0),
    ([1, 1, 1, 1, 1], 1, 0),           # budget of one sub-word
])
def test_plan_windows_cases(lens: list[int], budget: int, context: int) -> None:
    check_plan(lens, budget, context, plan_windows(3, lens, budget, context), sent=3)


def test_plan_windows_examples() -> None:
    # 10 one-piece words, budget 4, context 1: own 3, then 1 | 2 | 1 ...
    ws = plan_windows(0, [1] * 10, 4, 1)
    assert [(w.start, w.own_start, w.own_end, w.end) for w in ws] == [
        (0, 0, 3, 4), (2, 3, 5, 6), (4, 5, 7, 8), (6, 7, 10, 10)]
    assert plan_windows(0, [2, 3], 5, 1) == [Window(0, 0, 2, 0, 2, 5)]
    # the capped long word can share a window with neither neighbour
    assert plan_windows(0, [1, 30, 1], 6, 2) == [Window(0, 0, 1, 0, 1, 1), Window(0, 1, 2, 1, 2, 6),
                                                  Window(0, 2, 3, 2, 3, 1)]


def test_plan_windows_keeps_the_left_context_that_fits() -> None:
    # lens [1, 1, 4], budget 5, context 2: word 2 could have word 1 as context (1 + 4 <= 5) but gets none
    ws = plan_windows(0, [1, 1, 4], 5, 2)
    assert ws[-1].own_start == 2 and ws[-1].start == 1, ws


def test_plan_windows_randomized() -> None:
    rng = random.Random(2021)
    for _ in range(3000):
        budget = rng.randint(1, 24)
        context = rng.randint(-2, 30)
        n = rng.randint(1, 40)
        lens = [rng.choice([1, 1, 1, 2, 3, rng.randint(1, budget + 6)]) for _ in range(n)]
        check_plan(lens, budget, context, plan_windows(0, lens, budget, context))


@pytest.mark.parametrize("aggregation", AGGS)
def test_accelerator_gather_equals_cpu_gather(aggregation: str) -> None:
    """The torch gather used on CUDA gives what the NumPy gather used on the CPU gives."""
    from pipeline.extract import aggregate_words

    g = torch.Generator().manual_seed(0)
    hidden = [torch.randn(3, 7, 5, generator=g) for _ in range(4)]
    bsel = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    tsel = np.array([1, 2, 3, 0, 6, 2, 3, 4, 5])
    seg = np.array([0, 0, 1, 2, 3, 4, 4, 4, 5]) if aggregation == "mean" else np.arange(9)
    n = int(seg.max()) + 1
    cpu = aggregate_words(hidden, bsel, tsel, seg, n, aggregation, on_device=False)
    dev = aggregate_words(hidden, bsel, tsel, seg, n, aggregation, on_device=True)
    assert cpu.shape == dev.shape == (4, n, 5) and cpu.dtype == dev.dtype == np.float16
    np.testing.assert_allclose(cpu.astype(np.float32), dev.astype(np.float32), rtol=1e-3, atol=1e-3)
    if aggregation == "mean":  # word 4 is the mean of tokens (2, 2..4)
        want = torch.stack([h[2, 2:5].mean(0) for h in hidden]).numpy()
        np.testing.assert_allclose(cpu[:, 4].astype(np.float32), want, rtol=1e-3, atol=1e-3)
