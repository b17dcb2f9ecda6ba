"""A build stopped from outside: SIGINT or SIGTERM stops every worker within 2 s, exits 130 / 143
with one line, leaves neither the lock nor a temporary file, and the resume redoes no shard that
had finished; a full disk (here a file size limit: EFBIG, errno 27) is one line naming the output,
and the resume gives the bytes of an uninterrupted build."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from augment.build.manifest import LOCK_NAME
from kdaug.files import is_temp_name
from tests.augment.build.support import (
    CLI_SETTINGS,
    SENTENCES,
    build_with,
    kdaug_cmd,
    make_spec,
    shard_bytes,
    start_build,
    wait_until,
)
from tests.augment.build.test_builder_resume import FINE, _alive, _children, fine_reference

__all__ = ["fine_reference"]  # a fixture of the resume tests, used here too
STOP_SECONDS = 2.0  # from the signal to the coordinator's exit, its workers stopped


def _finished(out: Path) -> dict[str, tuple[int, int]]:
    """Shard files under their final names (so durable and finished), by name: inode, mtime."""
    files = sorted((out / "data").glob("part-*.parquet")) if (out / "data").is_dir() else []
    return {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files}


def _workers(pid: int) -> list[int]:
    """The worker processes of the coordinator `pid` (not multiprocessing's resource tracker,
    which leaves when its parent has gone)."""
    kids = []
    for kid in _children(pid):
        try:
            cmdline = Path(f"/proc/{kid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            kids.append(kid)
    return kids


def _temp_files(out: Path) -> list[str]:
    return [str(p.relative_to(out)) for p in out.rglob("*") if is_temp_name(p.name)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_workers_and_the_resume_redoes_no_finished_shard(
    tmp_path, sst2_input, fine_reference, augmenter, signum
):
    out, log = tmp_path / "out", tmp_path / "run.log"
    proc = start_build(sst2_input, out, log, "--workers", "2", shard_size=FINE)
    wait_until(lambda: _finished(out), proc, log, "a finished shard")
    kids = _workers(proc.pid)
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        code = proc.wait(timeout=60)  # a bound against hanging; the target is STOP_SECONDS
    finally:
        proc.kill()
    took = time.monotonic() - sent
    print(f"{signal.Signals(signum).name}: exit {took:.2f} s after the signal")
    text = log.read_text()
    assert code == 128 + signum, text
    assert took < STOP_SECONDS, f"{took:.2f} s from {signal.Signals(signum).name} to the exit"
    assert len(kids) >= 2 and not any(_alive(k) for k in kids), "workers outlived the build"
    assert "Traceback" not in text
    last = text.rstrip("\n").splitlines()[-1]
    assert last == (
        f"kdaug: interrupted by {signal.Signals(signum).name}: the shards finished so far are "
        "kept; run the same command again to resume"
    )
    assert not (out / LOCK_NAME).exists() and not _temp_files(out)
    finished = _finished(out)
    assert 0 < len(finished) < 200 // FINE

    stats = build_with(make_spec(sst2_input, out, shard_size=FINE), augmenter)
    assert stats["run"]["rows"] == 200 - FINE * len(finished)  # no finished shard redone
    assert {n: v for n, v in _finished(out).items() if n in finished} == finished
    assert shard_bytes(out) == shard_bytes(fine_reference)


# --- multiprocessing's resource tracker ---------------------------------------------------------
LEAK = """
import multiprocessing as mp, os, sys
from augment.build.executors.local import start_resource_tracker_quietly
if sys.argv[1] == "quiet":
    start_resource_tracker_quietly()
lock = mp.get_context("spawn").Lock()  # registered with the tracker, which starts if need be
print(lock._semlock.name, flush=True)
os._exit(0)  # as a build stopped mid-way: no finaliser unregisters the lock
"""


@pytest.mark.parametrize("start", ["quiet", "plain"])
def test_the_resource_tracker_says_nothing_after_kdaugs_last_line(tmp_path, start):
    """After a stopped build the tracker removes what its parent left and, by default, says so
    on stderr after the parent has exited, below kdaug's last line. Started by the local
    executor, it does the same work in silence ("plain": the warning this guards against)."""
    err = tmp_path / "stderr"
    with open(err, "wb") as f:
        proc = subprocess.run(
            [sys.executable, "-c", LEAK, start], stdout=subprocess.PIPE, stderr=f, timeout=120
        )
    assert proc.returncode == 0
    sem = Path("/dev/shm") / f"sem.{proc.stdout.decode().strip().lstrip('/')}"
    deadline = time.monotonic() + 60  # a bound: the tracker removes it as soon as it sees EOF
    while sem.exists():
        assert time.monotonic() < deadline, f"the tracker never removed {sem}"
        time.sleep(0.05)
    text = err.read_text()
    if start == "quiet":
        assert text == ""
    else:
        assert "resource_tracker: There appear to be 1 leaked semaphore" in text


# --- a full disk ---------------------------------------------------------------------------------
FILE_LIMIT = 16_000  # bytes: the short rows' shard files fit, the long rows' do not


@pytest.fixture(scope="module")
def long_tail_input(tmp_path_factory) -> Path:
    """100 short rows, then 100 long ones (each sentence eight times over)."""
    path = tmp_path_factory.mktemp("long-tail") / "train.tsv"
    with open(path, "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        for i in range(200):
            text = f"{SENTENCES[i % len(SENTENCES)]} ( take {i} )"
            f.write(f"{' , '.join([text] * (8 if i >= 100 else 1))}\t{i % 2}\n")
    return path


@pytest.fixture(scope="module")
def long_tail_reference(tmp_path_factory, long_tail_input, augmenter) -> Path:
    out = tmp_path_factory.mktemp("long-tail-reference") / "out"
    build_with(make_spec(long_tail_input, out), augmenter)
    return out


def _file_size_limit() -> None:  # in the child, before exec: writes past it fail with EFBIG
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_full_disk_is_one_line_and_the_build_resumes(
    tmp_path, long_tail_input, long_tail_reference, augmenter, workers
):
    sizes = [f.stat().st_size for f in sorted((long_tail_reference / "data").iterdir())]
    assert max(sizes[:5]) < FILE_LIMIT < min(sizes[5:]), sizes  # the test's premise
    out = tmp_path / "out"
    cmd = kdaug_cmd("augment", str(long_tail_input), "-o", str(out), "--task", "sst2")
    cmd += [*CLI_SETTINGS, "--shard-size", "20", "--workers", workers]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, preexec_fn=_file_size_limit, timeout=600
    )
    assert proc.returncode not in (0, 128 + signal.SIGXFSZ, -signal.SIGXFSZ), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("kdaug: error:")]
    assert errors == [proc.stderr.rstrip("\n").splitlines()[-1]], proc.stderr
    assert errors[0].startswith(f"kdaug: error: cannot write to {out}"), errors
    assert "file too large for the file size limit (ulimit -f)" in errors[0]
    assert errors[0].endswith(
        "then run the same command again to resume (the shards finished so far are kept)"
    )
    assert not (out / LOCK_NAME).exists() and not _temp_files(out)
    before = _finished(out)
    assert set(before) <= {f"part-{i:05d}.parquet" for i in range(5)}

    stats = build_with(make_spec(long_tail_input, out), augmenter)
    assert stats["run"]["rows"] == 200 - 20 * len(before)
    assert {n: v for n, v in _finished(out).items() if n in before} == before
    assert shard_bytes(out) == shard_bytes(long_tail_reference)
