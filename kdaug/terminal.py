"""Text for a terminal: user data with its control characters escaped, and colour only where
it is wanted.

A sentence, an id or a file name may hold escape sequences (`ESC ]0;title BEL` sets the window
title, `ESC [2J` clears the screen) or bidirectional overrides that reorder what is shown.
Everything kdaug prints from user data goes through `printable`, which writes such characters
as Python escapes (`\\x1b`, `\\u202e`): visible, and inert.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

# C0 controls, DEL and C1 controls; the bidirectional marks, embeddings, overrides and isolates;
# the line and paragraph separators (a line break to some terminals and editors).
_UNSAFE = (
    [chr(c) for c in range(0x20)]
    + [chr(c) for c in range(0x7F, 0xA0)]
    + list("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    + list("\u2028\u2029")
)
_ESCAPES = {ord(c): ascii(c)[1:-1] for c in _UNSAFE}
_TABLES: dict[str, dict[int, str]] = {}
# The same characters as JSON escapes, except the C0 controls, which JSON escapes itself.
_JSON_ESCAPES = {k: f"\\u{k:04x}" for k in _ESCAPES if k >= 0x7F}


def printable(value: Any, keep: str = "\t") -> str:
    """`str(value)` with control characters (C0, DEL, C1), bidirectional controls and line
    separators written as escapes (`\\x1b`, `\\n`, `\\u202e`), except those in `keep` (a tab by
    default). The result never moves the cursor nor changes the terminal, and without "\\n" in
    `keep` it is one line."""
    table = _TABLES.get(keep)
    if table is None:
        table = _TABLES[keep] = {k: v for k, v in _ESCAPES.items() if chr(k) not in keep}
    return str(value).translate(table)


def json_line(value: Any) -> str:
    """`value` as one line of JSON that reads back exactly and is safe to `cat`: non-ASCII text
    kept as it is, but DEL, C1 and bidirectional controls and line separators as `\\uXXXX`
    (JSON escapes the C0 controls, ESC among them, itself)."""
    return json.dumps(value, ensure_ascii=False).translate(_JSON_ESCAPES)


def is_terminal(stream: Any) -> bool:
    """Whether `stream` is a terminal (False for a file, a pipe, a closed stream)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def use_color(stream: Any, disabled: bool = False) -> bool:
    """Whether to colour what goes to `stream`: a terminal, unless `disabled` or the
    NO_COLOR environment variable is set to anything non-empty (https://no-color.org)."""
    return not disabled and not os.environ.get("NO_COLOR") and is_terminal(stream)


class PrintableFormatter(logging.Formatter):
    """A log formatter whose lines are `printable` (line breaks and tabs kept, so tracebacks
    stay readable): a logged file name or record id cannot drive the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), keep="\t\n")
