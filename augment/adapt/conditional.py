"""Training a label-conditional masked-LM: one token type embedding per label.

How labels map to type ids, and how a conditioned input is formed, is
`augment.candidates.conditioning`; training adds the rows those ids need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel


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
