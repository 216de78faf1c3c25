"""Service settings: where the results and models are, and every limit, from ``LINGSHIFT_*`` variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import ConfigError


class Settings(BaseModel):
    """What the service reads and how much work one request may ask for.

    Paths come from ``params.yaml`` under ``root`` (the repository); limits bound every request.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: Path = Field(default_factory=Path.cwd, description="repository root holding params.yaml")
    params_file: str = "params.yaml"
    max_body_bytes: int = Field(16_384, ge=256, description="largest request body accepted (413 above)")
    max_json_depth: int = Field(32, ge=2, le=256, description="deepest nesting of arrays/objects in a JSON body "
                                                              "(422 above)")
    max_words: int = Field(128, ge=1, le=512, description="most words per probed sentence")
    max_word_chars: int = Field(64, ge=1, description="longest word accepted")
    max_sentence_chars: int = Field(4_000, ge=1, description="longest sentence string accepted")
    max_top_k: int = Field(50, ge=0, le=1000, description="most top-ranked neurons (LCA ranking) returned per variant")
    max_page_size: int = Field(500, ge=1, description="most rows per results page")
    max_concurrent_probes: int = Field(2, ge=1, description="probe computations at once per worker (503 above)")
    probe_timeout_s: float = Field(20.0, gt=0, description="a probe still running after this answers 503")
    retry_after_s: int = Field(1, ge=1, description="Retry-After of a 503")
    rate_limit: str = Field("600/minute", description="per-client limit on POST /v1/probe (429 above)")
    ratelimit_storage: str = Field("memory://", description="where rate-limit counters live: memory:// (each "
                                   "worker its own) or redis://host:port/db (shared by every worker and "
                                   "instance, kept across restarts)")
    device: str | None = Field(None, description="torch device for probing (null: cpu)")
    cache_max_age_s: int = Field(60, ge=0, description="Cache-Control max-age of results responses")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from ``LINGSHIFT_<FIELD>`` environment variables (e.g. ``LINGSHIFT_MAX_WORDS=64``)."""
        values: dict[str, object] = {}
        for name in cls.model_fields:
            env = os.environ.get(f"LINGSHIFT_{name.upper()}")
            if env is not None:
                values[name] = env
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise ConfigError(f"service setting {where} (LINGSHIFT_{where.upper()}): {first['msg']}") from None
