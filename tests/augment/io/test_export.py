"""`kdaug export` (augment.io.export) on intact and damaged builds and unsafe output paths: each
refusal is one line on stderr, and export leaves nothing behind but the file it was asked for."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.augment.io.support import (
    assert_one_line_error,
    leftovers,
    run_cli,
    shard,
    tree,
)

# --- export verifies the shards -------------------------------------------------------------


def test_export_of_an_intact_build_writes_every_variant(tmp_path, built, capsys):
    target = tmp_path / "train_aug.tsv"
    code, out, err = run_cli(capsys, "export", str(built), "-o", str(target))
    assert code == 0, err
    table = pq.read_table(sorted((built / "data").glob("*.parquet")))
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "sentence\tlabel" and len(lines) == 1 + table.num_rows
    assert f"{table.num_rows} rows" in out
    assert leftovers(tmp_path) == []


def test_export_refuses_a_swapped_shard(tmp_path, build_copy, capsys):
    """Two shards exchanged: every file is a valid shard, but not the one the manifest lists."""
    a, b = shard(build_copy, 0), shard(build_copy, 1)
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    target = tmp_path / "x.tsv"
    code, _, err = run_cli(capsys, "export", str(build_copy), "-o", str(target))
    assert_one_line_error(code, err, "part-00000", "sha256")
    assert not target.exists() and leftovers(tmp_path) == []


def test_export_refuses_an_edited_shard(tmp_path, build_copy, capsys):
    """A shard rewritten with other text (a valid Parquet file with the right schema)."""
    path = shard(build_copy, 2)
    rows = pq.read_table(path).to_pylist()
    rows[0]["text_a"] = "an edited sentence"
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)
    target = tmp_path / "x.tsv"
    code, _, err = run_cli(capsys, "export", str(build_copy), "-o", str(target))
    assert_one_line_error(code, err, "part-00002")
    assert not target.exists() and leftovers(tmp_path) == []


def test_export_refuses_a_missing_shard(tmp_path, build_copy, capsys):
    shard(build_copy, 1).unlink()
    target = tmp_path / "x.tsv"
    code, _, err = run_cli(capsys, "export", str(build_copy), "-o", str(target))
    assert_one_line_error(code, err, "part-00001", "missing")
    assert not target.exists() and leftovers(tmp_path) == []


def test_export_refuses_a_corrupt_shard_even_with_a_matching_checksum(tmp_path, build_copy, capsys):
    """A shard truncated and its manifest entry updated to match: the Parquet file is unreadable."""
    path = shard(build_copy, 1)
    path.write_bytes(path.read_bytes()[:100])
    manifest = json.loads((build_copy / "manifest.json").read_text())
    from kdaug.files import sha256_file

    manifest["shards"]["part-00001"]["sha256"] = sha256_file(path)
    (build_copy / "manifest.json").write_text(json.dumps(manifest))
    target = tmp_path / "x.tsv"
    code, _, err = run_cli(capsys, "export", str(build_copy), "-o", str(target))
    assert_one_line_error(code, err, "part-00001")
    assert not target.exists() and leftovers(tmp_path) == []


def test_export_refuses_a_manifest_without_one_of_its_shards(tmp_path, build_copy, capsys):
    manifest = json.loads((build_copy / "manifest.json").read_text())
    del manifest["shards"]["part-00001"]
    (build_copy / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run_cli(capsys, "export", str(build_copy), "-o", str(tmp_path / "x.tsv"))
    assert_one_line_error(code, err, "part-00001")


def test_export_refuses_a_shard_path_outside_the_build(tmp_path, build_copy, capsys):
    outside = tmp_path / "elsewhere.parquet"
    shutil.copy(shard(build_copy, 0), outside)
    manifest = json.loads((build_copy / "manifest.json").read_text())
    manifest["shards"]["part-00000"]["file"] = "../elsewhere.parquet"
    (build_copy / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run_cli(capsys, "export", str(build_copy), "-o", str(tmp_path / "x.tsv"))
    assert_one_line_error(code, err, "part-00000", "outside")


# --- export never writes inside the build, and writes atomically ----------------------------


@pytest.mark.parametrize("inside", ["manifest.json", "train_aug.tsv", "data/part-00000.parquet"])
def test_export_never_writes_inside_the_build(build_copy, capsys, inside):
    before = tree(build_copy)
    code, _, err = run_cli(capsys, "export", str(build_copy), "-o", str(build_copy / inside))
    assert_one_line_error(code, err, "inside")
    assert tree(build_copy) == before


def test_export_to_an_existing_directory_is_a_one_line_error(tmp_path, built, capsys):
    target = tmp_path / "glue"
    target.mkdir()
    code, _, err = run_cli(capsys, "export", str(built), "-o", str(target))
    assert_one_line_error(code, err, "is a directory")
    assert list(target.iterdir()) == [] and leftovers(tmp_path) == []


def test_export_into_a_path_under_a_file_is_a_one_line_error(tmp_path, built, capsys):
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(capsys, "export", str(built), "-o", str(tmp_path / "afile" / "x.tsv"))
    assert_one_line_error(code, err)
    assert leftovers(tmp_path) == []


def test_export_does_not_overwrite_the_builds_input(tmp_path, build_copy, capsys):
    manifest = json.loads((build_copy / "manifest.json").read_text())
    source = tmp_path / "train.tsv"
    shutil.copy(manifest["input"]["path"], source)
    manifest["input"]["path"] = str(source)
    (build_copy / "manifest.json").write_text(json.dumps(manifest))
    before = source.read_bytes()
    code, _, err = run_cli(capsys, "export", str(build_copy), "-o", str(source))
    assert_one_line_error(code, err, "input")
    assert source.read_bytes() == before


def test_export_failure_while_writing_removes_the_temporary_file(
    tmp_path, built, capsys, monkeypatch
):
    """An error after some rows are written (here a failing write) leaves no .tmp and no target."""
    from augment.io import writers

    calls = {"n": 0}
    real_write = writers.TsvExportWriter.write

    def failing_write(self, rows):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real_write(self, rows)

    monkeypatch.setattr(writers.TsvExportWriter, "write", failing_write)
    target = tmp_path / "x.tsv"
    code, _, err = run_cli(capsys, "export", str(built), "-o", str(target))
    assert_one_line_error(code, err, "No space left")
    assert calls["n"] == 2
    assert not target.exists() and leftovers(tmp_path) == []


def test_export_replaces_an_existing_file_atomically(tmp_path, built, capsys):
    target = tmp_path / "train_aug.tsv"
    target.write_text("old\n")
    code, _, err = run_cli(capsys, "export", str(built), "-o", str(target))
    assert code == 0, err
    assert target.read_text(encoding="utf-8").startswith("sentence\tlabel\n")
    assert leftovers(tmp_path) == []


def test_export_refuses_a_layout_that_would_drop_text_b(tmp_path, built, capsys):
    """A single-text build exported with a pair task's layout (or the reverse) is refused."""
    code, _, err = run_cli(
        capsys, "export", str(built), "-o", str(tmp_path / "x.tsv"), "--task", "mnli"
    )
    assert_one_line_error(code, err, "mnli", status=2)
    assert not (tmp_path / "x.tsv").exists()


