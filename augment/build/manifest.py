"""manifest.json: what a build directory holds and which of its files kdaug provably wrote.

One reader validates it for every command (the build, export, inspect); the coordinator writes
it atomically whenever a shard is dispatched or recorded. kdaug only ever deletes files that the
manifest lists (finished or dispatched shards) and its own marked temporary files."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from augment.build.shard import ShardResult, ShardTask, shard_name
from augment.io.card import remove_card
from kdaug.errors import KdaugError
from kdaug.files import is_temp_name, sha256_file, write_json_atomic

log = logging.getLogger(__name__)
LAYOUT_FORMAT = "kdaug-shards/1"
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".kdaug.lock"
SHARD_NAME = re.compile(r"^part-\d{5}$")


class DamagedManifest(KdaugError):
    """manifest.json is not a kdaug manifest that can be trusted: `problem` says why."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path} is damaged ({problem})")


def read_manifest(out: str | Path) -> dict[str, Any] | None:
    """The manifest of a build directory (None when there is none). A manifest that cannot be
    read is a one-line KdaugError; one that is not valid UTF-8 JSON in kdaug's layout is a
    DamagedManifest: nothing can be resumed, deleted or exported on its word."""
    mf = Path(out) / MANIFEST_NAME
    if not mf.exists() and not mf.is_symlink():
        return None
    try:
        raw = mf.read_bytes()
    except OSError as exc:
        raise KdaugError(f"cannot read {mf}: {exc.strerror or exc}") from None
    if not raw.strip():
        raise DamagedManifest(mf, "empty")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        problem = f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8"
        raise DamagedManifest(mf, problem) from None
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        raise DamagedManifest(mf, problem) from None
    except RecursionError:
        raise DamagedManifest(mf, "nested too deeply") from None
    if problem := manifest_problem(manifest):
        raise DamagedManifest(mf, problem)
    manifest.setdefault("in_progress", [])  # manifests written before it existed
    return manifest


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def manifest_problem(m: Any) -> str | None:
    """What makes `m` unusable as a kdaug manifest, or None. Shard entries must name their own
    files, so that a manifest can never make kdaug delete (or export) anything else."""
    if not isinstance(m, dict):
        return f"a JSON {type(m).__name__}, not an object"
    if m.get("format") != LAYOUT_FORMAT:
        return f"its format is {m.get('format')!r}, not {LAYOUT_FORMAT!r}"
    fp = m.get("fingerprint")
    if not isinstance(fp, dict) or not isinstance(m.get("shards"), dict):
        return "no fingerprint or shards"
    if not isinstance(m.get("complete"), bool):
        return "no complete flag"
    if "num_shards" not in m or not (m["num_shards"] is None or _count(m["num_shards"])):
        return "no shard count"
    if not isinstance(m.get("input"), dict | None):
        return "bad input"
    columns = fp.get("columns")
    if not (
        isinstance(fp.get("format"), str)
        and isinstance(columns, dict)
        and "text_b" in columns
        and isinstance(columns["text_b"], str | None)
        and _count(fp.get("shard_size"))
        and isinstance(fp.get("config"), dict)
    ):
        return "bad fingerprint"
    for name, e in m["shards"].items():
        if not (SHARD_NAME.match(name) and isinstance(e, dict)):
            return f"bad shard entry {name!r}"
        own = (f"data/{name}.parquet", f"rejects/{name}.jsonl")
        if e.get("file") != own[0] or e.get("rejects_file") not in (None, own[1]):
            return f"shard entry {name!r} names files outside its own {' and '.join(own)}"
        ok = (
            e.get("index") == int(name[5:])
            and isinstance(e.get("sha256"), str)
            and all(_count(e.get(k)) for k in ("rows_in", "records", "rows_rejected", "variants"))
        )
        if not ok:
            return f"bad shard entry {name!r}"
    in_progress = m.get("in_progress", [])
    if not isinstance(in_progress, list) or not all(
        isinstance(n, str) and SHARD_NAME.match(n) for n in in_progress
    ):
        return "bad in_progress list"
    return None


