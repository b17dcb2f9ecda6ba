import pytest


def test_eligibility(tagger):
    (t,) = tagger.tag(["The quick brown foxes didn't jump over 3 lazy dogs in Paris!"])
    eligible = [w.text for w in t.eligible]
    assert "foxes" in eligible and "dogs" in eligible and "jump" in eligible
    for word in ("The", "over", "3", "n't", "!", "in"):
        assert word not in eligible
    assert all(w.pos in {"NOUN", "VERB", "ADJ", "ADV"} for w in t.eligible)


def test_eligibility_follows_pos_set():
    from augment.pos.tagger import Tagger

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


DOG_CANDIDATES = ["Dogs", "the", "cats", "quickly", "cat"]


@pytest.mark.parametrize(
    "mode, kept, rejected",
    [
        ("none", [("cats", 3), ("quickly", 4), ("cat", 5)], 0),
        ("lexicon", [("cats", 3)], 2),  # an adverb; a singular for a plural noun
        ("retag", [("cats", 3), ("cat", 5)], 1),  # re-tagging checks the coarse POS only
        ("hybrid", [("cats", 3)], 2),
    ],
)
def test_keep_agreeing_keeps_ranks_and_counts_pos_rejections(tagger, mode, kept, rejected):
    from augment.pos.filter import keep_agreeing

    (t,) = tagger.tag(["The dogs ran home across the field."])
    dogs = next(w for w in t.words if w.text == "dogs")
    # the word itself and stop words are dropped without counting as POS rejections
    assert keep_agreeing(tagger, mode, [(t, dogs, DOG_CANDIDATES), (t, dogs, [])]) == (
        [kept, []],
        rejected,
    )


def test_synonym_rule_is_the_lexicon_unless_none(tagger):
    from augment.pos.filter import synonym_rule

    (t,) = tagger.tag(["She opened the door and walked in."])
    door = next(w for w in t.words if w.text == "door")
    for mode in ("lexicon", "retag", "hybrid"):
        rule = synonym_rule(tagger, mode)
        assert rule("window", door) and not rule("quickly", door)
    assert synonym_rule(tagger, "none")("quickly", door)


def _windows(tagger, texts, replacements):
    """+-4 word windows around every word of the texts, the centre replaced in turn."""
    out = []
    for tagged in tagger.tag(texts):
        words = [w.text for w in tagged.words]
        for i in range(len(words)):
            lo, hi = max(0, i - 4), min(len(words), i + 5)
            for new in replacements:
                win = list(words[lo:hi])
                win[i - lo] = new
                out.append((tuple(win), i - lo))
    return out


def test_centre_tagger_equals_spacy_including_text_edges(tagger):
    from spacy.tokens import Doc

    from augment.pos.window_tagger import CenterTagger

    texts = [
        "She opened the door and walked into the kitchen.",
        "Run!",
        "The quick brown fox jumps over the lazy dog near the river bank yesterday.",
        "a charming and often affecting journey",
    ]
    windows = _windows(tagger, texts, ["light", "ran", "happily", "Paris", "beautiful"])
    centre = CenterTagger(tagger.nlp)
    docs = tagger.nlp.pipe(Doc(tagger.nlp.vocab, words=list(w)) for w, _ in windows)
    want = [d[c].pos_ for d, (_, c) in zip(docs, windows, strict=True)]
    assert centre.pos(windows) == want
    assert len(set(want)) > 3  # the check covers several parts of speech


def test_retag_falls_back_to_spacy_when_centre_tagger_disagrees(tagger, monkeypatch):
    from augment.pos import window_tagger

    tagged = tagger.tag(["She opened the door and walked into the kitchen."])[0]
    door = next(w for w in tagged.words if w.text == "door")
    queries = [(tagged, door, "window"), (tagged, door, "quickly")]
    monkeypatch.setattr(tagger, "_fast_retag", None)
    monkeypatch.setattr(window_tagger.CenterTagger, "verify", lambda self, windows: False)
    assert tagger.retag_agrees(queries) == [True, False]
    assert tagger._fast_retag is False


