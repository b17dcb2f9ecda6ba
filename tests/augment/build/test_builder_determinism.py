"""The same seed and input give the same bytes whatever the workers, batch size or format."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from augment.build.build import build
from augment.io.readers import columns_for
from tests.augment.build.support import build_with, make_spec, shard_bytes


def test_two_worker_processes_match_one(tmp_path, sst2_input, reference):
    out = tmp_path / "out"
    stats = build(make_spec(sst2_input, out, workers=2))
    assert stats["shards"] == 10
    assert shard_bytes(out) == shard_bytes(reference)


def test_batch_size_does_not_change_bytes(tmp_path, sst2_input, reference, augmenter):
    for batch_size in (7, 64):
        out = tmp_path / f"b{batch_size}"
        build_with(make_spec(sst2_input, out, config={"batch_size": batch_size}), augmenter)
        assert shard_bytes(out) == shard_bytes(reference), batch_size


def test_shards_concatenate_to_a_single_shard_build(tmp_path, sst2_input, reference, augmenter):
    out = tmp_path / "one"
    build_with(make_spec(sst2_input, out, shard_size=1000), augmenter)
    whole = pq.read_table(out / "data" / "part-00000.parquet")
    parts = pq.read_table(sorted((reference / "data").glob("*.parquet")))
    assert whole.equals(parts)
    assert whole.num_rows == json.loads((reference / "stats.json").read_text())["variants_out"]


def test_saved_hf_dataset_matches_the_tsv(tmp_path, sst2_input, reference, augmenter):
    import csv

    import datasets

    with open(sst2_input, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    ds = datasets.Dataset.from_list(rows)
    ds.save_to_disk(str(tmp_path / "hf"))
    out = tmp_path / "out"
    stats = build_with(
        make_spec(tmp_path / "hf", out, columns=columns_for("sst2"), fmt=None), augmenter
    )
    assert stats["rows_in"] == 200
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fingerprint"]["format"] == "hf"
    assert shard_bytes(out) == shard_bytes(reference)
