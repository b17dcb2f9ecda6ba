"""`kdaug inspect` (augment.io.inspect), and both commands on a damaged manifest.json: each
refusal is one line on stderr."""

from __future__ import annotations

import pytest

from tests.augment.io.support import (
    DAMAGED,
    ROWS,
    SHARD_SIZE,
    assert_one_line_error,
    damage,
    run_cli,
    shard,
)


@pytest.mark.parametrize("kind", list(DAMAGED))
@pytest.mark.parametrize("command", ["export", "inspect"])
def test_damaged_manifest_is_a_one_line_error(tmp_path, build_copy, capsys, kind, command):
    damage(build_copy, kind)
    argv = [command, str(build_copy)]
    if command == "export":
        argv += ["-o", str(tmp_path / "x.tsv")]
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, "manifest.json")
    assert not (tmp_path / "x.tsv").exists()


def test_outdir_that_does_not_exist_or_is_a_file(tmp_path, built, capsys):
    for outdir in (tmp_path / "nope", built / "stats.json"):
        code, _, err = run_cli(capsys, "inspect", str(outdir))
        assert_one_line_error(code, err, str(outdir))


# --- inspect --------------------------------------------------------------------------------


def test_inspect_with_a_missing_shard_is_a_one_line_error_naming_it(build_copy, capsys):
    for i in range(3):
        shard(build_copy, i).unlink()
    code, _, err = run_cli(capsys, "inspect", str(build_copy), "--samples", "2")
    assert_one_line_error(code, err, "missing")


def test_inspect_with_a_corrupt_shard_is_a_one_line_error(build_copy, capsys):
    for i in range(3):
        path = shard(build_copy, i)
        path.write_bytes(b"PAR1 this is not a parquet file PAR1")
    code, _, err = run_cli(capsys, "inspect", str(build_copy), "--samples", "2")
    assert_one_line_error(code, err, "part-0000")


def test_inspect_reports_an_intact_build(built, capsys):
    code, out, err = run_cli(capsys, "inspect", str(built), "--samples", "2")
    assert code == 0, err
    assert f"complete; 3 shards of {SHARD_SIZE} rows" in out
    assert f"{ROWS} in = {ROWS} records + 0 rejected" in out


def test_inspect_build_yields_the_lines_the_cli_prints(built, capsys):
    from augment.io.inspect import inspect_build

    lines = list(inspect_build(str(built), samples=3, seed=1))
    code, out, err = run_cli(capsys, "inspect", str(built), "--samples", "3", "--seed", "1")
    assert code == 0, err
    assert out.splitlines() == lines
    assert lines[-4].startswith("  samples from data/part-") and len(lines) == 10


def test_marked_shows_each_replacement_in_its_text():
    from augment.io.inspect import marked
    from augment.records import Replacement

    reps = [
        Replacement("b", 0, 3, "a", "the", "vectors", 1),
        Replacement("a", 4, 9, "film", "movie", "mlm", 2),
    ]
    line = marked("the movie was\x1b good", "the cat", reps)
    assert line == "the [movie|film:m2] was\\x1b good  ||  [the|a:v1] cat"
    assert marked("the movie", None, reps, color=True) == "the \033[1;32mmovie\033[0m"
