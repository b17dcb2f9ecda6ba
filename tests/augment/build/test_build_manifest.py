"""The one manifest validator (kdaug.manifest, through augment.build.manifest), read by the
build and by every reader of a build; and the build package's one-way imports."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import augment.build
from augment.build.manifest import (
    LAYOUT_FORMAT,
    DamagedManifest,
    Manifest,
    manifest_problem,
    read_manifest,
)


def _manifest() -> dict:
    entry = {
        "index": 0,
        "file": "data/part-00000.parquet",
        "rejects_file": None,
        "sha256": "0" * 64,
        "rows_in": 2,
        "records": 2,
        "rows_rejected": 0,
        "variants": 6,
    }
    return {
        "format": LAYOUT_FORMAT,
        "fingerprint": {
            "format": "tsv",
            "columns": {"text_b": None},
            "shard_size": 2,
            "config": {},
        },
        "shards": {"part-00000": entry},
        "in_progress": [],
        "num_shards": 1,
        "complete": True,
    }


def test_a_kdaug_manifest_has_no_problem(tmp_path):
    assert manifest_problem(_manifest()) is None
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest()))
    manifest = read_manifest(tmp_path)
    assert manifest == Manifest.from_dict(_manifest())
    assert Manifest.from_dict(manifest.to_dict()) == manifest  # the typed object round-trips
    assert read_manifest(tmp_path / "absent") is None


def _with(path: str, value) -> dict:
    m = _manifest()
    *keys, last = path.split(".")
    target = m
    for k in keys:
        target = target[k]
    target[last] = value
    return m


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        ([], "a JSON list, not an object"),
        (_with("format", "other/1"), "its format is 'other/1'"),
        (_with("shards", ["part-00000"]), "no fingerprint or shards"),
        (_with("complete", "yes"), "no complete flag"),
        (_with("num_shards", -1), "no shard count"),
        (_with("fingerprint.columns", {}), "bad fingerprint"),
        (_with("shards.part-00000.file", "../victim"), "outside its own"),
        (_with("shards.part-00000.variants", True), "bad shard entry 'part-00000'"),
        (_with("in_progress", ["../x"]), "bad in_progress list"),
    ],
)
def test_each_problem_is_named(manifest, problem):
    assert problem in manifest_problem(manifest)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", "empty"),
        (b'{"a": "\xff"}', "byte 0xff at offset 7 is not UTF-8"),
        (b'{"format": ', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_unreadable_json_is_a_damaged_manifest(tmp_path, raw, problem):
    (tmp_path / "manifest.json").write_bytes(raw)
    with pytest.raises(DamagedManifest, match="manifest.json is damaged") as exc:
        read_manifest(tmp_path)
    assert problem in exc.value.problem


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_the_build_package_imports_one_way():
    """stats <- shard <- manifest <- spec <- executors <- build: never the reverse."""
    order = ["stats", "shard", "manifest", "spec", "executors", "build"]
    root = Path(augment.build.__file__).parent
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).with_suffix("")
        if rel.name == "__init__" and rel.parent == Path("."):
            continue
        own = order.index(rel.parts[0])
        for name in _imports(path):
            if name.startswith("augment.build."):
                other = name.split(".")[2]
                assert order.index(other) <= own, f"{rel} imports {name}"
