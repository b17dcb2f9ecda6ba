"""How the teacher's labels of `kdaug export --labels teacher` agree with the labels the variants
inherited from their originals, in the terms of the build's label codec."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from augment.io.layout import LabelCodec


@dataclass
class Agreement:
    """How often the teacher's label equals the inherited one (classification), or how far its
    score is from the inherited score (regression), over all labelled rows and over variants."""

    codec: LabelCodec
    counts: dict[str, list[float]] = field(
        default_factory=lambda: {"all": [0, 0.0], "variants": [0, 0.0]}
    )

    def add(self, inherited: Any, teacher: Any, variant: int) -> None:
        if self.codec.regression:
            a, b = self.codec.score(inherited), self.codec.score(teacher)
            hit = None if a is None or b is None else abs(a - b)
        else:
            a, b = self.codec.index(inherited), self.codec.index(teacher)
            hit = None if a is None or b is None else float(a == b)
        if hit is None:
            return
        for key in ("all", "variants") if variant > 0 else ("all",):
            self.counts[key][0] += 1
            self.counts[key][1] += hit

    def rate(self, key: str) -> float | None:
        n, total = self.counts[key]
        return total / n if n else None

    def summary(self) -> str:
        def part(key: str, what: str) -> str:
            rate = self.rate(key)
            if rate is None:
                return f"no labelled {what}"
            n = int(self.counts[key][0])
            return (
                f"{rate:.3f} over {n} {what}"
                if self.codec.regression
                else (f"{100 * rate:.1f}% of {n} {what}")
            )

        parts = f"{part('all', 'rows')}, {part('variants', 'variants')}"
        if self.codec.regression:
            return f"mean absolute difference from the inherited score {parts}"
        return f"teacher agrees with the inherited label on {parts}"
