"""Bookkeeping costs O(1) per shard: the bookkeeping alone of a build of 100,000 shards (the
worker's completion record, the coordinator's record_shard, the manifest at the start and at the
end) writes as many bytes for its last shards as for its first."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from augment.build.manifest import finish_build, open_output, record_shard
from augment.build.shard import ShardResult
from kdaug.manifest import RECORDS_DIR, read_manifest, shard_name, write_manifest, write_record

SHARDS = 100_000
CHUNK = 500
IO = Path("/proc/self/io")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()  # the stand-in shard files are empty


def _bytes_written() -> int:
    """Bytes this process has handed to write() so far (the kernel's count)."""
    for line in IO.read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def _result(i: int) -> ShardResult:
    return ShardResult(
        index=i,
        first_row=5 * i,
        rows_in=5,
        records=5,
        rows_rejected=0,
        variants=10,
        file=f"data/{shard_name(i)}.parquet",
        sha256=EMPTY_SHA256,
        rejects_file=None,
        rejects_sha256=None,
        seconds=0.01,
        stats={"records": 5, "variants_out": 10},
        versions={"kdaug": "1", "mlm": None},
    )


def _finish_shards(out: Path, manifest, indices: range) -> float:
    """Bytes written per shard by the bookkeeping of the shards `indices`."""
    for i in indices:  # their data files (the shards' own bytes, not bookkeeping)
        (out / "data" / f"{shard_name(i)}.parquet").touch()
    before = _bytes_written()
    for i in indices:
        res = _result(i)
        write_record(out, res.entry())  # the worker, once the shard's files are durable
        record_shard(out, manifest, res)  # the coordinator, when the result arrives
    return (_bytes_written() - before) / len(indices)


@pytest.mark.skipif(not IO.exists(), reason="needs /proc/self/io (Linux)")
def test_bytes_written_per_shard_do_not_grow_over_100000_shards(tmp_path, monkeypatch):
    """The first and the last CHUNK shards go through the real functions and files; the shards
    in between enter the coordinator's state as record_shard leaves it (writing 10^5 files
    would take minutes), so the last shards meet a manifest of 99,000 entries."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # fsync adds no byte, only time
    out = tmp_path / "out"
    out.mkdir()
    fingerprint = {"format": "tsv", "columns": {"text_b": None}, "shard_size": 5, "config": {}}
    manifest = open_output(out, fingerprint, overwrite=False)
    write_manifest(out, manifest)  # the build starts
    (out / "data").mkdir()
    first = _finish_shards(out, manifest, range(CHUNK))
    for i in range(CHUNK, SHARDS - CHUNK):
        manifest.shards[shard_name(i)] = _result(i).entry()
    last = _finish_shards(out, manifest, range(SHARDS - CHUNK, SHARDS))
    print(f"bytes written per shard: first {CHUNK} shards {first:.0f}, last {CHUNK} {last:.0f}")
    assert 0 < first < 1_000
    assert last <= first * 1.02  # the index gains a digit at 100,000, nothing more
    manifest.num_shards = SHARDS
    before = _bytes_written()
    finish_build(out, manifest)  # once per build: every entry, on one line each
    assert _bytes_written() - before < 500 * SHARDS
    assert not (out / RECORDS_DIR).exists()
    loaded = read_manifest(out)
    assert loaded.complete and len(loaded.shards) == SHARDS
    assert loaded.shards[shard_name(SHARDS - 1)].to_dict() == _result(SHARDS - 1).entry().to_dict()
