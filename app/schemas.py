"""Request and response schemas (pydantic); they make up the OpenAPI 3.1 document at /openapi.json.

Bounds that depend on the service settings (words per sentence, top_k, ...) are checked again in
the handlers with the configured values; the schema bounds here are the hard ceilings.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"  # model / variant / task names: never a path


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProbeIn(_In):
    """A sentence (or its words) to probe with one model on one probing task.

    Strict types (a JSON body has real ones): ``true`` is not the integer 1, nor ``"5"`` the integer 5.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    sentence: Optional[str] = Field(None, min_length=1, max_length=20_000,
                                    description="raw text; split into words like the Penn Treebank")
    words: Optional[list[str]] = Field(None, min_length=1, max_length=512,
                                       description="pre-split words (instead of sentence)")
    model: str = Field(..., pattern=_NAME, description="an allow-listed model name (GET /v1/models)")
    task: str = Field(..., pattern=_NAME, description="probing task, e.g. pos-wsj")
    variants: Optional[list[str]] = Field(None, min_length=1, max_length=32,
                                          description="checkpoints (GET /v1/models); default: base and "
                                                      "the first fine-tuning seed of each fine-tuned variant")
    layers: Optional[list[int]] = Field(None, min_length=1, max_length=128, description="default: all layers")
    top_k: int = Field(5, ge=0, le=1000, description="top-ranked neurons (LCA ranking) returned per variant; "
                                                     "claim C5 says whether the ranking is salient")


class TagOut(BaseModel):
    tag: str
    probability: float


class LayerTagsOut(BaseModel):
    layer: int
    tags: list[TagOut] = Field(description="one predicted tag per word")


class NeuronOut(BaseModel):
    rank: int = Field(description="1 = first in the LCA ranking")
    neuron: int = Field(description="flat id = layer * dim + unit")
    layer: int
    unit: int
    activations: list[float] = Field(description="this neuron's activation for each word")


class VariantOut(BaseModel):
    variant: str
    layers: list[LayerTagsOut]
    neurons: list[NeuronOut]


class MissingVariantOut(BaseModel):
    variant: str
    problem: str = Field(description="why this variant cannot probe here (not materialised, damaged files, ...)")


class ProbeOut(BaseModel):
    model: str
    task: str
    words: list[str]
    layers: list[int]
    variants: list[VariantOut]
    missing: list[MissingVariantOut] = Field(default_factory=list,
                                             description="requested (or default) variants left out, with the reason")
    elapsed_ms: float


class OmittedOut(BaseModel):
    kind: str = Field(description="layers, neurons, finetune, claims or probe")
    unit: str = Field(description="model/variant/task (model/variant for finetune)")
    problem: str = Field(description="what is wrong with its file and how to fix it")


_OMITTED = Field(default_factory=list, description="units left out of this answer because their result file is "
                                                   "damaged or differs from dvc.lock (GET /readyz lists all)")


class ResultsQuery(_In):
    profile: Optional[str] = Field(None, pattern=_NAME, description="a served profile (GET /v1/models lists "
                                                                    "them); default: the active one")
    model: Optional[str] = Field(None, pattern=_NAME)
    variant: Optional[str] = Field(None, pattern=_NAME)
    task: Optional[str] = Field(None, pattern=_NAME)
    layer: Optional[int] = Field(None, ge=0, le=1000)
    limit: int = Field(100, ge=1, le=10_000)
    offset: int = Field(0, ge=0, le=10_000_000)


class LayerRowOut(BaseModel):
    model: str
    variant: str
    task: str
    layer: int
    accuracy: float = Field(description="test accuracy, mean over probe seeds")
    std: float = Field(description="std over probe seeds")
    ci_low: float = Field(description="95% bootstrap interval, resampling test sentences (bootstrap_unit)")
    ci_high: float
    bootstrap_unit: str = Field("sentence", description="what the bootstrap resamples")
    lexical_baseline: float = Field(description="test accuracy of each word form's most frequent training tag "
                                                "(unseen forms: the majority tag)")
    headroom: float = Field(description="accuracy - lexical baseline")
    delta: Optional[float] = Field(None, description="accuracy - base accuracy (fine-tuned variants)")
    selectivity: Optional[float] = Field(None, description="task - control-task accuracy (seed 0)")


class PageOut(BaseModel):
    total: int
    limit: int
    offset: int


class ResultsOut(PageOut):
    items: list[LayerRowOut]
    omitted: list[OmittedOut] = _OMITTED


class NeuronQuery(_In):
    profile: Optional[str] = Field(None, pattern=_NAME, description="a served profile; default: the active one")
    model: Optional[str] = Field(None, pattern=_NAME)
    variant: Optional[str] = Field(None, pattern=_NAME)
    task: Optional[str] = Field(None, pattern=_NAME)


class NeuronSetOut(BaseModel):
    model: str
    variant: str
    task: str
    k: int = Field(description="minimal set size")
    n_neurons: int
    mean_layer: float
    counts: list[int] = Field(description="selected neurons per layer (0 = embeddings)")
    oracle_accuracy: float
    minimal_set_accuracy: float
    random_accuracy: Optional[float] = None
    bottom_accuracy: Optional[float] = None
    ablation_accuracy: Optional[float] = Field(None, description="oracle with the selected neurons zeroed")


class NeuronsOut(BaseModel):
    items: list[NeuronSetOut]
    omitted: list[OmittedOut] = _OMITTED


class VariantInfo(BaseModel):
    name: str
    tasks: list[str] = Field(description="probing tasks with results for this variant")
    probe_ready: bool = Field(description="weights and trained probes present, so POST /v1/probe can use it")


class ModelInfo(BaseModel):
    name: str
    family: str
    description: str
    n_layers: Optional[int] = None
    dim: Optional[int] = None
    variants: list[VariantInfo]


class ModelsOut(BaseModel):
    profile: str
    profiles: list[str] = Field(default_factory=list, description="the profiles served (?profile=NAME); sentences "
                                                                  "are probed on the active one's models only")
    models: list[ModelInfo]
    tasks: list[str]
    omitted: list[OmittedOut] = _OMITTED


class ClaimOut(BaseModel):
    id: str
    title: str
    statement: str
    statistic: str
    threshold: Union[float, str]
    thresholds: dict[str, float]
    side: Union[str, dict[str, str]]
    unit: str
    needs: str
    aggregation: str
    verdict: Literal["SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "NOT_APPLICABLE"]
    reason: str
    proxy: bool
    proxy_reason: Optional[str] = None
    independent_units: dict[str, dict[str, object]]
    min_detectable_effect: Optional[float] = None
    n_finetune_seeds: Optional[int] = None
    trust: list[str]
    units: list[dict[str, object]]


class ClaimsOut(BaseModel):
    profile: Optional[str] = None
    spec_sha256: Optional[str] = None
    spec_version: Optional[int] = None
    proxy: Optional[bool] = None
    proxy_reason: Optional[str] = None
    claims: list[ClaimOut]


class ProvenanceOut(BaseModel):
    profile: str
    params: dict[str, object]
    seeds: dict[str, object]
    dvc_lock_sha256: Optional[str] = None
    versions: Optional[dict[str, str]] = None
    results_etag: str


class StatusOut(BaseModel):
    status: Literal["ok", "ready", "degraded", "unavailable"]
    degraded: list[str] = Field(default_factory=list)
    results: Optional[dict[str, int]] = None
    models: Optional[dict[str, dict[str, bool]]] = None
