"""Rows that used to break a whole build: ids repeated across shards, a text longer than spaCy
tags, JSON lines whose rows each bring keys of their own. Each is rejected with its line and
reason, its shard completes, and rows in = records + rejects."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from augment.io.readers import MAX_PASSTHROUGH_COLUMNS, MAX_TEXT_CHARS, Columns
from tests.augment.build.support import SENTENCES, build_with, make_spec


def _rejects(out) -> list[dict]:
    return [
        json.loads(line)
        for f in sorted((out / "rejects").glob("*.jsonl"))
        for line in f.read_text(encoding="utf-8").splitlines()
    ]


def _groups(out) -> list[tuple[str, int]]:
    files = sorted((out / "data").glob("*.parquet"))
    table = pq.read_table(files, columns=["id", "variant"])
    ids, variants = table.column("id").to_pylist(), table.column("variant").to_pylist()
    return list(zip(ids, variants, strict=True))


def test_duplicate_ids_across_shards_are_rejected(tmp_path, augmenter):
    f = tmp_path / "train.jsonl"
    ids = [1, "1", 2, 3, 4, 2, "4", 5]  # shards of 3 rows: repeats within and across shards
    rows = [{"id": v, "sentence": f"{SENTENCES[i]} ({i})"} for i, v in enumerate(ids)]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    spec = make_spec(f, out, columns=Columns("sentence", id="id"), task=None, shard_size=3)
    stats = build_with(spec, augmenter)
    assert stats["rows_in"] == 8 == stats["records"] + stats["rows_rejected"]
    assert stats["rows_rejected"] == 3
    rejects = _rejects(out)
    assert [(r["line"], r["id"]) for r in rejects] == [(2, "1"), (6, "2"), (7, "4")]
    assert all(r["reason"].startswith("duplicate id ") for r in rejects)
    groups = _groups(out)
    assert len(groups) == len(set(groups))  # no (id, variant) twice
    assert sorted({i for i, _ in groups}) == ["1", "2", "3", "4", "5"]


def test_a_text_longer_than_spacy_takes_is_rejected_and_its_shard_completes(tmp_path, augmenter):
    f = tmp_path / "train.tsv"
    lines = ["sentence\tlabel"] + [f"{s}\t1" for s in SENTENCES[:4]]
    lines.insert(3, "word " * (MAX_TEXT_CHARS // 5) + "x\t0")  # 1,000,001 characters
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    stats = build_with(make_spec(f, out), augmenter)
    assert stats["rows_in"] == 5 == stats["records"] + stats["rows_rejected"]
    (reject,) = _rejects(out)
    assert reject["line"] == 4
    assert "has 1,000,001 characters, more than the 1,000,000" in reject["reason"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True


def test_json_rows_with_keys_of_their_own_keep_the_columns_bounded(tmp_path, augmenter):
    """Rows with 20 keys of their own each: their union made a pass-through column per key
    (1,000 such rows: 20,000 columns, 2.6 GB and 2 minutes for one shard). Now the first 256
    keys are the columns, so a shard's cells are bounded by its rows, and the rows with other
    keys are rejected with the reason."""
    f = tmp_path / "keys.jsonl"
    with open(f, "w", encoding="utf-8") as fh:
        for i in range(300):
            row = {"text": f"{SENTENCES[i % 12]} ({i})"} | {f"k{i}_{k}": k for k in range(20)}
            fh.write(json.dumps(row) + "\n")
    out = tmp_path / "out"
    spec = make_spec(f, out, columns=Columns("text"), task=None, shard_size=100)
    stats = build_with(spec, augmenter)
    assert stats["rows_in"] == 300 == stats["records"] + stats["rows_rejected"] == 12 + 288
    schema = pq.read_schema(out / "data" / "part-00000.parquet")
    carried = schema.field("passthrough").type
    assert [carried.field(i).name for i in range(carried.num_fields)] == [
        f"k{i}_{k}" for i in range(13) for k in range(20)
    ][:MAX_PASSTHROUGH_COLUMNS]
    rejects = _rejects(out)
    assert rejects[0]["line"] == 13 and rejects[-1]["line"] == 300
    assert "beyond the first 256 keys of this file" in rejects[0]["reason"]
