import pytest


def test_eligibility(tagger):
    (t,) = tagger.tag(["The quick brown foxes didn't jump over 3 lazy dogs in Paris!"])
    eligible = [w.text for w in t.eligible]
    assert "foxes" in eligible and "dogs" in eligible and "jump" in eligible
    for word in ("The", "over", "3", "n't", "!", "in"):
        assert word not in eligible
    assert all(w.pos in {"NOUN", "VERB", "ADJ", "ADV"} for w in t.eligible)


def test_eligibility_follows_pos_set():
    from augment.pos import Tagger

    nouns_only = Tagger("en_core_web_sm", ["NOUN"])
    (t,) = nouns_only.tag(["The happy children quickly ate apples."])
    assert {w.text for w in t.eligible} == {"children", "apples"}


@pytest.mark.parametrize(
    "cand, pos, tag, ok",
    [
        ("went", "VERB", "VBD", True),
        ("walk", "VERB", "VBD", False),
        ("walking", "VERB", "VBG", True),
        ("walks", "VERB", "VBZ", True),
        ("dogs", "NOUN", "NNS", True),
        ("dog", "NOUN", "NNS", False),
        ("children", "NOUN", "NNS", True),
        ("bigger", "ADJ", "JJR", True),
        ("big", "ADJ", "JJR", False),
        ("quickly", "ADV", "RB", True),
        ("xqzt", "NOUN", "NN", False),
        ("anything", "PROPN", "NNP", True),
    ],
)
def test_lexicon_agreement(tagger, cand, pos, tag, ok):
    assert tagger.lexicon.agrees(cand, pos, tag) is ok


def test_retag_in_context(tagger):
    (t,) = tagger.tag(["She opened the door and walked in."])
    door = next(w for w in t.words if w.text == "door")
    assert tagger.retag_agrees([(t, door, "window"), (t, door, "quickly")]) == [True, False]


def test_lexicon_ambiguity(tagger):
    assert tagger.lexicon.ambiguous("run")
    assert not tagger.lexicon.ambiguous("quickly")
