"""Pass-through columns on hostile input: every physical row is still a record or a reject, and
every record's other columns are text that a shard (Parquet, UTF-8) can hold, under the names
`passthrough_columns` found before reading."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augment.io.layout import ShardLayout
from augment.io.readers import (
    Columns,
    passthrough_columns,
    read_records,
)
from augment.io.writers import ShardWriter
from augment.records import Record, Reject, Variant
from kdaug.tables import count_input_rows

_KEYS = st.sampled_from(["text", "label", "id2", "é", "\ud800", "", "a b", "0", "variant"])
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
_LINE = st.one_of(
    st.dictionaries(_KEYS, _VALUES, max_size=5).map(lambda d: json.dumps(d)),
    st.sampled_from(["", "{", "[1]", '{"text": "x" "y"}', '{"text": "\\udc80 ok"}']),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(_LINE, max_size=12), with_text=st.lists(st.booleans(), max_size=12))
def test_hostile_json_lines_pass_through_into_a_shard(tmp_path, lines, with_text):
    body = []
    for i, line in enumerate(lines):
        if i < len(with_text) and with_text[i] and line.startswith("{") and line.endswith("}"):
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                obj["text"] = f"words number {i}"
                line = json.dumps(obj)
        body.append(line)
    f = tmp_path / "x.jsonl"
    f.write_text("\n".join(body) + ("\n" if body else ""), encoding="utf-8", errors="surrogatepass")
    cols = Columns("text")
    names = passthrough_columns(f, "jsonl", cols)
    assert "text" not in names and len(set(names)) == len(names)
    rows = list(read_records(f, cols, "jsonl", passthrough=names))
    assert len(rows) == count_input_rows(f, "jsonl")
    records = [r for r in rows if isinstance(r, Record)]
    assert len(records) + sum(isinstance(r, Reject) for r in rows) == len(rows)
    layout = ShardLayout.for_build(None, False, False, names)
    writer = ShardWriter(tmp_path / "data" / "part-00000.parquet", layout=layout)
    for r in records:
        assert set(r.passthrough or {}) <= set(names)
        writer.write([Variant(r.id, 0, r.text_a, None, None, [])], r.passthrough)
    path = writer.close()
    table = pq.read_table(path)
    assert table.num_rows == len(records)
    if names:
        stored = table.column("passthrough").to_pylist()
        assert [set(s) for s in stored] == [set(names)] * len(records)
