"""Property-based fuzzing of the Augmenter with natural English from the packaged Wikipedia
sample, mutated the way real data is (contractions, quotes, numbers, URLs, emoji, non-ASCII,
odd whitespace, control characters), through exact and fast mode, every POS filter, and cold
and warm caches.

Properties: no exception; variant 0 is the input exactly; every replacement's offsets are
valid and putting the originals back gives the input; the same seed gives the same variants
whatever the caches hold and whatever the batch order.

The default suite runs 40 examples (about half a minute on two cores); `-m slow` runs 600, or
$KDAUG_FUZZ_EXAMPLES. A failure prints the shrunk example and a `@reproduce_failure` blob.
"""

from __future__ import annotations

import copy
import gzip
import os
from collections import OrderedDict, defaultdict
from importlib import resources

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.lang.en import English
from spacy.symbols import NORM, ORTH

from augment import AugmentConfig, Record
from augment.augmenter import Augmenter
from augment.candidates.mlm import MaskedLMCandidates
from augment.config import SampleParams

settings.register_profile(
    "kdaug-fuzz",
    max_examples=40,
    deadline=None,
    database=None,  # nothing written into the working tree
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "kdaug-fuzz-slow",
    parent=settings.get_profile("kdaug-fuzz"),
    max_examples=int(os.environ.get("KDAUG_FUZZ_EXAMPLES", "600")),
)
FUZZ = settings.get_profile("kdaug-fuzz")
FUZZ_SLOW = settings.get_profile("kdaug-fuzz-slow")

MODES = ("exact", "fast")
POS_FILTERS = ("hybrid", "lexicon", "retag", "none")
_MAX_SENTENCE = 240  # characters; keeps one example's masked-LM work small


def _corpus() -> list[str]:
    path = resources.files("augment") / "data" / "enwiki-sample-sentences.txt.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        lines = [line.strip() for line in fh]
    return [s for s in lines if 0 < len(s) <= _MAX_SENTENCE]


SENTENCES = _corpus()

CONTRACTIONS = [
    "it's", "don't", "Let's", "y'all'd've", "can't", "I'd", "we're", "o'clock", "'tis",
    "rock'n'roll", "ma'am", "shouldn't've", "IT'S", "Don’t", "Let’s", "gov't", "'90s",
    "I'd've", "who've", "you'd", "I’m", "ima",
]  # fmt: skip
QUOTES = ['"', "'", "\u201c", "\u201d", "\u2018", "\u2019", "``", "''", "\u00ab", "\u00bb", "„"]
NUMBERS = ["42", "3.14", "-7", "1,000,000", "1e10", "2nd", "10%", "$5", "1990s", "½", "٣"]
WEB = [
    "https://example.com/a?b=c&d=e#f", "www.example.org", "someone@example.com",
    "mailto:a.b@example.co.uk", "#hashtag", "@user", "<b>bold</b>", "&amp;", "C:\\dir\\f.txt",
]  # fmt: skip
EMOJI = ["😀", "👍🏽", "🇺🇸", "❤️", "👨‍👩‍👧", "🙂🙃", "™", "©"]
NON_ASCII = [
    "é", "café", "naïve", "Straße", "ß", "中文", "日本語の文", "한국어", "עברית", "مرحبا",
    "\u202eRTL\u202c", "Ω", "ﬁne", "İstanbul", "ǅ", "e\u0301", "Ⅻ", "ｆｕｌｌ",
]  # fmt: skip
SPACES = [
    "\t", "  ", "   ", "\n", "\r\n", "\u00a0", "\u2003", "\u200b", "\ufeff", "\u2028", " \t ",
]  # fmt: skip
CONTROLS = ["\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x85"]
MARKUP = ["[MASK]", "[CLS]", "[SEP]", "[UNK]", "##ing", "--", "...", "(", ")", "-", "/", "|"]
PIECES = CONTRACTIONS + QUOTES + NUMBERS + WEB + EMOJI + NON_ASCII + SPACES + CONTROLS + MARKUP
# any character but NUL and lone surrogates (which no UTF-8 reader can produce)
ANY_CHAR = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")


EDITS = (
    "glue",  # a piece glued in anywhere, even inside a word
    "word",  # a piece as a word of its own
    "contraction",  # one to four contractions (twice the weight: the tokenizer's special cases)
    "contraction",
    "special",  # a special case of the pipeline's tokenizer ("Mar.", "o.O", "ca", ...)
    "curly",  # straight quotes made curly
    "pad",  # leading and trailing whitespace
    "widen",  # a space made a tab, a newline or several spaces
    "cut",  # cut short (may leave nothing, or only whitespace)
    "case",  # shouting or title case
    "chars",  # arbitrary characters
)
SPECIAL_CASES = sorted(English.Defaults.tokenizer_exceptions)


