"""The sampler's batched draws are numpy's own, attempt after attempt."""

from itertools import islice

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import augment.draws as D


def _numpy(seed, highs, p, attempts):
    """The draws as the sampler made them with two numpy calls an attempt."""
    rng = np.random.Generator(np.random.PCG64(seed))
    out = []
    for _ in range(attempts):
        hit = [j for j, d in enumerate(rng.random(len(highs)).tolist()) if d < p]
        out.append((hit, rng.integers(0, np.array(highs, dtype=np.int64)).tolist()))
    return out


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**64 - 1),
    highs=st.lists(st.integers(1, 60), min_size=1, max_size=40),
    p=st.floats(0.0, 1.0),
    attempts=st.integers(1, 120),
)
def test_draws_are_numpys(seed, highs, p, attempts):
    got = list(islice(D.Draws(seed, highs, p).attempts(), attempts))
    assert got == _numpy(seed, highs, p, attempts)


def test_a_rejected_draw_hands_over_to_numpy_at_that_attempt():
    # h = 2**31 + 1 rejects about half the 32-bit draws (Lemire's threshold 2**31 - 1)
    highs = [3, 2**31 + 1, 1, 5]
    ours = D.Draws(9, highs, 0.5)
    *_, clean = ours._chunk(20)
    assert clean < 20  # the chunk saw a rejection
    ours = D.Draws(9, highs, 0.5)
    assert list(islice(ours.attempts(), 90)) == _numpy(9, highs, 0.5, 90)


def test_the_self_check_holds_here_and_can_fail(monkeypatch):
    D.exact.cache_clear()
    assert D.exact()
    real = D.Draws._chunk

    def off_by_one(self, count):
        hit, ends, picks, clean = real(self, count)
        return hit, ends, picks[:-1] + [[x + 1 for x in picks[-1]]], clean

    monkeypatch.setattr(D.Draws, "_chunk", off_by_one)
    D.exact.cache_clear()
    try:
        assert not D.exact()
        # the sampler then takes numpy's own calls: the same numbers
        assert list(islice(D.draws(4, [3, 1, 7], 0.4), 70)) == _numpy(4, [3, 1, 7], 0.4, 70)
    finally:
        D.exact.cache_clear()


def test_bounds_past_32_bits_take_numpys_calls():
    highs = [3, 2**33]  # numpy's 64-bit path, which Draws does not reproduce
    assert list(islice(D.draws(5, highs, 0.5), 40)) == _numpy(5, highs, 0.5, 40)