def test_export_task_none_selects_the_generic_layout(tmp_path, built, capsys):
    target = tmp_path / "x.tsv"
    code, _, err = run_cli(capsys, "export", str(built), "-o", str(target), "--task", "none")
    assert code == 0, err
    header = target.read_text(encoding="utf-8").splitlines()[0]
    assert header == "id\tvariant\ttext_a\tlabel\treplacements"


# --- the Python API under the CLI ----------------------------------------------------------


def test_export_build_takes_typed_options_and_writes_what_the_cli_writes(tmp_path, built, capsys):
    from augment.io.export import ExportOptions, export_build

    library, command = tmp_path / "library.jsonl", tmp_path / "command.jsonl"
    result = export_build(built, ExportOptions(output=str(library)))
    code, out, err = run_cli(capsys, "export", str(built), "-o", str(command))
    assert code == 0, err
    assert library.read_bytes() == command.read_bytes()
    rows = pq.read_table(sorted((built / "data").glob("*.parquet"))).num_rows
    assert (result.rows, result.layout, result.format) == (rows, "generic", "jsonl")
    assert out.strip() == result.summary().replace(str(library), str(command))


def test_teacher_labels_without_a_logits_cache_are_a_usage_error(tmp_path, built):
    from augment.io.export import ExportOptions, export_build
    from kdaug.errors import UsageError

    target = tmp_path / "x.tsv"
    options = ExportOptions(output=str(target), labels="teacher", teacher=str(tmp_path))
    with pytest.raises(UsageError, match="cached logits"):
        export_build(built, options)
    assert not target.exists() and leftovers(tmp_path) == []


SIGTERM_SCRIPT = """
import sys
from kdaug.cli import main
from augment.io import writers

real_write = writers.TsvExportWriter.write

def write_then_wait(self, rows):
    real_write(self, rows)
    print("written", flush=True)
    sys.stdin.readline()  # blocks until the test has sent SIGTERM

writers.TsvExportWriter.write = write_then_wait
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_during_export_removes_the_temporary_file(tmp_path, built):
    """Killed (SIGTERM) after rows were written: no target, no temporary file."""
    import signal
    import subprocess
    import sys

    target = tmp_path / "x.tsv"
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT, "export", str(built), "-o", str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "written"  # the event: rows are in the temp file
        assert leftovers(tmp_path) != []  # the temporary file exists while writing
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert not target.exists() and leftovers(tmp_path) == []
