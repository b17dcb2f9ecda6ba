"""POS agreement: which candidates may replace a word.

A candidate is never the word itself nor a stop word, and must agree with the word's part of
speech by one of three methods (`pos_filter`):
- `lexicon`: it can carry the word's part of speech and inflection (`lexicon.py`).
- `retag`: substitute the candidate into the text and let the spaCy tagger re-tag it; the window
  of +-4 words matches the receptive field of the small pipelines' CNN (depth 4, window 1).
- `hybrid` (default): the lexicon first; candidates it accepts that could also be another part of
  speech ("funny" is a WordNet noun too) are then re-tagged in context. Near `retag`'s agreement
  at a fraction of its tagging work.
`none` keeps every candidate that is another, non-stop word.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from augment.pos.tagger import TaggedText, Tagger, Word

# A text, one of its words, and the word's ranked candidates.
Query = tuple[TaggedText, Word, Sequence[str]]


def check_pipeline(tagger: Tagger, mode: str) -> None:
    """Fail at start, not mid-run, when `mode` needs the lexicon and the pipeline lacks it."""
    if mode in ("lexicon", "hybrid"):
        _ = tagger.lexicon


def keep_agreeing(
    tagger: Tagger, mode: str, queries: Sequence[Query]
) -> tuple[list[list[tuple[str, int]]], int]:
    """For each query, the (candidate, rank) pairs that may replace its word (ranks count from 1
    in the candidates as given); and how many candidates were dropped for their POS."""
    stop = tagger.stop_words
    pending: list[tuple[int, str, int]] = []  # (query index, candidate, rank)
    for q, (_, word, cands) in enumerate(queries):
        low = word.text.lower()
        for rank, cand in enumerate(cands, start=1):
            if cand.lower() != low and cand.lower() not in stop:
                pending.append((q, cand, rank))
    checks = [(queries[q][0], queries[q][1], cand) for q, cand, _ in pending]
    keep = _agreement(tagger, mode, checks)
    kept: list[list[tuple[str, int]]] = [[] for _ in queries]
    for (q, cand, rank), ok in zip(pending, keep, strict=True):
        if ok:
            kept[q].append((cand, rank))
    return kept, keep.count(False)


def synonym_rule(tagger: Tagger, mode: str) -> Callable[[str, Word], bool]:
    """The agreement rule for WordNet synonyms: the lexicon's in every mode but `none`."""
    if mode == "none":
        return lambda cand, word: True
    lex = tagger.lexicon
    return lambda cand, word: lex.agrees(cand, word.pos, word.tag)


def _agreement(tagger: Tagger, mode: str, checks: list[tuple[TaggedText, Word, str]]) -> list[bool]:
    """Does each (text, word, candidate) agree by `mode`? Re-tagging is batched over all checks."""
    if mode == "lexicon" or mode == "hybrid":
        lex = tagger.lexicon
        keep = [lex.agrees(c, w.pos, w.tag) for _, w, c in checks]
        if mode == "lexicon":
            return keep
        retag = [
            i
            for i, (ok, (_, _, c)) in enumerate(zip(keep, checks, strict=True))
            if ok and lex.ambiguous(c)
        ]
    elif mode == "retag":
        keep = [True] * len(checks)
        retag = list(range(len(checks)))
    else:
        return [True] * len(checks)
    for i, ok in zip(retag, tagger.retag_agrees([checks[i] for i in retag]), strict=True):
        keep[i] = ok
    return keep
