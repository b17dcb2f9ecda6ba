"""Inputs that are not regular files (a pipe, a device) are refused in one line before anything
reads them: a build reads its input more than once (hash, count, rows), which a stream cannot
give. Real processes with a time limit, so that a regression fails instead of hanging."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.augment.build.support import CLI_SETTINGS, kdaug_cmd, write_sst2

LIMIT_S = 30  # a bound against hanging only; a refusal comes back at once


def _augment(input: str, out, *extra: str, shell: bool = False) -> subprocess.CompletedProcess:
    cmd = kdaug_cmd("augment", input, "-o", str(out), "--task", "sst2", *CLI_SETTINGS, *extra)
    if shell:  # bash, for its process substitution <(...)
        cmd = ["bash", "-c", " ".join([*cmd[:4], input, *cmd[5:]])]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=LIMIT_S)


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0, done.stderr
    assert len(lines) == 1 and lines[0].startswith("kdaug: error: "), done.stderr
    return lines[0]


def test_a_fifo_without_writer_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "rows.tsv"
    os.mkfifo(fifo)
    line = _one_line_error(_augment(str(fifo), tmp_path / "out"))
    assert f"{fifo} is not a regular file (a pipe)" in line
    assert not (tmp_path / "out").exists()  # refused before the output is made or locked
    assert "save it to a file first" in line


def test_process_substitution_is_refused_not_read_as_empty(tmp_path):
    data = write_sst2(tmp_path / "train.tsv", 5)
    done = _augment(f"<(cat {data})", tmp_path / "out", "--format", "tsv", shell=True)
    line = _one_line_error(done)
    assert "is not a regular file (a pipe)" in line and "no data rows" not in line


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_refused_not_read_forever(tmp_path):
    line = _one_line_error(_augment("/dev/zero", tmp_path / "out", "--format", "tsv"))
    assert "/dev/zero is not a regular file (a character device)" in line
    assert not (tmp_path / "out").exists()
