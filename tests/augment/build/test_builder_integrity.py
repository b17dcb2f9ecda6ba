"""Integrity of the output directory: one build at a time (an exclusive lock), `--overwrite`
deletes only what kdaug provably wrote, an input edited during a build fails it, a damaged
manifest or an output path that cannot be created is a one-line error, and failed or fully
rejected runs are reported without blocking the corrected command."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from augment.build.build import OutputLock, build
from augment.build.executors import SerialExecutor
from augment.build.manifest import LOCK_NAME
from augment.io.readers import Columns, columns_for
from kdaug.cli import main
from kdaug.errors import InputError, KdaugError
from kdaug.files import is_temp_name, temp_path
from kdaug.manifest import RECORDS_DIR
from tests.augment.build.support import (
    CLI_SETTINGS,
    SHARD_SIZE,
    build_until,
    build_with,
    kdaug_cmd,
    lock_holder,
    make_spec,
    shard_bytes,
    start_build,
    wait_until,
    write_sst2,
)


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _error_line(stderr: str) -> str:
    """The one `kdaug: error:` line of a failed command (and no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("kdaug: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


# one build at a time ------------------------------------------------------------------------
def test_second_build_is_refused_while_the_first_holds_the_lock(tmp_path, sst2_input, reference):
    out, log = tmp_path / "out", tmp_path / "first.log"
    first = start_build(sst2_input, out, log)
    try:
        holder = wait_until(
            lambda: (h := lock_holder(out)) and h["pid"] == first.pid and h, first, log, "the lock"
        )
        os.kill(first.pid, signal.SIGSTOP)  # frozen while it holds the lock: no race with the end
        try:
            cmd = kdaug_cmd("augment", str(sst2_input), "-o", str(out), "--task", "sst2")
            cmd += [*CLI_SETTINGS, "--shard-size", str(SHARD_SIZE), "--n", "4"]
            second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=300) == 0, log.read_text()
    finally:
        first.kill()
    assert second.returncode == 1
    line = _error_line(second.stderr)
    assert f"pid {first.pid} on {socket.gethostname()}" in line
    assert f"since {holder['since']}" in line and "another kdaug build" in line
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"]
    assert manifest["fingerprint"]["config"]["n"] == manifest["config"]["n"] == 3
    assert shard_bytes(out) == shard_bytes(reference)
    assert not (out / LOCK_NAME).exists()


def test_a_sigkilled_holder_does_not_block_the_next_run(tmp_path, sst2_input, reference, augmenter):
    out, log = tmp_path / "out", tmp_path / "killed.log"
    proc = start_build(sst2_input, out, log)
    try:
        wait_until(lambda: (lock_holder(out) or {}).get("pid") == proc.pid, proc, log, "the lock")
    finally:
        proc.kill()
        proc.wait()
    assert lock_holder(out)["pid"] == proc.pid  # left behind, but nobody holds its flock
    stats = build_with(make_spec(sst2_input, out), augmenter)
    assert stats["rows_in"] == 200
    assert shard_bytes(out) == shard_bytes(reference)
    assert not (out / LOCK_NAME).exists()


def test_a_held_lock_refuses_a_build_and_a_free_one_is_taken_over(tmp_path, sst2_input, augmenter):
    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(out):
        holder = lock_holder(out)
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(KdaugError, match=rf"pid {os.getpid()} on .* since ") as err:
            build_with(make_spec(sst2_input, out), augmenter)
        assert "\n" not in str(err.value)
    assert not (out / LOCK_NAME).exists()
    (out / LOCK_NAME).write_text("garbage left by a process that died\n")  # flock is free
    assert build_with(make_spec(sst2_input, out), augmenter)["rows_in"] == 200
    assert not (out / LOCK_NAME).exists()


# --overwrite deletes only what kdaug wrote --------------------------------------------------
def test_temporary_names_carry_kdaug_marker():
    tmp = temp_path(Path("out/data/part-00000.parquet"))
    assert tmp.name == f".part-00000.parquet.kdaug-{os.getpid()}.tmp"
    assert tmp.parent == Path("out/data")
    assert is_temp_name(tmp.name)
    for other in ("part-00000.parquet.123.tmp", "download.tmp", ".x.tmp", "part-00000.parquet"):
        assert not is_temp_name(other), other


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_directory_that_is_not_a_kdaug_build_is_refused(
    tmp_path, sst2_input, augmenter, overwrite
):
    out = tmp_path / "mine"
    (out / "data").mkdir(parents=True)
    (out / "data" / "notes.txt").write_text("my own notes")
    shutil.copy(sst2_input, out / "data" / "train.tsv")
    before = _listing(out)
    with pytest.raises(KdaugError, match=r"not a kdaug build"):
        build_with(make_spec(sst2_input, out, overwrite=overwrite), augmenter)
    assert _listing(out) == before  # nothing deleted, no lock or manifest left behind
    assert (out / "data" / "notes.txt").read_text() == "my own notes"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_directory_of_foreign_tmp_files_is_not_empty(tmp_path, sst2_input, augmenter, overwrite):
    out = tmp_path / "downloads"
    out.mkdir()
    (out / "model.bin.tmp").write_bytes(b"half a download")
    with pytest.raises(KdaugError, match=r"not a kdaug build.*model\.bin\.tmp"):
        build_with(make_spec(sst2_input, out, overwrite=overwrite), augmenter)
    assert _listing(out) == ["model.bin.tmp"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_unlisted_files_in_data_are_left_alone_and_refused(
    tmp_path, sst2_input, reference, augmenter, overwrite
):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    (out / "data" / "extra.parquet").write_bytes(b"a user's own file")
    (out / "rejects").mkdir(exist_ok=True)
    (out / "rejects" / "part-00042.jsonl").write_text("{}\n")  # kdaug's name, but not listed
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(KdaugError, match=r"did not write \(data/extra\.parquet, rejects/part"):
        build_with(make_spec(sst2_input, out, config={"n": 4}, overwrite=overwrite), augmenter)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("where", ["data/train.tsv", "rejects/train.tsv", "stats.json"])
def test_the_input_is_never_inside_what_gets_removed(
    tmp_path, sst2_input, reference, augmenter, where
):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    source = out / where
    source.parent.mkdir(exist_ok=True)
    shutil.copy(sst2_input, source)
    with pytest.raises(InputError, match=r"lies inside the output"):
        build_with(make_spec(source, out, overwrite=True), augmenter)
    assert source.read_bytes() == sst2_input.read_bytes()
    assert shard_bytes(out) == shard_bytes(reference)


def test_an_output_inside_the_input_directory_is_refused(tmp_path, sst2_input, augmenter):
    import csv

    import datasets

    with open(sst2_input, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    datasets.Dataset.from_list(rows[:30]).save_to_disk(str(tmp_path / "hf"))
    with pytest.raises(InputError, match=r"inside the input directory"):
        build_with(make_spec(tmp_path / "hf", tmp_path / "hf" / "out"), augmenter)
    assert not (tmp_path / "hf" / "out").exists()


def test_overwrite_removes_only_what_the_manifest_lists(tmp_path, sst2_input, augmenter):
    out = tmp_path / "out"
    build_with(make_spec(sst2_input, out), augmenter)
    (out / "README.txt").write_text("about this build")  # a user's file next to the build
    (out / "notes.tmp").write_text("not kdaug's")
    other_pid = os.getpid() + 1
    own_tmp = out / "data" / f".part-00003.parquet.kdaug-{other_pid}.tmp"
    own_tmp.write_bytes(b"left by a killed writer")
    stats = build_with(make_spec(sst2_input, out, shard_size=50, overwrite=True), augmenter)
    assert stats["shards"] == 4
    assert _listing(out) == [
        "README.md",
        "README.txt",
        "data",
        *[f"data/part-0000{i}.parquet" for i in range(4)],
        "manifest.json",
        "notes.tmp",
        "stats.json",
    ]
    assert (out / "notes.tmp").read_text() == "not kdaug's"


# the input changes while it is read ---------------------------------------------------------
class ChangeOnFirstTask:
    """Runs shards in this process, calling `change()` when the reader delivers the first shard:
    the input is then being read, and the rest of it is read after the change."""

    def __init__(self, config, augmenter, change) -> None:
        self.inner = SerialExecutor(config, augmenter)
        self.change = change
        self.changed = False

    def map_unordered(self, tasks, progress):
        def watched():
            for task in tasks:
                if not self.changed:
                    self.change()
                    self.changed = True
                yield task

        yield from self.inner.map_unordered(watched(), progress)


def test_an_input_edited_during_the_build_fails_it(tmp_path, sst2_input, reference, augmenter):
    path, out = tmp_path / "train.tsv", tmp_path / "out"
    shutil.copy(sst2_input, path)
    original = path.read_bytes()

    def append_a_row():
        with open(path, "a", encoding="utf-8") as f:
            f.write("a row added while the build reads the file\t1\n")

    spec = make_spec(path, out)
    executor = ChangeOnFirstTask(spec.config, augmenter, append_a_row)
    with pytest.raises(InputError, match=r"changed while it was read") as err:
        build(spec, executor=executor)
    assert executor.changed and "\n" not in str(err.value)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"]
    assert manifest["shards"] == {}  # rows read from a changing file are not kept
    assert not list((out / "data").glob("*.parquet"))
    # the original bytes again: rebuilt from scratch, never "complete, verified"
    path.write_bytes(original)
    stats = build_with(make_spec(path, out), augmenter)
    assert stats["run"]["rows"] == 200
    assert shard_bytes(out) == shard_bytes(reference)


def test_a_changed_file_of_a_saved_dataset_fails_the_build(tmp_path, sst2_input, augmenter):
    import csv

    import datasets

    with open(sst2_input, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    ds_dir = tmp_path / "hf"
    datasets.Dataset.from_list(rows).save_to_disk(str(ds_dir))
    info = ds_dir / "dataset_info.json"

    def touch_info():
        st = info.stat()
        os.utime(info, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))

    spec = make_spec(ds_dir, tmp_path / "out", fmt=None)
    with pytest.raises(InputError, match=r"changed while it was read \(dataset_info\.json\)"):
        build(spec, executor=ChangeOnFirstTask(spec.config, augmenter, touch_info))


# damaged manifests, unusable output paths ---------------------------------------------------
DAMAGED = {
    "empty": "",
    "truncated": '{"format": "kdaug-shards/1", "shards": {"part-0',
    "a list": "[]",
    "not kdaug's": '{"name": "something else"}',
    "a path outside": json.dumps(
        {
            "format": "kdaug-shards/1",
            "fingerprint": {},
            "shards": {"part-00000": {"index": 0, "file": "../../victim", "sha256": "0"}},
            "num_shards": None,
            "complete": False,
        }
    ),
}


@pytest.mark.parametrize("kind", DAMAGED)
def test_a_damaged_manifest_is_a_one_line_error(tmp_path, sst2_input, reference, capsys, kind):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    (out / "manifest.json").write_text(DAMAGED[kind])
    before = _listing(out)
    for extra in ([], ["--overwrite"]):
        cmd = ["augment", str(sst2_input), "-o", str(out), "--task", "sst2", *CLI_SETTINGS]
        assert main([*cmd, "--shard-size", str(SHARD_SIZE), *extra]) == 1
        line = _error_line(capsys.readouterr().err)
        assert "manifest.json is damaged" in line and f"delete {out}" in line
    assert _listing(out) == before


def test_an_output_that_cannot_be_created_is_a_one_line_error(tmp_path, sst2_input, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cmd = ["augment", str(sst2_input), "--task", "sst2", *CLI_SETTINGS]
    assert main([*cmd, "-o", str(blocker / "out")]) == 1
    assert f"cannot create the output directory {blocker / 'out'}" in _error_line(
        capsys.readouterr().err
    )
    assert main([*cmd, "-o", str(blocker)]) == 1
    assert f"{blocker} is not a directory" in _error_line(capsys.readouterr().err)
    assert blocker.read_text() == "not a directory"


def test_a_denied_output_directory_is_a_one_line_error(tmp_path, sst2_input, capsys, monkeypatch):
    """What the file system answers a user without write permission (which root never gets)."""
    target = tmp_path / "denied" / "out"
    mkdir = Path.mkdir

    def denied(self, *args, **kwargs):
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", denied)
    cmd = ["augment", str(sst2_input), "--task", "sst2", *CLI_SETTINGS]
    assert main([*cmd, "-o", str(target)]) == 1
    line = _error_line(capsys.readouterr().err)
    assert line.endswith(f"cannot create the output directory {target}: Permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_an_output_without_permission_is_a_one_line_error(tmp_path, sst2_input, capsys):
    locked = tmp_path / "read-only"
    locked.mkdir(mode=0o500)
    cmd = ["augment", str(sst2_input), "--task", "sst2", *CLI_SETTINGS]
    try:
        assert main([*cmd, "-o", str(locked / "out")]) == 1
        assert "Permission denied" in _error_line(capsys.readouterr().err)
    finally:
        locked.chmod(0o700)


# failed and fully rejected runs ------------------------------------------------------------
def test_a_run_that_rejects_every_row_warns_and_strict_fails(tmp_path, augmenter, capsys):
    path, out = tmp_path / "blank.tsv", tmp_path / "out"
    path.write_text("sentence\tlabel\n" + "".join(f"   \t{i % 2}\n" for i in range(5)))
    stats = build_with(make_spec(path, out), augmenter)
    assert (stats["rows_in"], stats["records"], stats["rows_rejected"]) == (5, 0, 5)
    assert json.loads((out / "stats.json").read_text())["warnings"]["all_rows_rejected"] == 1
    err = capsys.readouterr().err
    assert "WARNING: all 5 rows were rejected" in err and str(out / "rejects") in err
    with pytest.raises(KdaugError, match=r"--strict: all 5 rows were rejected"):
        build_with(make_spec(path, out, strict=True), augmenter)
    cmd = ["augment", str(path), "-o", str(out), "--task", "sst2", *CLI_SETTINGS]
    assert main([*cmd, "--shard-size", str(SHARD_SIZE), "--strict"]) == 1
    assert "--strict: all 5 rows were rejected" in _error_line(capsys.readouterr().err)
    assert main([*cmd, "--shard-size", str(SHARD_SIZE)]) == 0
    assert "WARNING: all 5 rows were rejected" in capsys.readouterr().err


def test_a_normal_build_has_no_warning(reference):
    assert json.loads((reference / "stats.json").read_text())["warnings"] == {
        "all_rows_rejected": 0
    }


@pytest.mark.parametrize("failure", ["empty input", "wrong columns", "bad --mlm"])
def test_a_run_that_wrote_no_shard_does_not_block_the_next(
    tmp_path, sst2_input, reference, augmenter, failure
):
    out = tmp_path / "out"
    if failure == "empty input":
        empty = write_sst2(tmp_path / "empty.tsv", 0)
        with pytest.raises(InputError, match="no data rows"):
            build_with(make_spec(empty, out), augmenter)
    elif failure == "wrong columns":
        with pytest.raises(InputError):
            build_with(make_spec(sst2_input, out, columns=Columns("text"), task=None), augmenter)
    else:
        with pytest.raises(KdaugError):
            build(make_spec(sst2_input, out, config={"mlm": str(tmp_path / "no-such-model")}))
    assert not (out / LOCK_NAME).exists()
    stats = build_with(make_spec(sst2_input, out, columns=columns_for("sst2")), augmenter)
    assert stats["rows_in"] == 200
    assert shard_bytes(out) == shard_bytes(reference)


# an unfinished build: its completion records ------------------------------------------------
def test_overwrite_of_an_unfinished_build_removes_its_shards_and_records(
    tmp_path, sst2_input, augmenter
):
    out = tmp_path / "out"
    build_until(make_spec(sst2_input, out), augmenter, shards=3)
    assert len(list((out / RECORDS_DIR).glob("part-*.json"))) == 3
    (out / "data" / "part-00007.parquet").write_bytes(b"a user's file, never recorded")
    with pytest.raises(KdaugError, match=r"did not write \(data/part-00007.parquet\)"):
        build_with(make_spec(sst2_input, out, shard_size=50, overwrite=True), augmenter)
    (out / "data" / "part-00007.parquet").unlink()
    stats = build_with(make_spec(sst2_input, out, shard_size=50, overwrite=True), augmenter)
    assert stats["shards"] == 4
    assert _listing(out) == [
        "README.md",
        "data",
        *[f"data/part-0000{i}.parquet" for i in range(4)],
        "manifest.json",
        "stats.json",
    ]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("part-00001.json", "{not json"),
        ("part-00001.json", '{"index": 1, "file": "../../victim", "sha256": "0"}'),
        ("notes.txt", "a user's file"),
    ],
)
def test_a_damaged_completion_record_is_a_one_line_error(
    tmp_path, sst2_input, augmenter, capsys, name, content
):
    out = tmp_path / "out"
    build_until(make_spec(sst2_input, out), augmenter, shards=2)
    (out / RECORDS_DIR / name).write_text(content)
    before = _listing(out)
    for extra in ([], ["--overwrite"]):
        cmd = ["augment", str(sst2_input), "-o", str(out), "--task", "sst2", *CLI_SETTINGS]
        assert main([*cmd, "--shard-size", str(SHARD_SIZE), *extra]) == 1
        line = _error_line(capsys.readouterr().err)
        assert f"{RECORDS_DIR}/{name} is damaged" in line and f"delete {out}" in line
    assert _listing(out) == before
