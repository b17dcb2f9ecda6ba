"""The shapes every part of kdaug shares: input records, variants, replacements, rejects."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

SOURCES = ("mlm", "vectors", "wordnet")
# The longest text a record may have, in characters: spaCy refuses longer ones (nlp.max_length,
# ValueError E088), and a text that long is no training example for a 128-token student anyway.
MAX_TEXT_CHARS = 1_000_000


@dataclass(frozen=True)
class Record:
    """One input example. `label` is kept as the string read from the input (or None);
    `passthrough` holds the input's other columns as text (None: not carried)."""

    id: str
    text_a: str
    text_b: str | None = None
    label: str | None = None
    passthrough: dict[str, str | None] | None = field(default=None, hash=False)


@dataclass(frozen=True, init=False)
class Replacement:
    """One replaced word: `start`/`end` are character offsets of the new word in the variant."""

    field: str  # "a" or "b"
    start: int
    end: int
    original: str
    replacement: str
    source: str  # one of SOURCES
    rank: int  # 1-based rank among the word's candidates

    def __init__(
        self,
        field: str,
        start: int,
        end: int,
        original: str,
        replacement: str,
        source: str,
        rank: int,
    ) -> None:
        # the generated frozen __init__ sets each field through object.__setattr__: a sampler
        # makes one of these per replaced word, and this is half the cost
        object.__setattr__(
            self,
            "__dict__",
            {
                "field": field,
                "start": start,
                "end": end,
                "original": original,
                "replacement": replacement,
                "source": source,
                "rank": rank,
            },
        )


@dataclass
class Variant:
    """One output row. Variant 0 is the original record (no replacements)."""

    id: str
    variant: int
    text_a: str
    text_b: str | None
    label: str | None
    replacements: list[Replacement] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        return row


@dataclass(frozen=True)
class Reject:
    """An input row that could not become a record, with the reason."""

    row: int  # 0-based data row number in the input
    reason: str
    id: str | None = None
    raw: dict[str, Any] | None = None
    line: int | None = None  # 1-based line of the file where the row starts (csv, tsv, jsonl)

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


SURROGATE = re.compile("[\ud800-\udfff]")  # a lone surrogate: no UTF-8 form


def text_problem(text: object, max_chars: int | None = MAX_TEXT_CHARS) -> str | None:
    """Why `text` cannot be augmented (None when it can): it must be a string of valid Unicode,
    at most `max_chars` long (None: any length, as for ids). A lone surrogate (JSON "\\ud800")
    has no UTF-8 form, so no tokenizer or writer takes it."""
    if not isinstance(text, str):
        return f"is {type(text).__name__}, not a string"
    if max_chars is not None and len(text) > max_chars:
        return (
            f"has {len(text):,} characters, more than the {max_chars:,} a text may have "
            "(the spaCy tagger's limit)"
        )
    bad = SURROGATE.search(text)
    if bad is not None:
        return f"has a lone surrogate U+{ord(bad.group()):04X} at character {bad.start()}"
    return None
