"""Label conditioning through token type ids: id 0 = unconditional, label i -> id i + 1.

Every token of the single-segment input `[CLS] text [SEP]` carries the label's type id, so the
masked-LM proposes words that fit the class. The augmenter calls `load_conditioning` and
`token_type_for` at candidate time; training calls `add_label_types`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel

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


def add_label_types(model: PreTrainedModel, labels: list[str]) -> None:
    """Resize the token type embeddings to 1 + len(labels) rows, each new row a copy of row 0."""
    import torch

    from augment.adapt.corpus import CorpusError

    embeddings = getattr(model.base_model, "embeddings", None)
    old = getattr(embeddings, "token_type_embeddings", None)
    if old is None:
        raise CorpusError(
            f"{type(model).__name__} has no token type embeddings: label-conditional training "
            "needs a BERT-style model; drop --label-column"
        )
    new = torch.nn.Embedding(1 + len(labels), old.embedding_dim).to(old.weight.device)
    with torch.no_grad():
        new.weight.copy_(old.weight[0:1].expand_as(new.weight))
    embeddings.token_type_embeddings = new
    model.config.type_vocab_size = 1 + len(labels)
    # BertEmbeddings keeps a buffer of zeros for inputs without token_type_ids; it is per position,
    # not per type, so it needs no change.
