"""What a request costs the model, and the masked-LM's forward passes cut into slices.

In exact mode (the paper's method) every eligible word of a text gets a masked copy of the text,
so a text's masked-LM work grows with its words times its length in tokens (a copy is cut to
`mlm_max_length` tokens around its mask): 500 words in one text are several times the work of
the same words as 50 short texts. The estimate below charges that, erring high (every word
counted as eligible), so the budget of a request and the scheduling of its records follow what
they really cost, not the words alone.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from augment.candidates.masking import pack
from augment.config import SampleParams
from augment.records import Record
from service.batching import WORD, pause_point


def copy_work(words: int, tokens: int, masking: Any) -> int:
    """Tokens the masked-LM encodes for one text of `words` words and `tokens` word pieces,
    erring high: exact mode, one copy per word; fast mode, twice the copies that its mask rate
    and its windows (one block of copies per half window) need; each copy as long as the text
    (with its context) up to the copy window."""
    if not words:
        return 0
    length = tokens + 2
    if masking.context == "with_original":
        length = 2 * tokens + 3
    if masking.mode == "fast":
        window = min(masking.fast_max_length, masking.max_length)
        per_copy = max(1, int(masking.mask_rate * min(tokens, window)))
        blocks = math.ceil(tokens / max(1, window // 2)) + 1
        return min(words, 2 * (math.ceil(words / per_copy) + blocks)) * min(length, window)
    return words * min(length, masking.max_length)


class WorkEstimate:
    """Estimated model work of records: the masked-LM tokens of their augmented fields
    (`copy_work`), plus one unit per word (tagging, word vectors, sampling). Counts word pieces
    with its own copy of the MLM's tokenizer (the model thread uses the original meanwhile)."""

    def __init__(self, mlm: Any | None = None) -> None:
        self.tokenizer = copy.deepcopy(mlm.tokenizer) if mlm is not None else None
        self.masking = mlm.masking if mlm is not None else None

    def __call__(self, records: Sequence[Record], params: SampleParams) -> list[int]:
        fields = []
        for rec in records:
            texts = []
            if params.fields in ("a", "both"):
                texts.append(rec.text_a)
            if params.fields in ("b", "both") and rec.text_b:
                texts.append(rec.text_b)
            fields.append(texts)
        use_mlm = self.tokenizer is not None and "mlm" in params.sources
        flat = [t for texts in fields for t in texts]
        pieces = [0] * len(flat)
        if use_mlm and flat:
            ids = self.tokenizer(flat, add_special_tokens=False)["input_ids"]
            pieces = [len(i) for i in ids]
        out, at = [], 0
        for texts in fields:
            work = 0
            for text in texts:
                words = len(WORD.findall(text))
                work += words + (copy_work(words, pieces[at], self.masking) if use_mlm else 0)
                at += 1
            out.append(work)
        return out


def slice_forward_passes(mlm: Any, tokens: int) -> None:
    """Cut the masked-LM's forward passes to at most `tokens` padded tokens each, with a
    `pause_point` before each, where the service runs light requests that are waiting. The
    candidates do not change: they do not depend on the batch a copy is computed in."""
    whole = type(mlm).forward.__get__(mlm)  # the class's own pass, even if sliced before

    def forward(copies: Sequence[Any]) -> list:
        out: list = []
        for part in pack([[c] for c in copies], tokens):
            pause_point()
            out += whole([same[0] for same in part])
        return out

    mlm.forward = forward
