"""Hostile input for the readers: bad bytes, wrong types, hostile JSON, labels outside a task's
set, and the independent row count every build checks its reading against. Every physical row
becomes a record or a reject with a reason; nothing is lost and nothing crashes."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augment.io.readers import (
    GLUE_PRESETS,
    Columns,
    columns_for,
    read_records,
)
from augment.records import Record, Reject
from kdaug.errors import InputError, KdaugError
from kdaug.tables import count_input_rows, describe_input, resolve_format
from kdaug.tasks import GLUE_TASKS


def _split(rows):
    records = [r for r in rows if isinstance(r, Record)]
    rejects = [r for r in rows if isinstance(r, Reject)]
    assert len(records) + len(rejects) == len(rows)
    return records, rejects


def _issue_tsv(path, bad_rows=(250,), n=2000):
    """The reproduction of the report: SST-2 rows, latin-1 'é' (one invalid byte) in `bad_rows`."""
    rows = ["sentence\tlabel"] + [
        f"row {i} the film was a d" + ("\xe9" if i in bad_rows else "e") + f"lightful film\t{i % 2}"
        for i in range(n)
    ]
    path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    return path


# --- non-UTF-8 bytes --------------------------------------------------------------------------


def test_one_bad_byte_rejects_exactly_its_row(tmp_path):
    f = _issue_tsv(tmp_path / "r.tsv")
    records, rejects = _split(list(read_records(f, columns_for("sst2"))))
    assert (len(records), len(rejects)) == (1999, 1)
    (bad,) = rejects
    assert bad.row == 250 and bad.line == 252
    assert "not valid UTF-8 at byte offset 24 of line 252 (0xe9)" in bad.reason
    assert "\\xe9" in bad.raw["line"]
    assert [int(r.id) for r in records] == [i for i in range(2000) if i != 250]
    assert count_input_rows(f, "tsv") == 2000


def test_four_bad_bytes_reject_four_rows(tmp_path):
    f = _issue_tsv(tmp_path / "r.tsv", bad_rows=(3, 250, 1001, 1999))
    records, rejects = _split(list(read_records(f, columns_for("sst2"))))
    assert (len(records), len(rejects)) == (1996, 4)
    assert [r.row for r in rejects] == [3, 250, 1001, 1999]


def test_bad_byte_in_an_early_row_is_not_a_header_error(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_bytes(b"sentence\tlabel\nfine\t1\nalso fine\t0\nbad \xff here\t1\nlast\t0\n")
    rows = list(read_records(f, columns_for("sst2")))
    assert [type(r) for r in rows] == [Record, Record, Reject, Record]
    assert rows[2].row == 2 and rows[2].line == 4 and "not valid UTF-8" in rows[2].reason
    bad_header = tmp_path / "h.tsv"
    bad_header.write_bytes(b"sent\xffence\tlabel\nfine\t1\n")
    with pytest.raises(InputError, match=r"cannot read the header of .*not valid UTF-8"):
        list(read_records(bad_header, columns_for("sst2")))


def test_csv_bad_byte_with_quoted_fields_spanning_lines(tmp_path):
    f = tmp_path / "x.csv"
    f.write_bytes(
        b"\xef\xbb\xbfsentence,label\n"
        b'"a quoted, field\nover two lines",1\n'
        b'"caf\xe9 latin-1",0\n'
        b'"another ""quoted"" one",1\n'
        b'5" tall is short,0\n'
        b'"bad \xff in a field\nthat spans lines",1\n'
        b"plain,0"
    )
    cols = Columns("sentence", label="label")
    rows = list(read_records(f, cols))
    assert [type(r) for r in rows] == [Record, Reject, Record, Record, Reject, Record]
    assert rows[0].text_a == "a quoted, field\nover two lines"
    assert (rows[1].row, rows[1].line) == (1, 4)
    assert "at byte offset 4 of line 4 (0xe9)" in rows[1].reason
    assert rows[3].text_a == '5" tall is short'
    assert (rows[4].row, rows[4].line) == (4, 7) and "(0xff)" in rows[4].reason
    assert rows[5].text_a == "plain"
    assert count_input_rows(f, "csv") == 6


def test_bom_is_still_skipped(tmp_path):
    tsv = tmp_path / "x.tsv"
    tsv.write_bytes(b"\xef\xbb\xbfsentence\tlabel\nhello\t1\n")
    assert list(read_records(tsv, columns_for("sst2"))) == [Record("0", "hello", None, "1")]
    jl = tmp_path / "x.jsonl"
    jl.write_bytes(b'\xef\xbb\xbf{"text": "hi"}\n')
    assert list(read_records(jl, columns_for())) == [Record("0", "hi")]


def test_jsonl_bad_bytes_reject_the_line(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n{"text": "fine"}\n')
    rows = list(read_records(f, columns_for()))
    assert [type(r) for r in rows] == [Record, Reject, Record]
    assert rows[1].line == 2
    assert "not valid UTF-8 at byte offset 13 of line 2 (0xe9)" in rows[1].reason


# --- hostile JSON -------------------------------------------------------------------------------


def _hostile_jsonl(path):
    lines = [
        json.dumps({"text": "a good film", "label": "1"}),
        '{"text": "\\ud800 lone surrogate", "label": "1"}',
        '{"text": "x", "deep": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"text": "x", "label": ' + "7" * 5000 + "}",
        '{"text": "ok", "label": "\\udfff"}',
        '{"text": "ok", "id": "\\ud83d"}',
        json.dumps({"text": "the end", "label": "0"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_hostile_json_values_are_rejected(tmp_path):
    f = _hostile_jsonl(tmp_path / "x.jsonl")
    rows = list(read_records(f, Columns("text", label="label")))
    assert [type(r) for r in rows] == [Record, Reject, Reject, Reject, Reject, Record, Record]
    assert "surrogate" in rows[1].reason
    assert "nested too deeply" in rows[2].reason
    assert "4300" in rows[3].reason
    assert "surrogate" in rows[4].reason
    for r in rows:
        if isinstance(r, Reject):
            json.dumps(r.to_row(), ensure_ascii=False).encode(
                "utf-8"
            )  # the rejects file can hold it


def test_surrogate_in_the_id_is_rejected(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"text": "ok", "id": "\\ud83d"}\n{"text": "ok", "id": "a"}\n')
    rows = list(read_records(f, Columns("text", id="id")))
    assert isinstance(rows[0], Reject) and "surrogate" in rows[0].reason
    assert rows[0].id == "\\ud83d"
    assert rows[1] == Record("a", "ok")


# --- wrong types --------------------------------------------------------------------------------


def test_json_values_of_the_wrong_type_are_rejected_not_repr(tmp_path):
    f = tmp_path / "x.jsonl"
    values = [{"nested": 1}, ["a", "list"], True, 42, 4.5, "fine text"]
    f.write_text("".join(json.dumps({"text": v, "label": 1}) + "\n" for v in values))
    rows = list(read_records(f, Columns("text", label="label")))
    assert [type(r) for r in rows] == [Reject] * 5 + [Record]
    assert "column 'text' holds a dict, expected a string" in rows[0].reason
    assert "holds a list" in rows[1].reason
    assert "holds a bool" in rows[2].reason
    assert "holds an int" in rows[3].reason
    assert "holds a float" in rows[4].reason
    assert rows[5] == Record("5", "fine text", None, "1")
    assert rows[0].raw["text"] == {"nested": 1}


def test_labels_numbers_ok_nested_rejected(tmp_path):
    f = tmp_path / "x.jsonl"
    labels = [1, 2.5, "pos", {"a": 1}, [1], float("nan"), True]
    f.write_text("".join(json.dumps({"text": "t", "label": v}) + "\n" for v in labels))
    rows = list(read_records(f, Columns("text", label="label")))
    assert [r.label for r in rows[:3]] == ["1", "2.5", "pos"]
    assert all(isinstance(r, Reject) for r in rows[3:6])
    assert "column 'label' holds a dict, expected a string or a number" in rows[3].reason
    assert "finite" in rows[5].reason
    assert rows[6].label == "True"


def test_parquet_binary_and_struct_columns_are_rejected(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "x.parquet"
    table = pa.table(
        {
            "text": pa.array([b"bytes text", b"more"], pa.binary()),
            "b": pa.array([{"x": 1}, {"x": 2}]),
            "ok": ["fine", "good"],
            "label": [1, 0],
        }
    )
    pq.write_table(table, f)
    rows = list(read_records(f, Columns("text", label="label")))
    assert all(isinstance(r, Reject) for r in rows)
    assert "column 'text' holds bytes, expected a string" in rows[0].reason
    rows = list(read_records(f, Columns("ok", "b", label="label")))
    assert all(isinstance(r, Reject) and "holds a dict" in r.reason for r in rows)
    assert list(read_records(f, Columns("ok", label="label")))[0] == Record("0", "fine", None, "1")


def test_parquet_string_column_with_invalid_utf8(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "x.parquet"
    text = pa.array([b"ok", b"bad \xff", b"fine"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"text": text}), f)
    rows = list(read_records(f, Columns("text")))
    assert [type(r) for r in rows] == [Record, Reject, Record]
    assert "not valid UTF-8" in rows[1].reason


def test_nul_only_text_is_empty(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_bytes(b"sentence\tlabel\n\x00\x00\t1\n \x00 \t0\nreal\x00text\t1\n")
    rows = list(read_records(f, columns_for("sst2")))
    assert [type(r) for r in rows] == [Reject, Reject, Record]
    assert "empty or missing text" in rows[0].reason


# --- labels under a task ------------------------------------------------------------------------


def test_labels_outside_the_task_set_are_rejected(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("sentence\tlabel\na\t1\nb\t2\nc\t\nd\t0\ne\tpositive\n")
    rows = list(read_records(f, columns_for("sst2")))
    assert [type(r) for r in rows] == [Record, Reject, Reject, Record, Record]
    assert "label '2' is not a sst2 label" in rows[1].reason and "'0', '1'" in rows[1].reason
    assert "empty label" in rows[2].reason and "'0', '1'" in rows[2].reason
    assert (rows[1].line, rows[2].line) == (3, 4)
    # without a task, any label string passes
    assert all(isinstance(r, Record) for r in read_records(f, Columns("sentence", label="label")))


def test_stsb_labels_are_scores_from_0_to_5(tmp_path):
    f = tmp_path / "x.tsv"
    lines = ["index\tsentence1\tsentence2\tscore"]
    for i, s in enumerate(["3.8", "0", "5.000", "5.2", "-1", "abc", "nan", ""]):
        lines.append(f"{i}\ta\tb\t{s}")
    f.write_text("\n".join(lines) + "\n")
    rows = list(read_records(f, columns_for("stsb")))
    assert [type(r) for r in rows] == [Record] * 3 + [Reject] * 5
    assert "a number from 0 to 5" in rows[3].reason


def test_mnli_names_and_hf_indices(tmp_path):
    f = tmp_path / "x.jsonl"
    labels = ["entailment", "neutral", "contradiction", 2, "3", "-"]
    f.write_text(
        "".join(
            json.dumps({"pairID": str(i), "sentence1": "a", "sentence2": "b", "gold_label": v})
            + "\n"
            for i, v in enumerate(labels)
        )
    )
    rows = list(read_records(f, columns_for("mnli")))
    assert [type(r) for r in rows] == [Record] * 4 + [Reject] * 2


def test_test_split_without_labels_still_reads(tmp_path):
    f = tmp_path / "test.tsv"
    f.write_text("index\tsentence\n0\tthe film is good\n1\tbad film\n")
    rows = list(read_records(f, columns_for("sst2")))
    assert rows == [Record("0", "the film is good"), Record("1", "bad film")]
    f = tmp_path / "test.jsonl"  # datasets' GLUE test splits: label -1
    f.write_text(json.dumps({"sentence": "x", "label": -1}) + "\n")
    assert list(read_records(f, columns_for("sst2"))) == [Record("0", "x", None, "-1")]


def test_task_labels_are_accepted_by_distill():
    from distill.tasks import TASKS

    assert set(GLUE_TASKS) == set(GLUE_PRESETS)
    with pytest.raises(InputError, match="unknown task preset"):
        Columns(task="nosuchtask")  # an unknown task would silently check no labels
    for name, task in GLUE_TASKS.items():
        labels = task.accepted_labels
        if name in TASKS:
            spec = TASKS[name]
            assert (labels is None) == spec.is_regression
            for label in labels or ():
                spec.label_id(label)  # raises for a label distill cannot train on


# --- the independent count ----------------------------------------------------------------------


def test_count_input_rows_text_formats(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_bytes(b"h\n\na\tb\n\r\nlast without newline")
    assert count_input_rows(f, "tsv") == 4
    assert count_input_rows(f, "tsv", header=False) == 5
    assert len(list(read_records(f, Columns(0, header=False)))) == 5
    f.write_bytes(b"")
    assert count_input_rows(f, "tsv") == 0
    j = tmp_path / "x.jsonl"
    j.write_bytes(b'{"text": "a"}\n\n{"text": "b"}')
    assert count_input_rows(j, "jsonl") == 3 == len(list(read_records(j, Columns())))
    c = tmp_path / "x.csv"
    c.write_bytes(b'text\n"a\n\nb"\n\n"c""\n",x\n"unterminated\n')
    assert count_input_rows(c, "csv") == 4 == len(list(read_records(c, Columns())))


def test_count_input_rows_parquet_and_saved_dataset(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "x.parquet"
    pq.write_table(pa.table({"text": ["a", None, "c"]}), f, row_group_size=2)
    assert count_input_rows(f, "parquet") == 3
    d = tmp_path / "hf"
    datasets.Dataset.from_dict({"text": ["a", "b"]}).save_to_disk(str(d))
    assert count_input_rows(d, "hf") == 2


_TEXT = st.lists(
    st.sampled_from(
        ["a", "é", ",", '"', "\t", "\r", "\n", "\n", " ", "\x00", "\xff", '{"text": "a"}', "{"]
    ),
    max_size=60,
).map("".join)


def _raw(text: str) -> bytes:
    # "\xff" stands for an invalid byte; everything else is UTF-8
    return b"\xff".join(part.encode("utf-8") for part in text.split("\xff"))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=_TEXT, fmt=st.sampled_from(["csv", "tsv", "jsonl"]), header=st.booleans())
def test_every_physical_row_is_a_record_or_a_reject(tmp_path, text, fmt, header):
    header = header and fmt != "jsonl"
    f = tmp_path / f"x.{fmt}"
    f.write_bytes((b"text\n" if header else b"") + _raw(text))
    cols = Columns("text") if header or fmt == "jsonl" else Columns(0, header=False)
    rows = list(read_records(f, cols, fmt))
    assert len(rows) == count_input_rows(f, fmt, header=header)
    assert [r.row if isinstance(r, Reject) else int(r.id) for r in rows] == list(range(len(rows)))
    for r in rows:
        if isinstance(r, Reject):
            json.dumps(r.to_row(), ensure_ascii=False).encode("utf-8")


# --- one-line errors ----------------------------------------------------------------------------


def test_garbage_parquet_is_one_line_error(tmp_path):
    f = tmp_path / "x.parquet"
    f.write_bytes(bytes(range(256)) * 8)
    for call in (
        lambda: describe_input(f, "parquet"),
        lambda: count_input_rows(f, "parquet"),
        lambda: list(read_records(f, Columns())),
    ):
        with pytest.raises(InputError, match="cannot read Parquet file") as exc:
            call()
        assert "\n" not in str(exc.value)


def test_file_formats_on_a_directory_are_refused(tmp_path):
    import datasets

    d = tmp_path / "hf"
    datasets.Dataset.from_dict({"text": ["a", "b"]}).save_to_disk(str(d))
    for fmt in ("jsonl", "parquet", "csv", "tsv"):
        with pytest.raises(InputError, match="is a directory"):
            resolve_format(d, fmt)
    assert resolve_format(d) == resolve_format(d, "hf") == "hf"


def test_cli_one_line_errors(tmp_path, capsys):
    from kdaug.cli import main

    garbage = tmp_path / "x.parquet"
    garbage.write_bytes(b"PAR1 not really parquet")
    d = tmp_path / "somedir"
    d.mkdir()
    for argv in (
        [str(garbage)],
        [str(d), "--format", "jsonl"],
        [str(d), "--format", "parquet"],
    ):
        assert main(["augment", *argv, "-o", str(tmp_path / "out"), "--mlm", "none"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("kdaug: error:") and "\n" not in err and "Traceback" not in err


# --- the build checks its reading against the count ---------------------------------------------


@pytest.fixture(scope="module")
def cheap_augmenter():
    from augment.augmenter import Augmenter
    from augment.config import AugmentConfig

    return Augmenter(AugmentConfig.build(**_SETTINGS))


_SETTINGS = {"mlm": "none", "n": 1, "pos_filter": "lexicon", "device": "cpu"}


def _build(inp, out, augmenter, columns, task=None):
    from augment.build.build import build
    from augment.build.executors import SerialExecutor
    from augment.build.spec import BuildSpec
    from augment.config import AugmentConfig

    cfg = AugmentConfig.build(**_SETTINGS)
    spec = BuildSpec(input=str(inp), output=out, config=cfg, columns=columns, task=task)
    return build(spec, executor=SerialExecutor(cfg, augmenter))


def test_issue_reproduction_builds_with_exact_accounting(tmp_path, cheap_augmenter, capsys):
    f = _issue_tsv(tmp_path / "r.tsv", bad_rows=(250,))
    out = tmp_path / "out"
    stats = _build(f, out, cheap_augmenter, columns_for("sst2"), task="sst2")
    assert (stats["rows_in"], stats["records"], stats["rows_rejected"]) == (2000, 1999, 1)
    assert "2000 rows in = 1999 records + 1 rejected" in capsys.readouterr().out
    (line,) = (out / "rejects" / "part-00000.jsonl").read_text().splitlines()
    reject = json.loads(line)
    assert (reject["row"], reject["line"]) == (250, 252)
    assert "not valid UTF-8" in reject["reason"]


def test_hostile_jsonl_builds_and_resumes(tmp_path, cheap_augmenter, capsys):
    f = _hostile_jsonl(tmp_path / "x.jsonl")
    out = tmp_path / "out"
    stats = _build(f, out, cheap_augmenter, Columns("text", label="label"))
    assert (stats["rows_in"], stats["records"], stats["rows_rejected"]) == (7, 3, 4)
    again = _build(f, out, cheap_augmenter, Columns("text", label="label"))
    assert again["rows_in"] == 7 and "is complete" in capsys.readouterr().out


def test_build_fails_when_rows_read_differ_from_the_count(tmp_path, cheap_augmenter, monkeypatch):
    import augment.build.spec as builder

    f = tmp_path / "x.tsv"
    f.write_text("sentence\tlabel\n" + "".join(f"film {i}\t{i % 2}\n" for i in range(30)))
    real = builder.read_records

    def lossy(*args, **kw):  # a reader that silently loses one row
        for i, item in enumerate(real(*args, **kw)):
            if i != 7:
                yield item

    monkeypatch.setattr(builder, "read_records", lossy)
    with pytest.raises(KdaugError, match="29 rows .* 30 data rows") as exc:
        _build(f, tmp_path / "out", cheap_augmenter, columns_for("sst2"), task="sst2")
    assert "\n" not in str(exc.value)


# --- duplicate ids, overlong texts, too many JSON keys -------------------------------------------


def test_duplicate_ids_are_rejected_with_their_line(tmp_path):
    """1 and "1" are one id (ids are text); every later row with a seen id is rejected."""
    f = tmp_path / "d.jsonl"
    rows = [
        {"id": 1, "text": "first"},
        {"id": "1", "text": "the same id as text"},
        {"id": 2, "text": "second"},
        {"id": 3, "text": ""},  # rejected for its text: its id is not taken
        {"id": "3", "text": "third"},
        {"id": 1, "text": "first again"},
    ]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    records, rejects = _split(list(read_records(f, Columns("text", id="id"), "jsonl")))
    assert [r.id for r in records] == ["1", "2", "3"]
    assert [(r.line, r.id) for r in rejects] == [(2, "1"), (4, "3"), (6, "1")]
    for r in (rejects[0], rejects[2]):
        assert r.reason.startswith("duplicate id '1': an earlier row has it")
        assert r.raw["text"] in ("the same id as text", "first again")


def test_duplicate_ids_in_a_tsv_are_rejected(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_text("id\tsentence\na\tone\nb\ttwo\na\tthree\n", encoding="utf-8")
    records, rejects = _split(list(read_records(f, Columns("sentence", id="id"), "tsv")))
    assert [r.id for r in records] == ["a", "b"]
    assert [(r.row, r.line) for r in rejects] == [(2, 4)]
    assert "duplicate id 'a'" in rejects[0].reason


def test_a_text_over_the_limit_is_rejected_and_one_at_it_is_kept(tmp_path):
    from augment.io.readers import MAX_TEXT_CHARS, to_record

    assert MAX_TEXT_CHARS == 1_000_000  # spaCy's limit for one text
    at = to_record(0, {"text": "a" * MAX_TEXT_CHARS}, Columns("text"))
    assert isinstance(at, Record)
    over = to_record(1, {"text": "a" * (MAX_TEXT_CHARS + 1)}, Columns("text"), line=2)
    assert isinstance(over, Reject) and over.line == 2
    assert over.reason == (
        "text in column 'text' has 1,000,001 characters, more than the 1,000,000 a text may "
        "have (the spaCy tagger's limit)"
    )
    pair = to_record(0, {"a": "fine", "b": "b" * (MAX_TEXT_CHARS + 5)}, Columns("a", "b"))
    assert isinstance(pair, Reject) and "column 'b' has 1,000,005 characters" in pair.reason


def _many_keys(path, rows, keys):
    """JSON lines whose rows each bring `keys` keys of their own (a column each)."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            row = {"text": f"sentence number {i}"} | {f"k{i}_{k}": k for k in range(keys)}
            f.write(json.dumps(row) + "\n")
    return path


