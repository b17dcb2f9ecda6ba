"""A build's manifest: what a `kdaug augment` output holds, loaded and verified the same way by
every step that reads it (the build when it resumes, export, inspect, teacher-logits, distill).

On disk the bookkeeping costs O(1) per shard:
- OUTDIR/manifest.json is written when a build starts (`complete: false`, the shards known then)
  and when it ends (`complete: true`, every shard's entry);
- each finished shard has a completion record, OUTDIR/.kdaug-done/part-NNNNN.json, published
  atomically by the worker once the shard's files are durable and before they get their final
  names: a shard file under its final name always has a record, so its record proves the file is
  kdaug's, and a crash after it leaves nothing to redo. A finished build's records are removed
  (its manifest lists every shard).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdaug.errors import KdaugError, one_line
from kdaug.files import hash_file, is_temp_name, write_text_atomic

LAYOUT_FORMAT = "kdaug-shards/1"
MANIFEST_NAME = "manifest.json"
RECORDS_DIR = ".kdaug-done"
SHARD_NAME = re.compile(r"^part-\d{5,}$")
REBUILD = "re-run the `kdaug augment` command that built it"
SHARD_COLUMNS = ("id", "variant", "text_a")  # in every shard; text_b in those of pair builds


def shard_name(index: int) -> str:
    return f"part-{index:05d}"


class DamagedManifest(KdaugError):
    """manifest.json (or a completion record) is not one kdaug can trust: `problem` says why."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path} is damaged ({problem})")


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


@dataclass
class ShardEntry:
    """One finished shard: its files (relative to the output), their sha256, its row counts."""

    index: int
    rows_in: int
    records: int
    rows_rejected: int
    variants: int
    file: str
    sha256: str
    rejects_file: str | None = None
    rejects_sha256: str | None = None
    first_row: int = 0
    seconds: float = 0.0
    stats: dict[str, int] = field(default_factory=dict)  # AugmentStats.to_entry()
    versions: dict[str, Any] | None = None  # in its completion record; the manifest keeps one

    @property
    def name(self) -> str:
        return shard_name(self.index)

    def files(self) -> list[str]:
        """Its shard and rejects files, relative to the output."""
        return [rel for rel in (self.file, self.rejects_file) if rel]

    def to_dict(self) -> dict[str, Any]:
        """The manifest's entry (without `versions`, which the manifest holds once)."""
        return {
            "index": self.index,
            "rows_in": self.rows_in,
            "records": self.records,
            "rows_rejected": self.rows_rejected,
            "variants": self.variants,
            "file": self.file,
            "sha256": self.sha256,
            "rejects_file": self.rejects_file,
            "rejects_sha256": self.rejects_sha256,
            "first_row": self.first_row,
            "seconds": self.seconds,
            "stats": dict(self.stats),
        }

    @classmethod
    def from_dict(cls, name: str, e: Any) -> ShardEntry:
        """The entry `e` of shard `name`; ValueError (the problem) when it is not a valid one.
        An entry must name its own files, so a manifest can never make kdaug delete or export
        anything else."""
        if not (isinstance(name, str) and SHARD_NAME.match(name) and isinstance(e, dict)):
            raise ValueError(f"bad shard entry {name!r}")
        own = (f"data/{name}.parquet", f"rejects/{name}.jsonl")
        if e.get("file") != own[0] or e.get("rejects_file") not in (None, own[1]):
            raise ValueError(
                f"shard entry {name!r} names files outside its own {' and '.join(own)}"
            )
        ok = (
            e.get("index") == int(name[5:])
            and isinstance(e.get("sha256"), str)
            and _count(e.get("rows_in"))
            and _count(e.get("records"))
            and _count(e.get("rows_rejected"))
            and _count(e.get("variants"))
            and (e.get("rejects_file") is None or isinstance(e.get("rejects_sha256"), str))
            and isinstance(e.get("stats", {}), dict)
            and isinstance(e.get("versions"), dict | None)
        )
        if not ok:
            raise ValueError(f"bad shard entry {name!r}")
        return cls(
            index=e["index"],
            rows_in=e["rows_in"],
            records=e["records"],
            rows_rejected=e["rows_rejected"],
            variants=e["variants"],
            file=e["file"],
            sha256=e["sha256"],
            rejects_file=e.get("rejects_file"),
            rejects_sha256=e.get("rejects_sha256"),
            first_row=e.get("first_row", 0),
            seconds=e.get("seconds", 0.0),
            stats=e.get("stats", {}),
            versions=e.get("versions"),
        )


