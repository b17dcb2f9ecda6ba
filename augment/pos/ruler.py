"""The attribute ruler's coarse POS of a (word, fine tag) pair, without spaCy's matcher.

`CenterTagger._coarse` asks, for each (lowercased word, fine tag) pair not seen before, which POS
the pipeline's attribute ruler gives a token of that word and tag in a doc without a parser (its
dependency label is empty). A doc and a pass of the ruler's matcher over ~180 patterns cost about
5% of the augmenter's CPU time on new text. `PosRules` reads the ruler's POS-setting patterns once
and evaluates them in Python, the last matching pattern winning as in the ruler. It knows the
token attributes and operators the English pipelines use (TAG, LOWER, ORTH, DEP, IS_SPACE;
equality, IN, NOT_IN); a POS pattern with anything else means no PosRules, and spaCy does the
work. Built rules are checked against the ruler itself on every word the patterns name, with
every tag, before they are used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from operator import itemgetter

log = logging.getLogger(__name__)

Condition = tuple[str, object]  # (token attribute, pattern value)
_FIXED = ("TAG", "DEP")  # the attributes that do not depend on the word
_WORDS = ("LOWER", "ORTH")  # the attributes whose values are words
_PLAIN_WORDS = ("table", "run", "x", "quickly", " ")


class Unsupported(Exception):
    """A POS-setting pattern PosRules cannot evaluate."""


class PosRules:
    """The POS an attribute ruler sets on a one-token match, as an ordered list of rules."""

    def __init__(self, rules: list[tuple[int, tuple[Condition, ...], str]]) -> None:
        self._generic = [r for r in rules if not isinstance(dict(r[1]).get("TAG"), str)]
        self._tagged: dict[str, list] = {}
        for r in rules:
            tag = dict(r[1]).get("TAG")
            if isinstance(tag, str):
                self._tagged.setdefault(tag, []).append(r)
        self._by_tag: dict[str, tuple] = {}  # tag -> its rules as `_plan` splits them

    @classmethod
    def from_ruler(cls, ruler) -> PosRules:
        """The POS rules of an AttributeRuler; Unsupported when a POS pattern needs more."""
        rules = []
        for order, entry in enumerate(ruler.patterns):
            pos = entry["attrs"].get("POS")
            if pos is None:
                continue
            if not isinstance(pos, str):
                raise Unsupported(f"POS value {pos!r}")
            for pattern in entry["patterns"]:
                tokens = [tuple(_conditions(token)) for token in pattern]
                if len(tokens) == 1:
                    rules.append((order, tokens[0], pos))
                elif not any(_never_without_parser(conds) for conds in tokens):
                    raise Unsupported(f"a {len(tokens)}-token POS pattern {pattern!r}")
        return cls(rules)

    def pos(self, word: str, tag: str) -> str:
        """The POS the ruler sets on a token `word` tagged `tag` ('' when no pattern sets one):
        that of the last pattern that matches."""
        plan = self._by_tag.get(tag)
        if plan is None:
            plan = self._by_tag[tag] = self._plan(tag)
        best, by_lower, others = plan
        for hit in by_lower.get(word.lower(), ()):
            best = max(best, hit)
        for order, conds, pos in others:
            if order > best[0] and all(_holds(v, _attribute(k, word, tag)) for k, v in conds):
                best = (order, pos)
        return best[1]

    def _plan(self, tag: str):
        """The rules that can match a token tagged `tag`, split for speed: the last of those
        that hold whatever the word, (order, POS); those that ask for the lowercase word only
        (LOWER = or IN), by word; the others, with the conditions left to check per word."""
        always, by_lower, others = (-1, ""), {}, []
        for order, conds, pos in sorted(
            self._tagged.get(tag, []) + self._generic, key=itemgetter(0)
        ):
            on_word = [(k, v) for k, v in conds if k not in _FIXED]
            if not all(_holds(v, _attribute(k, "", tag)) for k, v in conds if k in _FIXED):
                continue  # never for this tag
            if not on_word:
                always = (order, pos)
            elif len(on_word) == 1 and on_word[0][0] == "LOWER" and _is_in(on_word[0][1]):
                for w in _strings(on_word[0][1]):
                    by_lower.setdefault(w, []).append((order, pos))
            else:
                others.append((order, tuple(on_word), pos))
        return always, by_lower, others

    def agrees_with(
        self, ruler_pos: Callable[[Sequence[tuple[str, str]]], list[str]], tags
    ) -> bool:
        """Do these rules give what `ruler_pos` (the ruler run on a doc) gives, with every tag,
        for every word a pattern that can match that tag names and a few plain words?"""
        pairs = []
        for tag in tags:
            rules = self._tagged.get(tag, []) + self._generic
            named = {
                w for _, conds, _ in rules for k, v in conds if k in _WORDS for w in _strings(v)
            }
            pairs += [(w, tag) for w in sorted(named) + list(_PLAIN_WORDS)]
        return [self.pos(w, t) for w, t in pairs] == ruler_pos(pairs)


def _conditions(token: dict) -> list[Condition]:
    out = []
    for key, value in token.items():
        if key not in (*_FIXED, *_WORDS, "IS_SPACE"):
            raise Unsupported(f"token attribute {key}")
        if isinstance(value, dict) and (
            len(value) != 1 or next(iter(value)) not in ("IN", "NOT_IN")
        ):
            raise Unsupported(f"{key} operator {value!r}")
        out.append((key, value))
    return out


def _never_without_parser(conds: tuple[Condition, ...]) -> bool:
    """Does a pattern token ask for a dependency label that a doc without a parser lacks?"""
    return any(key == "DEP" and not _holds(value, "") for key, value in conds)


def _attribute(key: str, word: str, tag: str) -> object:
    if key == "TAG":
        return tag
    if key == "LOWER":
        return word.lower()
    if key == "ORTH":
        return word
    if key == "DEP":
        return ""  # no parser
    return word.isspace()  # IS_SPACE


def _holds(value: object, actual: object) -> bool:
    if isinstance(value, dict):
        op, items = next(iter(value.items()))
        return (actual in items) if op == "IN" else (actual not in items)
    return actual == value


def _is_in(value: object) -> bool:
    """Is a pattern value an equality or an IN list (not NOT_IN)?"""
    return not isinstance(value, dict) or "IN" in value


def _strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [v for v in next(iter(value.values())) if isinstance(v, str)]
    return [value] if isinstance(value, str) else []
