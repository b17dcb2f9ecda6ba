"""The cheaper paths of the masked-LM candidates give what the plain ones gave, bit for bit."""

import pytest
import torch

from augment.candidates.masking import _span, _starts, encode
from augment.candidates.mlm import _EXTRA, _SCORE_DECIMALS, MaskedLMCandidates

TEXTS = [
    "She opened the door and walked into the kitchen.",
    "it 's a charming and often affecting journey .",
    "Café naïve — 😀 x\u0301 ﬁne ＡＢＣ don't   re-enter",
    "",
    "   ",
]


@pytest.fixture(scope="module")
def mlm(tiny_mlm_dir):
    return MaskedLMCandidates(str(tiny_mlm_dir), device="cpu", top_k=10, cache_size=0)


def test_encode_is_the_tokenizer_call(mlm):
    tok = mlm.tokenizer
    enc = tok(TEXTS, add_special_tokens=False, return_offsets_mapping=True)
    assert encode(tok, TEXTS) == list(zip(enc["input_ids"], enc["offset_mapping"], strict=True))


def _span_by_scan(offs, start, end):
    inside = [k for k, (s, e) in enumerate(offs) if s >= start and e <= end and e > s]
    if inside and offs[inside[0]][0] == start and offs[inside[-1]][1] == end:
        return inside[0], inside[-1] + 1
    return None


def test_span_by_bisection_is_the_scan(mlm):
    for text in TEXTS:
        ((_, offs),) = encode(mlm.tokenizer, [text])
        for start in range(len(text) + 1):
            for end in range(start, len(text) + 1):
                want = _span_by_scan(offs, start, end)
                assert _span(offs, _starts(offs), start, end) == want, (text, start, end)
    unordered = [(4, 6), (0, 3), (7, 9)]  # not in text order: scanned, as before
    assert _starts(unordered) is None
    assert _span(unordered, None, 0, 3) == _span_by_scan(unordered, 0, 3) == (1, 2)


def test_learn_pieces_is_one_tokenizer_call_per_word(mlm):
    words = ["door", "Kitchen", "unbelievability", "café", "x", "[MASK]", "zzzqqq"]
    mlm.learn_pieces(words)
    unk = mlm.tokenizer.unk_token_id
    for w in words:
        ids = mlm.tokenizer(w, add_special_tokens=False)["input_ids"]
        assert mlm.is_single_piece(w) == (len(ids) == 1 and ids[0] != unk)


def _masked_fill_forward(mlm, copies):
    """Candidates as computed before the bias row: masked_fill over the vocabulary."""
    out = []
    for c in copies:
        ids = torch.tensor([c.input_ids])
        with torch.inference_mode():
            hidden = mlm.model.base_model(
                input_ids=ids, token_type_ids=torch.tensor([c.type_ids])
            ).last_hidden_state
            logits = mlm.head(hidden[0, c.positions]).float()
            logits = logits.masked_fill(~mlm._valid, float("-inf"))
            for r, w in enumerate(c.word_ids):
                if w >= 0:
                    logits[r, w] = float("-inf")
            scores, idx = torch.topk(logits, mlm.top_k + _EXTRA, dim=1)
        rows = []
        for srow, irow in zip(scores.tolist(), idx.tolist(), strict=True):
            ranked = sorted(
                (
                    (round(s, _SCORE_DECIMALS), i)
                    for s, i in zip(srow, irow, strict=True)
                    if s != float("-inf")
                ),
                key=lambda x: (-x[0], x[1]),
            )[: mlm.top_k]
            toks = mlm.tokenizer.convert_ids_to_tokens([i for _, i in ranked])
            rows.append([(t, s) for t, (s, _) in zip(toks, ranked, strict=True)])
        out.append(rows)
    return out


def _copies(mlm):
    from augment.candidates.masking import MaskQuery

    queries = [
        MaskQuery(t, m.start(), m.end())
        for t in TEXTS[:2]
        for m in __import__("re").finditer(r"[a-z]{3,}", t)
    ]
    return mlm.masking.copies(queries)


def test_bias_row_masks_as_masked_fill(mlm):
    copies = _copies(mlm)
    assert len(copies) > 5
    assert mlm.forward(copies) == _masked_fill_forward(mlm, copies)


def test_an_infinite_logit_at_a_refused_id_is_still_refused(mlm, monkeypatch):
    """+inf plus the bias's -inf is NaN, which topk would rank first: masked as before."""
    refused = int(torch.nonzero(~mlm._valid)[0])
    head = mlm.head

    def inf_head(hidden):
        logits = head(hidden)
        logits[:, refused] = float("inf")
        return logits

    monkeypatch.setattr(mlm, "head", inf_head)
    copies = _copies(mlm)
    got = mlm.forward(copies)
    assert got == _masked_fill_forward(mlm, copies)
    refused_token = mlm.tokenizer.convert_ids_to_tokens(refused)
    assert all(refused_token not in [t for t, _ in row] for rows in got for row in rows)


def test_cut_vocabulary_projection_gives_the_full_projections_candidates(mlm, monkeypatch):
    """A BERT head projects onto the ids that may be proposed only: the same candidates and
    scores as the projection onto the whole vocabulary plus the -inf bias row."""
    assert mlm._valid_projection() is not None
    copies = _copies(mlm)
    cut = mlm.forward(copies)
    monkeypatch.setattr(mlm, "_cut_projection", False)
    assert mlm._valid_projection() is None
    assert mlm.forward(copies) == cut
