"""Service settings, read from the environment (prefix KDAUG_), e.g. KDAUG_MLM, KDAUG_API_KEYS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Everything `kdaug serve` can be told: models, limits, batching, keys, CORS, logging."""

    model_config = SettingsConfigDict(env_prefix="KDAUG_", extra="ignore", frozen=True)

    # models
    mlm: str = Field("default", description="masked-LM name or path, 'default', or 'none'")
    vectors: str = Field("glove-6b-50d", description="word vectors (see AugmentConfig.vectors)")
    tagger: str = Field("en_core_web_sm", description="spaCy pipeline name or path")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda' or 'cuda:N'")
    mode: Literal["exact", "fast"] = Field(
        "exact", description="augmenter mode (see AugmentConfig.mode)"
    )
    augment_config: Path | None = Field(
        None, description="YAML file of further augment settings (pos_tags, top_k, ...)"
    )
    torch_threads: int | None = Field(
        None, ge=1, description="intra-op threads of the model (default: torch's choice)"
    )
    warmup: bool = Field(True, description="run one warm-up batch before reporting ready")

    # limits of one request
    max_items: int = Field(64, ge=1, description="texts or pairs per request")
    max_text_chars: int = Field(2000, ge=1, description="characters per text")
    max_n: int = Field(64, ge=1, le=1000, description="largest n (variants per input)")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body")

    # micro-batching
    micro_batching: bool = Field(True, description="merge concurrent requests into one batch")
    batch_max_records: int = Field(64, ge=1, description="records per model batch")
    batch_max_wait_ms: float = Field(
        5.0, ge=0, description="how long a batch waits for more requests once the model is free"
    )
    queue_max: int = Field(256, ge=1, description="requests waiting; beyond it 503 + Retry-After")
    request_timeout_s: float = Field(30.0, gt=0, description="queue + model time per request")

    # access
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated bearer keys; empty = no auth"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated origins allowed by CORS"
    )
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    def augment_settings(self) -> dict[str, Any]:
        """The AugmentConfig settings these service settings imply (the YAML file is read apart)."""
        return {
            "mlm": self.mlm,
            "vectors": self.vectors,
            "tagger": self.tagger,
            "device": self.device,
            "mode": self.mode,
            "batch_size": self.batch_max_records,
        }
