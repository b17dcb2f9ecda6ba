"""Held-out masked-token accuracy (top-1 / top-10) of a masked-LM, with seed-fixed masking."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def logits_at(
    model: PreTrainedModel, batch: dict[str, torch.Tensor], select: torch.Tensor
) -> torch.Tensor:
    """MLM logits at the selected positions only: for BERT the vocabulary head runs on those
    positions alone, which saves most of its cost (15% of tokens are masked)."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    bert, head = getattr(model, "bert", None), getattr(model, "cls", None)
    if bert is not None and head is not None:
        hidden = bert(**inputs).last_hidden_state
        return head(hidden[select])
    return model(**inputs).logits[select]


def mask_for_eval(
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    max_length: int,
    probability: float = 0.15,
    seed: int = 0,
) -> list[tuple[list[int], list[int]]]:
    """(masked input ids, labels with -100 where not masked) per sentence; the same seed and
    sentences always mask the same tokens, so before/after figures compare like with like."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    enc = tokenizer(texts, truncation=True, max_length=max_length, return_special_tokens_mask=True)
    out = []
    for ids, special in zip(enc["input_ids"], enc["special_tokens_mask"], strict=True):
        draw = torch.rand(len(ids), generator=gen) < probability
        masked, labels = list(ids), [-100] * len(ids)
        for j, hit in enumerate(draw.tolist()):
            if hit and not special[j]:
                labels[j], masked[j] = ids[j], tokenizer.mask_token_id
        out.append((masked, labels))
    return out


def masked_token_accuracy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    token_types: list[int] | None = None,
    max_length: int = 64,
    batch_size: int = 64,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Top-1 / top-10 accuracy at 15% randomly masked tokens of `texts` (every mask is [MASK])."""
    import torch

    examples = mask_for_eval(tokenizer, texts, max_length, seed=seed)
    types = token_types or [0] * len(texts)
    hit1 = hit10 = total = 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            attn = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, (x, y) in enumerate(chunk):
                ids[i, : len(x)], labels[i, : len(y)], attn[i, : len(x)] = (
                    torch.tensor(x),
                    torch.tensor(y),
                    1,
                )
            tt = attn * torch.tensor(types[start : start + len(chunk)]).unsqueeze(1)
            select = labels != -100
            if not select.any():
                continue
            batch = {"input_ids": ids, "attention_mask": attn, "token_type_ids": tt}
            logits = logits_at(
                model, {k: v.to(device) for k, v in batch.items()}, select.to(device)
            )
            gold = labels[select].to(device)
            top = logits.topk(10, dim=-1).indices
            hit1 += int((top[:, 0] == gold).sum())
            hit10 += int((top == gold.unsqueeze(1)).any(dim=1).sum())
            total += int(gold.numel())
    model.train(was_training)
    return {
        "top1": round(hit1 / total, 4) if total else 0.0,
        "top10": round(hit10 / total, 4) if total else 0.0,
        "masked_tokens": total,
        "sentences": len(texts),
    }
