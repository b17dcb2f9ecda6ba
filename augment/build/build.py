"""The build behind `kdaug augment`.

The coordinator streams the input once, cutting it into shards of `shard_size` input rows, and
hands each unfinished shard (its rows travel with the task) to an executor; at most a few shards
are in flight, so memory does not grow with the corpus. A worker writes its shard under a
temporary name, publishes the shard's completion record once the files are durable, then gives
them their final names; manifest.json is written when the build starts and when it ends, so the
bookkeeping costs O(1) per shard (see kdaug.manifest). Re-running the same command verifies and
skips finished shards.

One build at a time holds an output directory (an exclusive lock), and kdaug only ever deletes
files it can prove it wrote (see augment.build.manifest).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from augment.build.executors import Executor, make_executor
from augment.build.manifest import (
    LOCK_NAME,
    MANIFEST_NAME,
    Manifest,
    _remove_temp_files,
    check_accounting,
    drop_shards,
    finish_build,
    not_a_build,
    open_output,
    record_shard,
    untracked_entries,
    verify_shards,
    write_manifest,
)
from augment.build.spec import (
    BuildSpec,
    InputChangedError,
    fingerprint,
    input_state,
    plan_tasks,
    shard_layout,
)
from augment.build.stats import build_stats
from augment.io.card import CARD_NAME, write_card
from augment.io.layout import ShardLayout
from augment.io.readers import input_columns
from kdaug.errors import InputError, KdaugError, interrupts
from kdaug.files import is_temp_name, write_json_atomic
from kdaug.manifest import RECORDS_DIR, shard_name
from kdaug.tables import check_input_rows, check_regular, describe_input, resolve_format
from kdaug.terminal import printable

log = logging.getLogger(__name__)


def build(spec: BuildSpec, executor: Executor | None = None) -> dict[str, Any]:
    """Build (or resume, or verify) the sharded output of `spec`; returns the stats.

    The output directory is locked for the whole build: a second build into it is refused."""
    if spec.shard_size < 1:
        raise KdaugError("--shard-size must be at least 1")
    check_paths(spec.input, spec.output)
    prepare_output(spec.output)
    with interrupts(f"{KEPT}; {RESUME}"), OutputLock(spec.output):
        try:
            return _build(spec, executor)
        except BaseException as exc:
            with contextlib.suppress(OSError):  # of writes cut short; the workers have stopped
                _remove_temp_files(spec.output)
            if message := disk_full(exc, spec.output):
                raise KdaugError(message) from None
            raise


RESUME = "run the same command again to resume"
KEPT = "the shards finished so far are kept"
FREE_SPACE = "free some space (or choose another --output)"
# Write errors of a full disk, and what to do about each.
DISK_FULL = {
    errno.ENOSPC: ("no space left on the device", FREE_SPACE),
    errno.EDQUOT: ("disk quota exceeded", FREE_SPACE),
    errno.EFBIG: (
        "file too large for the file size limit (ulimit -f) or the file system",
        "raise the limit or pass a smaller --shard-size",
    ),
}


def disk_full(exc: BaseException, out: Path) -> str | None:
    """A one-line message for a write error of a full disk (or a file size limit): where, why and
    what to do; None for any other error. Workers' errors count too: every executor raises a
    worker's OSError as it is (see `executors.base.Executor`)."""
    if not isinstance(exc, OSError) or exc.errno not in DISK_FULL:
        return None
    what, remedy = DISK_FULL[exc.errno]
    where = f" ({exc.filename})" if exc.filename else ""
    return f"cannot write to {out}{where}: {what}; {remedy}, then {RESUME} ({KEPT})"


