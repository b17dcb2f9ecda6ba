import json

import pytest
import torch

from augment.candidates.mlm import MaskedLMCandidates, MaskQuery
from augment.errors import KdaugError

TEXT = "She opened the door and walked into the kitchen."


@pytest.fixture(scope="module")
def mlm(tiny_mlm_dir):
    return MaskedLMCandidates(str(tiny_mlm_dir), device="cpu", top_k=10)


def _q(text, word, label=None):
    i = text.index(word)
    return MaskQuery(text, i, i + len(word), label)


def test_single_piece_split(mlm):
    assert mlm.is_single_piece("door") and mlm.is_single_piece("Kitchen")
    assert not mlm.is_single_piece("unbelievability")


def test_candidates_are_clean_words(mlm):
    (cands,) = mlm.predict([_q(TEXT, "door")])
    assert len(cands) == 10
    vocab = mlm.tokenizer.get_vocab()
    for word, _ in cands:
        assert word.isalpha() and not word.startswith("##") and word != "door"
        assert word in vocab and word not in mlm.tokenizer.all_special_tokens


def test_batch_composition_does_not_change_candidates(mlm):
    queries = [_q(TEXT, w) for w in ("opened", "door", "walked", "kitchen")]
    queries += [_q("A much longer sentence about the " + "very " * 30 + "big house.", "house")]
    together = mlm.predict(queries)
    mlm.batch_tokens, saved = 256, mlm.batch_tokens
    try:
        alone = [mlm.predict([q])[0] for q in queries]
        small_chunks = mlm.predict(list(reversed(queries)))[::-1]
    finally:
        mlm.batch_tokens = saved
    assert together == alone == small_chunks


def test_duplicate_queries_computed_once(mlm):
    before = mlm.forward_passes
    a, b = mlm.predict([_q(TEXT, "door"), _q(TEXT, "door")])
    assert a == b and mlm.forward_passes == before + 1


def test_long_text_is_windowed(mlm):
    text = " ".join(["word"] * 400) + " final door here."
    (cands,) = mlm.predict([_q(text, "door")])
    assert cands


def test_unknown_model_is_one_line_error(tmp_path):
    with pytest.raises(KdaugError) as exc:
        MaskedLMCandidates(str(tmp_path / "nope-model"), device="cpu")
    assert "\n" not in str(exc.value)


def test_label_conditional_model(tiny_mlm_dir, tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(tiny_mlm_dir)
    old = model.bert.embeddings.token_type_embeddings
    new = torch.nn.Embedding(3, old.embedding_dim)
    with torch.no_grad():
        new.weight[:2] = old.weight
        new.weight[2] = old.weight[0] + torch.randn(old.embedding_dim)  # not a constant: LayerNorm
    model.bert.embeddings.token_type_embeddings = new
    model.config.type_vocab_size = 3
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_mlm_dir).save_pretrained(tmp_path)
    meta = {"label_conditional": True, "labels": ["neg", "pos"], "conditioning": "token_type"}
    (tmp_path / "kdaug_mlm.json").write_text(json.dumps(meta))
    cond = MaskedLMCandidates(str(tmp_path), device="cpu", top_k=10)
    assert cond.labels == ["neg", "pos"]
    assert [cond.type_id_for(x) for x in (None, "neg", "pos", "other")] == [0, 1, 2, 0]
    neg, pos, none, unseen = cond.predict(
        [_q(TEXT, "door", "neg"), _q(TEXT, "door", "pos"), _q(TEXT, "door"), _q(TEXT, "door", "?")]
    )
    assert neg != pos and pos != none and unseen == none
