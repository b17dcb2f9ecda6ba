"""Which parts of speech and inflections a word form can carry: the `lexicon` agreement rule.

A candidate must be able to carry the word's part of speech *and* inflection (plural noun, past
verb, comparative adjective, ...), judged from the WordNet lemma index, exception lists and suffix
rules that spaCy's English rule lemmatizer ships inside the pipeline. A pure function of
(candidate, tag): fast, and independent of batch composition.
"""

from __future__ import annotations

from functools import lru_cache

from kdaug.errors import KdaugError

# Fine-grained (Penn) tag -> inflection class, per coarse POS.
_INFLECTION = {
    "NN": "sg",
    "NNS": "pl",
    "VB": "base",
    "VBP": "base",
    "VBZ": "3sg",
    "VBD": "past",
    "VBN": "past",
    "VBG": "ger",
    "JJ": "pos",
    "JJR": "cmp",
    "JJS": "sup",
    "RB": "pos",
    "RBR": "cmp",
    "RBS": "sup",
}
# Suffix stripped by a lemmatizer rule -> inflection class.
_SUFFIX_CLASS = {
    "noun": {"": "sg"},  # any non-empty rule suffix is a plural
    "verb": {"": "base", "s": "3sg", "es": "3sg", "ies": "3sg", "ed": "past", "ing": "ger"},
    "adj": {"": "pos", "er": "cmp", "est": "sup"},
    "adv": {"": "pos", "er": "cmp", "est": "sup"},
}
_EXC_CLASSES = {"noun": {"pl"}, "verb": {"past"}, "adj": {"cmp", "sup"}, "adv": {"cmp", "sup"}}
_UPOS_TO_TABLE = {"NOUN": "noun", "VERB": "verb", "ADJ": "adj", "ADV": "adv"}


class InflectionLexicon:
    """Which parts of speech and inflections a word form can carry, from WordNet lemma tables."""

    def __init__(self, index: dict, exc: dict, rules: dict) -> None:
        self.index = {k: frozenset(v) for k, v in index.items()}
        self.exc = {k: dict(v) for k, v in exc.items()}
        self.rules = {k: [tuple(r) for r in v] for k, v in rules.items()}
        self.classes = lru_cache(maxsize=200_000)(self._classes)
        self.ambiguous = lru_cache(maxsize=200_000)(self._ambiguous)
        self._agrees: dict[tuple[str, str, str], bool] = {}

    @classmethod
    def from_pipeline(cls, nlp) -> InflectionLexicon:
        comps = dict(nlp.components)
        lem = comps.get("lemmatizer")
        tables = getattr(getattr(lem, "lookups", None), "tables", [])
        if not {"lemma_index", "lemma_exc", "lemma_rules"} <= set(tables):
            raise KdaugError(
                "pos_filter 'lexicon' needs a spaCy pipeline with a rule lemmatizer "
                "(lemma_index/lemma_exc/lemma_rules tables); use pos_filter 'retag'"
            )
        get = lem.lookups.get_table
        parts = list(_UPOS_TO_TABLE.values())
        return cls(
            index={p: get("lemma_index")[p] for p in parts},
            exc={p: get("lemma_exc")[p] for p in parts},
            rules={p: get("lemma_rules").get(p, []) for p in parts},
        )

    def _classes(self, form: str, table: str) -> frozenset[str]:
        """Inflection classes `form` can have as a `table` (noun/verb/adj/adv) word."""
        form = form.lower()
        found: set[str] = set()
        index = self.index[table]
        suffix_class = _SUFFIX_CLASS[table]
        if form in index:
            found.add(suffix_class[""])
        if form in self.exc[table]:
            found |= _EXC_CLASSES[table]
        for old, new in self.rules[table]:
            if old and form.endswith(old) and (form[: -len(old)] + new) in index:
                found.add(suffix_class.get(old, "pl" if table == "noun" else suffix_class[""]))
        return frozenset(found)

    def _ambiguous(self, candidate: str) -> bool:
        """Can the form belong to more than one of noun/verb/adjective/adverb?"""
        return sum(bool(self.classes(candidate, t)) for t in _UPOS_TO_TABLE.values()) > 1

    def agrees(self, candidate: str, pos: str, tag: str) -> bool:
        """Can `candidate` replace a word tagged (pos, tag)? Other POS pass through unchecked."""
        key = (candidate, pos, tag)
        hit = self._agrees.get(key)
        if hit is None:
            if len(self._agrees) > 1_000_000:
                self._agrees.clear()
            hit = self._agrees[key] = self._agrees_uncached(candidate, pos, tag)
        return hit

    def _agrees_uncached(self, candidate: str, pos: str, tag: str) -> bool:
        table = _UPOS_TO_TABLE.get(pos)
        if table is None:
            return True
        classes = self.classes(candidate, table)
        if not classes:
            return False
        wanted = _INFLECTION.get(tag)
        return wanted is None or wanted in classes
