"""Resume: SIGKILL at any moment then re-run gives the bytes of an uninterrupted run; damaged or
unrecorded shards are redone; a changed config or input refuses to mix without --overwrite."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest
from builder_support import (
    CLI_SETTINGS,
    SHARD_SIZE,
    build_with,
    kdaug_cmd,
    make_spec,
    shard_bytes,
)

from augment.errors import KdaugError


def _recorded(out: Path) -> int:
    try:
        return len(json.loads((out / "manifest.json").read_text())["shards"])
    except (OSError, ValueError):
        return 0


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(input: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = kdaug_cmd("augment", str(input), "-o", str(out), "--task", "sst2", *CLI_SETTINGS)
    cmd += ["--shard-size", str(SHARD_SIZE), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 90.0) -> list[int]:
    """SIGKILL `proc` once `ready()` holds; returns the children it had then."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the build never got there"
        time.sleep(0.02)
    kids = _children(proc.pid)
    proc.kill()
    proc.wait()
    return kids


def test_sigkill_then_resume_gives_identical_bytes(tmp_path, sst2_input, reference, augmenter):
    out = tmp_path / "out"
    t0 = time.monotonic()
    # 1. killed at a random early moment (loading, planning or the first shard)
    delay = random.uniform(0.2, 4.0)
    start = time.monotonic()
    proc = _start(sst2_input, out)
    _kill_when(proc, lambda: time.monotonic() - start > delay or proc.poll() is not None)
    t1 = time.monotonic()
    # 2. two workers, killed as soon as a shard is recorded: the orphaned workers must exit
    before = _recorded(out)
    proc = _start(sst2_input, out, "--workers", "2")
    kids = _kill_when(proc, lambda: _recorded(out) > before)
    assert len(kids) >= 2, "expected the worker processes"
    deadline = time.monotonic() + 10
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(k) for k in kids), "worker processes outlived their coordinator"
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"], f"killed too late to test anything (delay {delay:.2f} s)"
    print(f"kill 1 after {t1 - t0:.1f} s, kill 2 after {time.monotonic() - t1:.1f} s")
    # 3. resumed to the end (in this process, with the same settings)
    stats = build_with(make_spec(sst2_input, out), augmenter)
    assert 0 < stats["run"]["rows"] < 200
    assert shard_bytes(out) == shard_bytes(reference), f"random kill at {delay:.2f} s"
    assert not list(out.rglob("*.tmp"))


def test_damaged_and_unrecorded_shards_are_redone(tmp_path, sst2_input, reference, augmenter):
    out = tmp_path / "out"
    build_with(make_spec(sst2_input, out), augmenter)
    manifest = json.loads((out / "manifest.json").read_text())
    with open(out / "data" / "part-00001.parquet", "ab") as f:  # fails its checksum
        f.write(b"x")
    (out / "data" / "part-00004.parquet").unlink()  # lost
    del manifest["shards"]["part-00007"]  # renamed but killed before it was recorded
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "data" / f"part-00002.parquet.{os.getpid() + 1}.tmp").write_bytes(b"partial")
    stats = build_with(make_spec(sst2_input, out), augmenter)
    assert stats["run"]["rows"] == 3 * SHARD_SIZE
    assert shard_bytes(out) == shard_bytes(reference)
    assert not list(out.rglob("*.tmp"))


def test_finished_output_is_verified_not_rebuilt(reference, sst2_input, capsys):
    class Refuse:
        def map_unordered(self, tasks, progress):
            raise AssertionError("a finished output must not be rebuilt")

    from augment.builder import build

    before = shard_bytes(reference)
    stats = build(make_spec(sst2_input, reference), executor=Refuse())
    assert stats["rows_in"] == 200
    assert "complete: 10 shards verified" in capsys.readouterr().out
    assert shard_bytes(reference) == before


def test_changed_config_or_input_refuses_without_overwrite(tmp_path, sst2_input, augmenter):
    out = tmp_path / "out"
    build_with(make_spec(sst2_input, out), augmenter)
    with pytest.raises(KdaugError, match=r"different config\.n.*--overwrite"):
        build_with(make_spec(sst2_input, out, config={"n": 4}), augmenter)
    with pytest.raises(KdaugError, match=r"different shard_size"):
        build_with(make_spec(sst2_input, out, shard_size=50), augmenter)
    changed = tmp_path / "changed.tsv"
    changed.write_text(sst2_input.read_text().replace("( take 5 )", "( take five )"))
    with pytest.raises(KdaugError, match=r"different input"):
        build_with(make_spec(changed, out), augmenter)
    stats = build_with(make_spec(changed, out, shard_size=50, overwrite=True), augmenter)
    assert stats["shards"] == 4
    assert sorted(p.name for p in (out / "data").iterdir())[-1] == "part-00003.parquet"


def test_batch_size_and_device_do_not_bind_the_output(reference, sst2_input, augmenter):
    """Settings that do not change bytes may differ between a run and its resume."""
    from augment.builder import build

    class Refuse:
        def map_unordered(self, tasks, progress):
            raise AssertionError("nothing to rebuild")

    spec = make_spec(sst2_input, reference, config={"batch_size": 7, "device": "auto"})
    assert build(spec, executor=Refuse())["shards"] == 10
