"""The rows of the throughput table: the methods' names, a measured row and a skipped one."""

from __future__ import annotations

OFFICIAL = "official TinyBERT"
EXACT = "kdaug exact"
FAST = "kdaug fast"
FLOOR = "floor (MLM passes only)"


def first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def row(model: str, method: str, sentences: int, seconds: float, variants: int, **extra) -> dict:
    return {
        "model": model,
        "method": method,
        "status": "ok",
        "sentences": sentences,
        "seconds": round(seconds, 3),
        "sentences_per_s": sentences / seconds if seconds > 0 else None,
        "variants": variants,
        "variants_per_s": variants / seconds if seconds > 0 else None,
        **extra,
    }


def skipped(model: str, method: str, reason: str) -> dict:
    print(f"  {method} ({model}): skipped: {reason}", flush=True)
    return {"model": model, "method": method, "status": "skipped", "reason": reason}