def open_output(out: Path, fingerprint: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """The manifest of `out`: loaded when it matches `fingerprint`, else new.

    A directory that is not a kdaug build, or whose data/ or rejects/ hold files the manifest does
    not list, is refused (even with `overwrite`). Output built with another fingerprint is
    replaced only with `overwrite`, or when it recorded no shard (a failed run blocks nothing);
    replacing deletes only the files the old manifest lists and kdaug's own temporary files."""
    manifest = load_build_manifest(out)
    if manifest is None:
        if extra := untracked_entries(out):
            raise KdaugError(not_a_build(out, extra))
        _remove_temp_files(out)
    else:
        if foreign := _foreign_files(out, manifest):
            raise KdaugError(
                f"{out} holds files this build did not write ({first_few(foreign)}): kdaug "
                "neither deletes them nor mixes them into its output; move them out of data/ and "
                "rejects/, or choose another --output"
            )
        _remove_temp_files(out)
        if manifest["fingerprint"] == fingerprint and not overwrite:
            return manifest
        if manifest["shards"] and not overwrite:
            what = _differences(manifest["fingerprint"], fingerprint)
            raise KdaugError(
                f"{out} holds output built with a different {what}: pass --overwrite to "
                "replace it, or choose another --output"
            )
        if not manifest["shards"]:
            log.info("%s holds a build that recorded no shard: replacing it", out)
        remove_build(out, manifest)
    manifest = {
        "format": LAYOUT_FORMAT,
        "fingerprint": fingerprint,
        "versions": None,
        "shards": {},
        "in_progress": [],
        "num_shards": None,
        "complete": False,
    }
    write_manifest(out, manifest)
    return manifest


def load_build_manifest(out: Path) -> dict[str, Any] | None:
    """`read_manifest` for the build, whose refusal of a damaged manifest says what to do."""
    try:
        return read_manifest(out)
    except DamagedManifest as exc:
        raise KdaugError(
            f"{exc}, so kdaug cannot tell which files there it wrote and neither resumes nor "
            f"overwrites it: delete {out} (or move it away) and run the command again, or choose "
            "another --output"
        ) from None


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    write_json_atomic(out / MANIFEST_NAME, manifest)


def not_a_build(out: Path, extra: list[str]) -> str:
    return (
        f"output {out} is not empty and is not a kdaug build (no manifest.json; it holds "
        f"{first_few(extra)}): "
        "kdaug does not delete what it did not write, even with --overwrite; choose an empty or "
        "new --output"
    )


def first_few(names: list[str]) -> str:
    """The first three of `names`, and how many more there are."""
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if names[3:] else "")


def _shard_files(entry: dict[str, Any]) -> list[str]:
    """The files (relative to the output) of one manifest shard entry: its shard and rejects."""
    return [rel for rel in (entry["file"], entry.get("rejects_file")) if rel]


def untracked_entries(out: Path) -> list[str]:
    """Entries of a directory without a manifest other than kdaug's lock and temporary files."""
    if not out.is_dir():
        return []
    return sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME and not _is_own_temp(p))


def _is_own_temp(p: Path) -> bool:
    return is_temp_name(p.name) and p.is_file() and not p.is_symlink()


def _owned_files(manifest: dict[str, Any]) -> set[str]:
    """Relative paths of the shard and rejects files that `manifest` proves are kdaug's: those of
    recorded shards, and the names of shards dispatched but not recorded (killed mid-write)."""
    files = {rel for e in manifest["shards"].values() for rel in _shard_files(e)}
    for name in manifest["in_progress"]:
        files |= {f"data/{name}.parquet", f"rejects/{name}.jsonl"}
    return files


def _foreign_files(out: Path, manifest: dict[str, Any]) -> list[str]:
    """Files in data/ and rejects/ that are neither listed by `manifest` nor kdaug's temporary
    files: someone else's, which kdaug must neither delete nor ship with its shards."""
    owned = _owned_files(manifest)
    foreign = []
    for sub in ("data", "rejects"):
        d = out / sub
        if not d.is_dir() or d.is_symlink():
            if d.exists() or d.is_symlink():
                foreign.append(sub)
            continue
        for p in sorted(d.iterdir()):
            rel = f"{sub}/{p.name}"
            if not (p.is_file() and not p.is_symlink() and rel in owned) and not _is_own_temp(p):
                foreign.append(rel)
    return foreign


def _remove_temp_files(out: Path) -> None:
    """Delete kdaug's leftover temporary files (`.NAME.kdaug-PID.tmp`) of interrupted writes."""
    for d in (out, out / "data", out / "rejects"):
        for p in d.iterdir() if d.is_dir() else ():
            if _is_own_temp(p):
                p.unlink(missing_ok=True)


