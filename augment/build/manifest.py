"""A build's bookkeeping on the builder's side: opening an output (resume, replace, refuse),
recording finished shards, dropping bad ones, and removing a build.

The typed manifest, its one loader and its one verifier live in kdaug.manifest (every reader of a
build uses them). manifest.json is written when a build starts and when it ends; in between each
finished shard has its own small completion record, so bookkeeping costs O(1) per shard. kdaug
only ever deletes files that the manifest or a completion record lists, and its own marked
temporary files."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from augment.build.shard import ShardResult
from augment.io.card import remove_card
from kdaug.errors import KdaugError
from kdaug.files import is_temp_name
from kdaug.manifest import (
    LAYOUT_FORMAT,
    MANIFEST_NAME,
    RECORDS_DIR,
    DamagedManifest,
    Manifest,
    ShardEntry,
    manifest_problem,
    read_manifest,
    read_records,
    record_path,
    remove_record,
    remove_records,
    shard_name,
    shard_problem,
    write_manifest,
    write_record,
)

__all__ = [
    "LAYOUT_FORMAT",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "DamagedManifest",
    "Manifest",
    "manifest_problem",
    "read_manifest",
    "write_manifest",
]

log = logging.getLogger(__name__)
LOCK_NAME = ".kdaug.lock"


def open_output(out: Path, fingerprint: dict[str, Any], overwrite: bool) -> Manifest:
    """The manifest of `out` (with its completion records): loaded when it matches
    `fingerprint`, else a new one (written by the caller when the build starts).

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
        if manifest.complete:
            remove_records(out)  # left by a run stopped as it removed them
        if manifest.fingerprint == fingerprint and not overwrite:
            return manifest
        if manifest.shards and not overwrite:
            what = _differences(manifest.fingerprint, fingerprint)
            raise KdaugError(
                f"{out} holds output built with a different {what}: pass --overwrite to "
                "replace it, or choose another --output"
            )
        if not manifest.shards:
            log.info("%s holds a build that recorded no shard: replacing it", out)
        remove_build(out, manifest)
    return Manifest(fingerprint=fingerprint)


def load_build_manifest(out: Path) -> Manifest | None:
    """`read_manifest` for the build, whose refusal of a damaged manifest says what to do."""
    try:
        return read_manifest(out)
    except DamagedManifest as exc:
        raise KdaugError(
            f"{exc}, so kdaug cannot tell which files there it wrote and neither resumes nor "
            f"overwrites it: delete {out} (or move it away) and run the command again, or choose "
            "another --output"
        ) from None


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


def untracked_entries(out: Path) -> list[str]:
    """Entries of a directory without a manifest other than kdaug's lock and temporary files."""
    if not out.is_dir():
        return []
    return sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME and not _is_own_temp(p))


def _is_own_temp(p: Path) -> bool:
    return is_temp_name(p.name) and p.is_file() and not p.is_symlink()


def _foreign_files(out: Path, manifest: Manifest) -> list[str]:
    """Files in data/ and rejects/ that are neither listed by `manifest` (or a completion record)
    nor kdaug's temporary files: someone else's, which kdaug must neither delete nor ship with
    its shards."""
    owned = manifest.owned_files()
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
    for d in (out, out / "data", out / "rejects", out / RECORDS_DIR):
        for p in d.iterdir() if d.is_dir() and not d.is_symlink() else ():
            if _is_own_temp(p):
                p.unlink(missing_ok=True)


def remove_build(out: Path, manifest: Manifest) -> None:
    """Delete what `manifest` proves kdaug wrote, its completion records and the manifest last
    (so that an interrupted removal can be repeated), and data/ and rejects/ when that leaves
    them empty."""
    for rel in sorted(manifest.owned_files()):
        (out / rel).unlink(missing_ok=True)
    _remove_temp_files(out)
    (out / "stats.json").unlink(missing_ok=True)
    remove_card(out)
    remove_records(out)
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    for sub in ("data", "rejects"):
        with contextlib.suppress(OSError):  # absent, or holding files that are not kdaug's
            (out / sub).rmdir()


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = [k for k in new if k != "config" and old.get(k) != new[k]]
    oc, nc = old.get("config") or {}, new["config"]
    keys += [f"config.{k}" for k in nc if oc.get(k) != nc[k]]
    return ", ".join(keys[:6]) or "layout"


def verify_shards(out: Path, manifest: Manifest) -> dict[int, ShardEntry]:
    """Finished shards whose files still match their checksums (kdaug.manifest.shard_problem);
    the others are dropped (and redone), their files deleted before their record, so that no
    unlisted file is left."""
    good: dict[int, ShardEntry] = {}
    for e in manifest.entries():
        if (problem := shard_problem(out, e)) is None:
            good[e.index] = e
            continue
        log.warning("shard %s: %s: redoing it", e.name, problem)
        _drop(out, manifest, e)
    if len(good) < (manifest.num_shards or 0):
        manifest.complete = False
    return good


def _drop(out: Path, manifest: Manifest, entry: ShardEntry) -> None:
    for rel in entry.files():
        (out / rel).unlink(missing_ok=True)
    remove_record(out, entry.name)
    manifest.shards.pop(entry.name, None)


def record_shard(out: Path, manifest: Manifest, res: ShardResult) -> None:
    """Take a finished shard into the build (coordinator side): its files must be in `out` with
    the sha256 its worker reported (whichever executor wrote them), its completion record is written if its worker did not,
    and every shard of a build must have been made with the same models and library versions.
    O(1): manifest.json is not rewritten."""
    entry = res.entry()
    if manifest.versions is None:
        manifest.versions = res.versions
    elif manifest.versions != res.versions:
        raise KdaugError(
            f"{out} was built with {manifest.versions} but this run loads {res.versions}: "
            "pass --overwrite to rebuild it"
        )
    if problem := shard_problem(out, entry):  # the files as its worker reported them
        raise KdaugError(
            f"shard {entry.name} was reported done but in {out} {problem} (did its worker write "
            "to another directory, or another worker to the same file?); re-run to redo it"
        )
    if not record_path(out, entry.name).is_file():
        write_record(out, entry)
    manifest.shards[entry.name] = entry


def drop_shards(out: Path, manifest: Manifest, names: set[str]) -> None:
    """Forget the shards `names`, and those whose workers recorded them after the coordinator
    stopped taking results: their files are deleted, then their completion records."""
    for name in sorted(names):
        if (entry := manifest.shards.get(name)) is not None:
            _drop(out, manifest, entry)
    for name, entry in read_records(out).items():
        if name not in manifest.shards:
            _drop(out, manifest, entry)


def finish_build(out: Path, manifest: Manifest) -> None:
    """Publish the complete manifest (every shard's entry), then remove the completion records
    it makes redundant."""
    manifest.complete = True
    manifest.in_progress = []
    write_manifest(out, manifest)
    remove_records(out)


def check_accounting(manifest: Manifest, rows_read: int, source: str) -> None:
    """rows in = records + rows rejected, per shard and overall, and every shard recorded."""
    shards = manifest.shards
    missing = [shard_name(i) for i in range(manifest.num_shards) if shard_name(i) not in shards]
    if missing:
        raise KdaugError(f"shards {missing[:5]} were not recorded; re-run to finish them")
    for name, e in shards.items():
        if e.rows_in != e.records + e.rows_rejected:
            raise KdaugError(f"row accounting failed in {name}: {e.to_dict()}")
    total = sum(e.rows_in for e in shards.values())
    if total != rows_read:
        raise KdaugError(f"row accounting failed: read {rows_read} rows of {source}, {total} out")
