"""What one running service holds: settings, the augmenter, the batcher, metrics, readiness."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Literal

from augment.config import AugmentConfig, SampleParams
from augment.records import Record, Variant
from service.batching import MicroBatcher
from service.metrics import ServiceMetrics
from service.schemas import AugmentRequestBase, request_model
from service.settings import ServiceSettings

if TYPE_CHECKING:
    from augment.augmenter import Augmenter

log = logging.getLogger(__name__)

WARMUP = Record("warmup", "The quick brown fox jumps over the lazy dog near the river bank.")


def augment_config(settings: ServiceSettings) -> AugmentConfig:
    """The augmenter's config: the YAML file if given, then the service settings set explicitly."""
    implied = settings.augment_settings()
    if settings.augment_config is None:
        return AugmentConfig.build(**implied)
    explicit = {k: v for k, v in implied.items() if k in settings.model_fields_set}
    explicit["batch_size"] = settings.batch_max_records
    return AugmentConfig.from_yaml(settings.augment_config, **explicit)


class ServiceState:
    """Loads the models once (off the event loop) and answers requests through the batcher."""

    def __init__(self, settings: ServiceSettings, augmenter: Augmenter | None = None) -> None:
        self.settings = settings
        self.config = augmenter.config if augmenter is not None else augment_config(settings)
        self.request_model: type[AugmentRequestBase] = request_model(settings)
        self.metrics = ServiceMetrics()
        self.augmenter = augmenter
        self.status: Literal["loading", "ready", "failed"] = "loading"
        self.error: str | None = None
        self.batcher = MicroBatcher(
            self._augment,
            max_records=settings.batch_max_records,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            queue_max=settings.queue_max,
            enabled=settings.micro_batching,
            metrics=self.metrics,
        )
        self.api_keys = [k.encode() for k in settings.api_keys]

    def _augment(self, records: list[Record], params: list[SampleParams]) -> list[list[Variant]]:
        assert self.augmenter is not None
        return self.augmenter.augment(records, params)

    def _load(self) -> None:
        """Runs on the model thread: torch threads, the augmenter, a warm-up batch."""
        if self.settings.torch_threads:
            import torch

            torch.set_num_threads(self.settings.torch_threads)
        if self.augmenter is None:
            from augment.augmenter import Augmenter

            self.augmenter = Augmenter(self.config)
        if self.settings.warmup:
            self._augment([WARMUP], [SampleParams.from_config(self.config, n=2)])

    async def load(self) -> None:
        """Load and warm up on the model thread; readiness follows the outcome."""
        try:
            await self.batcher.call(self._load)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported by /healthz and /readyz, and logged
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("loading the models failed: %s", self.error)
            return
        self.status = "ready"
        log.info("models loaded and warmed up; ready")

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.error:
            out["detail"] = self.error
        if self.augmenter is not None and self.status == "ready":
            out["models"] = self.augmenter.versions()
        return out
