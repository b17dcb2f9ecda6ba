"""The ablation's statistics: each arm's mean and spread over seeds, each DA arm minus noDA paired
by seed with a 95% t interval and the sentence saying whether it excludes 0, and how often the
teacher agrees with the labels the augmented rows inherited. Pure functions, no torch."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import fmean, stdev
from typing import Any

LEVEL = 0.95


def summarize(scores: Sequence[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (n - 1) of per-seed scores; std is None for one seed."""
    if not scores:
        raise ValueError("no scores to summarize")
    values = [float(s) for s in scores]
    return {
        "n": len(values),
        "mean": fmean(values),
        "std": stdev(values) if len(values) > 1 else None,
    }


def paired_difference(
    da: Mapping[int, float], noda: Mapping[int, float], level: float = LEVEL
) -> dict[str, Any]:
    """DA - noDA over the seeds both arms ran: the mean of the per-seed differences and a t
    interval on them (n - 1 degrees of freedom). With one common seed there is no interval."""
    from scipy.stats import t

    seeds = sorted(set(da) & set(noda))
    if not seeds:
        raise ValueError("the two arms share no seed")
    diffs = [float(da[s]) - float(noda[s]) for s in seeds]
    mean = fmean(diffs)
    out: dict[str, Any] = {
        "seeds": seeds,
        "differences": diffs,
        "mean": mean,
        "ci_low": None,
        "ci_high": None,
        "level": level,
        "excludes_zero": None,
    }
    if len(diffs) > 1:
        half = float(t.ppf((1 + level) / 2, len(diffs) - 1)) * stdev(diffs) / math.sqrt(len(diffs))
        out["ci_low"], out["ci_high"] = mean - half, mean + half
        out["excludes_zero"] = out["ci_low"] > 0 or out["ci_high"] < 0
    return out


def delta_sentence(label: str, delta: Mapping[str, Any]) -> str:
    """One sentence for the table: the difference, its interval, and whether that excludes 0."""
    n, mean = len(delta["seeds"]), delta["mean"]
    if delta["ci_low"] is None:
        return f"{label}: {mean:+.1f} points from one seed: no interval (run more --seeds)."
    verdict = "excludes 0" if delta["excludes_zero"] else "does not exclude 0"
    pct = round(100 * delta["level"])
    return (
        f"{label}: {mean:+.1f} points, {pct}% interval [{delta['ci_low']:+.1f}, "
        f"{delta['ci_high']:+.1f}] over {n} seeds: the interval {verdict}."
    )


def label_agreement(
    labels: Sequence[int], predictions: Sequence[int], original: Sequence[bool] | None = None
) -> dict[str, Any]:
    """How often the teacher's class is the inherited label, in percent: over all rows, and
    over originals and variants apart when `original` says which rows are which."""
    if len(labels) != len(predictions) or (original is not None and len(original) != len(labels)):
        raise ValueError("labels, predictions and original must be equally long")

    def rate(rows: list[int]) -> float | None:
        if not rows:
            return None
        return 100 * sum(labels[i] == predictions[i] for i in rows) / len(rows)

    return _split(len(labels), original, rate, "agreement")


def score_correlation(
    scores: Sequence[float], predictions: Sequence[float], original: Sequence[bool] | None = None
) -> dict[str, Any]:
    """Regression tasks: Pearson correlation (x 100) of the teacher's score with the inherited
    score, over all rows and over originals and variants apart."""
    if len(scores) != len(predictions) or (original is not None and len(original) != len(scores)):
        raise ValueError("scores, predictions and original must be equally long")

    def rate(rows: list[int]) -> float | None:
        return pearson([scores[i] for i in rows], [predictions[i] for i in rows])

    return _split(len(scores), original, rate, "pearson")


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson r x 100; None with fewer than two rows or a constant side."""
    if len(x) < 2:
        return None
    mx, my = fmean(x), fmean(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return 100 * sxy / math.sqrt(sxx * syy)


def _split(n: int, original: Sequence[bool] | None, rate: Any, measure: str) -> dict[str, Any]:
    every = list(range(n))
    out: dict[str, Any] = {"measure": measure, "rows": n, "all": rate(every)}
    if original is not None:
        originals = [i for i in every if original[i]]
        variants = [i for i in every if not original[i]]
        out.update(
            original_rows=len(originals),
            variant_rows=len(variants),
            originals=rate(originals),
            variants=rate(variants),
        )
    return out
