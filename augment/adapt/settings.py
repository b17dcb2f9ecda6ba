"""What an adaptation run is made of, and the fingerprints that decide resume and caching."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kdaug.errors import UsageError
from kdaug.files import hash_file
from kdaug.settings import device_name

# Hyperparameters that change the trained weights; a checkpoint resumes only when they match.
TRAINING_KEYS = (
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_steps",
    "max_length",
    "mlm_probability",
    "whole_word_mask",
    "label_dropout",
    "label_lr_scale",
    "head_lr_scale",
    "group_by_length",
    "seed",
)


class SettingsError(UsageError):
    """Adaptation settings that cannot work together."""


@dataclass
class AdaptSettings:
    """One `kdaug adapt-mlm` run. A budget (minutes and/or steps) is required; training stops at
    whichever is reached first. Time counts training steps only, summed over resumed runs."""

    base: str
    corpus: list[Path]
    output: Path
    minutes: float | None = None
    steps: int | None = None
    text_column: str = "sentence"
    label_column: str | None = None
    eval_file: Path | None = None
    heldout: float = 0.15
    max_eval: int = 1000
    batch_size: int = 32
    lr: float = 2e-4
    weight_decay: float = 0.01
    warmup_steps: int = 20
    max_length: int = 64
    mlm_probability: float = 0.15
    whole_word_mask: bool = False
    label_dropout: float = 0.15
    label_lr_scale: float = 20.0
    head_lr_scale: float = 10.0
    group_by_length: bool = True
    seed: int = 0
    checkpoint_every: int = 50
    device: str = "auto"
    threads: int | None = None
    resume: bool = True
    force: bool = False
    corpus_names: list[str] = field(default_factory=list)
    corpus_repeat: list[int] | None = None

    def validate(self) -> None:
        if self.minutes is None and self.steps is None:
            raise SettingsError("give a training budget: --minutes M and/or --steps N")
        if (self.minutes is not None and self.minutes <= 0) or (
            self.steps is not None and self.steps <= 0
        ):
            raise SettingsError("--minutes and --steps must be positive")
        if not 0 < self.mlm_probability < 1 or not 0 <= self.label_dropout < 1:
            raise SettingsError("--mlm-probability must be in (0, 1) and --label-dropout in [0, 1)")
        try:
            self.device = device_name(self.device)
        except ValueError as exc:
            raise SettingsError(f"--device: {exc}") from None
        if self.corpus_repeat is not None and (
            len(self.corpus_repeat) != len(self.corpus) or min(self.corpus_repeat) < 1
        ):
            raise SettingsError(
                f"--corpus-repeat needs one whole number >= 1 per --corpus file "
                f"({len(self.corpus)} files, {len(self.corpus_repeat)} numbers)"
            )
        if self.batch_size < 1 or self.max_length < 8 or self.checkpoint_every < 1:
            raise SettingsError(
                "--batch-size and --checkpoint-every must be >= 1, --max-length >= 8"
            )

    def training_dict(self) -> dict:
        d = asdict(self)
        return {k: d[k] for k in TRAINING_KEYS}


def digest(obj: object) -> str:
    """A short stable hash of a JSON-able object."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def model_fingerprint(path_or_name: str) -> str:
    """Hash of a local model folder's files (config, weights, vocabulary); a hub name hashes as
    itself, since its files cannot be read before loading."""
    root = Path(path_or_name)
    if not root.is_dir():
        return digest(path_or_name)
    h = hashlib.sha256()
    for f in sorted(root.iterdir()):
        if f.is_file() and f.suffix in {".json", ".txt", ".safetensors", ".bin"}:
            h.update(f.name.encode())
            with f.open("rb") as fh:
                hash_file(h, fh)
    return h.hexdigest()[:16]