def test_numpy_tagging_equals_spacy_on_real_text(tagger):
    texts = [
        "She  opened the DOOR and walked in;  nobody noticed.",
        " Leading space, trailing space ",
        "It's a well-made, funny film -- and I'd see it again!",
        "Cats chase mice.",
        "",
    ]
    center = tagger._center_tagger()
    assert center is not None
    got = center.tag_docs(list(tagger.nlp.tokenizer.pipe(texts)))
    want = [[(t.tag_, t.pos_) for t in d] for d in tagger.nlp.pipe(texts)]
    assert got == want
    tagged = tagger.tag(texts)
    assert [[(w.tag, w.pos) for w in t.words] for t in tagged] == want
    assert tagger._fast_tags is True


# The tokenizer gives the same token text two norms: "'s" is "us" in "Let's" (a special case,
# a norm of its own) and keeps the lexeme's norm in "it's". Both keys must live in one cache.
SAME_TEXT_TWO_NORMS = ["Let's see if it's good", "it's good. Let's go", "Let's  y'all'd've don't"]


def _spacy_tags(tagger, texts):
    return [[(t.tag_, t.pos_) for t in d] for d in tagger.nlp.pipe(texts)]


def test_centre_tagger_same_token_text_with_and_without_own_norm_cold(tagger):
    from augment.pos.window_tagger import CenterTagger

    for text in SAME_TEXT_TWO_NORMS:
        centre = CenterTagger(tagger.nlp)  # empty cache: both keys are new together
        got = centre.tag_docs(list(tagger.nlp.tokenizer.pipe([text])))
        assert got == _spacy_tags(tagger, [text])


def test_centre_tagger_same_token_text_with_and_without_own_norm_warm(tagger):
    from augment.pos.window_tagger import CenterTagger

    centre = CenterTagger(tagger.nlp)
    texts = ["A fine day", *SAME_TEXT_TWO_NORMS, "it's fine", "Let's go"]
    for text in texts:  # the cache holds other keys, then some keys of each text already
        got = centre.tag_docs(list(tagger.nlp.tokenizer.pipe([text])))
        assert got == _spacy_tags(tagger, [text])
    # and all at once, a batch whose keys are partly cached
    docs = list(tagger.nlp.tokenizer.pipe(texts + ["Let's sing, it's late"]))
    assert centre.tag_docs(docs) == _spacy_tags(tagger, texts + ["Let's sing, it's late"])


def test_tagger_first_batch_with_same_token_text_two_norms():
    from augment.pos.tagger import Tagger

    fresh = Tagger("en_core_web_sm", ["NOUN", "VERB", "ADJ", "ADV"])
    (tagged,) = fresh.tag(["Let's see if it's good"])
    assert [w.text for w in tagged.words] == ["Let", "'s", "see", "if", "it", "'s", "good"]
    assert fresh._fast_tags is True  # the numpy tagger verified, not fallen back to spaCy
    want = _spacy_tags(fresh, ["Let's see if it's good"])[0]
    assert [(w.tag, w.pos) for w in tagged.words] == want


def test_centre_tagger_tags_in_chunks_as_in_one_pass(tagger, monkeypatch):
    """The network runs a few rows at a time (bounded temporaries): the same tags as one pass
    over every row, for the windows of the POS check and for whole texts."""
    from augment.pos import window_tagger

    texts = [
        "She opened the door and walked into the kitchen.",
        "It's a well-made, funny film -- and I'd see it again!",
        "Cats chase mice.",
        "The quick brown fox jumps over the lazy dog near the river bank yesterday.",
    ] * 8
    windows = _windows(tagger, texts[:4], ["light", "ran", "happily", "Paris", "beautiful"]) * 40
    centre = window_tagger.CenterTagger(tagger.nlp)
    docs = list(tagger.nlp.tokenizer.pipe(texts))
    monkeypatch.setattr(window_tagger, "_CHUNK_POSITIONS", 10**9)
    whole_pos, whole_docs = centre.pos(windows), centre.tag_docs(docs)
    assert len(windows) > 200
    calls = []
    real = window_tagger.CenterTagger._tags_of
    monkeypatch.setattr(
        window_tagger.CenterTagger,
        "_tags_of",
        lambda self, table, idx, *rest: calls.append(len(idx)) or real(self, table, idx, *rest),
    )
    for positions in (1, 9, 100, 1024):
        monkeypatch.setattr(window_tagger, "_CHUNK_POSITIONS", positions)
        calls.clear()
        assert centre.pos(windows) == whole_pos
        assert centre.tag_docs(docs) == whole_docs
        assert max(calls) < len(windows)  # it did run in chunks
