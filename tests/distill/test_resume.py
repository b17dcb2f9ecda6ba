"""`kdaug distill --resume` checks the settings and the training data a checkpoint was written
under: a change is refused in one line naming what changed (never silently ignored, never a
traceback), except the budget (--epochs, --max-steps), which a resume may extend."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from kdaug.cli import main


def _refused(argv: list[str], capsys: Any) -> str:
    capsys.readouterr()
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("kdaug: error: cannot resume") and "\n" not in err, err
    return err


def _steps(out: Path) -> int:
    return json.loads((out / "metrics.json").read_text())["stages"]["prediction"]["steps"]


@pytest.fixture()
def train(mrpc_dev: Path, tmp_path: Path) -> Path:
    path = tmp_path / "data" / "train.tsv"
    path.parent.mkdir()
    shutil.copy(mrpc_dev, path)
    return path


def _edit(train: Path) -> None:
    lines = train.read_text(encoding="utf-8").splitlines()
    lines[1] = "1\t0\t100\tan entirely new sentence about rivers\tnothing at all like it"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("student", ["bilstm", "teacher-layers:2"])
def test_resume_refuses_changed_settings_and_data_and_extends_the_budget(
    student: str, tiny_teacher: Path, train: Path, tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "run"
    argv = ["distill", "--student", student, "--teacher", str(tiny_teacher), "--task", "mrpc"]
    argv += ["--train", str(train), "-o", str(out), "--device", "cpu", "--max-length", "32"]
    argv += ["--batch-size", "4", "--checkpoint-every", "1", "--lr", "0.001"]
    if student == "bilstm":
        argv += ["--lstm-hidden", "8", "--embeddings", "none"]
    assert main([*argv, "--max-steps", "2"]) == 0
    assert _steps(out) == 2
    resume = [*argv, "--max-steps", "2", "--resume"]

    err = _refused([*resume, "--lr", "0.5"], capsys)  # the last --lr counts
    assert "--lr 0.001 -> 0.5" in err
    err = _refused([*resume, "--seed", "7", "--batch-size", "5"], capsys)
    assert "--seed 42 -> 7" in err and "--batch-size 4 -> 5" in err
    if student == "bilstm":
        err = _refused([*resume, "--lstm-hidden", "6"], capsys)
        assert "--lstm-hidden 8 -> 6" in err
    else:
        err = _refused([*resume, "--temperature", "2"], capsys)
        assert "--temperature 1.0 -> 2.0" in err
    saved = train.read_bytes()
    _edit(train)
    err = _refused(resume, capsys)
    assert "--train" in err and "content" in err
    train.write_bytes(saved)

    assert main([*argv, "--max-steps", "3", "--resume"]) == 0  # a longer budget: extended
    assert _steps(out) == 3


def test_a_checkpoint_without_settings_that_does_not_fit_is_one_line(
    tiny_teacher: Path, train: Path, tmp_path: Path, capsys: Any
) -> None:
    """Checkpoints written before settings were recorded are resumed unchecked; weights that do
    not fit the model are still one line, not a traceback."""
    out = tmp_path / "run"
    argv = ["distill", "--student", "bilstm", "--teacher", str(tiny_teacher), "--task", "mrpc"]
    argv += ["--train", str(train), "-o", str(out), "--device", "cpu", "--max-length", "32"]
    argv += ["--batch-size", "4", "--max-steps", "2", "--embeddings", "none"]
    assert main([*argv, "--lstm-hidden", "8"]) == 0
    for settings in (out / "checkpoints").glob("*/step-*/settings.json"):
        settings.unlink()
    capsys.readouterr()
    assert main([*argv, "--lstm-hidden", "6", "--resume"]) != 0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("kdaug: error: cannot resume from") and "do not fit this model" in err
