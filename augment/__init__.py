"""kdaug's augmenter: POS-guided masked-LM and word-vector replacement for KD corpora.

From Python, `augment_dataset(ds, AugmentConfig(...), task="sst2")` turns a Hugging Face dataset
into its variants (see `augment.hf`); `Augmenter(config).augment(records)` works on Records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from augment.config import AugmentConfig
from augment.records import Record, Reject, Replacement, Variant
from kdaug import __version__

__all__ = [
    "AugmentConfig",
    "Augmenter",
    "Record",
    "Reject",
    "Replacement",
    "Variant",
    "VariantExpander",
    "__version__",
    "augment_dataset",
]

if TYPE_CHECKING:
    from augment.augmenter import Augmenter
    from augment.hf import VariantExpander, augment_dataset

# Imported only when asked for: Augmenter pulls in torch and spaCy, the dataset API `datasets`.
_LAZY = {
    "Augmenter": "augment.augmenter",
    "augment_dataset": "augment.hf",
    "VariantExpander": "augment.hf",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'augment' has no attribute {name!r}")