def remove_build(out: Path, manifest: dict[str, Any]) -> None:
    """Delete what `manifest` proves kdaug wrote, the manifest last (so that an interrupted
    removal can be repeated), and data/ and rejects/ when that leaves them empty."""
    for rel in sorted(_owned_files(manifest)):
        (out / rel).unlink(missing_ok=True)
    _remove_temp_files(out)
    (out / "stats.json").unlink(missing_ok=True)
    remove_card(out)
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    for sub in ("data", "rejects"):
        with contextlib.suppress(OSError):  # absent, or holding files that are not kdaug's
            (out / sub).rmdir()


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = [k for k in new if k != "config" and old.get(k) != new[k]]
    oc, nc = old.get("config") or {}, new["config"]
    keys += [f"config.{k}" for k in nc if oc.get(k) != nc[k]]
    return ", ".join(keys[:6]) or "layout"


def verify_shards(out: Path, manifest: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Recorded shards whose files still match their checksums; the others are dropped from the
    manifest (and redone), their files deleted first, so that no unlisted file is left."""
    good: dict[int, dict[str, Any]] = {}
    for name, e in sorted(manifest["shards"].items()):
        ok = _matches(out / e["file"], e["sha256"])
        if e.get("rejects_file"):
            ok = ok and _matches(out / e["rejects_file"], e["rejects_sha256"])
        if ok:
            good[e["index"]] = e
        else:
            log.warning("shard %s is missing or fails its checksum: redoing it", name)
            for rel in _shard_files(e):
                (out / rel).unlink(missing_ok=True)
    if len(good) < len(manifest["shards"]):
        manifest["complete"] = False
    manifest["shards"] = {shard_name(i): e for i, e in good.items()}
    return good


def _matches(path: Path, sha: str | None) -> bool:
    return path.is_file() and sha256_file(path) == sha


def dispatched(
    tasks: Iterator[ShardTask], manifest: dict[str, Any], out: Path
) -> Iterator[ShardTask]:
    """Record each shard in the manifest's `in_progress` before a worker gets it, so that files
    of a shard killed between its write and its record are still provably kdaug's."""
    for task in tasks:
        name = shard_name(task.index)
        if name not in manifest["in_progress"]:
            manifest["in_progress"] = sorted([*manifest["in_progress"], name])
            write_manifest(out, manifest)
        yield task


def record_shard(out: Path, manifest: dict[str, Any], res: ShardResult) -> None:
    """Record a finished shard (its files durable) in the manifest, no longer in progress. Every
    shard of a build must have been made with the same models and library versions."""
    if manifest["versions"] is None:
        manifest["versions"] = res.versions
    elif manifest["versions"] != res.versions:
        raise KdaugError(
            f"{out} was built with {manifest['versions']} but this run loads {res.versions}: "
            "pass --overwrite to rebuild it"
        )
    name = shard_name(res.index)
    entry = asdict(res)
    for k in ("versions", "load_seconds"):
        entry.pop(k)
    manifest["shards"][name] = entry
    if name in manifest["in_progress"]:
        manifest["in_progress"].remove(name)
    write_manifest(out, manifest)


def drop_shards(out: Path, manifest: dict[str, Any], names: set[str]) -> None:
    """Forget the shards `names` and delete their files (before the manifest that no longer
    lists them is written, so that no unlisted file of kdaug's is left)."""
    for name in sorted(names):
        for rel in _shard_files(manifest["shards"].pop(name)):
            (out / rel).unlink(missing_ok=True)
    write_manifest(out, manifest)


def check_accounting(manifest: dict[str, Any], rows_read: int, source: str) -> None:
    """rows in = records + rows rejected, per shard and overall, and every shard recorded."""
    shards = manifest["shards"]
    missing = [shard_name(i) for i in range(manifest["num_shards"]) if shard_name(i) not in shards]
    if missing:
        raise KdaugError(f"shards {missing[:5]} were not recorded; re-run to finish them")
    for name, e in shards.items():
        if e["rows_in"] != e["records"] + e["rows_rejected"]:
            raise KdaugError(f"row accounting failed in {name}: {e}")
    total = sum(e["rows_in"] for e in shards.values())
    if total != rows_read:
        raise KdaugError(f"row accounting failed: read {rows_read} rows of {source}, {total} out")
