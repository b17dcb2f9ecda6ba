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
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kdaug: error:") and "\n" not in err


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
