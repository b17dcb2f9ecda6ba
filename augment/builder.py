"""The sharded dataset builder behind `kdaug augment`.

The coordinator streams the input once, cutting it into shards of `shard_size` input rows, and
hands each unfinished shard (its rows travel with the task) to an executor; at most a few shards
are in flight, so memory does not grow with the corpus. A worker writes its shard under a
temporary name and renames it when durable; only then does the coordinator record it in
manifest.json (atomically). Re-running the same command verifies and skips recorded shards.

One build at a time holds an output directory (an exclusive lock), and kdaug only ever deletes
files it can prove it wrote: those its manifest lists (finished or dispatched shards) and its own
marked temporary files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from augment.config import AugmentConfig
from augment.executors import ShardResult, ShardTask, shard_name
from augment.io.card import CARD_NAME, remove_card, write_card
from augment.io.layout import SCHEMA_VERSION, ShardLayout
from augment.io.readers import (
    Columns,
    check_input_rows,
    describe_input,
    passthrough_columns,
    read_records,
    resolve_format,
)
from augment.records import Record, Reject
from kdaug import __version__
from kdaug.errors import InputError, KdaugError
from kdaug.files import is_temp_name, sha256_file, write_json_atomic

log = logging.getLogger(__name__)
LAYOUT_FORMAT = "kdaug-shards/1"
LAYOUT = ("data", "rejects", "manifest.json", "stats.json", CARD_NAME)
LOCK_NAME = ".kdaug.lock"
SHARD_NAME = re.compile(r"^part-\d{5}$")


class InputChangedError(InputError):
    """The input's files changed while the build read them."""


@dataclass
class BuildSpec:
    """Everything `kdaug augment` was asked to do."""

    input: str
    output: Path
    config: AugmentConfig
    columns: Columns
    fmt: str | None = None
    split: str = "train"
    task: str | None = None
    shard_size: int = 10_000
    workers: int | None = None
    executor: str = "local"
    address: str | None = None
    overwrite: bool = False
    strict: bool = False


def build(spec: BuildSpec, executor=None) -> dict[str, Any]:
    """Build (or resume, or verify) the sharded output of `spec`; returns the stats.

    The output directory is locked for the whole build: a second build into it is refused."""
    if spec.shard_size < 1:
        raise KdaugError("--shard-size must be at least 1")
    check_paths(spec.input, spec.output)
    prepare_output(spec.output)
    with OutputLock(spec.output):
        return _build(spec, executor)


def _build(spec: BuildSpec, executor=None) -> dict[str, Any]:
    from augment.executors import make_executor
    from kdaug.progress import progress

    t0 = time.perf_counter()
    fmt = resolve_format(spec.input, spec.fmt)
    state = input_state(spec.input)  # before the hash: any later change shows
    info = describe_input(spec.input, fmt, spec.split, spec.columns.header)
    fingerprint = {
        "input": {k: v for k, v in info.items() if k in ("sha256", "hub_fingerprint")},
        "format": fmt,
        "split": spec.split if fmt == "hf" else None,
        "columns": asdict(spec.columns),
        "shard_size": spec.shard_size,
        "config": spec.config.fingerprint_dict(),
        "kdaug": __version__,
        "shard_schema": SCHEMA_VERSION,
    }
    out = spec.output
    manifest = open_output(out, fingerprint, spec.overwrite)
    manifest["input"] = {"path": str(spec.input), "task": spec.task, **info}
    manifest["config"] = spec.config.model_dump()
    finished = verify_shards(out, manifest)
    if manifest["complete"] and len(finished) == manifest["num_shards"]:
        sp = out / "stats.json"
        stats = json.loads(sp.read_text()) if sp.is_file() else write_stats(out, manifest, 0, 0, 0)
        print(
            f"kdaug augment: {out} is complete: {len(finished)} shards verified in "
            f"{time.perf_counter() - t0:.2f} s; {stats['rows_in']} rows in = {stats['records']} "
            f"records + {stats['rows_rejected']} rejected; {stats['variants_out']} variants"
        )
        if not (out / CARD_NAME).exists():  # a build of an older kdaug, or a deleted card
            _write_card(out, manifest, stats, shard_layout(spec, fmt, manifest))
        report_warnings(stats, out, spec.strict)
        return stats

    layout = shard_layout(spec, fmt, manifest)
    executor = executor or make_executor(spec)
    done_rows = sum(e["rows_in"] for e in finished.values())
    bar = progress(
        total=max(info["rows_estimate"], done_rows) or None,
        initial=done_rows,
        desc="augment",
        unit=" rows",
    )
    plan: dict[str, int] = {"rows": 0, "shards": 0}
    new_rows, load_s = 0, 0.0
    try:
        tasks = plan_tasks(spec, fmt, set(finished), plan, state, layout)
        tasks = dispatched(tasks, manifest, out)
        for res in executor.map_unordered(tasks, bar.update):
            _check_versions(manifest, res.versions, out)
            name = shard_name(res.index)
            manifest["shards"][name] = _entry(res)
            if name in manifest["in_progress"]:
                manifest["in_progress"].remove(name)
            write_json_atomic(out / "manifest.json", manifest)
            new_rows += res.rows_in
            load_s += res.load_seconds
            bar.set_postfix(shards=len(manifest["shards"]))
    except InputChangedError:
        drop_shards(out, manifest, set(manifest["shards"]) - {shard_name(i) for i in finished})
        raise
    finally:
        bar.close()
    manifest["num_shards"] = plan["shards"]
    check_accounting(manifest, plan["rows"], spec.input)
    check_input_rows(
        spec.input, fmt, spec.split, spec.columns.header, plan["rows"], info.get("rows")
    )
    stats = write_stats(out, manifest, time.perf_counter() - t0, new_rows, load_s)
    _write_card(out, manifest, stats, layout)
    manifest["complete"] = True  # after stats.json: a complete manifest implies both exist
    write_json_atomic(out / "manifest.json", manifest)
    summary(stats, out, resumed=len(finished), new=plan["shards"] - len(finished))
    report_warnings(stats, out, spec.strict)
    return stats


