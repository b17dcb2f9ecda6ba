"""Label conditioning of the masked-LM through token type ids: id 0 = unconditional, label i ->
id i + 1.

Every token of the single-segment input `[CLS] text [SEP]` carries the label's type id, so the
masked-LM proposes words that fit the class. A label-conditional model folder says so, and lists
its labels, in `RECORD_FILE` (written by `kdaug adapt-mlm`, read here at candidate time).
"""

from __future__ import annotations

import json
from pathlib import Path

RECORD_FILE = "kdaug_mlm.json"
TOKEN_TYPE = "token_type"


def load_conditioning(model_dir: str | Path) -> tuple[list[str], str] | None:
    """(labels, method) for a label-conditional model folder, None for any other model."""
    path = Path(model_dir) / RECORD_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    if not record.get("label_conditional") or not record.get("labels"):
        return None
    return [str(x) for x in record["labels"]], str(record.get("conditioning") or TOKEN_TYPE)


def token_type_for(label: str | None, labels: list[str]) -> int:
    """The token type id for a record's label: 0 (unconditional) when missing or unseen."""
    if label is None:
        return 0
    try:
        return labels.index(str(label)) + 1
    except ValueError:
        return 0