def _build(spec: BuildSpec, executor: Executor | None = None) -> dict[str, Any]:
    from kdaug.progress import progress

    t0 = time.perf_counter()
    fmt = resolve_format(spec.input, spec.fmt)
    # a GLUE preset over a `datasets` export of GLUE reads the hub's column names
    spec = dataclasses.replace(
        spec, columns=input_columns(spec.columns, spec.input, fmt, spec.split)
    )
    state = input_state(spec.input)  # before the hash: any later change shows
    info = describe_input(spec.input, fmt, spec.split, spec.columns.header)
    out = spec.output
    manifest = open_output(out, fingerprint(spec, fmt, info), spec.overwrite)
    manifest.input = {"path": str(spec.input), "task": spec.task, **info}
    manifest.config = spec.config.model_dump()
    finished = verify_shards(out, manifest)
    if manifest.complete and len(finished) == manifest.num_shards:
        sp = out / "stats.json"
        stats = json.loads(sp.read_text()) if sp.is_file() else write_stats(out, manifest, 0, 0, 0)
        print(
            printable(
                f"kdaug augment: {out} is complete: {len(finished)} shards verified in "
                f"{time.perf_counter() - t0:.2f} s; {stats['rows_in']} rows in = "
                f"{stats['records']} records + {stats['rows_rejected']} rejected; "
                f"{stats['variants_out']} variants"
            )
        )
        if not (out / CARD_NAME).exists():  # a build of an older kdaug, or a deleted card
            _write_card(out, manifest, stats, shard_layout(spec, fmt, manifest))
        report_warnings(stats, out, spec.strict)
        return stats

    layout = shard_layout(spec, fmt, manifest)
    manifest.complete = False
    write_manifest(out, manifest)  # the build starts; finished shards add completion records
    executor = executor or make_executor(spec)
    done_rows = sum(e.rows_in for e in finished.values())
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
        # closed on the way out of an error or a signal: the executor stops its workers here
        with contextlib.closing(executor.map_unordered(tasks, bar.update)) as results:
            for res in results:
                record_shard(out, manifest, res)
                new_rows += res.rows_in
                load_s += res.load_seconds
                bar.set_postfix(shards=len(manifest.shards))
    except InputChangedError:
        drop_shards(out, manifest, set(manifest.shards) - {shard_name(i) for i in finished})
        raise
    finally:
        bar.close()
    manifest.num_shards = plan["shards"]
    check_accounting(manifest, plan["rows"], spec.input)
    check_input_rows(
        spec.input, fmt, spec.split, spec.columns.header, plan["rows"], info.get("rows")
    )
    stats = write_stats(out, manifest, time.perf_counter() - t0, new_rows, load_s)
    _write_card(out, manifest, stats, layout)
    finish_build(out, manifest)  # after stats.json: a complete manifest implies both exist
    summary(stats, out, resumed=len(finished), new=plan["shards"] - len(finished))
    report_warnings(stats, out, spec.strict)
    return stats


def _write_card(out: Path, manifest: Manifest, stats: dict[str, Any], layout: ShardLayout) -> None:
    if not write_card(out, manifest.to_dict(), stats, layout):
        log.warning(
            "%s is not kdaug's dataset card: left as it is (load the shards with "
            "load_dataset('parquet', data_dir='%s'))",
            out / CARD_NAME,
            out / "data",
        )


def check_paths(input: str | Path, out: Path) -> None:
    """Refuse an input that is not a regular file or folder, one that lies where the build writes
    or deletes (OUTDIR's data/, rejects/ or its bookkeeping files), and an output inside an
    input directory (whose hash it would change)."""
    src = Path(input)
    if not src.exists():
        return  # a hub dataset
    check_regular(src)  # a pipe or a device: refused before the output is made or locked
    src, root = src.resolve(), out.resolve()
    owned = [root / n for n in (MANIFEST_NAME, "stats.json", CARD_NAME, LOCK_NAME)]
    if (
        src == root
        or src in owned
        or any(src.is_relative_to(root / d) for d in ("data", "rejects", RECORDS_DIR))
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
        extra = [] if (out / MANIFEST_NAME).exists() else untracked_entries(out)
        if extra:
            raise KdaugError(not_a_build(out, extra))
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KdaugError(
            f"cannot create the output directory {out}: {exc.strerror or exc}"
        ) from None


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


def summary(s: dict[str, Any], out: Path, resumed: int, new: int) -> None:
    reps = ", ".join(f"{k} {v}" for k, v in s["replacements"].items())
    r = s["run"]
    print(
        f"kdaug augment: {s['rows_in']} rows in = {s['records']} records + "
        f"{s['rows_rejected']} rejected; {s['variants_out']} variants out in {s['shards']} shards "
        f"({new} built, {resumed} already done); replacements: {reps}; "
        f"{r['seconds_total']} s ({r['rows_per_s']} rows/s) -> {printable(out)}"
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
        print(f"kdaug augment: WARNING: {printable(message)}", file=sys.stderr)


def write_stats(
    out: Path, manifest: Manifest, seconds: float, new_rows: int, load_s: float
) -> dict[str, Any]:
    """stats.json from the manifest's shard entries (counts) and this run (timings)."""
    entries = [e.to_dict() for e in manifest.entries()]
    stats = build_stats(entries, seconds, new_rows, load_s)
    write_json_atomic(out / "stats.json", stats)
    return stats
