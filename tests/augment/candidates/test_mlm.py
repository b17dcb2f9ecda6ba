import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from augment.candidates.masking import Copy, MaskQuery, pack
from augment.candidates.mlm import MaskedLMCandidates, _ranked, _remax
from augment.candidates.topk import BLOCK, block_maxima
from kdaug.errors import KdaugError

TEXT = "She opened the door and walked into the kitchen."


@pytest.fixture(scope="module")
def mlm(tiny_mlm_dir):
    return MaskedLMCandidates(str(tiny_mlm_dir), device="cpu", top_k=10)


def _q(text, word, label=None):
    i = text.index(word)
    return MaskQuery(text, i, i + len(word), label)


def _copy_of_length(n: int) -> Copy:
    return Copy(input_ids=[0] * n, type_ids=[0] * n, positions=[1], word_ids=[-1], queries=[0])


def test_pack_bounds_padded_tokens_and_length_spread():
    lengths = [10, 10, 10, 11, 30]
    chunks = pack([[_copy_of_length(n)] for n in lengths], batch_tokens=30)
    assert [[len(same[0].input_ids) for same in c] for c in chunks] == [[10, 10, 10], [11], [30]]
    # 13 is within 15% (+2) of 10, 14 is not
    chunks = pack([[_copy_of_length(n)] for n in (10, 13, 14)], batch_tokens=1000)
    assert [len(c) for c in chunks] == [2, 1]


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


def test_projection_buffer_gives_linear_and_is_reused(mlm):
    weight, bias, _ = mlm._valid_projection()
    torch.manual_seed(0)
    big, small = torch.randn(7, weight.shape[1]), torch.randn(3, weight.shape[1])
    first, maxima = mlm._project(big, weight, bias)
    assert torch.equal(first, torch.nn.functional.linear(big, weight, bias))
    assert torch.equal(maxima, block_maxima(first))
    buffer = mlm._logits.data_ptr()
    second, _ = mlm._project(small, weight, bias)  # fits: the same memory, no new allocation
    assert mlm._logits.data_ptr() == buffer and second.data_ptr() == buffer
    assert torch.equal(second, torch.nn.functional.linear(small, weight, bias))
    assert second.shape == (3, weight.shape[0]) and second.is_contiguous()
    grown, maxima = mlm._project(torch.randn(11, weight.shape[1]), weight, bias)
    assert grown.shape == (11, weight.shape[0]) and mlm._logits.numel() >= grown.numel()
    assert torch.equal(maxima, block_maxima(grown))


def test_block_maxima_follow_the_masked_words():
    # the projection gives block maxima before the masked word's own logit is set to -inf:
    # the blocks that held one are computed again (a stale maximum would pick a wrong block)
    logits = torch.randn(4, 5 * BLOCK + 7)
    maxima = block_maxima(logits)
    rows, cols = torch.tensor([0, 1, 2, 3]), torch.tensor([3, BLOCK + 9, 5 * BLOCK + 2, 70])
    logits[0, 3] = logits[0].max() + 1  # the row's largest value, then masked
    maxima[0, 0] = logits[0, 3]
    logits[rows, cols] = float("-inf")
    assert torch.equal(_remax(logits, maxima, rows, cols), block_maxima(logits))


def test_duplicate_queries_computed_once_then_cached(mlm):
    text = "The red door opened onto a quiet garden."
    passes, hits = mlm.forward_passes, mlm.cache_hits
    a, b = mlm.predict([_q(text, "garden"), _q(text, "garden")])
    assert a == b and mlm.forward_passes == passes + 1
    (c,) = mlm.predict([_q(text, "garden")])
    assert c == a and mlm.forward_passes == passes + 1 and mlm.cache_hits == hits + 1


def test_cache_is_bounded(tiny_mlm_dir):
    small = MaskedLMCandidates(str(tiny_mlm_dir), device="cpu", top_k=5, cache_size=2)
    small.predict([_q(TEXT, w) for w in ("opened", "door", "walked", "kitchen")])
    assert len(small._cache) == 2


@pytest.fixture(scope="module")
def fast(tiny_mlm_dir):
    return MaskedLMCandidates(str(tiny_mlm_dir), device="cpu", top_k=10, mode="fast")


LONG = (
    "The old captain walked slowly along the quiet harbour while young sailors painted boats, "
    "repaired heavy nets and carried fresh bread to the small market near the bright lighthouse."
)
LONG_WORDS = ("captain", "walked", "quiet", "harbour", "sailors", "painted", "boats", "nets")


