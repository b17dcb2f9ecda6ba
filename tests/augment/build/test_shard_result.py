"""A worker's ShardResult is the shard's manifest entry (kdaug.manifest.ShardEntry) plus the
seconds the worker took to load its models: one declaration of the entry's fields, not two."""

from __future__ import annotations

from dataclasses import fields

from augment.build.shard import ShardResult
from kdaug.manifest import ShardEntry


def test_a_result_is_its_manifest_entry_and_its_load_time():
    assert issubclass(ShardResult, ShardEntry)
    entry_fields = [f.name for f in fields(ShardEntry)]
    assert [f.name for f in fields(ShardResult)] == [*entry_fields, "load_seconds"]
    values = {
        "index": 3,
        "rows_in": 5,
        "records": 4,
        "rows_rejected": 1,
        "variants": 12,
        "file": "data/part-00003.parquet",
        "sha256": "a" * 64,
        "rejects_file": "rejects/part-00003.jsonl",
        "rejects_sha256": "b" * 64,
        "first_row": 15,
        "seconds": 0.5,
        "stats": {"records": 4},
        "versions": {"kdaug": "1"},
    }
    assert set(values) == set(entry_fields)  # every field set: none left to its default
    entry = ShardResult(**values, load_seconds=2.5).entry()
    assert type(entry) is ShardEntry and entry == ShardEntry(**values)