def test_jsonl_pass_through_columns_are_capped(tmp_path):
    """Each row's own keys would make the union of columns grow with the file (rows x columns
    cells per shard): the first MAX_PASSTHROUGH_COLUMNS keys seen are kept, and a row holding
    another key is rejected with the reason."""
    from augment.io.readers import MAX_PASSTHROUGH_COLUMNS, passthrough_columns

    f = _many_keys(tmp_path / "k.jsonl", 100, 20)
    cols = Columns("text")
    names = passthrough_columns(f, "jsonl", cols)
    assert names == tuple(f"k{i}_{k}" for i in range(100) for k in range(20))[:256]
    assert MAX_PASSTHROUGH_COLUMNS == 256
    records, rejects = _split(list(read_records(f, cols, "jsonl", passthrough=names)))
    assert len(records) == 12 and len(records) + len(rejects) == count_input_rows(f, "jsonl")
    assert rejects[0].line == 13  # its keys k12_16 .. k12_19 are beyond the first 256
    assert rejects[0].reason == (
        "holds key 'k12_16', beyond the first 256 keys of this file that a build carries as "
        "pass-through columns: give every row the same keys (or nest per-row data under one key)"
    )
    assert all(set(r.passthrough) <= set(names) for r in records)


def test_the_cap_is_on_json_keys_not_on_a_table_header(tmp_path):
    from augment.io.readers import passthrough_columns

    f = tmp_path / "same.jsonl"
    rows = [{"text": f"row {i}"} | {f"c{k}": i for k in range(300)} for i in range(3)]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    names = passthrough_columns(f, "jsonl", Columns("text"))
    assert names == tuple(f"c{k}" for k in range(256))
    # a table's columns are its header's, shared by every row: none is capped
    t = tmp_path / "wide.tsv"
    t.write_text("\t".join(["text", *names, "c256"]) + "\n" + "\t".join(["x"] * 258) + "\n")
    assert len(passthrough_columns(t, "tsv", Columns("text"))) == 257
