"""kdaug's augmenter: POS-guided masked-LM and word-vector replacement for KD corpora."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from augment.config import AugmentConfig
from augment.records import Record, Reject, Replacement, Variant

__version__ = "0.1.0"
__all__ = [
    "AugmentConfig",
    "Augmenter",
    "Record",
    "Reject",
    "Replacement",
    "Variant",
    "__version__",
]

if TYPE_CHECKING:
    from augment.augmenter import Augmenter


def __getattr__(name: str) -> Any:
    # Augmenter pulls in torch/spaCy; import it only when asked for.
    if name == "Augmenter":
        from augment.augmenter import Augmenter

        return Augmenter
    raise AttributeError(name)
