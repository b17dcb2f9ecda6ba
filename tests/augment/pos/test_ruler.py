"""PosRules give the attribute ruler's coarse POS without running it."""

import logging

import pytest

from augment.pos import window_tagger
from augment.pos.ruler import PosRules, Unsupported
from tests.conftest import shared_assets_dir

WORDS = [
    "that", "This", "but", "something", "I", "it", "do", "Did", "'s", "are", "table", "run",
    "quickly", "beautiful", "  ", "\t", "w/out", "EVERYONE", "whether", "coz", "x", "42", "co-op",
]  # fmt: skip


def _sst2_words(limit=1500):
    """Words of SST-2 dev when the shared assets are there (the fixed list above otherwise)."""
    assets = shared_assets_dir()
    path = assets / "glue" / "SST-2" / "dev.tsv" if assets else None
    if path is None or not path.is_file():
        return []
    words = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        words += line.split("\t")[0].split()
    return list(dict.fromkeys(words))[:limit]


def test_rules_give_the_rulers_pos_for_every_tag(tagger):
    centre = window_tagger.CenterTagger(tagger.nlp)
    rules = PosRules.from_ruler(tagger.nlp.get_pipe("attribute_ruler"))
    words = WORDS + _sst2_words()
    for tag in centre.tags:
        pairs = [(w.lower(), tag) for w in words]
        assert [rules.pos(w, t) for w, t in pairs] == centre._ruler_pos(pairs), tag


def test_the_centre_tagger_uses_the_rules_and_they_change_no_pos(tagger):
    fresh = window_tagger.CenterTagger(tagger.nlp)
    assert isinstance(fresh._rules(), PosRules)
    pairs = [(w, t) for t in ("NN", "PRP", "IN", "CC", "WDT", "_SP", "VBD") for w in WORDS]
    assert fresh._coarse(pairs) == fresh._ruler_pos([(w.lower(), t) for w, t in pairs])


class _Ruler:
    def __init__(self, patterns):
        self.patterns = patterns


@pytest.mark.parametrize(
    "pattern",
    [
        [{"LEMMA": "be"}],  # an attribute it does not know
        [{"TAG": {"REGEX": "^V"}}],  # an operator it does not know
        [{"LOWER": "there"}, {"LOWER": "is"}],  # two tokens that can match without a parser
    ],
)
def test_patterns_it_cannot_read_are_refused(pattern):
    with pytest.raises(Unsupported):
        PosRules.from_ruler(_Ruler([{"patterns": [pattern], "attrs": {"POS": "VERB"}, "index": 0}]))


def test_a_two_token_pattern_that_needs_a_parser_is_skipped_and_later_rules_win():
    rules = PosRules.from_ruler(
        _Ruler(
            [
                {"patterns": [[{"TAG": "NN"}]], "attrs": {"POS": "NOUN"}, "index": 0},
                {
                    "patterns": [[{"DEP": "expl"}, {"LOWER": "is"}]],
                    "attrs": {"POS": "VERB"},
                    "index": 1,
                },
                {"patterns": [[{"LOWER": {"IN": ["it"]}}]], "attrs": {"POS": "PRON"}, "index": 0},
                {"patterns": [[{"TAG": "NN"}]], "attrs": {"MORPH": "Number=Sing"}, "index": 0},
            ]
        )
    )
    assert rules.pos("table", "NN") == "NOUN"
    assert rules.pos("it", "NN") == "PRON"  # the later pattern wins
    assert rules.pos("is", "VBZ") == ""  # no pattern sets it


def test_rules_that_disagree_with_the_ruler_are_not_used(tagger, monkeypatch, caplog):
    monkeypatch.setattr(PosRules, "pos", lambda self, word, tag: "X")
    fresh = window_tagger.CenterTagger(tagger.nlp)
    with caplog.at_level(logging.WARNING):
        assert fresh._rules() is None
    assert "disagree" in caplog.text
    assert fresh._coarse([("table", "NN")]) == ["NOUN"]  # the ruler's own answer


def test_patterns_of_one_entry_share_its_order():
    rules = PosRules.from_ruler(
        _Ruler(
            [
                {
                    "patterns": [
                        [{"TAG": "NN", "LOWER": {"IN": ["it"]}}],
                        [{"TAG": "NN", "DEP": ""}],
                    ],
                    "attrs": {"POS": "PRON"},
                    "index": 0,
                },
                {
                    "patterns": [[{"TAG": "NN", "IS_SPACE": True}]],
                    "attrs": {"POS": "SPACE"},
                    "index": 0,
                },
            ]
        )
    )
    assert rules.pos("it", "NN") == "PRON"
    assert rules.pos("table", "NN") == "PRON"  # DEP "" holds without a parser
    assert rules.pos(" ", "NN") == "SPACE"
    assert rules.pos("table", "VB") == ""
