"""kdaug.errors: a library's exception message as one line."""

from __future__ import annotations

from kdaug.errors import one_line


def test_one_line_joins_lines_and_cuts_at_the_limit():
    exc = ValueError("Parquet magic bytes\nnot found  in footer.\n")
    assert one_line(exc) == "Parquet magic bytes not found in footer."
    long = ValueError("x" * 300)
    assert one_line(long) == "x" * 300
    assert one_line(long, 200) == "x" * 197 + "..." and len(one_line(long, 200)) == 200
    assert one_line(ValueError("short"), 200) == "short"
    assert one_line("cannot load the models: OSError: bad\nheader") == (
        "cannot load the models: OSError: bad header"
    )
