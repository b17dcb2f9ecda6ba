"""The sampler's random draws, many attempts at a time.

Each attempt of `Augmenter._sample` draws, from the record's own `Generator(PCG64(seed))`,
`rng.random(m)` (which words are replaced) and then `rng.integers(0, highs)` (which candidate of
each word). Two numpy calls an attempt cost more than the rest of the attempt. `Draws` gives the
same numbers, attempt after attempt, from one `random_raw` call for many attempts: numpy's
`random` is `(raw >> 11) * 2**-53`; its `integers(0, h)` is Lemire's method on 32-bit halves of
raw words (the low half first, the high half kept for the next draw), no draw at all where h is 1,
and a fresh draw in the rare case (odds below h / 2**32) the method rejects one. Drawing more
attempts than are used changes nothing: the generator belongs to one record.

Where a rejection occurs, the draws from that attempt on come from a numpy Generator advanced to
it. `exact()` checks the whole scheme against numpy once per process; where numpy's streams ever
differ from it, `draws` hands out numpy's own calls instead, so the variants are numpy's either
way.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence

import numpy as np

log = logging.getLogger(__name__)

_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT_DOUBLE = np.uint64(11)
_SHIFT_HIGH = np.uint64(32)
_FIRST_CHUNK = 32  # attempts drawn at once, then twice as many each time


def draws(seed: int, highs: Sequence[int], p: float) -> Iterator[tuple[list[int], list[int]]]:
    """(indices j with rng.random(m)[j] < p, rng.integers(0, highs) as a list) per attempt, as a
    fresh Generator(PCG64(seed)) gives them called in that order, attempt after attempt."""
    if highs and min(highs) >= 1 and max(highs) < 2**32 and exact():
        return Draws(seed, highs, p).attempts()
    return numpy_draws(seed, highs, p)  # bounds past Lemire's 32-bit path, or none


def numpy_draws(
    seed: int, highs: Sequence[int], p: float, skip: int = 0
) -> Iterator[tuple[list[int], list[int]]]:
    """The same draws from numpy's own calls, after `skip` attempts."""
    rng = np.random.Generator(np.random.PCG64(seed))
    bounds = np.asarray(highs, dtype=np.int64)
    for _ in range(skip):
        rng.random(len(bounds))
        rng.integers(0, bounds)
    while True:
        hit = [j for j, d in enumerate(rng.random(len(bounds)).tolist()) if d < p]
        yield hit, rng.integers(0, bounds).tolist()


class Draws:
    """The draws of one record's generator, computed a chunk of attempts at a time."""

    def __init__(self, seed: int, highs: Sequence[int], p: float) -> None:
        self.seed, self.highs, self.p = seed, list(highs), p
        bounds = np.asarray(highs, dtype=np.uint64)
        self._cols = np.flatnonzero(bounds > 1)  # the words whose index takes a draw
        self._bounds = bounds[self._cols]
        # Lemire's rejection threshold, (2**32 - h) % h
        self._threshold = (np.uint64(2**32) - self._bounds) % self._bounds
        self._bits = np.random.PCG64(seed)
        self._half: np.uint64 | None = None  # the raw word whose high half is kept

    def attempts(self) -> Iterator[tuple[list[int], list[int]]]:
        done, size = 0, _FIRST_CHUNK
        while True:
            hit, ends, picks, clean = self._chunk(size)
            for a in range(clean):  # made when asked: most records stop within a chunk
                yield hit[ends[a] : ends[a + 1]], picks[a]
            done += clean
            if clean < size:  # a rejected draw: numpy from there on
                yield from numpy_draws(self.seed, self.highs, self.p, skip=done)
                return
            size *= 2

    def _chunk(self, count: int) -> tuple[list[int], list[int], list[list[int]], int]:
        """`count` attempts' draws: the words hit by all of them in a row, where each attempt's
        hits end in that list (after a leading 0), each attempt's picks; and how many of the
        attempts hold no rejected draw."""
        m, c = len(self.highs), len(self._cols)
        dpos, upos, high, total, keeps = _layout(m, c, self._half is not None, count)
        raw = np.empty(total + 1, dtype=np.uint64)
        raw[0] = 0 if self._half is None else self._half
        raw[1:] = self._bits.random_raw(total)
        hits = (raw[dpos] >> _SHIFT_DOUBLE).astype(np.float64) * 2.0**-53 < self.p
        attempt, word = np.nonzero(hits)  # row-major: each attempt's words in order
        ends = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(np.bincount(attempt, minlength=count), out=ends[1:])
        words = raw[upos]
        halves = np.where(high, words >> _SHIFT_HIGH, words & _LOW32)
        scaled = halves * self._bounds
        rejected = ((scaled & _LOW32) < self._threshold).any(axis=1)
        clean = int(np.argmax(rejected)) if rejected.any() else count
        picks = np.zeros((count, m), dtype=np.int64)
        picks[:, self._cols] = scaled >> _SHIFT_HIGH
        self._half = raw[keeps] if keeps >= 0 else None
        return word.tolist(), ends.tolist(), picks.tolist(), clean


@functools.lru_cache(maxsize=4096)
def _layout(m: int, c: int, half: bool, count: int):
    """Where each number of `count` attempts comes from in [kept word] + raw words: the raw
    index of each double (count x m) and of each 32-bit draw (count x c) with whether it is the
    high half; how many raw words the chunk takes; the index of the word whose high half is
    kept after it (-1: none)."""
    dpos = np.empty((count, m), dtype=np.int64)
    upos = np.empty((count, c), dtype=np.int64)
    high = np.empty((count, c), dtype=bool)
    at, kept = 1, 0 if half else -1
    for a in range(count):
        dpos[a] = np.arange(at, at + m)
        at += m
        for j in range(c):
            if kept >= 0:
                upos[a, j], high[a, j], kept = kept, True, -1
            else:
                upos[a, j], high[a, j], kept = at, False, at
                at += 1
    for arr in (dpos, upos, high):
        arr.flags.writeable = False
    return dpos, upos, high, at - 1, kept


@functools.cache
def exact() -> bool:
    """Does `Draws` give numpy's numbers? Checked once per process on cases that cover an odd
    and even number of draws per attempt, words with one candidate, chunk boundaries and a
    rejected draw."""
    cases = [[2], [1], [3, 1, 5], [1, 1, 2], [7] * 4, [2, 3, 4, 5, 6, 7, 8], [30, 1, 17, 1, 9]]
    for seed in range(4):
        for highs in cases:
            if not _same(seed, highs, 0.3, _FIRST_CHUNK * 3 + 5):
                log.warning("sampler draws differ from numpy's: using numpy's calls (slower)")
                return False
    # a rejection: Lemire's threshold for h = 2**31 + 1 is about half the draws
    if not _same(1, [2**31 + 1, 3], 0.5, 40):
        log.warning("sampler draws differ from numpy's after a rejection: using numpy's calls")
        return False
    return True


def _same(seed: int, highs: list[int], p: float, attempts: int) -> bool:
    ours, theirs = Draws(seed, highs, p).attempts(), numpy_draws(seed, highs, p)
    return all(next(ours) == next(theirs) for _ in range(attempts))
