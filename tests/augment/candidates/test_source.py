"""A new candidate source is one class and one `register` call: selected by name in `sources`,
its candidates go through the POS filter and the sampler into variants like the built-in ones'."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from augment import AugmentConfig, Augmenter, Record
from augment.candidates.registry import register, source_names, unregister
from augment.candidates.source import CandidateSource, WordInContext
from augment.config import SampleParams
from augment.stats import AugmentStats
from kdaug.settings import ConfigError

TEXT = "The old man opened the heavy door slowly."
# by POS: candidates that agree, one of another POS ("quickly") and a stop word ("the")
PROPOSALS = {
    "NOUN": ["house", "quickly", "the", "window"],
    "ADJ": ["green", "quickly", "bright"],
    "VERB": ["closed", "window", "painted"],
    "ADV": ["quickly", "house"],
}


class FixedWords:
    """The toy source: a fixed list of words per POS, for words of at most five letters."""

    fallback = False
    labels = None

    def __init__(self) -> None:
        self.asked: list[WordInContext] = []

    def serves(self, words: Sequence[str]) -> list[bool]:
        return [len(w) <= 5 for w in words]

    def candidates(self, queries: Sequence[WordInContext]) -> list[list[tuple[str, float]]]:
        self.asked += queries
        return [[(w, 1.0) for w in PROPOSALS.get(q.word.pos, [])] for q in queries]


@pytest.fixture
def fixed_words():
    made: list[FixedWords] = []

    def load(cfg, loaded):
        made.append(FixedWords())
        return made[-1] if "fixed" in cfg.sources else None

    register("fixed", load, "no fixed words (list 'fixed' in sources)")
    yield made
    unregister("fixed")


def test_a_registered_source_is_selected_by_name_and_its_candidates_become_variants(
    fixed_words, tagger
):
    assert "fixed" in source_names()
    cfg = AugmentConfig.build(
        mlm="none", vectors="none", sources=["fixed"], n=6, pos_filter="lexicon"
    )
    aug = Augmenter(cfg, tagger=tagger)
    (source,) = fixed_words
    assert isinstance(source, CandidateSource) and aug.loaded_sources == ("fixed",)

    texts = aug.augment_text(TEXT, n=6)
    assert texts, "the toy source's candidates gave no variant"
    # routed by `serves`: the words of five letters at most, each in its text
    assert {q.word.text for q in source.asked} == {"old", "man", "heavy", "door"}
    assert all(q.text == TEXT for q in source.asked)

    (variants,) = aug.augment([Record("r1", TEXT)], SampleParams.from_config(cfg, n=6))
    reps = [r for v in variants[1:] for r in v.replacements]
    assert reps and {r.source for r in reps} == {"fixed"}
    # through the POS filter: another POS and stop words never replace a word
    by_word: dict[str, set[str]] = {}
    for r in reps:
        by_word.setdefault(r.original, set()).add(r.replacement.lower())
    for word, news in by_word.items():
        assert "the" not in news and "quickly" not in news, (word, news)
        assert news <= {"house", "window", "green", "bright", "closed", "painted"}
    assert aug.stats.words["fixed"] == 2 * 4  # both calls: old, man, heavy, door
    assert aug.stats.words["none"] == 2 * 2  # opened, slowly: no source serves them
    assert aug.stats.candidates_pos_rejected > 0
    # counted under its own name in a shard's entry and in stats.json
    stats = aug.stats
    assert stats.to_dict()["replacements"]["fixed"] == stats.replacements["fixed"]
    entry = {"records": stats.records, "variants": stats.variants, "stats": stats.to_entry()}
    assert AugmentStats.from_entry(entry) == stats


def test_an_unregistered_source_is_refused_in_one_line():
    with pytest.raises(ConfigError) as err:
        AugmentConfig.build(sources=["nonesuch"])
    assert "nonesuch" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="already registered"):
        register("mlm", lambda cfg, loaded: None)
