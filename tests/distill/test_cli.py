"""The commands as users run them, through the single `kdaug` entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.data import ExampleSource
from distill.tasks import get_task
from kdaug.cli import build_parser, main


def test_commands_are_registered() -> None:
    parser = build_parser()
    for argv in (
        ["finetune-teacher", "--task", "mrpc", "--train", "t", "-o", "o"],
        [
            "distill",
            "--teacher",
            "t",
            "--student",
            "tinybert4",
            "--train",
            "s",
            "--task",
            "sst2",
            "-o",
            "o",
            "--stage",
            "prediction",
            "--max-steps",
            "3",
        ],
        ["evaluate", "m", "--task", "mrpc", "--eval", "d"],
        ["teacher-logits", "shards", "--teacher", "t", "--task", "mrpc"],
    ):
        assert callable(parser.parse_args(argv).func)


def test_evaluate_prints_metrics(
    tiny_teacher: Path, mrpc_dev: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", str(tiny_teacher), "--task", "mrpc", "--eval", str(mrpc_dev)]
    assert main([*argv, "--device", "cpu"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics["dev"]) == {"accuracy", "f1"}


def test_bad_teacher_is_one_line_error(
    tmp_path: Path, mrpc_dev: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "distill",
        "--teacher",
        str(tmp_path),
        "--student",
        "tinybert4",
        "--task",
        "mrpc",
        "--train",
        str(mrpc_dev),
        "-o",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("kdaug: error:") and "\n" not in err


@pytest.mark.parametrize("student", ["tinybert4", "bilstm"])
def test_a_teacher_folder_that_is_not_there_is_one_line(
    tmp_path: Path, mrpc_dev: Path, capsys: pytest.CaptureFixture[str], student: str
) -> None:
    missing = tmp_path / "no-such-teacher"
    argv = ["distill", "--teacher", str(missing), "--student", student, "--task", "mrpc"]
    argv += ["--train", str(mrpc_dev), "-o", str(tmp_path / "o"), "--device", "cpu"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err == f"kdaug: error: --teacher {missing} is not a directory: give the fine-tuned teacher"
    )


@pytest.mark.integration
@pytest.mark.parametrize(("task", "rows"), [("MRPC", 408), ("SST-2", 872), ("STS-B", 1500)])
def test_reads_real_glue_dev_files(shared_assets: Path, task: str, rows: int) -> None:
    spec = get_task(task)
    examples = list(ExampleSource(shared_assets / "glue" / task / "dev.tsv", spec))
    assert len(examples) == rows and all(e.label is not None and e.text_a for e in examples)
    if spec.is_regression:
        assert all(0 <= e.label <= 5 for e in examples)
    else:
        assert {e.label for e in examples} == {0, 1}
    assert all(bool(e.text_b) == spec.is_pair for e in examples)


def test_a_training_run_reports_and_keeps_the_rows_its_files_reject(
    make_classifier, mrpc_dev: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A ragged row in the train file is neither padded nor cut: it is left out, named in the log
    once, and written to OUTPUT/rejects.jsonl; rows in = rows used + rows rejected."""
    rows = mrpc_dev.read_text(encoding="utf-8").splitlines()
    train = tmp_path / "train.tsv"
    bad = "1\t77\tonly three fields"
    train.write_text("\n".join([*rows[:3], bad, *rows[3:]]) + "\n", encoding="utf-8")
    out = tmp_path / "teacher"
    teacher = make_classifier(tmp_path / "base", layers=2)
    argv = ["finetune-teacher", "--model", str(teacher), "--task", "mrpc", "--train", str(train)]
    argv += ["--eval", str(mrpc_dev), "-o", str(out), "--device", "cpu", "--max-steps", "2"]
    with caplog.at_level("WARNING"):
        assert main(argv) == 0
    lines = (out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    reject = json.loads(lines[0])
    assert reject["line"] == 4 and reject["raw"] == {"fields": bad.split("\t")}
    assert reject["reason"] == "row has 3 fields, the header has 5"
    summary = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert summary == [f"train.tsv: 1 of {len(rows)} rows rejected (line 4: {reject['reason']}); "
                       f"see {out / 'rejects.jsonl'}"]  # fmt: skip


def test_cache_teacher_flag_sets_the_setting() -> None:
    from kdaug.cli.distill import _config

    parser = build_parser()
    base = ["distill", "--teacher", "t", "--student", "s", "--train", "x", "--task", "sst2"]
    base += ["-o", "o"]
    assert _config(parser.parse_args(base)).cache_teacher is True
    assert _config(parser.parse_args([*base, "--no-cache-teacher"])).cache_teacher is False
