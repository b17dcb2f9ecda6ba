import json

import pytest

from augment.io.readers import columns_for, read_records
from augment.records import Record, Reject
from kdaug.errors import InputError


def test_glue_tsv_with_quotes_and_bom(tmp_path):
    f = tmp_path / "train.tsv"
    f.write_text(
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        '1\t1\t2\tHe said "hi" .\tShe said "hello" .\n'
        "0\t3\t4\t\tempty first\n",
        encoding="utf-8",
    )
    rows = list(read_records(f, columns_for("mrpc")))
    assert rows[0] == Record("0", 'He said "hi" .', 'She said "hello" .', "1")
    assert isinstance(rows[1], Reject) and "#1 String" in rows[1].reason


def test_cola_has_no_header(tmp_path):
    f = tmp_path / "train.tsv"
    f.write_text("gj04\t1\t\tOur friends won't buy this analysis.\n")
    (rec,) = read_records(f, columns_for("cola"))
    assert rec.text_a.startswith("Our friends") and rec.label == "1"


def test_missing_column_is_one_line_error(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("sentence,label\nhello,1\n")
    with pytest.raises(InputError, match="not found"):
        list(read_records(f, columns_for(text="text")))


def test_csv_wrong_field_count_rejected(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("text\tlabel\nfine row\t1\ntoo\tmany\tfields\n")
    rows = list(read_records(f, columns_for(text="text", label="label")))
    assert isinstance(rows[0], Record) and isinstance(rows[1], Reject)
    assert "fields" in rows[1].reason


def test_jsonl_bad_lines_rejected(tmp_path):
    f = tmp_path / "x.jsonl"
    lines = [
        json.dumps({"id": "a", "text": "ok", "label": 1}),
        "{not json",
        "[1, 2]",
        "",
        json.dumps({"id": "b", "text": "   "}),
    ]
    f.write_text("\n".join(lines) + "\n")
    rows = list(read_records(f, columns_for(text="text", label="label", id="id")))
    assert rows[0] == Record("a", "ok", None, "1")
    assert [type(r) for r in rows[1:]] == [Reject] * 4


def test_parquet_and_unknown_inputs(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "x.parquet"
    pq.write_table(pa.table({"text": ["a b", None], "label": [1, 0]}), f)
    rows = list(read_records(f, columns_for(text="text", label="label")))
    assert rows[0] == Record("0", "a b", None, "1") and isinstance(rows[1], Reject)
    with pytest.raises(InputError, match="not found"):
        list(read_records(tmp_path / "missing.tsv", columns_for("sst2")))
    (tmp_path / "x.parquet.bak").write_bytes(f.read_bytes())
    with pytest.raises(InputError, match="format"):
        list(read_records(tmp_path / "x.parquet.bak", columns_for("sst2")))
    with pytest.raises(InputError, match="preset"):
        columns_for("nosuchtask")