def _two_norm_contractions() -> list[str]:
    """Special cases with a piece that the tokenizer normalises differently elsewhere ("'s" is
    "us" in "Let's", itself in "it's"; "'d" is "would" in "I'd've"): where a text's tokens
    stop being a function of their text alone."""
    exc = English.Defaults.tokenizer_exceptions
    norms: dict[str, set] = defaultdict(set)
    for pieces in exc.values():
        for t in pieces:
            norms[t[ORTH]].add(t.get(NORM))
    return sorted(k for k, pieces in exc.items() if any(len(norms[t[ORTH]]) > 1 for t in pieces))


TWO_NORMS = _two_norm_contractions()


def _as_word(draw: st.DrawFn, text: str, piece: str) -> str:
    spaces = [i for i, c in enumerate(text) if c == " "] or [len(text)]
    i = draw(st.sampled_from(spaces))
    return text[:i] + " " + piece + text[i:]


@st.composite
def mutated_sentence(draw: st.DrawFn) -> str:
    """A corpus sentence, changed by a few real-world edits."""
    text = draw(st.sampled_from(SENTENCES))
    for _ in range(draw(st.integers(0, 5))):
        edit = draw(st.sampled_from(EDITS))
        at = draw(st.integers(0, len(text)))
        if edit == "glue":
            text = text[:at] + draw(st.sampled_from(PIECES)) + text[at:]
        elif edit == "word":
            text = _as_word(draw, text, draw(st.sampled_from(PIECES)))
        elif edit == "contraction":
            pick = st.sampled_from(CONTRACTIONS) | st.sampled_from(TWO_NORMS)
            text = _as_word(draw, text, " ".join(draw(st.lists(pick, min_size=1, max_size=4))))
        elif edit == "special":
            text = _as_word(draw, text, draw(st.sampled_from(SPECIAL_CASES)))
        elif edit == "curly":
            text = text.replace("'", "\u2019").replace(' "', " \u201c").replace('"', "\u201d")
        elif edit == "pad":
            ws = st.sampled_from(["", " ", "  ", "\t", "\n", " \t\n "])
            text = draw(ws) + text + draw(ws)
        elif edit == "widen":
            text = text.replace(" ", draw(st.sampled_from(SPACES)), 1)
        elif edit == "cut":
            text = text[:at]
        elif edit == "case":
            text = text.upper() if draw(st.booleans()) else text.title()
        else:
            text = text[:at] + draw(st.text(ANY_CHAR, min_size=1, max_size=6)) + text[at:]
    return text


@st.composite
def records(draw: st.DrawFn) -> list[Record]:
    """One to four records, some of them sentence pairs, with distinct ids."""
    out = []
    for i in range(draw(st.integers(1, 4))):
        rid = f"{i}{draw(st.text(ANY_CHAR, max_size=8))}"
        b = draw(st.none() | mutated_sentence())
        label = draw(st.none() | st.sampled_from(["0", "1", "entailment"]))
        out.append(Record(rid, draw(mutated_sentence()), b, label))
    return out


params = st.builds(
    SampleParams,
    n=st.integers(1, 6),
    p=st.floats(0.05, 1.0),
    seed=st.integers(-(2**31), 2**31),
    fields=st.sampled_from(["a", "b", "both"]),
    include_original=st.booleans(),
    sources=st.sampled_from([("mlm", "vectors"), ("mlm",), ("vectors",)]),
)


# augmenters ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def warm(augmenter, tiny_mlm_dir) -> dict[tuple[str, str], Augmenter]:
    """One augmenter per (mode, POS filter), reused across examples; models shared."""
    fast_mlm = MaskedLMCandidates(str(tiny_mlm_dir), device="cpu", mode="fast")
    out = {}
    for mode in MODES:
        mlm = augmenter.mlm if mode == "exact" else fast_mlm
        for pos_filter in POS_FILTERS:
            cfg = AugmentConfig.build(
                mlm=str(tiny_mlm_dir), device="cpu", mode=mode, pos_filter=pos_filter
            )
            out[mode, pos_filter] = Augmenter(
                cfg, tagger=augmenter.tagger, mlm=mlm, vectors=augmenter.vectors
            )
    return out