def test_fast_mode_masks_several_non_adjacent_words_per_copy(fast):
    queries = [_q(LONG, w) for w in LONG_WORDS if fast.is_single_piece(w)]
    copies = fast.masking.copies(queries)
    assert 1 < len(copies) < len(queries)
    assert sorted(i for c in copies for i in c.queries) == list(range(len(queries)))
    mask_id = fast.tokenizer.mask_token_id
    for c in copies:
        assert [c.input_ids[p] for p in c.positions] == [mask_id] * len(c.positions)
        gaps = [b - a for a, b in zip(c.positions, c.positions[1:], strict=False)]
        assert all(g > 1 for g in gaps), "masks of one copy must not be neighbours"
        assert len(c.positions) <= max(1, int(fast.masking.mask_rate * len(c.input_ids)))
    cands = fast.predict(queries)
    for q, row in zip(queries, cands, strict=True):
        assert row and all(w.lower() != q.text[q.start : q.end].lower() for w, _ in row)


def test_fast_mode_is_int8_on_cpu_and_exact_is_not(fast, mlm):
    assert fast.quantized and not mlm.quantized
    from augment.candidates.quant import StaticInt8Linear

    layers = [m for m in fast.model.modules() if isinstance(m, StaticInt8Linear)]
    assert layers and not any(isinstance(m, torch.nn.Linear) for m in fast.model.modules())


def test_fast_mode_windows_long_texts(fast):
    text = " ".join(["word"] * 300) + " the red door opened near the garden gate."
    (cands,) = fast.predict([_q(text, "door")])
    (copy,) = fast.masking.copies([_q(text, "door")])
    assert cands and len(copy.input_ids) <= fast.masking.fast_max_length


def test_fast_mode_does_not_depend_on_batch_composition(fast):
    queries = [_q(LONG, w) for w in LONG_WORDS] + [_q(TEXT, w) for w in ("door", "kitchen")]
    together = fast.predict(queries)
    fast._cache.clear()
    fast.batch_tokens, saved = 128, fast.batch_tokens
    try:
        split = fast.predict(queries[:-2]) + fast.predict(queries[-2:])
    finally:
        fast.batch_tokens = saved
    assert together == split


def test_bad_mode_and_quantize(tiny_mlm_dir):
    with pytest.raises(KdaugError):
        MaskedLMCandidates(str(tiny_mlm_dir), device="cpu", mode="turbo")
    with pytest.raises(KdaugError):
        MaskedLMCandidates(str(tiny_mlm_dir), device="cpu", quantize="fp4")


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
    assert [cond.masking.type_id_for(x) for x in (None, "neg", "pos", "other")] == [0, 1, 2, 0]
    neg, pos, none, unseen = cond.predict(
        [_q(TEXT, "door", "neg"), _q(TEXT, "door", "pos"), _q(TEXT, "door"), _q(TEXT, "door", "?")]
    )
    assert neg != pos and pos != none and unseen == none


def test_fast_mode_answers_every_query_even_with_a_tiny_window(tiny_mlm_dir):
    narrow = MaskedLMCandidates(
        str(tiny_mlm_dir),
        device="cpu",
        top_k=5,
        mode="fast",
        fast_max_length=16,
        context="with_original",
        quantize="off",
    )
    queries = [_q(LONG, w) for w in LONG_WORDS]
    assert all(narrow.predict(queries))
    for c in narrow.masking.copies(queries):
        assert len(c.input_ids) <= narrow.masking.max_length


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(-30, 30, width=32),
            st.sampled_from([1.2345, 1.2346, 1.23449, 1.2355, 7.0, 7.0004]),
        ),
        max_size=30,
    ),
    st.integers(0, 5),
    st.integers(1, 20),
)
def test_ranking_is_the_sort_by_rounded_score_then_id(scores, masked, top_k):
    """_ranked walks the runs of a sorted row; it gives what sorting every (rounded score, id)
    gives."""
    row = sorted(scores, reverse=True) + [float("-inf")] * masked
    ids = list(np.random.default_rng(len(row)).permutation(1000)[: len(row)])
    want = sorted((-round(s, 3), i) for s, i in zip(row, ids, strict=True) if s != float("-inf"))
    got = _ranked(np.array([row], dtype=np.float64), np.array([ids]), top_k)
    assert got == [[(-s, i) for s, i in want[:top_k]]]


def test_ranking_rounds_as_python_where_numpy_would_not():
    # x * 1000 within rounding error of a half: numpy's round gives the other neighbour here
    row = [13.5365, 3.5685000000000002, -2.2415, -14.3185]
    assert any(np.round(x, 3) != round(x, 3) for x in row)
    got = _ranked(np.array([row]), np.array([[4, 3, 2, 1]]), 4)
    assert got == [[(round(x, 3), i) for x, i in zip(row, [4, 3, 2, 1], strict=True)]]
