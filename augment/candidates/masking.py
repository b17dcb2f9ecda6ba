"""Masked copies of texts for the masked-LM, and their packing into forward passes.

Exact mode: one copy per query, its word masked. Fast mode: the single-token words of one
(text, label) share copies, several non-adjacent masks each (at most `mask_rate` of the tokens),
each copy cut to a `fast_max_length` window around its masks. Either way a copy of a
label-conditional model's input carries the label's token type (`conditioning.py`). `pack` puts
copies of similar length into forward passes of at most `batch_tokens` padded tokens.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Any

from augment.candidates.conditioning import token_type_for

_LENGTH_SPREAD = 1.15


@dataclass(frozen=True)
class MaskQuery:
    """Mask `text[start:end]` (one word) and ask the model for replacements."""

    text: str
    start: int
    end: int
    label: str | None = None


@dataclass(frozen=True)
class Copy:
    """One masked input: token ids, mask positions, the masked word ids, and the indices of the
    queries its masks answer."""

    input_ids: list[int]
    type_ids: list[int]
    positions: list[int]
    word_ids: list[int]
    queries: list[int]

    @property
    def key(self) -> tuple:
        return (tuple(self.input_ids), tuple(self.type_ids), tuple(self.positions))


@dataclass(frozen=True)
class Masking:
    """How queries become masked copies: a fast tokenizer and the settings that shape copies."""

    tokenizer: Any
    mode: str = "exact"  # "exact" or "fast"
    max_length: int = 128
    fast_max_length: int = 64
    mask_rate: float = 0.2
    context: str = "masked"  # or "with_original": the unmasked text as a second segment
    labels: list[str] | None = None  # a label-conditional model's labels

    @cached_property
    def special_ids(self) -> tuple[int, int, int]:
        """The tokenizer's [CLS], [SEP] and [MASK] ids (read once: each read is a lookup)."""
        tok = self.tokenizer
        return tok.cls_token_id, tok.sep_token_id, tok.mask_token_id

    def type_id_for(self, label: str | None) -> int:
        """Token type of a record's label in a conditional model; 0 = unconditional."""
        return token_type_for(label, self.labels) if self.labels else 0

    def copies(self, queries: Sequence[MaskQuery]) -> list[Copy]:
        """The masked copies that answer `queries`: one per query in exact mode; in fast mode
        the queries of one (text, label) share copies."""
        tok = self.tokenizer
        texts = list(dict.fromkeys(q.text for q in queries))
        by_text = dict(zip(texts, encode(tok, texts), strict=True))
        starts = {t: _starts(offs) for t, (_, offs) in by_text.items()}
        spans = [_span(by_text[q.text][1], starts[q.text], q.start, q.end) for q in queries]
        groups: list[list[int]] = []
        if self.mode == "fast":
            together: dict[tuple[str, str | None], list[int]] = {}
            for i, (q, span) in enumerate(zip(queries, spans, strict=True)):
                if span is not None and span[1] - span[0] == 1:
                    together.setdefault((q.text, q.label), []).append(i)
                else:
                    groups.append([i])
            for (text, _), members in together.items():
                groups += self._group(members, spans, len(by_text[text][0]))
        else:
            groups = [[i] for i in range(len(queries))]
        out = []
        while groups:
            members = groups.pop()
            q0 = queries[members[0]]
            ids, _ = by_text[q0.text]
            copy = self._copy(q0, ids, [(i, spans[i], queries[i]) for i in members])
            out.append(copy)
            # a mask the window could not hold gets a copy of its own
            groups += [[i] for i in members if i not in copy.queries]
        return out[::-1]

    def _group(self, members: list[int], spans, n_tokens: int) -> list[list[int]]:
        """Split one text's single-token words into copies: words far apart go to different
        blocks (each fits the fast window); inside a block, words are dealt round-robin to as
        few copies as keep at most `mask_rate` of the tokens masked and no two masks side by
        side."""
        members = sorted(members, key=lambda i: spans[i][0])
        reach = max(1, self.fast_max_length // 2)
        blocks: list[list[int]] = []
        for i in members:
            if blocks and spans[i][0] - spans[blocks[-1][0]][0] < reach:
                blocks[-1].append(i)
            else:
                blocks.append([i])
        groups = []
        for block in blocks:
            if len(block) == 1:
                groups.append(block)
                continue
            width = min(n_tokens, self.fast_max_length)
            per_copy = max(1, int(self.mask_rate * width))
            k = -(-len(block) // per_copy)
            if k == 1 and any(spans[b][0] - spans[a][0] < 2 for a, b in pairwise(block)):
                k = 2  # dealt round-robin to k >= 2 copies, neighbours never share a copy
            groups += [block[j::k] for j in range(k) if block[j::k]]
        return groups

    def _copy(self, q0: MaskQuery, ids: list[int], members) -> Copy:
        """One masked copy of q0's text, with every member's word masked."""
        tok = self.tokenizer
        cls_id, sep_id, mask_id = self.special_ids
        if len(members) == 1 and members[0][1] is None:
            # the word does not align with token boundaries: tokenise around it
            q = members[0][2]
            left = tok(q.text[: q.start], add_special_tokens=False)["input_ids"]
            right = tok(q.text[q.end :], add_special_tokens=False)["input_ids"]
            a, positions, word_ids = left + [mask_id] + right, [len(left)], [-1]
        elif len(members) == 1:
            lo, hi = members[0][1]
            a = ids[:lo] + [mask_id] + ids[hi:]
            positions, word_ids = [lo], [ids[lo] if hi - lo == 1 else -1]
        else:  # fast mode: single-token words, masked in place
            a = list(ids)
            positions = [span[0] for _, span, _ in members]
            word_ids = [ids[p] for p in positions]
            for p in positions:
                a[p] = mask_id
        b = ids if self.context == "with_original" else None
        limit = (
            self.max_length if self.mode == "exact" else min(self.max_length, self.fast_max_length)
        )
        budget = limit - (3 if b is not None else 2)
        centre = (positions[0] + positions[-1]) // 2
        if b is not None and len(a) + len(b) > budget:
            half = budget // 2
            a, moved = _window(a, centre, max(half, budget - len(b)))
            b, _ = _window(b, min(centre, len(b) - 1), budget - len(a))
        else:
            a, moved = _window(a, centre, budget)
        positions = [p - (centre - moved) for p in positions]
        keep = [j for j, p in enumerate(positions) if 0 <= p < len(a)]
        input_ids = [cls_id] + a + [sep_id]
        types = [self.type_id_for(q0.label)] * len(input_ids)
        if b is not None:
            input_ids += b + [sep_id]
            types += [1] * (len(b) + 1)
        return Copy(
            input_ids=input_ids,
            type_ids=types,
            positions=[positions[j] + 1 for j in keep],
            word_ids=[word_ids[j] for j in keep],
            queries=[members[j][0] for j in keep],
        )


def encode(tokenizer, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """Token ids and character offsets of each text, no special tokens: what
    `tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)` gives, read from the
    fast tokenizer's backend without the wrapper's per-text conversion to Python dicts."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.truncation is not None or backend.padding is not None:
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        return list(zip(enc["input_ids"], enc["offset_mapping"], strict=True))
    return [(e.ids, e.offsets) for e in backend.encode_batch(texts, add_special_tokens=False)]


def pack(groups: Sequence[Sequence[Copy]], batch_tokens: int) -> list[list[Sequence[Copy]]]:
    """Forward passes over groups of identical copies, in the order given (sorted by length):
    at most `batch_tokens` padded tokens each, and lengths within 15% (+2) of the pass's
    shortest, so that padding stays under about a tenth of the tokens computed."""
    chunks: list[list[Sequence[Copy]]] = []
    cur: list[Sequence[Copy]] = []
    for same in groups:
        length = len(same[0].input_ids)
        if cur and (
            (len(cur) + 1) * length > batch_tokens
            or length > len(cur[0][0].input_ids) * _LENGTH_SPREAD + 2
        ):
            chunks.append(cur)
            cur = []
        cur.append(same)
    if cur:
        chunks.append(cur)
    return chunks


def _span(
    offs: list[tuple[int, int]], starts: list[int] | None, start: int, end: int
) -> tuple[int, int] | None:
    """The tokens that make up exactly the characters start..end, or None when the word does not
    align with token boundaries. Only tokens starting inside the word can be in it: when the
    offsets are in text order (`starts`, their start characters) those are found by bisection."""
    lo, hi = (bisect_left(starts, start), bisect_left(starts, end)) if starts else (0, len(offs))
    inside = [k for k in range(lo, hi) if offs[k][0] >= start and offs[k][0] < offs[k][1] <= end]
    if inside and offs[inside[0]][0] == start and offs[inside[-1]][1] == end:
        return inside[0], inside[-1] + 1
    return None


def _starts(offs: list[tuple[int, int]]) -> list[int] | None:
    """The start characters of the tokens, when they are in text order (else None)."""
    starts = [s for s, _ in offs]
    return starts if all(a <= b for a, b in pairwise(starts)) else None


def _window(ids: list[int], pos: int, budget: int) -> tuple[list[int], int]:
    """At most `budget` ids centred on `pos` (the context window for long inputs)."""
    if len(ids) <= budget:
        return ids, pos
    lo = max(0, min(pos - budget // 2, len(ids) - budget))
    return ids[lo : lo + budget], pos - lo
