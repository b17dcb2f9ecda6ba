"""Masked-LM candidates: one batched pass for every masked word of a batch of records.

Each query is one masked copy of its text (the paper's method). Copies are sorted by length and
packed into forward passes of at most `batch_tokens` padded tokens; the encoder runs once per
copy and the vocabulary projection only at the masked positions. Identical queries in a batch
(repeated texts, as MNLI premises and QQP questions are) are computed once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from augment.adapt.conditional import load_conditioning, token_type_for
from augment.errors import KdaugError
from augment.resolve import resolve_device, resolve_model

log = logging.getLogger(__name__)

_EXTRA = 8  # candidates fetched beyond top_k so that re-ranking with rounded scores is stable
_SCORE_DECIMALS = 3


@dataclass(frozen=True)
class MaskQuery:
    """Mask `text[start:end]` (one word) and ask the model for replacements."""

    text: str
    start: int
    end: int
    label: str | None = None


class MaskedLMCandidates:
    """Top-k replacement words for masked single-WordPiece words, from a Hugging Face MLM."""

    def __init__(
        self,
        name: str,
        *,
        device: str = "auto",
        top_k: int = 15,
        context: str = "masked",
        max_length: int = 128,
        batch_tokens: int = 8192,
    ) -> None:
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = resolve_model(name)
        self.device = resolve_device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForMaskedLM.from_pretrained(path)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise KdaugError(
                f"cannot load masked-LM {name!r} ({first}); pass --mlm with a local model "
                "folder, 'minilm-packaged'-based `kdaug adapt-mlm` output, or 'none'"
            ) from None
        if not getattr(self.tokenizer, "is_fast", False):
            raise KdaugError(f"masked-LM {name!r} needs a fast tokenizer (tokenizer.json)")
        if self.tokenizer.mask_token_id is None:
            raise KdaugError(f"model {name!r} has no mask token: it is not a masked-LM")
        self.model.eval().to(self.device)
        self.name = name
        self.path = path
        self.top_k = top_k
        self.max_length = min(max_length, self.tokenizer.model_max_length or max_length)
        self.batch_tokens = batch_tokens
        self.conditioning = load_conditioning(path)
        if self.conditioning and self.conditioning[1] != "token_type":
            raise KdaugError(f"{path}: unknown label conditioning {self.conditioning[1]!r}")
        self.context = context
        if self.conditioning and context == "with_original":
            log.warning("label-conditional MLM: context 'with_original' ignored, using 'masked'")
            self.context = "masked"
        self.head = getattr(self.model, "cls", None) or getattr(self.model, "lm_head", None)
        self._valid = self._valid_vocab(torch)
        self._single: dict[str, bool] = {}
        self.forward_passes = 0

    # vocabulary --------------------------------------------------------------------------
    def _valid_vocab(self, torch):
        """Token ids that may be proposed: whole alphabetic words, no ## pieces, no specials."""
        vocab = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        special = set(self.tokenizer.all_special_ids)
        ok = [
            i not in special and t.isalpha() and t.isascii() and len(t) > 1
            for i, t in enumerate(vocab)
        ]
        size = self.model.get_output_embeddings().weight.shape[0]
        ok = (ok + [False] * size)[:size]
        return torch.tensor(ok, dtype=torch.bool, device=self.device)

    def is_single_piece(self, word: str) -> bool:
        """Does `word` stay one known WordPiece (the TinyBERT rule for MLM candidates)?"""
        hit = self._single.get(word)
        if hit is None:
            ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
            hit = len(ids) == 1 and ids[0] != self.tokenizer.unk_token_id
            self._single[word] = hit
        return hit

    @property
    def labels(self) -> list[str] | None:
        return self.conditioning[0] if self.conditioning else None

    def type_id_for(self, label: str | None) -> int:
        """Token type of a record's label in a conditional model; 0 = unconditional."""
        return token_type_for(label, self.conditioning[0]) if self.conditioning else 0

    # prediction --------------------------------------------------------------------------
    def predict(self, queries: Sequence[MaskQuery]) -> list[list[tuple[str, float]]]:
        """Ranked (word, score) candidates for each query, the masked word itself excluded."""
        if not queries:
            return []
        unique: dict[MaskQuery, int] = {}
        for q in queries:
            unique.setdefault(q, len(unique))
        uq = list(unique)
        encoded = self._encode(uq)
        results: list[list[tuple[str, float]]] = [[] for _ in uq]
        order = sorted(range(len(uq)), key=lambda i: (len(encoded[i][0]), i))
        for chunk in self._chunks(order, encoded):
            for i, cands in zip(chunk, self._forward([encoded[i] for i in chunk]), strict=True):
                results[i] = cands
        return [results[unique[q]] for q in queries]

    def _encode(self, queries: list[MaskQuery]) -> list[tuple[list[int], list[int], int, int]]:
        """(input_ids, token_type_ids, mask position, original word id) per query."""
        tok = self.tokenizer
        texts = list(dict.fromkeys(q.text for q in queries))
        enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True)
        by_text = {
            t: (ids, offs)
            for t, ids, offs in zip(texts, enc["input_ids"], enc["offset_mapping"], strict=True)
        }
        cls_id, sep_id, mask_id = tok.cls_token_id, tok.sep_token_id, tok.mask_token_id
        out = []
        for q in queries:
            ids, offs = by_text[q.text]
            inside = [k for k, (s, e) in enumerate(offs) if s >= q.start and e <= q.end and e > s]
            if inside and offs[inside[0]][0] == q.start and offs[inside[-1]][1] == q.end:
                lo, hi = inside[0], inside[-1] + 1
                a = ids[:lo] + [mask_id] + ids[hi:]
                word_id = ids[lo] if hi - lo == 1 else -1
                pos = lo
            else:  # the word does not align with token boundaries: tokenise around it
                left = tok(q.text[: q.start], add_special_tokens=False)["input_ids"]
                right = tok(q.text[q.end :], add_special_tokens=False)["input_ids"]
                a, pos, word_id = left + [mask_id] + right, len(left), -1
            b = ids if self.context == "with_original" else None
            budget = self.max_length - (3 if b is not None else 2)
            if b is not None and len(a) + len(b) > budget:
                half = budget // 2
                a, pos = _window(a, pos, max(half, budget - len(b)))
                b, _ = _window(b, min(pos, len(b) - 1), budget - len(a))
            else:
                a, pos = _window(a, pos, budget)
            input_ids = [cls_id] + a + [sep_id]
            types = [self.type_id_for(q.label)] * len(input_ids)
            if b is not None:
                input_ids += b + [sep_id]
                types += [1] * (len(b) + 1)
            out.append((input_ids, types, pos + 1, word_id))
        return out

    def _chunks(self, order: list[int], encoded) -> list[list[int]]:
        chunks, cur = [], []
        for i in order:
            length = len(encoded[i][0])
            if cur and (len(cur) + 1) * length > self.batch_tokens:
                chunks.append(cur)
                cur = []
            cur.append(i)
        if cur:
            chunks.append(cur)
        return chunks

    def _forward(self, rows) -> list[list[tuple[str, float]]]:
        import torch

        width = max(len(r[0]) for r in rows)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        types = torch.zeros((len(rows), width), dtype=torch.long)
        attn = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (input_ids, type_ids, _, _) in enumerate(rows):
            ids[r, : len(input_ids)] = torch.tensor(input_ids)
            types[r, : len(type_ids)] = torch.tensor(type_ids)
            attn[r, : len(input_ids)] = 1
        positions = torch.tensor([r[2] for r in rows])
        dev = self.device
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.startswith("cuda"))
        with torch.inference_mode(), autocast:
            ids, types, attn = ids.to(dev), types.to(dev), attn.to(dev)
            if self.head is not None:
                hidden = self.model.base_model(
                    input_ids=ids, attention_mask=attn, token_type_ids=types
                ).last_hidden_state
                at_mask = hidden[torch.arange(len(rows), device=dev), positions.to(dev)]
                logits = self.head(at_mask)
            else:
                logits = self.model(input_ids=ids, attention_mask=attn, token_type_ids=types).logits
                logits = logits[torch.arange(len(rows), device=dev), positions.to(dev)]
            logits = logits.float().masked_fill(~self._valid, float("-inf"))
            word_ids = torch.tensor([r[3] for r in rows], device=dev)
            has_word = word_ids >= 0
            if has_word.any():
                rows_with = torch.nonzero(has_word).squeeze(1)
                logits[rows_with, word_ids[has_word]] = float("-inf")
            k = min(self.top_k + _EXTRA, logits.shape[1])
            scores, idx = torch.topk(logits, k, dim=1)
        self.forward_passes += 1
        scores, idx = scores.cpu().tolist(), idx.cpu().tolist()
        out = []
        for srow, irow in zip(scores, idx, strict=True):
            # Rank by score rounded to a fixed precision, ties by token id: the same candidates
            # whatever the padding or batch a query was computed in.
            ranked = sorted(
                (
                    (round(s, _SCORE_DECIMALS), i)
                    for s, i in zip(srow, irow, strict=True)
                    if s != float("-inf")
                ),
                key=lambda x: (-x[0], x[1]),
            )[: self.top_k]
            toks = self.tokenizer.convert_ids_to_tokens([i for _, i in ranked])
            out.append([(t, s) for t, (s, _) in zip(toks, ranked, strict=True)])
        return out


def _window(ids: list[int], pos: int, budget: int) -> tuple[list[int], int]:
    """At most `budget` ids centred on `pos` (the context window for long inputs)."""
    if len(ids) <= budget:
        return ids, pos
    lo = max(0, min(pos - budget // 2, len(ids) - budget))
    return ids[lo : lo + budget], pos - lo