@dataclass
class Manifest:
    """manifest.json, typed. `shards`: every shard known finished (the manifest's entries and,
    while the build is incomplete, its completion records), by name."""

    fingerprint: dict[str, Any]
    shards: dict[str, ShardEntry] = field(default_factory=dict)
    num_shards: int | None = None
    complete: bool = False
    versions: dict[str, Any] | None = None
    input: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    shard_layout: dict[str, Any] | None = None
    in_progress: list[str] = field(default_factory=list)  # older builds: dispatched shards
    format: str = LAYOUT_FORMAT

    @property
    def pair(self) -> bool:
        """Whether the build holds text pairs (it mapped a second text column)."""
        return self.fingerprint["columns"]["text_b"] is not None

    @property
    def task(self) -> str | None:
        return (self.fingerprint.get("columns") or {}).get("task")

    def entries(self) -> list[ShardEntry]:
        """The finished shards in index order."""
        return sorted(self.shards.values(), key=lambda e: e.index)

    def owned_files(self) -> set[str]:
        """Files (relative to the output) that this manifest proves are kdaug's."""
        files = {rel for e in self.shards.values() for rel in e.files()}
        for name in self.in_progress:
            files |= {f"data/{name}.parquet", f"rejects/{name}.jsonl"}
        return files

    def to_dict(self) -> dict[str, Any]:
        """manifest.json's object: shard entries in index order."""
        return {
            "format": self.format,
            "fingerprint": self.fingerprint,
            "versions": self.versions,
            "input": self.input,
            "config": self.config,
            "shard_layout": self.shard_layout,
            "shards": {e.name: e.to_dict() for e in self.entries()},
            "in_progress": self.in_progress,
            "num_shards": self.num_shards,
            "complete": self.complete,
        }

    @classmethod
    def from_dict(cls, m: Any) -> Manifest:
        """The manifest object `m`; ValueError (the problem) when it is not a kdaug manifest."""
        if not isinstance(m, dict):
            raise ValueError(f"a JSON {type(m).__name__}, not an object")
        if m.get("format") != LAYOUT_FORMAT:
            raise ValueError(f"its format is {m.get('format')!r}, not {LAYOUT_FORMAT!r}")
        fp = m.get("fingerprint")
        if not isinstance(fp, dict) or not isinstance(m.get("shards"), dict):
            raise ValueError("no fingerprint or shards")
        if not isinstance(m.get("complete"), bool):
            raise ValueError("no complete flag")
        if "num_shards" not in m or not (m["num_shards"] is None or _count(m["num_shards"])):
            raise ValueError("no shard count")
        for key in ("input", "config", "shard_layout", "versions"):
            if not isinstance(m.get(key), dict | None):
                raise ValueError(f"bad {key}")
        columns = fp.get("columns")
        if not (
            isinstance(fp.get("format"), str)
            and isinstance(columns, dict)
            and "text_b" in columns
            and isinstance(columns["text_b"], str | None)
            and _count(fp.get("shard_size"))
            and isinstance(fp.get("config"), dict)
        ):
            raise ValueError("bad fingerprint")
        shards = {name: ShardEntry.from_dict(name, e) for name, e in m["shards"].items()}
        in_progress = m.get("in_progress", [])
        if not isinstance(in_progress, list) or not all(
            isinstance(n, str) and SHARD_NAME.match(n) for n in in_progress
        ):
            raise ValueError("bad in_progress list")
        return cls(
            fingerprint=fp,
            shards=shards,
            num_shards=m["num_shards"],
            complete=m["complete"],
            versions=m.get("versions"),
            input=m.get("input"),
            config=m.get("config"),
            shard_layout=m.get("shard_layout"),
            in_progress=list(in_progress),
        )


def manifest_problem(m: Any) -> str | None:
    """What makes `m` unusable as a kdaug manifest, or None."""
    try:
        Manifest.from_dict(m)
    except ValueError as exc:
        return str(exc)
    return None


# --- reading and writing -------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    """The JSON at `path`; DamagedManifest when it is not valid UTF-8 JSON."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KdaugError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not raw.strip():
        raise DamagedManifest(path, "empty")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        problem = f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8"
        raise DamagedManifest(path, problem) from None
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        raise DamagedManifest(path, problem) from None
    except RecursionError:
        raise DamagedManifest(path, "nested too deeply") from None