def cold(aug: Augmenter) -> Augmenter:
    """An augmenter with the same models and nothing cached: a fresh numpy tagger that has not
    verified itself yet, and empty masked-LM and word-vector caches."""
    tagger = copy.copy(aug.tagger)
    tagger._center = tagger._fast_tags = tagger._fast_retag = None
    mlm = copy.copy(aug.mlm)
    mlm._cache, mlm._single = OrderedDict(), {}
    vectors = copy.copy(aug.vectors)
    vectors._cache = OrderedDict()
    return Augmenter(aug.config, tagger=tagger, mlm=mlm, vectors=vectors)


# properties ---------------------------------------------------------------------------------
def check_variants(rec: Record, p: SampleParams, variants) -> None:
    """Variant 0, numbering, and every replacement's offsets against its variant and input."""
    if p.include_original:
        first = variants[0]
        assert (first.variant, first.text_a, first.text_b) == (0, rec.text_a, rec.text_b)
        assert first.replacements == []
    start = 0 if p.include_original else 1
    assert [v.variant for v in variants] == list(range(start, start + len(variants)))
    assert len(variants) - (1 if p.include_original else 0) <= p.n
    assert len({(v.text_a, v.text_b) for v in variants}) == len(variants)
    for v in variants:
        assert (v.id, v.label) == (rec.id, rec.label)
        if v.variant == 0:
            continue
        assert v.replacements
        for fld, original, new in (("a", rec.text_a, v.text_a), ("b", rec.text_b, v.text_b)):
            reps = [r for r in v.replacements if r.field == fld]
            if fld not in ({"a", "b"} if p.fields == "both" else {p.fields}):
                assert not reps and new == original
                continue
            assert (new is None) == (original is None)
            assert_offsets(original, new, reps, p.sources)


def assert_offsets(original: str | None, new: str | None, reps, sources) -> None:
    """Replacements in order, within the variant, the new word at its offsets, the original
    word at the matching offsets of the input, and the input rebuilt exactly."""
    if not reps:
        assert new == original
        return
    assert original is not None and new is not None
    rebuilt, at, shift = [], 0, 0
    for r in reps:
        assert at <= r.start < r.end <= len(new)
        assert new[r.start : r.end] == r.replacement
        o_start = r.start - shift
        assert original[o_start : o_start + len(r.original)] == r.original
        assert r.original and r.original.isalpha() and r.replacement.isalpha()
        assert r.replacement.lower() != r.original.lower()
        assert r.source in sources or r.source == "wordnet"
        assert r.rank >= 1
        rebuilt.append(new[at : r.start] + r.original)
        at = r.end
        shift += len(r.replacement) - len(r.original)
    rebuilt.append(new[at:])
    assert "".join(rebuilt) == original


def run_example(warm: dict, mode: str, pos_filter: str, recs: list[Record], p: SampleParams):
    aug = warm[mode, pos_filter]
    fresh = cold(aug)
    out = fresh.augment(recs, p)
    assert len(out) == len(recs)
    for rec, variants in zip(recs, out, strict=True):
        check_variants(rec, p, variants)
    # same seed, same variants: warm caches, another batch order, and one record at a time
    assert aug.augment(recs, p) == out
    assert aug.augment(recs[::-1], p)[::-1] == out
    assert [fresh.augment([r], p)[0] for r in recs] == out


examples = {
    "mode": st.sampled_from(MODES),
    "pos_filter": st.sampled_from(POS_FILTERS),
    "recs": records(),
    "p": params,
}


@FUZZ
@given(**examples)
def test_augmenter_survives_real_world_text(warm, mode, pos_filter, recs, p):
    run_example(warm, mode, pos_filter, recs, p)


@pytest.mark.slow
@FUZZ_SLOW
@given(**examples)
def test_augmenter_survives_real_world_text_long(warm, mode, pos_filter, recs, p):
    run_example(warm, mode, pos_filter, recs, p)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pos_filter", POS_FILTERS)
def test_every_mode_and_filter_on_hard_text(warm, mode, pos_filter):
    """Each combination sees every kind of piece at least once, whatever hypothesis draws."""
    recs = [
        Record("contractions", " ".join(CONTRACTIONS) + " the movie was good", label="1"),
        Record("quotes", "He said " + " ".join(QUOTES) + " wonderful things",
               "Numbers " + " ".join(NUMBERS)),
        Record("web", "Visit " + " ".join(WEB) + " for lovely pictures"),
        Record("unicode", " ".join(EMOJI + NON_ASCII) + " beautiful gardens"),
        Record("space", "\t  " + "x".join(SPACES + CONTROLS) + " quiet rivers flow \n"),
        Record("markup", " ".join(MARKUP) + " strong winds blew"),
        Record("blank", " \t\n", "   "),
        Record("empty", ""),
    ]  # fmt: skip
    p = SampleParams(n=4, p=0.6, seed=3)
    run_example(warm, mode, pos_filter, recs, p)
