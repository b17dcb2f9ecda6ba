"""benchmarks.ablation.stats on known inputs: spreads, paired t intervals (constant
differences, one distribution, shuffled arm labels, a hand-computed example, one seed) and the
teacher's agreement with inherited labels."""

from __future__ import annotations

import math
import random

import pytest

from benchmarks.ablation.stats import (
    delta_sentence,
    label_agreement,
    paired_difference,
    pearson,
    score_correlation,
    summarize,
)


def test_summarize_gives_mean_and_sample_std() -> None:
    s = summarize([70.0, 72.0, 74.0])
    assert s == {"n": 3, "mean": 72.0, "std": 2.0}  # n - 1 in the denominator
    assert summarize([71.5]) == {"n": 1, "mean": 71.5, "std": None}
    with pytest.raises(ValueError):
        summarize([])


def test_a_constant_difference_gives_a_zero_width_interval_at_it() -> None:
    noda = {1: 73.1, 2: 74.6, 3: 72.2, 4: 75.0}
    da = {s: v + 5.5 for s, v in noda.items()}
    d = paired_difference(da, noda)
    assert d["mean"] == pytest.approx(5.5)
    assert d["ci_low"] == pytest.approx(5.5) and d["ci_high"] == pytest.approx(5.5)
    assert d["excludes_zero"] is True and d["seeds"] == [1, 2, 3, 4]
    assert "the interval excludes 0" in delta_sentence("da-exact - noda", d)


def test_hand_computed_example() -> None:
    # differences 1, 2, 3: mean 2, sd 1, se 1/sqrt(3), t(0.975, 2) = 4.302653
    d = paired_difference({1: 11.0, 2: 12.0, 3: 13.0}, {1: 10.0, 2: 10.0, 3: 10.0})
    half = 4.302653 / math.sqrt(3)
    assert d["differences"] == [1.0, 2.0, 3.0] and d["mean"] == 2.0
    assert d["ci_low"] == pytest.approx(2 - half, abs=1e-5)  # -0.484138
    assert d["ci_high"] == pytest.approx(2 + half, abs=1e-5)  # 4.484138
    assert d["excludes_zero"] is False
    assert delta_sentence("x", d) == (
        "x: +2.0 points, 95% interval [-0.5, +4.5] over 3 seeds: the interval does not exclude 0."
    )
    # pairing matters: with five seeds the same mean and spread of differences is significant
    d5 = paired_difference(
        {s: 10.0 + x for s, x in enumerate([1, 2, 3, 1, 3])}, dict.fromkeys(range(5), 10.0)
    )
    assert d5["excludes_zero"] is True and d5["ci_low"] > 0


def test_arms_from_one_distribution_give_intervals_that_hold_zero() -> None:
    """Both arms drawn from one distribution: about 95% of the intervals contain 0 (the
    interval's coverage), and a run with the arm labels shuffled between the two arms gives a
    mean difference near 0."""
    rng = random.Random(0)
    trials, held = 2000, 0
    for _ in range(trials):
        da = {s: rng.gauss(75, 1.5) for s in range(5)}
        noda = {s: rng.gauss(75, 1.5) for s in range(5)}
        d = paired_difference(da, noda)
        held += d["ci_low"] <= 0 <= d["ci_high"]
    assert 0.935 <= held / trials <= 0.965

    # shuffled labels: real per-seed scores of a DA arm 6 points above noda, the arm of each
    # seed's two scores assigned by a coin: the differences average out and 0 stays inside
    da = [79.4, 79.1, 79.6, 79.0, 79.3, 79.5, 79.2, 79.8]
    noda = [73.3, 73.0, 73.6, 73.1, 73.5, 72.9, 73.4, 73.2]
    pairs = [(a, b) if i % 2 else (b, a) for i, (a, b) in enumerate(zip(da, noda, strict=True))]
    d = paired_difference(
        dict(enumerate(p[0] for p in pairs)), dict(enumerate(p[1] for p in pairs))
    )
    assert d["ci_low"] < 0 < d["ci_high"] and d["excludes_zero"] is False
    assert abs(d["mean"]) < 1.0


def test_one_seed_has_no_interval_and_says_so() -> None:
    d = paired_difference({1: 80.0, 2: 81.0}, {1: 75.0, 3: 70.0})  # one seed in common
    assert d["seeds"] == [1] and d["mean"] == 5.0
    assert d["ci_low"] is None and d["ci_high"] is None and d["excludes_zero"] is None
    assert delta_sentence("da-exact - noda", d) == (
        "da-exact - noda: +5.0 points from one seed: no interval (run more --seeds)."
    )
    with pytest.raises(ValueError, match="no seed"):
        paired_difference({1: 1.0}, {2: 1.0})


def test_label_agreement_splits_originals_and_variants() -> None:
    labels = [1, 0, 1, 1, 0, 0]
    predictions = [1, 0, 0, 1, 1, 0]
    original = [True, True, False, False, False, False]
    a = label_agreement(labels, predictions, original)
    assert a["measure"] == "agreement" and a["rows"] == 6
    assert a["all"] == pytest.approx(100 * 4 / 6)
    assert a["originals"] == 100.0 and a["original_rows"] == 2
    assert a["variants"] == 50.0 and a["variant_rows"] == 4
    plain = label_agreement([1, 0], [1, 1])
    assert plain == {"measure": "agreement", "rows": 2, "all": 50.0}
    with pytest.raises(ValueError):
        label_agreement([1], [1, 0])


def test_regression_agreement_is_pearson() -> None:
    assert pearson([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == pytest.approx(100.0)
    assert pearson([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-100.0)
    assert pearson([1.0, 2.0], [5.0, 5.0]) is None and pearson([1.0], [1.0]) is None
    c = score_correlation(
        [0.0, 1.0, 2.0, 0.0, 1.0, 2.0],
        [0.1, 1.1, 1.9, 2.0, 1.0, 0.0],
        [True, True, True, False, False, False],
    )
    assert (
        c["measure"] == "pearson" and c["originals"] > 99 and c["variants"] == pytest.approx(-100.0)
    )
