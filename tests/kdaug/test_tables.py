"""The one table reader: the same malformed file reads the same under `kdaug augment` (its
rejects/) and under distillation (its data reader): the same rows used, the same rows rejected
for the same reasons, and nothing padded, cut or dropped without a word."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from augment.io.readers import Columns, read_records
from augment.records import Record, Reject
from distill.data import ExampleSource, RejectLog
from distill.tasks import get_task
from kdaug.errors import InputError, KdaugError
from kdaug.tables import Row, RowReject, read_rows

# A BOM, bare quote characters, a ragged row, a byte that is not UTF-8 and a blank line.
MALFORMED_TSV = (
    b"\xef\xbb\xbfsentence\tlabel\n"
    b'it \'s a "gem" .\t1\n'
    b"a ragged row\t1\textra\n"
    b"caf\xff au lait\t0\n"
    b'an unclosed " quote\t0\n'
    b"\n"
    b"just fine\t1\n"
)
USED = ['it \'s a "gem" .', 'an unclosed " quote', "just fine"]
REJECTED = [
    (3, "row has 3 fields, the header has 2"),
    (4, "not valid UTF-8 at byte offset 3 of line 4 (0xff)"),
    (6, "blank line"),
]


def _augment(inp: Path, out: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """`kdaug augment` of `inp`: the texts of its originals and the (line, reason) of rejects/."""
    from kdaug.cli import main

    argv = [str(inp), "-o", str(out), "--task", "sst2", "--mlm", "none", "--n", "1"]
    assert main(["augment", *argv, "--pos-filter", "lexicon", "--device", "cpu"]) == 0
    rows = [
        r for f in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()
    ]
    texts = [r["text_a"] for r in rows if r["variant"] == 0]
    rejects = [
        json.loads(line)
        for f in sorted((out / "rejects").glob("*.jsonl"))
        for line in f.read_text(encoding="utf-8").splitlines()
    ]
    return texts, [(r["line"], r["reason"]) for r in rejects]


def test_augment_and_distill_read_a_malformed_tsv_alike(tmp_path, caplog) -> None:
    f = tmp_path / "train.tsv"
    f.write_bytes(MALFORMED_TSV)
    texts, rejects = _augment(f, tmp_path / "aug")
    assert texts == USED and rejects == REJECTED

    log = RejectLog(tmp_path / "run" / "rejects.jsonl")
    with caplog.at_level(logging.WARNING, logger="distill.data"):
        source = ExampleSource(f, get_task("sst2"), rejects=log)
        assert len(source) == len(USED)
        examples = list(source) + list(source)  # two epochs: reported once
    assert [e.text_a for e in examples[: len(USED)]] == USED
    assert [e.label for e in examples[: len(USED)]] == [1, 0, 1]
    summary = [r.getMessage() for r in caplog.records]
    assert summary == [
        f"train.tsv: 3 of 6 rows rejected (line 3: row has 3 fields, the header has 2); "
        f"see {log.path}"
    ]
    written = [json.loads(x) for x in log.path.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["reason"]) for r in written] == REJECTED
    assert {r["file"] for r in written} == {str(f)}
    rows, rejected = log.files[f]
    assert rows == len(USED) + len(rejected)  # rows in = rows used + rows rejected


def test_bad_json_lines_reject_with_a_reason_in_both(tmp_path) -> None:
    f = tmp_path / "dev.jsonl"
    f.write_text(
        '{"sentence": "good one", "label": 1}\n'
        '{"sentence": "cut off", "label\n'
        "[1, 2]\n"
        '{"sentence": "good two", "label": 0}\n',
        encoding="utf-8",
    )
    items = list(read_records(f, Columns("sentence", label="label")))
    records = [r.text_a for r in items if isinstance(r, Record)]
    reasons = [(r.line, r.reason) for r in items if isinstance(r, Reject)]
    assert records == ["good one", "good two"]
    assert reasons[0][0] == 2 and reasons[0][1].startswith("invalid JSON: ")
    assert reasons[1] == (3, "JSON line is a list, not an object")

    log = RejectLog()
    examples = list(ExampleSource(f, get_task("sst2"), rejects=log))
    assert [e.text_a for e in examples] == records
    assert [(r.line, r.reason) for r in log.files[f][1]] == reasons


def test_every_row_rejected_is_one_line_error(tmp_path) -> None:
    f = tmp_path / "train.tsv"
    f.write_text("sentence\tlabel\na\t1\tx\nb\n", encoding="utf-8")
    with pytest.raises(KdaugError) as err:
        len(ExampleSource(f, get_task("sst2"), rejects=RejectLog(tmp_path / "rejects.jsonl")))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("train.tsv: all 2 rows rejected (line 2: row has 3 fields")
    assert (tmp_path / "rejects.jsonl").is_file()


def test_a_headerless_file_with_names_is_never_padded_or_cut(tmp_path) -> None:
    f = tmp_path / "dev.tsv"
    f.write_text("gj04\t1\t\tFine.\nshort\t0\tSaw he.\n", encoding="utf-8")
    log = RejectLog()
    (example,) = ExampleSource(f, get_task("cola"), rejects=log)
    assert example.text_a == "Fine."
    ((reject),) = log.files[f][1]
    assert (reject.line, reject.reason) == (2, "row has 3 fields, expected 4")
    # without names, the fields are keyed by position and their count is the caller's business
    rows = list(read_rows(f, header=False))
    assert [len(r.values) for r in rows] == [4, 3]


def test_rows_and_rejects_carry_index_line_and_reason(tmp_path) -> None:
    f = tmp_path / "x.tsv"
    f.write_bytes(MALFORMED_TSV)
    items = list(read_rows(f))
    assert [type(i) for i in items] == [Row, RowReject, RowReject, Row, RowReject, Row]
    assert [i.index for i in items] == list(range(6))
    assert items[0].values == {"sentence": 'it \'s a "gem" .', "label": "1"}  # BOM stripped
    assert items[1].raw == {"fields": ["a ragged row", "1", "extra"]}
    assert items[2].raw == {"line": "caf\\xff au lait\t0\n"}
    assert [i.line for i in items] == [2, 3, 4, 5, 6, 7]
    assert [i.values["sentence"] for i in read_rows(f, skip_blank=True) if isinstance(i, Row)] == (
        USED
    )


def test_raise_policy_names_file_line_and_reason(tmp_path) -> None:
    f = tmp_path / "x.tsv"
    f.write_bytes(MALFORMED_TSV)
    with pytest.raises(InputError) as err:
        list(read_rows(f, error=InputError))
    assert str(err.value) == f"{f}:3: row has 3 fields, the header has 2"
    c = tmp_path / "x.csv"
    c.write_text('text,label\n"a, b",1\n\nc,0,extra\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"x.csv:4: row has 3 fields, the header has 2"):
        list(read_rows(c, error=InputError, skip_blank=True))
