"""One interface for every candidate source (the registry of sources is `registry.py`).

A source answers words in context with ranked (candidate, score) lists. The Augmenter routes
each eligible word to one source: the first one, in registry order, that the record's `sources`
name, that is loaded, and that `serves` the word (primary sources before fallback ones). A
primary source's candidates then go through the configured POS filter (`pos_filter`); a
fallback source (WordNet) is also asked for every word the others left without a candidate, and
its candidates, chosen for the word's POS already, are checked by the lexicon rule alone.

Adding a source is one class and one `registry.register` call:

    class Reversed:
        fallback, labels = False, None
        def serves(self, words): return [True] * len(words)
        def candidates(self, queries): return [[(q.word.text[::-1], 1.0)] for q in queries]

    register("reversed", lambda cfg, loaded: Reversed())

after which `sources: [reversed]` selects it (the config accepts every registered name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from augment.pos.tagger import Word

Ranked = list[tuple[str, float]]  # (candidate, score), best first


@dataclass(frozen=True)
class WordInContext:
    """One eligible word: the text of its field, the word (offsets, POS, fine tag), and the
    record's label for label-conditional sources (None when unknown to the source)."""

    text: str
    word: Word
    label: str | None = None


@runtime_checkable
class CandidateSource(Protocol):
    """Words in context -> ranked candidates, one batch per call. Its name is the one it is
    registered under."""

    fallback: bool  # also asked for words the other sources left without a candidate
    labels: list[str] | None  # the labels a label-conditional source knows; None: unconditional

    def serves(self, words: Sequence[str]) -> list[bool]:
        """Which of these words this source can be routed (one batched answer)."""
        ...

    def candidates(self, queries: Sequence[WordInContext]) -> list[Ranked]:
        """Ranked candidates for each query, in the order given; the word itself excluded."""
        ...