def shard_layout(spec: BuildSpec, fmt: str, manifest: dict[str, Any]) -> ShardLayout:
    """The shard columns of this build, recorded in the manifest: a function of what the
    fingerprint binds (task, column mapping, the input's columns), so a resumed build reuses it
    rather than scanning a JSON lines input for its keys again."""
    if isinstance(manifest.get("shard_layout"), dict):
        return ShardLayout.from_dict(manifest["shard_layout"])
    cols = spec.columns
    passthrough = passthrough_columns(spec.input, fmt, cols, spec.split)
    layout = ShardLayout.for_build(
        cols.task, cols.text_b is not None, cols.label is not None, passthrough
    )
    manifest["shard_layout"] = layout.to_dict()
    return layout


def _write_card(
    out: Path, manifest: dict[str, Any], stats: dict[str, Any], layout: ShardLayout
) -> None:
    if not write_card(out, manifest, stats, layout):
        log.warning(
            "%s is not kdaug's dataset card: left as it is (load the shards with "
            "load_dataset('parquet', data_dir='%s'))",
            out / CARD_NAME,
            out / "data",
        )


def open_output(out: Path, fingerprint: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """The manifest of `out`: loaded when it matches `fingerprint`, else new.

    A directory that is not a kdaug build, or whose data/ or rejects/ hold files the manifest does
    not list, is refused (even with `overwrite`). Output built with another fingerprint is
    replaced only with `overwrite`, or when it recorded no shard (a failed run blocks nothing);
    replacing deletes only the files the old manifest lists and kdaug's own temporary files."""
    mf = out / "manifest.json"
    manifest = load_build_manifest(out)
    if manifest is None:
        if extra := _untracked_entries(out):
            raise KdaugError(_not_a_build(out, extra))
        _remove_temp_files(out)
    else:
        if foreign := _foreign_files(out, manifest):
            raise KdaugError(
                f"{out} holds files this build did not write ({_first_few(foreign)}): kdaug "
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
    write_json_atomic(mf, manifest)
    return manifest


def check_paths(input: str | Path, out: Path) -> None:
    """Refuse an input that lies where the build writes or deletes (OUTDIR's data/, rejects/ or
    its bookkeeping files), and an output inside an input directory (whose hash it would
    change)."""
    src = Path(input)
    if not src.exists():
        return  # a hub dataset
    src, root = src.resolve(), out.resolve()
    owned = [root / n for n in ("manifest.json", "stats.json", CARD_NAME, LOCK_NAME)]
    if (
        src == root
        or src in owned
        or any(src.is_relative_to(root / d) for d in ("data", "rejects"))
        or (src.parent == root and is_temp_name(src.name))
    ):
        raise InputError(
            f"the input {input} lies inside the output {out} (its data/, rejects/ or kdaug's own "
            "files, which a build replaces or deletes): move it elsewhere, or choose another "
            "--output"
        )
    if src.is_dir() and root.is_relative_to(src):
        raise InputError(
            f"the output {out} is inside the input directory {input}: choose an --output outside it"
        )


def prepare_output(out: Path) -> None:
    """Create `out` (one-line errors when it cannot be); a directory that is not a kdaug build is
    refused here already, so that not even a lock file is left in it."""
    try:
        if out.exists() and not out.is_dir():
            raise KdaugError(f"output {out} is not a directory: choose another --output")
        extra = [] if (out / "manifest.json").exists() else _untracked_entries(out)
        if extra:
            raise KdaugError(_not_a_build(out, extra))
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KdaugError(
            f"cannot create the output directory {out}: {exc.strerror or exc}"
        ) from None


def _not_a_build(out: Path, extra: list[str]) -> str:
    return (
        f"output {out} is not empty and is not a kdaug build (no manifest.json; it holds "
        f"{_first_few(extra)}): "
        "kdaug does not delete what it did not write, even with --overwrite; choose an empty or "
        "new --output"
    )


def _first_few(names: list[str]) -> str:
    """The first three of `names`, and how many more there are."""
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if names[3:] else "")


def _shard_files(entry: dict[str, Any]) -> list[str]:
    """The files (relative to the output) of one manifest shard entry: its shard and rejects."""
    return [rel for rel in (entry["file"], entry.get("rejects_file")) if rel]


def _untracked_entries(out: Path) -> list[str]:
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
    (out / "manifest.json").unlink(missing_ok=True)
    for sub in ("data", "rejects"):
        with contextlib.suppress(OSError):  # absent, or holding files that are not kdaug's
            (out / sub).rmdir()


def load_build_manifest(out: str | Path) -> dict[str, Any] | None:
    """The manifest of a build directory (None when there is none); a manifest that is not valid
    JSON or not kdaug's layout is a one-line error: nothing can be resumed or deleted on its
    word."""
    out = Path(out)
    mf = out / "manifest.json"
    if not mf.exists() and not mf.is_symlink():
        return None
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
        problem = _manifest_problem(manifest)
    except OSError as exc:
        raise KdaugError(f"cannot read {mf}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        problem = "not UTF-8 text"
    except (ValueError, RecursionError):
        problem = "not valid JSON: empty or truncated?"
    if problem:
        raise KdaugError(
            f"{mf} is damaged ({problem}), so kdaug cannot tell which files there it wrote and "
            f"neither resumes nor overwrites it: delete {out} (or move it away) and run the "
            "command again, or choose another --output"
        )
    manifest.setdefault("in_progress", [])  # manifests written before it existed
    return manifest


def _manifest_problem(m: Any) -> str | None:
    """What makes `m` unusable as a kdaug manifest, or None. Shard entries must name their own
    files, so that a manifest can never make kdaug delete anything else."""
    if not isinstance(m, dict):
        return f"a JSON {type(m).__name__}, not an object"
    if m.get("format") != LAYOUT_FORMAT:
        return f"its format is not {LAYOUT_FORMAT}"
    if not isinstance(m.get("fingerprint"), dict) or not isinstance(m.get("shards"), dict):
        return "no fingerprint or shards"
    if not isinstance(m.get("complete"), bool) or not isinstance(m.get("in_progress", []), list):
        return "no complete flag"
    for name, e in m["shards"].items():
        if not (SHARD_NAME.match(name) and isinstance(e, dict)):
            return f"bad shard entry {name!r}"
        ok = (
            e.get("index") == int(name[5:])
            and e.get("file") == f"data/{name}.parquet"
            and e.get("rejects_file") in (None, f"rejects/{name}.jsonl")
            and isinstance(e.get("sha256"), str)
            and all(isinstance(e.get(k), int) for k in ("rows_in", "records", "rows_rejected"))
        )
        if not ok:
            return f"bad shard entry {name!r}"
    if not all(isinstance(n, str) and SHARD_NAME.match(n) for n in m.get("in_progress", [])):
        return "bad in_progress list"
    return None


class OutputLock:
    """An exclusive lock on an output directory for the whole build: `flock` on
    OUTDIR/.kdaug.lock (non-blocking), which holds the holder's pid, host, start time and command.

    The kernel releases a flock when its process dies, even by SIGKILL, so a lock file whose flock
    is free is stale and is taken over. The file is removed on release; since another process may
    have opened it just before, a taker checks that the path still names the file it locked."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / LOCK_NAME
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        try:
            import fcntl
        except ImportError:  # no flock on this platform: build unlocked
            log.warning("no file locking on this platform: %s is not locked", self.path.parent)
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise KdaugError(f"cannot create {self.path}: {exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise KdaugError(_busy(self.path.parent, holder)) from None
            except OSError as exc:  # a file system without locks
                os.close(fd)
                log.warning("cannot lock %s (%s): building unlocked", self.path, exc.strerror)
                return self
            try:
                st, now = os.fstat(fd), os.stat(self.path)
                same = (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino)
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # its holder removed it as we opened it: lock the new one
        if stale := _read_holder(fd):
            log.info(
                "%s: taking over the lock of pid %s on %s, which is no longer running",
                self.path.parent,
                stale.get("pid"),
                stale.get("host"),
            )
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "command": " ".join(sys.argv)[:500],
        }
        self.fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        except OSError as exc:
            self.__exit__()
            raise KdaugError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # while still locked: see the class docstring
            os.close(self.fd)
            self.fd = None


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _busy(out: Path, holder: dict[str, Any] | None) -> str:
    if holder:
        command = " ".join(str(holder.get("command", "?")).split())[:200]
        who = (
            f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}: "
            f"{command}"
        )
    else:
        who = "it has not written its details yet"
    return (
        f"{out} is in use by another kdaug build ({who}); wait for it to finish, or choose "
        "another --output"
    )


def input_state(path: str | Path) -> dict[str, tuple[int, ...]] | None:
    """Size, mtime, ctime and inode of the input's files (each file of a saved dataset
    directory), to tell whether the input changed while it was read; None for a hub dataset."""
    p = Path(path)
    if not p.exists():
        return None
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    state = {}
    for f in files:
        try:
            st = f.stat()
        except FileNotFoundError:  # removed as we looked: the check after reading tells
            continue
        key = str(f.relative_to(p)) if p.is_dir() else f.name
        state[key] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    return state


def check_input_unchanged(path: str | Path, before: dict[str, tuple[int, ...]] | None) -> None:
    """Fail when the input's files differ from `before` (taken before it was hashed): its rows
    would not match the fingerprint the manifest records."""
    if before is None:
        return
    try:
        after = input_state(path) or {}
    except OSError:
        after = {}
    if after != before:
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        raise InputChangedError(
            f"{path} changed while it was read ({_first_few(changed)}): the rows read no longer "
            "match the fingerprint taken before, so the build stops and keeps none of this run's "
            "shards; run it again once the input no longer changes"
        )


def dispatched(
    tasks: Iterator[ShardTask], manifest: dict[str, Any], out: Path
) -> Iterator[ShardTask]:
    """Record each shard in the manifest's `in_progress` before a worker gets it, so that files
    of a shard killed between its write and its record are still provably kdaug's."""
    for task in tasks:
        name = shard_name(task.index)
        if name not in manifest["in_progress"]:
            manifest["in_progress"] = sorted([*manifest["in_progress"], name])
            write_json_atomic(out / "manifest.json", manifest)
        yield task


def drop_shards(out: Path, manifest: dict[str, Any], names: set[str]) -> None:
    """Forget the shards `names` and delete their files (before the manifest that no longer
    lists them is written, so that no unlisted file of kdaug's is left)."""
    for name in sorted(names):
        for rel in _shard_files(manifest["shards"].pop(name)):
            (out / rel).unlink(missing_ok=True)
    write_json_atomic(out / "manifest.json", manifest)


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


def plan_tasks(
    spec: BuildSpec,
    fmt: str,
    finished: set[int],
    plan: dict[str, int],
    state: dict[str, tuple[int, ...]] | None = None,
    layout: ShardLayout | None = None,
) -> Iterator[ShardTask]:
    """Stream the input once, yielding a task for each unfinished shard; `plan` counts rows and
    shards as they are read (finished shards are read past without keeping their rows). Once
    read, the input must still match `state` (see `check_input_unchanged`). Records carry the
    pass-through columns of `layout`, and tasks the layout their shards are written in."""
    rows: list[Record | Reject] = []
    count = index = 0
    size = spec.shard_size
    extra = layout.passthrough if layout else ()
    records = read_records(spec.input, spec.columns, fmt, split=spec.split, passthrough=extra)
    for item in records:
        count += 1
        plan["rows"] += 1
        if index not in finished:
            rows.append(item)
        if count == size:
            if index not in finished:
                yield ShardTask(
                    index, index * size, rows, str(spec.output), spec.config.batch_size, layout
                )
            rows, count, index = [], 0, index + 1
            plan["shards"] = index
    if count:
        plan["shards"] = index + 1
        if index not in finished:
            yield ShardTask(
                index, index * size, rows, str(spec.output), spec.config.batch_size, layout
            )
    check_input_unchanged(spec.input, state)
    if plan["rows"] == 0:
        raise InputError(f"{spec.input}: no data rows")


def _entry(res: ShardResult) -> dict[str, Any]:
    e = asdict(res)
    for k in ("versions", "load_seconds"):
        e.pop(k)
    return e


def _check_versions(manifest: dict[str, Any], versions: dict[str, Any], out: Path) -> None:
    if manifest["versions"] is None:
        manifest["versions"] = versions
    elif manifest["versions"] != versions:
        raise KdaugError(
            f"{out} was built with {manifest['versions']} but this run loads {versions}: "
            "pass --overwrite to rebuild it"
        )


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


def write_stats(
    out: Path, manifest: dict[str, Any], seconds: float, new_rows: int, load_s: float
) -> dict[str, Any]:
    """Aggregate the manifest's shard entries into stats.json (counts, and this run's timings)."""
    shards = manifest["shards"].values()
    c: Counter[str] = Counter()
    for e in shards:
        c.update(e["stats"])
    stats = {
        "shards": len(manifest["shards"]),
        "rows_in": sum(e["rows_in"] for e in shards),
        "records": sum(e["records"] for e in shards),
        "rows_rejected": sum(e["rows_rejected"] for e in shards),
        "variants_out": sum(e["variants"] for e in shards),
        "replacements": {s: c[f"replacements_{s}"] for s in ("mlm", "vectors", "wordnet")},
        "words": {s: c[f"words_{s}"] for s in ("mlm", "vectors", "wordnet", "none")},
        "words_without_candidates": c["words_without_candidates"],
        "candidates_pos_rejected": c["candidates_pos_rejected"],
        "label_fallbacks": c["label_fallbacks"],
        "warnings": {
            "all_rows_rejected": int(bool(shards) and not any(e["records"] for e in shards))
        },
        "seconds_shards": round(sum(e["seconds"] for e in shards), 2),
        "run": {
            "seconds_total": round(seconds, 2),
            "seconds_load": round(load_s, 2),
            "rows": new_rows,
            "rows_per_s": round(new_rows / max(seconds, 1e-9), 2),
        },
    }
    write_json_atomic(out / "stats.json", stats)
    return stats


def summary(s: dict[str, Any], out: Path, resumed: int, new: int) -> None:
    reps = ", ".join(f"{k} {v}" for k, v in s["replacements"].items())
    r = s["run"]
    print(
        f"kdaug augment: {s['rows_in']} rows in = {s['records']} records + "
        f"{s['rows_rejected']} rejected; {s['variants_out']} variants out in {s['shards']} shards "
        f"({new} built, {resumed} already done); replacements: {reps}; "
        f"{r['seconds_total']} s ({r['rows_per_s']} rows/s) -> {out}"
    )


def report_warnings(stats: dict[str, Any], out: Path, strict: bool) -> None:
    """Say loudly on stderr what the build accepted but should not go unnoticed (every row
    rejected); with `strict`, fail instead (the output stays complete and resumable)."""
    rows, records = stats["rows_in"], stats["records"]
    if rows and not records:
        message = (
            f"all {rows} rows were rejected, so the output holds no records (reasons in "
            f"{out / 'rejects'}/): check --task, the column flags and --format"
        )
        if strict:
            raise KdaugError(f"--strict: {message}")
        print(f"kdaug augment: WARNING: {message}", file=sys.stderr)
