"""The token-type label conditioning contract that the augmenter relies on."""

from __future__ import annotations

import json

import torch
from transformers import BertForMaskedLM

from augment.adapt.conditional import add_label_types
from augment.candidates.conditioning import load_conditioning, token_type_for


def test_token_type_for_known_missing_and_unseen_labels():
    labels = ["0", "1"]
    assert token_type_for("0", labels) == 1
    assert token_type_for("1", labels) == 2
    assert token_type_for(None, labels) == 0
    assert token_type_for("2", labels) == 0


def test_load_conditioning(tmp_path, tiny_mlm_dir):
    assert load_conditioning(tiny_mlm_dir) is None
    record = {"label_conditional": True, "labels": ["neg", "pos"], "conditioning": "token_type"}
    (tmp_path / "kdaug_mlm.json").write_text(json.dumps(record))
    assert load_conditioning(tmp_path) == (["neg", "pos"], "token_type")
    record.update(label_conditional=False, labels=None, conditioning=None)
    (tmp_path / "kdaug_mlm.json").write_text(json.dumps(record))
    assert load_conditioning(tmp_path) is None


def test_add_label_types_copies_row_zero(tiny_mlm_dir):
    model = BertForMaskedLM.from_pretrained(tiny_mlm_dir)
    row0 = model.bert.embeddings.token_type_embeddings.weight[0].detach().clone()
    add_label_types(model, ["a", "b", "c"])
    weight = model.bert.embeddings.token_type_embeddings.weight
    assert model.config.type_vocab_size == 4 and weight.shape[0] == 4
    assert all(torch.equal(weight[i], row0) for i in range(4))
    ids = torch.tensor([[101, 2023, 103, 102]])
    model.eval()
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=torch.full_like(ids, 3)).logits
        base = model(input_ids=ids, token_type_ids=torch.zeros_like(ids)).logits
    assert torch.allclose(out, base)