def read_manifest(out: str | Path) -> Manifest | None:
    """The manifest of a build directory with its completion records (None when it has no
    manifest.json). One that is not kdaug's, or a record that is not, is a DamagedManifest:
    nothing can be resumed, deleted or exported on its word."""
    mf = Path(out) / MANIFEST_NAME
    if not mf.exists() and not mf.is_symlink():
        return None
    try:
        manifest = Manifest.from_dict(_read_json(mf))
    except ValueError as exc:
        raise DamagedManifest(mf, str(exc)) from None
    if not manifest.complete:
        manifest.shards.update(read_records(Path(out)))
        if manifest.versions is None:
            manifest.versions = next((e.versions for e in manifest.entries() if e.versions), None)
    return manifest


def write_manifest(out: Path, manifest: Manifest) -> None:
    """Publish manifest.json (atomically): at the start of a build and at its end only."""
    write_text_atomic(out / MANIFEST_NAME, manifest_text(manifest))


def manifest_text(manifest: Manifest) -> str:
    """manifest.json's text: indented, with one line per shard entry (Python's indenting JSON
    encoder takes four times as long, and 10^5 shards make tens of MB)."""
    d = manifest.to_dict()
    shards = d.pop("shards")
    head = json.dumps(d, indent=2, sort_keys=True)
    lines = ",\n".join(
        f"    {json.dumps(n)}: {json.dumps(e, sort_keys=True)}" for n, e in shards.items()
    )
    body = f'  "shards": {{\n{lines}\n  }}' if shards else '  "shards": {}'
    return f"{head.removesuffix(chr(10) + '}')},\n{body}\n}}\n"


def record_path(out: Path, name: str) -> Path:
    return out / RECORDS_DIR / f"{name}.json"


def write_record(out: Path, entry: ShardEntry) -> None:
    """Publish the completion record of a shard whose files are durable (a few hundred bytes)."""
    (out / RECORDS_DIR).mkdir(exist_ok=True)
    d = {**entry.to_dict(), "versions": entry.versions}
    write_text_atomic(record_path(out, entry.name), json.dumps(d, sort_keys=True) + "\n")


def read_records(out: Path) -> dict[str, ShardEntry]:
    """The completion records of `out`, by shard name. Anything else in their folder but
    kdaug's own temporary files is a DamagedManifest (kdaug cannot vouch for it)."""
    folder = out / RECORDS_DIR
    if not folder.is_dir() or folder.is_symlink():
        if folder.exists() or folder.is_symlink():
            raise DamagedManifest(folder, "not a folder")
        return {}
    records = {}
    with os.scandir(folder) as it:
        for item in it:
            if is_temp_name(item.name) and item.is_file(follow_symlinks=False):
                continue
            path = folder / item.name
            name = item.name.removesuffix(".json")
            if not (item.name.endswith(".json") and item.is_file(follow_symlinks=False)):
                raise DamagedManifest(path, "not a completion record of kdaug's")
            try:
                records[name] = ShardEntry.from_dict(name, _read_json(path))
            except ValueError as exc:
                raise DamagedManifest(path, str(exc)) from None
    return records


def remove_record(out: Path, name: str) -> None:
    record_path(out, name).unlink(missing_ok=True)


