"""benchmarks/ablation.py: the step bookkeeping (skip, refuse, redo, resume) and the results it
writes, with kdaug's commands replaced by a stand-in; and, marked slow, one real run end to end
with tiny models."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "ablation.py"
POSITIVE = ["great", "wonderful", "moving", "charming", "brilliant", "funny"]
NEGATIVE = ["dull", "awful", "boring", "clumsy", "tedious", "weak"]
NOUNS = ["film", "story", "movie", "script", "cast", "ending"]


@pytest.fixture(scope="module")
def ablation() -> Any:
    spec = importlib.util.spec_from_file_location("ablation_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ablation_script"] = module
    spec.loader.exec_module(module)
    return module


def sentences(n: int, offset: int) -> list[str]:
    """SST-2-style rows whose label follows the adjectives."""
    rows = []
    for i in range(n):
        label, k = i % 2, i + offset
        words = POSITIVE if label else NEGATIVE
        rows.append(
            f"the {NOUNS[k % 6]} was really {words[k % 6]} and the {NOUNS[(k + 2) % 6]} "
            f"felt {words[(k + 3) % 6]}\t{label}"
        )
    return rows


@pytest.fixture()
def task_dir(tmp_path: Path) -> Path:
    """A GLUE SST-2 task directory: 24 train rows, 8 dev rows."""
    d = tmp_path / "SST-2"
    d.mkdir()
    (d / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(sentences(24, 0)) + "\n")
    (d / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(sentences(8, 100)) + "\n")
    return d


# ---- the bookkeeping ---------------------------------------------------------------------------
def test_steps_skip_refuse_redo_and_resume(ablation: Any, tmp_path: Path) -> None:
    calls: list[bool] = []

    def body(resume: bool) -> dict[str, Any]:
        calls.append(resume)
        (tmp_path / "run").mkdir(exist_ok=True)
        (tmp_path / "run" / "weights").write_text("w")
        return {"score": len(calls)}

    steps = ablation.Steps(tmp_path, {}, redo=False)
    assert steps.run("train", {"steps": 10}, tmp_path / "run", body) == {"score": 1}
    assert steps.run("train", {"steps": 10}, tmp_path / "run", body) == {"score": 1}
    assert calls == [False] and steps.records["train"]["skipped"]

    with pytest.raises(ablation.AblationError, match=r"steps: 10 -> 20.*--redo"):
        steps.run("train", {"steps": 20}, tmp_path / "run", body)
    assert calls == [False]  # refused before anything ran or was deleted
    assert (tmp_path / "run" / "weights").is_file()

    (tmp_path / "run" / "stale").write_text("from the old settings")
    redo = ablation.Steps(tmp_path, {}, redo=True)
    assert redo.run("train", {"steps": 20}, tmp_path / "run", body) == {"score": 2}
    assert not (tmp_path / "run" / "stale").exists()  # the old output was cleared first

    # An interrupted step (started, not finished) continues with resume=True.
    (tmp_path / "steps" / "train.json").unlink()
    (tmp_path / "steps" / "train.started.json").write_text(json.dumps({"settings": {"steps": 20}}))
    assert steps.run("train", {"steps": 20}, tmp_path / "run", body) == {"score": 3}
    assert calls[-1] is True
    assert not (tmp_path / "steps" / "train.started.json").exists()

    # A finished step whose output was deleted runs again.
    import shutil

    shutil.rmtree(tmp_path / "run")
    steps.run("train", {"steps": 20}, tmp_path / "run", body)
    assert calls[-1] is False and len(calls) == 4


def test_subset_keeps_header_and_first_rows(ablation: Any, tmp_path: Path) -> None:
    from distill.tasks import get_task

    src = tmp_path / "train.tsv"
    src.write_text(
        '\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta "b\tc\n\n0\t3\t4\td\te\n'
    )
    out = ablation.write_subset(src, tmp_path / "s.tsv", get_task("mrpc"), limit=1)
    assert out["rows"] == 1 and out["source_rows"] == 2
    assert (
        tmp_path / "s.tsv"
    ).read_text() == 'Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta "b\tc\n'

    cola = tmp_path / "cola.tsv"  # headerless
    cola.write_text("gj04\t1\t\tThe boy ran.\ngj04\t0\t*\tRan boy the.\n")
    out = ablation.write_subset(cola, tmp_path / "c.tsv", get_task("cola"), limit=0)
    assert out["rows"] == 2 and (tmp_path / "c.tsv").read_text() == cola.read_text()


def fake_kdaug(log: list[list[str]], has_mode: bool = True):
    """Stands in for `Steps.kdaug`: writes what each command writes (metrics.json, stats.json)."""

    def kdaug(self: Any, *args: Any) -> str:
        argv = [str(a) for a in args]
        self._commands.append(" ".join(argv))
        log.append(argv)
        if argv[-1] == "--help":
            return "usage: kdaug augment ... --mode {exact,fast}" if has_mode else "usage:"
        out = Path(argv[argv.index("-o") + 1])
        out.mkdir(parents=True, exist_ok=True)
        if argv[0] == "finetune-teacher":
            metrics = {"parameters": 1000, "stages": {"finetune": {"steps": 3}}, "dev": {}}
            (out / "metrics.json").write_text(json.dumps(metrics))
        elif argv[0] == "augment":
            rows = len(Path(argv[1]).read_text().splitlines()) - 1
            stats = {"records": rows, "rows_rejected": 0, "variants_out": 3 * rows}
            (out / "stats.json").write_text(json.dumps(stats))
        elif argv[0] == "distill":
            train = argv[argv.index("--train") + 1]
            score = 0.7 if "augment-fast" in train else 0.8 if "augment" in train else 0.6
            stages = {
                "intermediate": {"steps": 4, "seconds": 1.0},
                "prediction": {"steps": 2, "seconds": 1.0},
            }
            metrics = {
                "student_dev": {"dev": {"accuracy": score}},
                "teacher_dev": {"dev": {"accuracy": 0.9}},
                "parameters": {"teacher": 1000, "student": 500},
                "stages": stages,
                "inference": {"speedup": 2.0},
            }
            (out / "metrics.json").write_text(json.dumps(metrics))
        return ""

    return kdaug


def test_pipeline_results_and_resume(
    ablation: Any, task_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    log: list[list[str]] = []
    monkeypatch.setattr(ablation.Steps, "kdaug", fake_kdaug(log))
    out = tmp_path / "out"
    options = "--task sst2 --mlm m --train-limit 16 --teacher-steps 3 --stage1-steps 4 "
    options += "--stage2-steps 2 --batch-size 8 --augment-modes exact,fast"
    argv = ["--data-dir", str(task_dir), "--out", str(out), *options.split()]
    assert ablation.main(argv) == 0
    names = ["finetune-teacher", "augment", "augment", "augment", *["distill"] * 3]
    assert [a[0] for a in log] == names  # augment exact, --help (for --mode), augment fast
    augments = [a for a in log if a[0] == "augment" and "--help" not in a]
    assert "--mode" not in augments[0] and augments[1][-2:] == ["--mode", "fast"]
    config = json.loads((out / "configs" / "student_noda.yaml").read_text())
    assert config["intermediate"] == {"batch_size": 8, "max_steps": 4, "epochs": 1000}
    assert config["eval_every"] == 1  # 4 evaluations asked, 2 steps

    r = json.loads((out / "results.json").read_text())
    models = r["models"]
    assert list(models) == ["teacher", "student_noda", "student_da_exact", "student_da_fast"]
    assert models["teacher"]["dev"] == {"accuracy": 90.0}
    assert models["student_noda"]["train_rows"] == 16
    assert models["student_da_exact"]["train_rows"] == 48
    assert models["student_noda"]["epochs_seen"] == {"intermediate": 2.0, "prediction": 1.0}
    assert r["delta_da_minus_noda_points"] == {
        "exact": {"accuracy": 20.0},
        "fast": {"accuracy": 10.0},
    }
    assert r["subset"] == {
        "train_limit": 16,
        "rows": 16,
        "source_rows": 24,
        "selection": "first rows of train.tsv, in file order",
    }
    assert r["paper_reference"]["delta_points"]["mrpc"] == 3.4
    assert r["machine"]["cores"] >= 1 and r["machine"]["torch"]
    assert (out / "ablation.png").stat().st_size > 1000
    table = capsys.readouterr().out
    assert "| student DA-exact |" in table and "+20.0" in table

    # Again: every step is skipped, nothing runs.
    n = len(log)
    assert ablation.main(argv) == 0
    assert len(log) == n
    assert all(
        s["skipped"] for s in json.loads((out / "results.json").read_text())["steps"].values()
    )

    # A changed student budget is refused; with --redo only the students run again.
    changed = [*argv, "--stage2-steps", "3"]
    assert ablation.main(changed) == 2
    assert "budget.prediction.max_steps: 2 -> 3" in capsys.readouterr().err
    assert len(log) == n
    assert ablation.main([*changed, "--redo"]) == 0
    assert [a[0] for a in log[n:]] == ["distill", "distill", "distill"]


def test_fast_mode_needs_the_flag(
    ablation: Any, task_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(ablation.Steps, "kdaug", fake_kdaug([], has_mode=False))
    argv = ["--data-dir", str(task_dir), "--out", str(tmp_path / "o")]
    argv += ["--task", "sst2", "--mlm", "m", "--augment-modes", "fast"]
    assert ablation.main(argv) == 2
    assert "no --mode flag" in capsys.readouterr().err


def test_bad_options_are_one_line(
    ablation: Any, task_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    base = ["--data-dir", str(task_dir), "--out", str(tmp_path / "o"), "--mlm", "m"]
    assert ablation.main(["--task", "nope", *base]) == 2
    assert "unknown task" in capsys.readouterr().err
    assert ablation.main(["--task", "sst2", *base, "--augment-modes", "exact,slow"]) == 2
    assert "--augment-modes" in capsys.readouterr().err
    missing = ["--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--mlm", "m"]
    assert ablation.main(["--task", "sst2", *missing]) == 2
    assert "train.tsv not found" in capsys.readouterr().err


# ---- the real thing ----------------------------------------------------------------------------
@pytest.mark.slow
def test_real_run_with_tiny_models(task_dir: Path, tmp_path: Path, tiny_mlm_dir: Path) -> None:
    """Every kdaug command for real (about a minute): teacher, augment, two students."""
    out = tmp_path / "out"
    options = "--task sst2 --train-limit 20 --teacher-steps 2 --stage1-steps 2 --stage2-steps 2 "
    options += "--batch-size 8 --max-length 32 --n 2 --evals 1 --threads 1 --device cpu"
    cmd = [sys.executable, str(SCRIPT), "--data-dir", str(task_dir), "--out", str(out)]
    cmd += ["--teacher-base", str(tiny_mlm_dir), "--mlm", str(tiny_mlm_dir), *options.split()]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    r = json.loads((out / "results.json").read_text())
    for key in ("teacher", "student_noda", "student_da_exact"):
        assert 0 <= r["models"][key]["dev"]["accuracy"] <= 100
    assert r["augmented"]["exact"]["records"] == 20
    assert r["models"]["student_da_exact"]["train_rows"] > r["subset"]["rows"] == 20
    assert r["models"]["student_noda"]["steps"] == {"intermediate": 2, "prediction": 2}
    assert r["models"]["student_da_exact"]["steps"] == {"intermediate": 2, "prediction": 2}
    assert (out / "ablation.png").is_file() and (out / "table.md").is_file()
    assert (out / "student_da_exact" / "best" / "config.json").is_file()

    t = time.monotonic()
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    assert time.monotonic() - t < 30
    assert second.stdout.count("skipped") == 5
    assert json.loads((out / "results.json").read_text())["models"] == r["models"]
