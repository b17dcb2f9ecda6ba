"""What one running service holds: settings, the augmenter, the batcher, metrics, readiness."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from augment.config import AugmentConfig, SampleParams
from augment.records import Record, Variant
from kdaug.files import hash_file
from service.batching import MicroBatcher
from service.metrics import ServiceMetrics
from service.schemas import RequestLimits
from service.settings import ServiceSettings
from service.work import WorkEstimate, slice_forward_passes

if TYPE_CHECKING:
    from augment.augmenter import Augmenter

log = logging.getLogger(__name__)

WARMUP = Record("warmup", "The quick brown fox jumps over the lazy dog near the river bank.")
# a record is light, and may run between the forward passes of a long batch, when its estimated
# work is at most this many slices (a sentence or two in exact mode)
LIGHT_SLICES = 4
# files whose bytes make a model folder what it is (weights, config, vocabulary)
MODEL_FILES = ("config.json", "*.safetensors", "*.bin", "tokenizer.json", "vocab.txt")


def augment_config(settings: ServiceSettings) -> AugmentConfig:
    """The augmenter's config: the YAML file if given, then the service settings set explicitly."""
    implied = settings.augment_settings()
    if settings.augment_config is None:
        return AugmentConfig.build(**implied)
    explicit = {k: v for k, v in implied.items() if k in settings.model_fields_set}
    explicit["batch_size"] = settings.batch_max_records
    return AugmentConfig.from_yaml(settings.augment_config, **explicit)


def public_name(name: str | None) -> str | None:
    """A model's name fit for anonymous clients: a local path becomes its last part."""
    if not name:
        return name
    path = Path(name).expanduser()
    return path.name if path.exists() or path.is_absolute() else name


def fingerprint(location: str | None) -> str | None:
    """Short sha256 of a model folder's files (weights, config, vocabulary), or of its name
    when it is not a local folder; tells two models apart without showing where they are."""
    if not location:
        return None
    digest = hashlib.sha256()
    folder = Path(location)
    files = sorted({f for pattern in MODEL_FILES for f in folder.glob(pattern) if f.is_file()})
    if not folder.is_dir() or not files:
        digest.update(location.encode("utf-8", "replace"))
    for f in files:
        digest.update(f.name.encode() + b"\x00")
        with f.open("rb") as fh:
            hash_file(digest, fh)
    return digest.hexdigest()[:12]


class ServiceState:
    """Loads the models once (off the event loop) and answers requests through the batcher."""

    def __init__(self, settings: ServiceSettings, augmenter: Augmenter | None = None) -> None:
        self.settings = settings
        self.config = augmenter.config if augmenter is not None else augment_config(settings)
        self.metrics = ServiceMetrics()
        self.augmenter = augmenter
        self.status: Literal["loading", "ready", "failed"] = "loading"
        self.error: str | None = None
        self.fingerprints: dict[str, str] = {}
        self.batcher = MicroBatcher(
            self._augment,
            max_records=settings.batch_max_records,
            max_words=settings.batch_max_words,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            queue_max=settings.queue_max,
            enabled=settings.micro_batching,
            light_work=LIGHT_SLICES * settings.batch_slice_tokens,
            metrics=self.metrics,
        )
        self._estimate = WorkEstimate()  # words only, until the MLM is loaded
        self.api_keys = [k.encode() for k in settings.api_keys]
        self.torch_threads = settings.model_threads()

    def request_limits(self) -> RequestLimits:
        """The limits requests are validated with: the settings', and once the models are ready
        the candidate sources they loaded."""
        s, loaded = self.settings, None
        if self.status == "ready" and self.augmenter is not None:
            loaded = tuple(self.augmenter.loaded_sources)
        return RequestLimits(s.max_items, s.max_text_chars, s.max_n, loaded)

    def work(self, records: list[Record], params: SampleParams) -> list[int]:
        """Estimated model work of each record (see service.work)."""
        return self._estimate(records, params)

    def _augment(self, records: list[Record], params: list[SampleParams]) -> list[list[Variant]]:
        assert self.augmenter is not None
        return self.augmenter.augment(records, params)

    def _load(self) -> None:
        """Runs on the model thread: torch threads, the augmenter, a warm-up batch."""
        import torch

        torch.set_num_threads(self.torch_threads)
        if self.augmenter is None:
            from augment.augmenter import Augmenter

            self.augmenter = Augmenter(self.config)
        mlm = getattr(self.augmenter, "mlm", None)
        if mlm is not None:
            self.fingerprints["mlm"] = fingerprint(getattr(mlm, "path", None) or mlm.name)
            slice_forward_passes(mlm, self.settings.batch_slice_tokens)
        self._estimate = WorkEstimate(mlm)
        if self.settings.warmup:
            self._augment([WARMUP], [SampleParams.from_config(self.config, n=2)])

    async def load(self) -> None:
        """Load and warm up on the model thread; readiness follows the outcome."""
        try:
            await self.batcher.call(self._load)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # logged, and kept for `kdaug serve` to report
            self.status, self.error = "failed", " ".join(f"{type(exc).__name__}: {exc}".split())
            log.error("loading the models failed: %s", self.error)
            return
        log.info(
            "models loaded%s; ready (mode %s, %d torch threads)",
            " and warmed up" if self.settings.warmup else "",
            self.config.mode,
            self.torch_threads,
        )
        self.status = "ready"  # after the line: whoever waits for readiness has it logged

    def describe(self) -> dict[str, Any]:
        """Readiness for anonymous clients: model names and fingerprints, never paths."""
        out: dict[str, Any] = {"status": self.status}
        if self.status == "failed":
            out["detail"] = "loading the models failed; the reason is in the server log"
        if self.augmenter is not None and self.status == "ready":
            versions = self.augmenter.versions()
            out["models"] = {
                k: public_name(v) if k in ("mlm", "vectors") else v for k, v in versions.items()
            }
            out["fingerprints"] = dict(self.fingerprints)
            out["mode"] = self.config.mode
            out["torch_threads"] = self.torch_threads
        return out