def remove_records(out: Path) -> None:
    """Delete the completion records (and their folder), once a manifest lists their shards."""
    folder = out / RECORDS_DIR
    if not folder.is_dir() or folder.is_symlink():
        return
    with os.scandir(folder) as it:
        for item in it:
            if item.name.endswith(".json") or is_temp_name(item.name):
                (folder / item.name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # someone else's file in it
        folder.rmdir()


# --- verifying ---------------------------------------------------------------------------------


def load_build(outdir: str | Path) -> Manifest:
    """The manifest of the build at `outdir` (for the steps that read a build), or a one-line
    KdaugError when the directory or its manifest is missing or damaged."""
    out = Path(outdir)
    if not out.is_dir():
        what = "does not exist" if not out.exists() else "is not a directory"
        raise KdaugError(f"{outdir} {what}: give the output directory of `kdaug augment`")
    try:
        manifest = read_manifest(out)
    except DamagedManifest as exc:
        raise KdaugError(
            f"{exc}: delete {outdir} (or move it away) and build it again with `kdaug augment`"
        ) from None
    if manifest is None:
        raise KdaugError(f"{outdir} has no manifest.json: is it the output of `kdaug augment`?")
    return manifest


def is_build(path: str | Path) -> bool:
    """Whether `path` is a directory with a manifest.json (a build to be verified)."""
    p = Path(path)
    return p.is_dir() and ((p / MANIFEST_NAME).exists() or (p / MANIFEST_NAME).is_symlink())


def sha256_matches(path: Path, sha: str | None) -> tuple[bool, os.stat_result | None]:
    """Whether `path` is a readable regular file whose sha256 is `sha` (and its stat)."""
    import hashlib

    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            digest = hash_file(hashlib.sha256(), f)
    except OSError:
        return False, None
    return digest.hexdigest() == sha, st


def shard_problem(out: Path, entry: ShardEntry) -> str | None:
    """Why a recorded shard cannot be used (a file missing, or not matching its sha256), or None."""
    for rel, sha in ((entry.file, entry.sha256), (entry.rejects_file, entry.rejects_sha256)):
        if rel is None:
            continue
        path = out / rel
        if not path.is_file():
            return f"{rel} is missing"
        if not sha256_matches(path, sha)[0]:
            return f"{rel} does not match its sha256 (changed or replaced)"
    return None


@dataclass(frozen=True)
class VerifiedShard:
    """One shard file as a reader verified it: where it is, its rows, its sha256, its identity."""

    name: str
    path: Path
    rows: int
    sha256: str
    identity: tuple[int, int, int, int]  # (device, inode, size, mtime_ns) when it was verified


def identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def verified_shards(
    outdir: str | Path, manifest: Manifest | None = None, *, allow_incomplete: bool = False
) -> list[VerifiedShard]:
    """The shards of the build at `outdir`, in order, each checked: the build complete (unless
    `allow_incomplete`: then its finished shards), every shard 0..num_shards-1 recorded, its files
    present with their recorded sha256, its Parquet file readable with the shard columns and the
    recorded row count. Anything else is a one-line KdaugError naming the shard. The one check of
    a build for every step that reads one."""
    out = Path(outdir)
    manifest = manifest or load_build(out)
    if not manifest.complete and not allow_incomplete:
        raise KdaugError(
            f"{out} is not complete (its build has not finished: {len(manifest.shards)} shards "
            f"done so far); {REBUILD} to finish it first"
        )
    count = manifest.num_shards
    if count is None or not manifest.complete:
        names = [e.name for e in manifest.entries()]
    else:
        names = [shard_name(i) for i in range(count)]
        unexpected = sorted(set(manifest.shards) - set(names))
        if unexpected:
            raise KdaugError(
                f"{out} is damaged: manifest.json lists shard {unexpected[0]} beyond its {count} "
                f"shards; {REBUILD}"
            )
    result = []
    for name in names:
        entry = manifest.shards.get(name)
        if entry is None:
            raise KdaugError(
                f"{out} is damaged: shard {name} is missing from manifest.json; {REBUILD}"
            )
        result.append(_verify_shard(out, entry, manifest.pair))
    return result


def _verify_shard(out: Path, entry: ShardEntry, pair: bool) -> VerifiedShard:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def damaged(why: str) -> KdaugError:
        return KdaugError(f"{out} is damaged: shard {entry.name} ({entry.file}) {why}; {REBUILD}")

    path = out / entry.file
    if not path.resolve().is_relative_to(out.resolve()):
        raise damaged("points outside the build")
    if not path.is_file():
        raise damaged("is missing")
    ok, st = sha256_matches(path, entry.sha256)
    if st is None:
        raise damaged("cannot be read")
    if not ok:
        raise damaged("does not match its sha256 in manifest.json (changed or replaced)")
    if entry.rejects_file and (problem := shard_problem(out, entry)):
        raise KdaugError(f"{out} is damaged: shard {entry.name}: {problem}; {REBUILD}")
    try:
        meta = pq.read_metadata(path)
        names = set(meta.schema.to_arrow_schema().names)
    except (pa.ArrowException, OSError) as exc:
        raise damaged(f"is not a readable Parquet file ({one_line(exc, 200)})") from None
    missing = [c for c in SHARD_COLUMNS + ("text_b",) * pair if c not in names]
    if missing:
        raise damaged(f"lacks the columns {missing}")
    if meta.num_rows != entry.variants:
        raise damaged(f"holds {meta.num_rows} rows, manifest.json records {entry.variants}")
    return VerifiedShard(entry.name, path, entry.variants, entry.sha256, identity(st))
