"""The `kdaug` command's conventions: --version, -v/-q anywhere, exit status 2 for a wrong command
line and 1 for a command that could not do its work, NO_COLOR, a hint that works offline."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kdaug import __version__
from kdaug.cli import build_parser, main


def kdaug(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kdaug.cli", *argv],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def error_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.startswith("kdaug: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    proc = kdaug(flag)
    assert (proc.returncode, proc.stdout.strip()) == (0, f"kdaug {__version__}"), proc.stderr


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["inspect", "out"], logging.INFO),
        (["-q", "inspect", "out"], logging.WARNING),
        (["inspect", "out", "-q"], logging.WARNING),
        (["inspect", "--quiet", "out"], logging.WARNING),
        (["-v", "inspect", "out"], logging.DEBUG),
        (["inspect", "out", "--verbose"], logging.DEBUG),
        (["export", "out", "-o", "x.tsv", "-v"], logging.DEBUG),
    ],
)
def test_verbosity_flags_go_before_or_after_the_command(argv: list[str], level: int) -> None:
    assert build_parser().parse_args(argv).log_level == level


def test_quiet_after_the_command_leaves_warnings_only_and_no_progress(tmp_path: Path) -> None:
    tsv = tmp_path / "in.tsv"
    tsv.write_text("sentence\tlabel\na quiet film\t1\n")
    argv = ["augment", str(tsv), "-o", str(tmp_path / "out"), "--task", "sst2", "--device", "cpu"]
    proc = kdaug(*argv, "--mlm", "none", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "INFO" not in proc.stderr and "workers auto" not in proc.stderr, proc.stderr
    assert "rows (100%)" not in proc.stderr, proc.stderr  # nor progress lines


def test_usage_errors_exit_2_and_failures_exit_1(tmp_path: Path, capsys) -> None:
    tsv = tmp_path / "in.tsv"
    tsv.write_text("sentence\tlabel\na quiet film\t1\n")
    out = ["-o", str(tmp_path / "out"), "--mlm", "none"]
    with pytest.raises(SystemExit) as usage:
        main(["augment", str(tsv), "--no-such-flag"])
    assert usage.value.code == 2
    capsys.readouterr()
    assert main(["augment", str(tsv), *out, "--p", "2"]) == 2  # an invalid setting
    assert "p" in error_line(capsys.readouterr().err)
    assert main(["augment", str(tmp_path / "missing.tsv"), *out]) == 1
    assert "missing.tsv" in error_line(capsys.readouterr().err)
    assert main(["inspect", str(tmp_path / "no-build")]) == 1
    error_line(capsys.readouterr().err)


def test_a_masked_lm_that_will_not_load_offline_says_what_to_do(tmp_path: Path) -> None:
    """The default --mlm is a hub name: with no network (and an empty cache) the error says how
    to run offline, and the exit status is 1 (the command line was fine)."""
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "KDAUG_CACHE": str(tmp_path)}
    proc = kdaug("sample", "a quiet film", "--device", "cpu", env=env)
    line = error_line(proc.stderr)
    assert proc.returncode == 1, proc.stderr
    assert "bert-base-uncased" in line and "--mlm default" in line, line
    assert "kdaug adapt-mlm --default" in line, line  # the default MLM is not built here


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("no_color", [None, "1"])
def test_sample_colours_a_terminal_unless_no_color(tiny_mlm_dir, monkeypatch, no_color) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    out = FakeTTY()
    monkeypatch.setattr(sys, "stdout", out)
    argv = ["sample", "The quiet village slowly disappeared under heavy snow."]
    assert main([*argv, "--mlm", str(tiny_mlm_dir), "--vectors", "none", "--n", "3"]) == 0
    text = out.getvalue()
    assert len(text.splitlines()) >= 2
    assert ("\x1b[" in text) is (no_color is None), text


def test_a_plain_keyboard_interrupt_prints_interrupted_not_an_empty_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def stop(args) -> int:
        raise KeyboardInterrupt

    parser = build_parser()
    monkeypatch.setattr("kdaug.cli.build_parser", lambda: parser)
    args_ns = parser.parse_args(["inspect", "nowhere"])
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: args_ns)
    args_ns.func = stop
    assert main(["inspect", "nowhere"]) == 130
    assert capsys.readouterr().err.strip() == "kdaug: interrupted"
