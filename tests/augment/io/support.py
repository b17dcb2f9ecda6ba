"""Shared pieces of the export and inspect tests: running the CLI, one-line errors, the files a
failed export may leave behind, and damaged manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdaug.cli import main

ROWS = 12
SHARD_SIZE = 5  # three shards: 5 + 5 + 2 rows


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str, status: int = 1) -> None:
    """One `kdaug: error:` line naming `needles`; exit status 1 (2: a wrong command line)."""
    assert code == status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kdaug: error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in err


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith(".tmp"))


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def shard(out: Path, i: int) -> Path:
    return out / "data" / f"part-{i:05d}.parquet"


DAMAGED = {
    "empty": b"",
    "truncated": None,  # the first half of the real manifest
    "list": b"[]",
    "null": b"null",
    "not utf-8": b'{"complete": true, "x": "\xff"}',
    "no shards": b'{"format": "kdaug-shards/1", "complete": true}',
    "shards not a mapping": None,
}


def damage(out: Path, kind: str) -> None:
    """Replace the build's manifest.json by one of the DAMAGED kinds."""
    mf = out / "manifest.json"
    raw = mf.read_bytes()
    if kind == "truncated":
        data = raw[: len(raw) // 2]
    elif kind == "shards not a mapping":
        m = json.loads(raw)
        m["shards"] = ["part-00000"]
        data = json.dumps(m).encode()
    else:
        data = DAMAGED[kind]
    mf.write_bytes(data)
