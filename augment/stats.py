"""The counts of augmentation: summable, so that a shard's counts are the difference of two
snapshots of an Augmenter's and a build's are the sum of its shards'."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

# The built-in candidate sources, always listed in stats.json; a registered source of another
# name is counted under its own name after them.
WORD_SOURCES = ("mlm", "vectors", "wordnet", "none")  # "none": no source gave a candidate
REPLACEMENT_SOURCES = ("mlm", "vectors", "wordnet")
TOTALS = ("words_without_candidates", "candidates_pos_rejected", "label_fallbacks")


@dataclass
class AugmentStats:
    """What an Augmenter counted: records and variants out, eligible words and replacements by
    candidate source, words left without a usable candidate, candidates the POS filter dropped,
    and records whose label had no conditioning token."""

    records: int = 0
    variants: int = 0
    words: Counter[str] = field(default_factory=Counter)
    replacements: Counter[str] = field(default_factory=Counter)
    words_without_candidates: int = 0
    candidates_pos_rejected: int = 0
    label_fallbacks: int = 0

    def _combine(self, other: AugmentStats, sign: int) -> AugmentStats:
        out = AugmentStats()
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, Counter):
                merged = Counter(a)
                for k, v in b.items():
                    merged[k] += sign * v
                setattr(out, f.name, merged)
            else:
                setattr(out, f.name, a + sign * b)
        return out

    def __add__(self, other: AugmentStats) -> AugmentStats:
        return self._combine(other, 1)

    def __sub__(self, other: AugmentStats) -> AugmentStats:
        return self._combine(other, -1)

    def counts(self) -> dict[str, int]:
        """Every count under its flat name (records, variants, words_mlm, replacements_vectors,
        label_fallbacks, ...)."""
        flat = {"records": self.records, "variants": self.variants}
        flat |= {f"words_{s}": n for s, n in self.words.items()}
        flat |= {f"replacements_{s}": n for s, n in self.replacements.items()}
        return flat | {name: getattr(self, name) for name in TOTALS}

    def __getitem__(self, name: str) -> int:
        return self.counts().get(name, 0)

    def to_entry(self) -> dict[str, int]:
        """The `stats` of a shard's manifest entry: the counts that are not 0, records and
        variants aside (the entry holds them itself)."""
        return {k: v for k, v in self.counts().items() if v and k not in ("records", "variants")}

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> AugmentStats:
        """The counts of a shard's manifest entry (see `to_entry`)."""
        flat = entry["stats"]
        return cls(
            records=entry["records"],
            variants=entry["variants"],
            words=_by_source(flat, "words_"),
            replacements=_by_source(flat, "replacements_"),
            **{name: flat.get(name, 0) for name in TOTALS},
        )

    def to_dict(self) -> dict[str, Any]:
        """These counts as stats.json holds them."""
        return {
            "records": self.records,
            "variants_out": self.variants,
            "replacements": _all_sources(self.replacements, REPLACEMENT_SOURCES),
            "words": _all_sources(self.words, WORD_SOURCES),
            **{name: getattr(self, name) for name in TOTALS},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AugmentStats:
        """The counts of a stats.json (see `to_dict`)."""
        return cls(
            records=d["records"],
            variants=d["variants_out"],
            words=Counter(d["words"]),
            replacements=Counter(d["replacements"]),
            **{name: d[name] for name in TOTALS},
        )


def _by_source(flat: dict[str, int], prefix: str) -> Counter[str]:
    """The counts of `flat` named `prefix` + a source name, by source name."""
    return Counter(
        {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix) and k not in TOTALS}
    )


def _all_sources(counts: Counter[str], builtin: tuple[str, ...]) -> dict[str, int]:
    """Every built-in source (0 when absent), then any other source counted, by name."""
    return {s: counts[s] for s in builtin} | {
        s: counts[s] for s in sorted(counts) if s not in builtin
    }
