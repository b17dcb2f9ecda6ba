"""Resume: SIGKILL at points the build reports, then re-run, gives the bytes of an uninterrupted
run; damaged or unrecorded shards are redone; a changed config or input refuses to mix without
--overwrite."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from augment.build.build import build
from augment.build.executors import SerialExecutor
from augment.build.manifest import LOCK_NAME
from augment.build.shard import run_shard
from kdaug.errors import KdaugError
from kdaug.manifest import RECORDS_DIR
from tests.augment.build.support import (
    SHARD_SIZE,
    build_with,
    lock_holder,
    make_spec,
    recorded,
    shard_bytes,
    start_build,
    wait_until,
)

FINE = 5  # rows per shard in the kill test: 40 shards, so that every kill lands before the end


@pytest.fixture(scope="module")
def fine_reference(tmp_path_factory, sst2_input: Path, augmenter) -> Path:
    """An uninterrupted single-process build of `sst2_input` in shards of FINE rows."""
    out = tmp_path_factory.mktemp("fine") / "out"
    build_with(make_spec(sst2_input, out, shard_size=FINE), augmenter)
    return out


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


def _kill(proc: subprocess.Popen) -> list[int]:
    """SIGKILL `proc`; returns the children it had then."""
    kids = _children(proc.pid)
    proc.kill()
    proc.wait()
    return kids


def test_sigkill_then_resume_gives_identical_bytes(tmp_path, sst2_input, fine_reference, augmenter):
    """Two real runs are SIGKILLed at points the build reports: once it holds the output's lock,
    and, with two workers, once the manifest records k shards (k drawn at random; it leaves a
    quarter of the shards, so that the kill lands before the end). Then the build is resumed."""
    out, log = tmp_path / "out", tmp_path / "runs.log"
    num_shards = 200 // FINE
    # 1. killed as soon as it holds the output's lock (reading, loading, or the first shards)
    proc = start_build(sst2_input, out, log, shard_size=FINE)
    wait_until(lambda: (lock_holder(out) or {}).get("pid") == proc.pid, proc, log, "the lock")
    _kill(proc)
    r0 = recorded(out)
    # 2. two workers, killed once the manifest records k shards: the orphans must exit
    assert r0 < num_shards // 2, f"the first kill landed late: {r0} shards recorded"
    k = random.randint(r0 + 1, num_shards * 3 // 4)
    proc = start_build(sst2_input, out, log, "--workers", "2", shard_size=FINE)
    wait_until(lambda: recorded(out) >= k, proc, log, f"{k} recorded shards")
    kids = _kill(proc)
    assert len(kids) >= 2, "expected the worker processes"
    deadline = time.monotonic() + 60  # a bound; the workers poll their parent every 0.2 s
    while any(_alive(kid) for kid in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(kid) for kid in kids), "worker processes outlived their coordinator"
    r1 = recorded(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"] and r1 < num_shards, f"k={k}: {r1} shards recorded"
    print(f"killed with {r0} and {r1} shards recorded (k={k})")
    # 3. resumed to the end (in this process, with the same settings): only what was missing
    stats = build_with(make_spec(sst2_input, out, shard_size=FINE), augmenter)
    assert stats["run"]["rows"] == (num_shards - r1) * FINE
    assert shard_bytes(out) == shard_bytes(fine_reference), f"k={k}, recorded {r0}/{r1}"
    assert not list(out.rglob("*.tmp"))
    assert not (out / LOCK_NAME).exists()


def test_damaged_and_unrecorded_shards_are_redone(tmp_path, sst2_input, reference, augmenter):
    out = tmp_path / "out"
    build_with(make_spec(sst2_input, out), augmenter)
    manifest = json.loads((out / "manifest.json").read_text())
    with open(out / "data" / "part-00001.parquet", "ab") as f:  # fails its checksum
        f.write(b"x")
    (out / "data" / "part-00004.parquet").unlink()  # lost
    del manifest["shards"]["part-00007"]  # renamed but killed before it was recorded:
    manifest["in_progress"] = ["part-00007"]  # dispatched, so its files are kdaug's
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "data" / f".part-00002.parquet.kdaug-{os.getpid() + 1}.tmp").write_bytes(b"partial")
    stats = build_with(make_spec(sst2_input, out), augmenter)
    assert stats["run"]["rows"] == 3 * SHARD_SIZE
    assert shard_bytes(out) == shard_bytes(reference)
    assert not list(out.rglob("*.tmp"))


def test_finished_output_is_verified_not_rebuilt(reference, sst2_input, capsys):
    class Refuse:
        def map_unordered(self, tasks, progress):
            raise AssertionError("a finished output must not be rebuilt")

    from augment.build.build import build

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
    from augment.build.build import build

    class Refuse:
        def map_unordered(self, tasks, progress):
            raise AssertionError("nothing to rebuild")

    spec = make_spec(sst2_input, reference, config={"batch_size": 7, "device": "auto"})
    assert build(spec, executor=Refuse())["shards"] == 10


class _Interrupted(SerialExecutor):
    """Runs shards as a worker does, then is interrupted (Ctrl-C) once `after` shards have
    finished: the last of them before the coordinator got its result."""

    def __init__(self, config, augmenter, after: int) -> None:
        super().__init__(config, augmenter)
        self.after = after

    def map_unordered(self, tasks, progress):
        for k, task in enumerate(tasks):
            result = run_shard(self.augmenter, task, progress)
            if k + 1 == self.after:
                raise KeyboardInterrupt  # the worker finished; its result never arrived
            yield result


def test_a_shard_finished_before_an_interrupt_is_not_redone(
    tmp_path, sst2_input, reference, augmenter
):
    """Its files are durable and its completion record written by the worker, so the resume
    keeps it although the coordinator never recorded it (it used to be rebuilt)."""
    out = tmp_path / "out"
    spec = make_spec(sst2_input, out)
    with pytest.raises(KeyboardInterrupt):
        build(spec, executor=_Interrupted(spec.config, augmenter, after=3))
    assert recorded(out) == 3
    stats = build_with(make_spec(sst2_input, out), augmenter)
    assert stats["run"]["rows"] == 7 * SHARD_SIZE  # shards 3..9 only
    assert shard_bytes(out) == shard_bytes(reference)
    assert not (out / RECORDS_DIR).exists()  # the complete manifest lists every shard


def test_a_crash_between_the_record_and_the_rename_redoes_that_shard(
    tmp_path, sst2_input, reference, augmenter, monkeypatch
):
    """The record is published before the files get their final names: a crash in between
    leaves a record whose files are still temporary ones, and the resume redoes that shard
    (nothing unlisted is left, nothing is refused as someone else's)."""
    from augment.build import shard as shard_module

    out = tmp_path / "out"
    real = shard_module.publish_staged
    calls = []

    def crash_on_the_third(staged):
        calls.append(staged)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(staged)

    monkeypatch.setattr(shard_module, "publish_staged", crash_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        build_with(make_spec(sst2_input, out), augmenter)
    monkeypatch.setattr(shard_module, "publish_staged", real)
    assert (out / RECORDS_DIR / "part-00002.json").is_file()
    assert not (out / "data" / "part-00002.parquet").exists()
    # an interrupted build removes its temporary files on the way out (a crash leaves them, and
    # the resume removes them: test_builder_integrity)
    assert not list(out.rglob("*.tmp"))
    stats = build_with(make_spec(sst2_input, out), augmenter)
    assert stats["run"]["rows"] == 8 * SHARD_SIZE  # shard 2 and shards 3..9
    assert shard_bytes(out) == shard_bytes(reference)
    assert not list(out.rglob("*.tmp"))
