"""What the variants are worth beside how fast they came: POS agreement, candidates per word,
where the replacements came from, and how much fast mode's candidates overlap exact mode's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from benchmarks.pos_agreement import agreement


def quality(aug, records: list, variants: list, mode: str) -> dict:
    """POS agreement of the replacements (benchmarks.pos_agreement's measure), candidates per
    eligible word after filtering, and where the replacements came from."""
    from augment.config import SampleParams

    agree, total, per = agreement(aug, records, variants)
    slots = aug.plan(records, [SampleParams.from_config(aug.config)] * len(records))
    words = [s for rs in slots for s in rs]
    sources = Counter(r.source for vs in variants for v in vs for r in v.replacements)
    reps = sum(sources.values())
    return {
        "mode": mode,
        "sentences": len(records),
        "pos_agreement": agree / max(total, 1),
        "pos_agreement_by_source": {k: a / max(t, 1) for k, (a, t) in per.items()},
        "replacements": total,
        "variants_per_sentence": sum(len(v) - 1 for v in variants) / max(1, len(records)),
        "eligible_words": len(words),
        "candidates_per_word": sum(len(s.candidates) for s in words) / max(1, len(words)),
        "words_without_candidates": sum(not s.candidates for s in words) / max(1, len(words)),
        "replacement_sources": {k: v / max(1, reps) for k, v in sorted(sources.items())},
        "_slots": slots,
    }


def slot_overlap(exact_slots: list, fast_slots: list) -> float | None:
    """Mean share of each word's filtered exact-mode candidates that fast mode also has."""
    shares = []
    for es, fs in zip(exact_slots, fast_slots, strict=True):
        fast = {(s.field, s.word.start): {c[0] for c in s.candidates} for s in fs}
        for s in es:
            if s.candidates:
                got = fast.get((s.field, s.word.start), set())
                shares.append(len({c[0] for c in s.candidates} & got) / len(s.candidates))
    return sum(shares) / len(shares) if shares else None


def topk_overlap(exact_mlm, fast_mlm, queries: Sequence, top_k: int) -> float | None:
    """Mean |exact top-k ∩ fast top-k| / k over the same masked-LM queries."""
    uq = list(dict.fromkeys(queries))
    if not uq:
        return None
    ex, fa = exact_mlm.predict(uq), fast_mlm.predict(uq)
    shares = [
        len({w for w, _ in e} & {w for w, _ in f}) / max(1, min(top_k, len(e)))
        for e, f in zip(ex, fa, strict=True)
        if e
    ]
    return sum(shares) / len(shares) if shares else None
