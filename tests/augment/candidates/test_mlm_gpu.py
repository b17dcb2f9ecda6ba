"""Masked-LM candidates and the Augmenter on CUDA, where the forward runs under bf16 autocast
(`pytest -m gpu` on a GPU machine; skipped without CUDA)."""

from __future__ import annotations

import pytest
import torch

from augment import AugmentConfig, Augmenter, Record
from augment.candidates.masking import MaskQuery
from augment.candidates.mlm import MaskedLMCandidates

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

TEXTS = [
    "She opened the door and walked into the kitchen.",
    "The film was long, but the actors were wonderful.",
    "a quiet , thoughtful drama with two excellent performances .",
]


def queries() -> list[MaskQuery]:
    out = []
    for text in TEXTS:
        at = 0
        for word in text.replace(",", " ").replace(".", " ").split():
            start = text.index(word, at)
            at = start + len(word)
            if word.isalpha() and len(word) > 2:
                out.append(MaskQuery(text, start, at))
    return out


def test_forward_on_cuda_runs_in_bf16_and_proposes_other_words(tiny_mlm_dir) -> None:
    mlm = MaskedLMCandidates(str(tiny_mlm_dir), device="cuda", top_k=10)
    assert mlm.device.startswith("cuda")
    dtypes = []
    hook = mlm.model.base_model.encoder.register_forward_hook(
        lambda _m, _i, out: dtypes.append(out.last_hidden_state.dtype)
    )
    qs = queries()
    got = mlm.predict(qs)
    hook.remove()
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert len(got) == len(qs)
    for q, cands in zip(qs, got, strict=True):
        assert len(cands) == 10
        words = [w for w, _ in cands]
        assert all(w.isalpha() for w in words) and q.text[q.start : q.end].lower() not in words
        scores = [s for _, s in cands]
        assert scores == sorted(scores, reverse=True)


def test_cuda_candidates_do_not_depend_on_batch_tokens(tiny_mlm_dir) -> None:
    """The documented promise (same candidates whatever the padding or batch a query was
    computed in) under bf16 on the GPU."""
    qs = queries()
    small = MaskedLMCandidates(str(tiny_mlm_dir), device="cuda", batch_tokens=256, cache_size=0)
    large = MaskedLMCandidates(str(tiny_mlm_dir), device="cuda", batch_tokens=8192, cache_size=0)
    assert small.predict(qs) == large.predict(qs)
    assert small.forward_passes > large.forward_passes


def test_augmenter_on_cuda_is_repeatable_and_independent_of_batch_size(tiny_mlm_dir) -> None:
    cfg = AugmentConfig.build(mlm=str(tiny_mlm_dir), n=4, device="cuda")
    aug = Augmenter(cfg)
    assert aug.mlm.device.startswith("cuda")
    records = [Record(str(i), t) for i, t in enumerate(TEXTS)]
    whole = aug.augment(records)
    one_by_one = [aug.augment([r])[0] for r in records]
    again = Augmenter(cfg).augment(records)
    assert whole == one_by_one == again
    assert any(len(v) > 1 for v in whole)
