"""Unreadable rows and rows with empty required fields go to rejects/ with their reason, and
rows in = records + rows rejected, per shard and overall."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from augment.io.readers import Columns
from tests.augment.build.support import SENTENCES, build_with, make_spec


def _read_rejects(out):
    return [
        json.loads(line)
        for f in sorted((out / "rejects").glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]


def test_csv_rejects_are_counted_and_explained(tmp_path, augmenter, capsys):
    path = tmp_path / "train.csv"
    lines = ["sentence,label"]
    for i in range(45):
        if i == 3:
            lines.append("too,many,fields")
        elif i == 25:
            lines.append('"",1')
        elif i == 41:
            lines.append("   ,0")
        else:
            lines.append(f'"{SENTENCES[i % 12]}, said ""critic {i}""",{i % 2}')
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    spec = make_spec(path, out, columns=Columns("sentence", label="label"), task=None)
    stats = build_with(spec, augmenter)
    assert stats["rows_in"] == 45 == stats["records"] + stats["rows_rejected"]
    assert stats["rows_rejected"] == 3
    rejects = _read_rejects(out)
    assert [r["row"] for r in rejects] == [3, 25, 41]
    assert "3 fields, the header has 2" in rejects[0]["reason"]
    assert "empty or missing text" in rejects[1]["reason"]
    assert sorted(p.name for p in (out / "rejects").iterdir()) == [
        "part-00000.jsonl",
        "part-00001.jsonl",
        "part-00002.jsonl",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    for e in manifest["shards"].values():
        assert e["rows_in"] == e["records"] + e["rows_rejected"] == min(20, 45 - e["first_row"])
    ids = pq.read_table(sorted((out / "data").glob("*.parquet")), columns=["id"]).column("id")
    assert {"3", "25", "41"}.isdisjoint(ids.to_pylist())
    assert "45 rows in = 42 records + 3 rejected" in capsys.readouterr().out


def test_jsonl_rejects(tmp_path, augmenter):
    path = tmp_path / "train.jsonl"
    lines = []
    for i in range(30):
        if i == 2:
            lines.append('{"text": "unterminated')
        elif i == 5:
            lines.append("")
        elif i == 7:
            lines.append('["a", "list"]')
        elif i == 21:
            lines.append(json.dumps({"text": "", "label": "1"}))
        else:
            lines.append(json.dumps({"text": SENTENCES[i % 12], "label": str(i % 2), "k": i}))
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    spec = make_spec(path, out, columns=Columns("text", label="label"), task=None)
    stats = build_with(spec, augmenter)
    assert (stats["rows_in"], stats["records"], stats["rows_rejected"]) == (30, 26, 4)
    reasons = {r["row"]: r["reason"] for r in _read_rejects(out)}
    assert sorted(reasons) == [2, 5, 7, 21]
    assert reasons[2].startswith("invalid JSON")
    assert reasons[5] == "blank line"
    assert "not an object" in reasons[7]
    assert "empty or missing text" in reasons[21]
