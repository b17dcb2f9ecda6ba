"""User data printed to a terminal cannot drive it: control characters come out as escapes."""

from __future__ import annotations

import io
import json
import logging
import unicodedata

import pytest

from kdaug.terminal import PrintableFormatter, printable, use_color

BIDI_CONTROLS = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI", "LRM", "RLM", "ALM"}
HOSTILE = "a\x1b]0;owned\x07b\x1b[2Jc\x9b31md\x7fe\u202ef\u2066g\x00h\ri\nj\tk"


def test_control_characters_are_escaped_and_ordinary_text_kept():
    shown = printable(HOSTILE)
    assert shown == (
        "a\\x1b]0;owned\\x07b\\x1b[2Jc\\x9b31md\\x7fe\\u202ef\\u2066g\\x00h\\ri\\nj\tk"
    )
    assert printable("café – naïve 日本語 🙂 a\u200db") == "café – naïve 日本語 🙂 a\u200db"
    assert printable(HOSTILE, keep="").endswith("j\\tk")
    assert printable(42) == "42"


def test_what_printable_returns_is_one_line_without_controls():
    every = "".join(chr(c) for c in range(0x3000))
    shown = printable(every, keep="")
    assert not [c for c in shown if unicodedata.category(c) in ("Cc", "Zl", "Zp")]
    assert not [c for c in shown if unicodedata.bidirectional(c) in BIDI_CONTROLS]


def test_log_lines_keep_line_breaks_but_escape_the_rest():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "file %s\nnext", ("\x1b[2J",), None)
    assert PrintableFormatter("%(message)s").format(record) == "file \\x1b[2J\nnext"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("value", "color"), [(None, True), ("", True), ("1", False)])
def test_no_color_turns_colour_off(monkeypatch, value, color):
    if value is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", value)
    assert use_color(FakeTTY()) is color
    assert use_color(io.StringIO()) is False
    assert use_color(FakeTTY(), disabled=True) is False


def test_json_lines_read_back_exactly_and_hold_no_controls():
    from kdaug.terminal import json_line

    value = {"id": HOSTILE, "raw": {"text": "naïve 日本語 \u2028 \u2066x\u2069"}, "n": [1, None]}
    line = json_line(value)
    assert json.loads(line) == value and "\n" not in line
    assert printable(line, keep="") == line  # nothing a terminal would act on
    assert "naïve 日本語" in line  # other text stays readable
