"""Service settings, read from the environment (prefix KDAUG_), e.g. KDAUG_MLM, KDAUG_API_KEYS."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kdaug.machine import available_cores
from kdaug.settings import Device


class ServiceSettings(BaseSettings):
    """Everything `kdaug serve` can be told: models, limits, batching, keys, CORS, logging."""

    model_config = SettingsConfigDict(env_prefix="KDAUG_", extra="ignore", frozen=True)

    # models
    mlm: str = Field("default", description="masked-LM name or path, 'default', or 'none'")
    vectors: str = Field("glove-6b-50d", description="word vectors (see AugmentConfig.vectors)")
    tagger: str = Field("en_core_web_sm", description="spaCy pipeline name or path")
    device: Device = "auto"
    mode: Literal["exact", "fast"] = Field(
        "exact", description="augmenter mode (see AugmentConfig.mode)"
    )
    augment_config: Path | None = Field(
        None, description="YAML file of further augment settings (pos_tags, top_k, ...)"
    )
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="intra-op threads of the model (default: OMP_NUM_THREADS if set, else the "
        "cores this process may use)",
    )
    warmup: bool = Field(True, description="run one warm-up batch before reporting ready")

    # limits of one request
    max_items: int = Field(64, ge=1, description="texts or pairs per request")
    max_text_chars: int = Field(2000, ge=1, description="characters per text")
    max_n: int = Field(64, ge=1, le=1000, description="largest n (variants per input)")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body")
    max_request_work: int = Field(
        150_000,
        ge=1,
        description="estimated model work of a request: the masked-LM tokens of its inputs "
        "(words x length in tokens, up to the copy window), summed; larger requests get 413",
    )
    max_response_bytes: int = Field(
        16_000_000,
        ge=1024,
        description="largest estimated response (JSON bytes); larger requests get 413",
    )

    # micro-batching
    micro_batching: bool = Field(True, description="merge concurrent requests into one batch")
    batch_max_records: int = Field(64, ge=1, description="records per model batch")
    batch_max_words: int = Field(
        1024,
        ge=1,
        description="words per model batch (a longer record runs alone); bounds how long one "
        "batch holds the model, and so the wait of other requests and the reaction to a cancel",
    )
    batch_slice_tokens: int = Field(
        1024,
        ge=16,
        description="padded tokens per masked-LM forward pass; between two passes of a long "
        "batch, short requests that arrived meanwhile are served",
    )
    batch_max_wait_ms: float = Field(
        5.0, ge=0, description="how long a batch waits for more requests once the model is free"
    )
    queue_max: int = Field(256, ge=1, description="requests waiting; beyond it 503 + Retry-After")
    request_timeout_s: float = Field(30.0, gt=0, description="queue + model time per request")

    # connections and shutdown
    header_timeout_s: float = Field(
        10.0, gt=0, description="time for a request's headers to arrive; then 408 and close"
    )
    body_timeout_s: float = Field(
        20.0, gt=0, description="time for a request's body to arrive after its headers; then 408"
    )
    keep_alive_s: int = Field(
        5, ge=1, description="idle time before a kept-alive connection closes"
    )
    max_connections: int = Field(
        512, ge=1, description="open connections; more are answered 503 and closed"
    )
    drain_timeout_s: float = Field(
        25.0,
        gt=0,
        description="on SIGTERM, time for the requests already in to be answered; those left "
        "then get 503 and the process exits",
    )

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
    def _split_commas(cls, value: Any, info: ValidationInfo) -> Any:
        """Comma-separated text to a list; keys given but none usable (" ", ",") would turn
        auth off without a word, so they are refused."""
        given = value.split(",") if isinstance(value, str) else value
        if not isinstance(given, list) or not all(isinstance(v, str) for v in given):
            return value
        kept = [v.strip() for v in given if v.strip()]
        raw = value if isinstance(value, str) else ",".join(given)
        if info.field_name == "api_keys" and not kept and raw:
            raise ValueError(
                "set but holds no key (only blanks or commas): leave it empty for no auth, or "
                "give comma-separated keys"
            )
        return kept

    def model_threads(self) -> int:
        """Intra-op threads of the model: KDAUG_TORCH_THREADS, else OMP_NUM_THREADS, else every
        core this process may use (affinity and cgroup quota). One model thread serves all
        requests, so its threads can take every core; torch's own default ignores a container's
        CPU quota and oversubscribes it."""
        if self.torch_threads:
            return self.torch_threads
        omp = os.environ.get("OMP_NUM_THREADS", "").strip()
        if omp.isdigit() and int(omp) > 0:
            return int(omp)
        return available_cores()

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
