"""benchmarks.ablation: the step bookkeeping (skip, refuse, redo, resume), the runs it makes
(arms, seeds, both budgets, the equal-steps noDA step count) and the results it writes, with
kdaug's commands replaced by a stand-in that writes what each command writes; and, marked slow,
one real run end to end with tiny models."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.ablation import cli
from benchmarks.ablation.data import write_subset
from benchmarks.ablation.steps import AblationError, Steps
from distill.tasks import get_task
from kdaug.files import sha256_file

REPO = Path(__file__).resolve().parents[2]
POSITIVE = ["great", "wonderful", "moving", "charming", "brilliant", "funny"]
NEGATIVE = ["dull", "awful", "boring", "clumsy", "tedious", "weak"]
NOUNS = ["film", "story", "movie", "script", "cast", "ending"]
# dev accuracy of the stand-in's students: base + step * seed, per arm
SCORES = {
    "noda": (0.60, 0.01),
    "noda-steps": (0.62, 0.01),  # the equal-steps noDA runs
    "da-exact": (0.70, 0.01),  # a constant +10 over noda at equal epochs
    "da-fast": (0.63, 0.03),  # +5, +7, +9 (seeds 1, 2, 3)
    "da-cond": (0.66, 0.01),
}
DA_VECTORS = {1: 0.61, 2: 0.60, 3: 0.64}  # +0, -2, +1 over noda: an interval holding 0


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
    """A GLUE SST-2 task directory: 120 train rows, 8 dev rows."""
    d = tmp_path / "SST-2"
    d.mkdir()
    (d / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(sentences(120, 0)) + "\n")
    (d / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(sentences(8, 100)) + "\n")
    return d


# ---- the bookkeeping ---------------------------------------------------------------------------
def test_steps_skip_refuse_redo_and_resume(tmp_path: Path) -> None:
    calls: list[bool] = []

    def body(resume: bool) -> dict[str, Any]:
        calls.append(resume)
        (tmp_path / "run").mkdir(exist_ok=True)
        (tmp_path / "run" / "weights").write_text("w")
        return {"score": len(calls)}

    steps = Steps(tmp_path, {}, redo=False)
    assert steps.run("train", {"steps": 10}, tmp_path / "run", body) == {"score": 1}
    assert steps.run("train", {"steps": 10}, tmp_path / "run", body) == {"score": 1}
    assert calls == [False] and steps.records["train"]["skipped"]
    done = (tmp_path / "steps" / "train.json").read_text()
    keys = ["name", "settings", "commands", "resumed", "seconds", "result"]
    assert list(json.loads(done)) == keys and done.endswith("}\n")  # the format users have
    assert sorted(p.name for p in (tmp_path / "steps").iterdir()) == ["train.json"]

    with pytest.raises(AblationError, match=r"steps: 10 -> 20.*--redo"):
        steps.run("train", {"steps": 20}, tmp_path / "run", body)
    assert calls == [False]  # refused before anything ran or was deleted
    assert (tmp_path / "run" / "weights").is_file()

    (tmp_path / "run" / "stale").write_text("from the old settings")
    redo = Steps(tmp_path, {}, redo=True)
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


def test_a_failing_command_is_one_error_with_the_log_tail(tmp_path: Path) -> None:
    steps = Steps(tmp_path, None, redo=False)
    with pytest.raises(AblationError) as err:
        steps.run("broken", {}, None, lambda _: {"out": steps.kdaug("no-such-command")})
    text = str(err.value)
    assert text.startswith("step broken failed (exit 2); end of ")
    assert "no-such-command" in text and "invalid choice" in text
    assert not (tmp_path / "steps" / "broken.json").exists()


def test_subset_keeps_header_and_first_rows(tmp_path: Path) -> None:
    src = tmp_path / "train.tsv"
    src.write_text(
        '\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta "b\tc\n\n0\t3\t4\td\te\n'
    )
    out = write_subset(src, tmp_path / "s.tsv", get_task("mrpc"), limit=1)
    assert out["rows"] == 1 and out["source_rows"] == 2
    assert (
        tmp_path / "s.tsv"
    ).read_text() == 'Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta "b\tc\n'

    cola = tmp_path / "cola.tsv"  # headerless
    cola.write_text("gj04\t1\t\tThe boy ran.\ngj04\t0\t*\tRan boy the.\n")
    out = write_subset(cola, tmp_path / "c.tsv", get_task("cola"), limit=0)
    assert out["rows"] == 2 and (tmp_path / "c.tsv").read_text() == cola.read_text()


# ---- a stand-in for kdaug ----------------------------------------------------------------------
def _opt(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def argv_config(argv: list[str]) -> dict[str, Any]:
    """The prediction stage's budget in a transformer run's --config ({} without one)."""
    config = _opt(argv, "--config")
    return json.loads(Path(config).read_text())["prediction"] if config else {}


def _arm_of(train: str) -> str:
    name = Path(train).name
    arms = ("da-vectors", "da-exact", "da-fast", "da-cond")
    return next((a for a in arms if name.startswith(a)), "noda")


def fake_kdaug(log: list[list[str]], interrupt_at: int | None = None):
    """Stands in for `Steps.kdaug`: writes what each command writes (metrics.json, shards with
    originals and variants, the teacher-logits cache) with known scores and agreements."""
    from distill.data import ExampleSource
    from distill.logits_cache import CACHE_DIR, META, source_content, teacher_fingerprint
    from distill.pipeline import trained_dir

    spec = get_task("sst2")

    def kdaug(self: Any, *args: Any) -> str:
        import numpy as np

        argv = [str(a) for a in args]
        self._commands.append(" ".join(argv))
        log.append(argv)
        out = Path(_opt(argv, "-o") or argv[1])
        if interrupt_at is not None and len(log) == interrupt_at:
            (out / "checkpoints").mkdir(parents=True)  # stopped after its first checkpoint
            raise KeyboardInterrupt
        if argv[0] == "adapt-mlm":
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text("{}")
        elif argv[0] == "finetune-teacher":
            out.mkdir(parents=True, exist_ok=True)
            cfg = json.loads(Path(_opt(argv, "--config")).read_text())
            steps = cfg["finetune"]["max_steps"]
            metrics = {"parameters": 1000, "stages": {"finetune": {"steps": steps}}}
            metrics["dev"] = {"dev": {"accuracy": 0.9}}
            (out / "metrics.json").write_text(json.dumps(metrics))
        elif argv[0] == "augment":
            import pyarrow as pa
            import pyarrow.parquet as pq

            from augment.io.writers import VARIANT_SCHEMA

            lines = Path(argv[1]).read_text().splitlines()[1:]
            fast = _opt(argv, "--mode") == "fast"
            recs = []
            for i, line in enumerate(lines):
                text, label = line.split("\t")
                for v in range(1 + int(_opt(argv, "--n")) - (fast and i % 2)):
                    recs.append(
                        {"id": str(i), "variant": v, "text_a": f"{text} {v}", "text_b": None}
                        | {"label": label, "replacements": []}
                    )
            (out / "data").mkdir(parents=True, exist_ok=True)
            table = pa.Table.from_pylist(recs, schema=VARIANT_SCHEMA)
            pq.write_table(table, out / "data" / "part-00000.parquet")
            stats = {"records": len(lines), "rows_rejected": 0, "variants_out": len(recs)}
            (out / "stats.json").write_text(json.dumps(stats))
        elif argv[0] == "teacher-logits":
            # The teacher agrees with every original and variant 1, never with variant 2.
            train = Path(argv[1])
            max_length = int(_opt(argv, "--max-length"))
            fp = teacher_fingerprint(trained_dir(_opt(argv, "--teacher")), max_length)
            source = ExampleSource(train, spec)
            directory = (train if train.is_dir() else train.parent) / CACHE_DIR / fp
            directory.mkdir(parents=True)
            flip = [[r.get("variant") == 2 for r in source._rows(f)] for f in source.files]
            for fi, f in enumerate(source.files):
                examples = [e for e in source.iterate([fi])]
                arr = np.zeros((len(examples), 2), dtype=np.float32)
                for e in examples:
                    label = 1 - e.label if flip[fi][e.key[1]] else e.label
                    arr[e.key[1], label] = 1.0
                np.save(directory / f"{f.stem}.npy", arr)
            meta = {"fingerprint": fp, "num_labels": 2, "files": source_content(source)}
            (directory / META).write_text(json.dumps(meta))
            return f"{directory}\n"
        elif argv[0] == "distill":
            out.mkdir(parents=True, exist_ok=True)
            train, seed = _opt(argv, "--train"), int(_opt(argv, "--seed"))
            rows = len(ExampleSource(train, spec))
            if _opt(argv, "--student") == "bilstm":
                per_epoch = math.ceil(rows / 50)
                steps = math.ceil(float(_opt(argv, "--epochs")) * per_epoch)
                steps = min(steps, int(_opt(argv, "--max-steps") or steps))
                stages = {"prediction": {"steps": steps, "seconds": 1.0}}
            else:
                cfg = json.loads(Path(_opt(argv, "--config")).read_text())
                for kept in ("checkpoints/intermediate", "teacher_states/k"):
                    (out / kept).mkdir(parents=True, exist_ok=True)
                stages = {}
                for s in ("intermediate", "prediction"):
                    per_epoch = math.ceil(rows / cfg[s]["batch_size"])
                    n = math.ceil(cfg[s]["epochs"] * per_epoch)
                    stages[s] = {"steps": min(n, cfg[s].get("max_steps") or n)}
            arm = _arm_of(train)
            matched = "--max-steps" in argv or "max_steps" in argv_config(argv)
            if arm == "noda" and matched:
                arm = "noda-steps"
            base, step = SCORES.get(arm, (0.0, 0.0))
            score = DA_VECTORS[seed] if arm == "da-vectors" else base + step * seed
            metrics = {
                "student_dev": {"dev": {"accuracy": round(score, 6)}},
                "teacher_dev": {"dev": {"accuracy": 0.9}},
                "parameters": {"teacher": 1000, "student": 50},
                "stages": stages,
                "inference": {
                    "teacher_seconds_per_sentence": 0.01,
                    "student_seconds_per_sentence": 0.0004,
                    "speedup": 25.0,
                },
            }
            (out / "metrics.json").write_text(json.dumps(metrics))
        return ""

    return kdaug


OPTIONS = (
    "--task sst2 --mlm m --train-limit 100 --teacher-steps 3 --transformer-epochs 2,1 "
    "--batch-size 8 --n 2 --bilstm-epochs 2 --evals 2 --students bilstm,layers:1:tiny"
)


def run_argv(task_dir: Path, out: Path, options: str = OPTIONS) -> list[str]:
    return ["--data-dir", str(task_dir), "--out", str(out), *options.split()]


def by(entries: list[dict[str, Any]], **keys: Any) -> list[dict[str, Any]]:
    return [e for e in entries if all(e.get(k) == v for k, v in keys.items())]


def test_pipeline_runs_every_arm_seed_and_budget(
    task_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    log: list[list[str]] = []
    monkeypatch.setattr(Steps, "kdaug", fake_kdaug(log))
    out = tmp_path / "out"
    assert cli.main(run_argv(task_dir, out)) == 0
    kinds = [a[0] for a in log]
    assert kinds.count("finetune-teacher") == 1
    assert kinds.count("augment") == 9  # 3 DA arms x 3 seeds
    assert kinds.count("teacher-logits") == 10  # the subset and every augmented set
    distills = [a for a in log if a[0] == "distill"]
    bilstm = [a for a in distills if _opt(a, "--student") == "bilstm"]
    # per seed: noda + 3 DA arms at equal epochs, noda at 12 steps (vectors, exact) and 10 (fast)
    assert len(bilstm) == 3 * 6 and len(distills) == 3 * 6 + 3 * 3
    augments = [a for a in log if a[0] == "augment"]
    assert {(_opt(a, "--mlm"), _opt(a, "--mode")) for a in augments} == {
        ("none", "exact"),
        ("m", "exact"),
        ("m", "fast"),
    }
    assert sorted({_opt(a, "--seed") for a in augments}) == ["1", "2", "3"]
    # the teacher's logits are cached at the max length every distill run uses
    logits = [a for a in log if a[0] == "teacher-logits"]
    assert {_opt(a, "--max-length") for a in logits + distills} == {"64"}

    r = json.loads((out / "results.json").read_text())
    # equal steps: a noda run takes exactly the steps its DA run took at equal epochs
    runs = r["runs"]
    for da in (x for x in runs if x["student"] == "bilstm" and x["arm"] != "noda"):
        noda = by(runs, student="bilstm", seed=da["seed"], matched_to=da["arm"])
        assert len(noda) == 1
        assert (
            noda[0]["steps"] == da["steps"] == {"prediction": 12 if da["arm"] != "da-fast" else 10}
        )
        assert noda[0]["budgets"] == ["equal-steps"]
        assert da["budgets"] == ["equal-epochs", "equal-steps"]  # the same DA runs in both
        assert noda[0]["epochs"] == {"prediction": round(da["steps"]["prediction"] * 50 / 100, 2)}
    for a in bilstm:
        if _opt(a, "--max-steps"):
            assert _opt(a, "--eval-every") == str(int(_opt(a, "--max-steps")) // 2)
    epochs_noda = by(runs, student="bilstm", arm="noda", budgets=["equal-epochs"])
    assert [x["steps"] for x in epochs_noda] == [{"prediction": 4}] * 3  # 2 epochs of 2 batches
    # the transformer student: 2 + 1 epochs over each arm's own rows (100 and 300, batch 8),
    # and a noda run per seed taking the DA run's steps of each stage
    tiny = [x for x in runs if x["student"] == "layers:1:tiny"]
    for x in by(tiny, arm="noda", budgets=["equal-epochs"]):
        assert x["steps"] == {"intermediate": 26, "prediction": 13}
        assert x["epochs"] == {"intermediate": 2.0, "prediction": 1.0}
    for x in by(tiny, arm="da-exact"):
        assert x["budgets"] == ["equal-epochs", "equal-steps"]
        assert x["steps"] == {"intermediate": 76, "prediction": 38}
        matched = by(tiny, seed=x["seed"], matched_to="da-exact")
        assert len(matched) == 1 and matched[0]["steps"] == x["steps"]
        assert matched[0]["epochs"] == {"intermediate": 5.85, "prediction": 2.92}
    configs = {
        _opt(a, "-o").split("/")[-1]: json.loads(Path(_opt(a, "--config")).read_text())
        for a in distills
        if _opt(a, "--config")
    }
    noda_s1 = configs["layers-1-tiny-noda-steps76-38-n100-s1"]
    assert noda_s1["intermediate"]["max_steps"] == 76 and noda_s1["eval_every"] == 19
    assert configs["layers-1-tiny-da-exact-epochs2-1-n100-s1"]["prediction"]["epochs"] == 1
    # a finished transformer run keeps its metrics and model, not what only a resume reads
    for name in configs:
        assert (out / "students" / name / "metrics.json").is_file()
        assert not (out / "students" / name / "checkpoints").exists()
        assert not (out / "students" / name / "teacher_states").exists()

    # arms: per student, budget and arm, per-seed scores in points, mean and std
    arms = r["arms"]
    for entry in arms:
        assert {"student", "arm", "budget", "seeds", "scores", "mean", "std"} <= set(entry)
        assert entry["arm"] in ("noda", "da-vectors", "da-exact", "da-fast")
        assert entry["budget"] in ("equal-epochs", "equal-steps")
    noda = by(arms, student="bilstm", arm="noda", budget="equal-epochs")[0]
    assert noda["seeds"] == [1, 2, 3] and noda["scores"] == [61.0, 62.0, 63.0]
    assert noda["mean"] == 62.0 and noda["std"] == 1.0
    assert len(by(arms, student="bilstm", budget="equal-epochs")) == 4
    assert len(by(arms, student="bilstm", budget="equal-steps")) == 6  # 3 DA + 3 matched noda
    assert {e["arm"] for e in by(arms, student="layers:1:tiny")} == {"noda", "da-exact"}
    assert {e["budget"] for e in by(arms, student="layers:1:tiny")} == {
        "equal-epochs",
        "equal-steps",
    }

    # deltas: DA - noda paired by seed, 95% t interval
    deltas = r["deltas"]
    for d in deltas:
        assert {"student", "arm", "budget", "mean", "ci_low", "ci_high"} <= set(d)
    exact = by(deltas, student="bilstm", arm="da-exact", budget="equal-epochs")[0]
    assert exact["mean"] == pytest.approx(10.0) and exact["excludes_zero"] is True
    assert exact["ci_low"] == pytest.approx(10.0) and exact["ci_high"] == pytest.approx(10.0)
    fast = by(deltas, student="bilstm", arm="da-fast", budget="equal-epochs")[0]
    assert fast["mean"] == pytest.approx(7.0)
    assert fast["ci_high"] - 7.0 == pytest.approx(4.302653 * 2 / math.sqrt(3), abs=1e-3)
    vectors = by(deltas, student="bilstm", arm="da-vectors", budget="equal-epochs")[0]
    assert vectors["ci_low"] < 0 < vectors["ci_high"] and vectors["excludes_zero"] is False
    steps_exact = by(deltas, student="bilstm", arm="da-exact", budget="equal-steps")[0]
    assert steps_exact["mean"] == pytest.approx(8.0)  # against the equal-steps noda runs
    tiny = by(deltas, student="layers:1:tiny", arm="da-exact")
    assert [d["budget"] for d in tiny] == ["equal-epochs", "equal-steps"]
    assert tiny[0]["mean"] == pytest.approx(10.0) and tiny[1]["mean"] == pytest.approx(8.0)
    assert len(deltas) == 3 + 3 + 2

    # between arms: each masked-LM arm minus the vectors-only arm, paired by seed, equal epochs
    between = r["between_arms"]
    assert [(d["student"], d["arm"], d["versus"]) for d in between] == [
        ("bilstm", "da-exact", "da-vectors"),
        ("bilstm", "da-fast", "da-vectors"),
    ]  # the transformer student ran no vectors arm
    assert between[0]["differences"] == [10.0, 12.0, 9.0] and between[0]["budget"] == "equal-epochs"
    assert (
        between[0]["mean"] == pytest.approx(31 / 3, abs=1e-3)
        and between[0]["excludes_zero"] is True
    )
    assert between[1]["differences"] == [5.0, 9.0, 8.0]

    # the teacher's agreement with the inherited labels: originals and variants apart
    agreement = {(g["arm"], g["size"]): g for g in r["label_agreement"]}
    assert agreement[("da-exact", 100)]["originals"] == 100.0
    assert agreement[("da-exact", 100)]["variants"] == 50.0  # variant 2 always flipped
    assert agreement[("da-fast", 100)]["variants"] == pytest.approx(66.67, abs=0.01)
    assert agreement[("noda", 100)]["all"] == 100.0

    assert r["teacher"]["score"] == 90.0 and r["teacher"]["steps"] == 3
    assert r["bilstm"]["fraction_of_teacher"] == pytest.approx(72.0 / 90.0, abs=1e-4)
    assert r["bilstm"]["speedup"] == 25.0 and r["bilstm"]["arm"] == "da-exact"
    assert any("layers:1:tiny" in c and "equal-epochs 2 + 1 epochs" in c for c in r["cut"])
    assert r["steps"]["teacher"]["seconds"] >= 0 and "augment-da-exact-n100-s1" in r["steps"]
    assert r["machine"]["cores"] >= 1 and r["machine"]["torch"]
    assert (out / "ablation.png").stat().st_size > 1000
    assert not (out / "ablation-sizes.png").exists()  # one size

    table = capsys.readouterr().out
    assert "| bilstm | equal-epochs | da-exact | 3 | 72.0 ± 1.0 | +10.0 [+10.0, +10.0] | yes |" in (
        table
    )
    assert "noda (steps of da-fast)" in table and "the interval does not exclude 0" in table
    assert "bilstm, equal-epochs, 100 rows, da-exact - da-vectors: +10.3 points" in table
    assert "Cut: layers:1:tiny" in table and (out / "table.md").read_text().strip() in table


def test_label_conditional_arm_adapts_the_mlm_once_and_reruns_skip(
    task_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """da-cond: `adapt-mlm --label-column` on the subset once, its model augments every seed;
    the transformer arms at equal epochs and steps; a rerun runs nothing (each arm and seed is
    a finished step)."""
    log: list[list[str]] = []
    monkeypatch.setattr(Steps, "kdaug", fake_kdaug(log))
    out = tmp_path / "out"
    options = OPTIONS.replace("bilstm,layers:1:tiny", "layers:1:tiny") + " --seeds 1,2"
    options += " --arms noda --transformer-arms noda,da-vectors,da-exact,da-cond --cond-steps 7"
    assert cli.main(run_argv(task_dir, out, options)) == 0
    adapts = [a for a in log if a[0] == "adapt-mlm"]
    assert len(adapts) == 1
    a = adapts[0]
    assert _opt(a, "--base") == "m" and _opt(a, "--steps") == "7" and _opt(a, "--seed") == "42"
    assert _opt(a, "--label-column") == "label" and _opt(a, "--text-column") == "sentence"
    assert _opt(a, "--corpus") == str(out / "data" / "train.tsv")
    cond = [x for x in log if x[0] == "augment" and "da-cond" in _opt(x, "-o")]
    assert [_opt(x, "--seed") for x in cond] == ["1", "2"]
    assert {_opt(x, "--mlm") for x in cond} == {_opt(a, "-o")}
    r = json.loads((out / "results.json").read_text())
    deltas = {(d["arm"], d["budget"]) for d in r["deltas"]}
    assert deltas == {
        (arm, b)
        for arm in ("da-vectors", "da-exact", "da-cond")
        for b in ("equal-epochs", "equal-steps")
    }
    assert "adapt-mlm --label-column" in r["augment"]["arms"]["da-cond"]
    n = len(log)
    assert cli.main(run_argv(task_dir, out, options)) == 0
    assert len(log) == n  # every arm and seed was kept and skipped


def test_dry_run_lists_the_steps_and_what_is_left_and_writes_nothing(
    task_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    out = tmp_path / "out"
    options = OPTIONS.replace("bilstm,layers:1:tiny", "layers:1:tiny") + " --seeds 1"
    options += " --arms noda --transformer-arms noda,da-exact"
    argv = run_argv(task_dir, out, options)
    assert cli.main([*argv, "--dry-run"]) == 0
    assert not out.exists()
    printed = capsys.readouterr().out.splitlines()
    names = [line.split(":")[0].split()[-1] for line in printed[:-1]]
    assert names == [
        "teacher",
        "logits-subset-n100",
        "augment-da-exact-n100-s1",
        "logits-da-exact-n100-s1",
        "layers-1-tiny-noda-epochs2-1-n100-s1",
        "layers-1-tiny-da-exact-epochs2-1-n100-s1",
        "layers-1-tiny-noda-steps64-32-n100-s1",  # estimated: 100 x 3 x 0.83 = 249 rows
    ]
    assert all(line.startswith("to run") for line in printed[:-1])
    assert printed[-1].startswith("7 steps, 0 done; the rest: ~")

    log: list[list[str]] = []
    monkeypatch.setattr(Steps, "kdaug", fake_kdaug(log))
    assert cli.main(argv) == 0
    capsys.readouterr()
    assert cli.main([*argv, "--dry-run"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "layers-1-tiny-noda-steps76-38-n100-s1: 76 + 38 steps" in printed[-2]  # counted
    assert all(line.startswith("done") for line in printed[:-1])
    assert printed[-1].startswith("7 steps, 7 done; the rest: ~0.0 CPU hours")


def test_rerun_skips_everything_and_changes_are_refused(
    task_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    log: list[list[str]] = []
    monkeypatch.setattr(Steps, "kdaug", fake_kdaug(log))
    out = tmp_path / "out"
    options = OPTIONS.replace("bilstm,layers:1:tiny", "bilstm") + " --seeds 1,2"
    argv = run_argv(task_dir, out, options)
    assert cli.main(argv) == 0
    n = len(log)
    first = json.loads((out / "results.json").read_text())

    assert cli.main(argv) == 0  # again: every step skipped, nothing runs
    assert len(log) == n
    again = json.loads((out / "results.json").read_text())
    assert all(s["skipped"] for s in again["steps"].values())
    assert again["arms"] == first["arms"] and again["deltas"] == first["deltas"]

    changed = [*argv, "--evals", "4"]  # every student run's evaluation schedule changes
    assert cli.main(changed) == 2
    err = capsys.readouterr().err
    assert "budget.eval_every: 2 -> 1" in err and "--redo" in err
    assert len(log) == n
    assert cli.main([*changed, "--redo"]) == 0
    assert {a[0] for a in log[n:]} == {"distill"}  # data, teacher and logits were kept
    assert len(log) - n == 2 * 6

    more = run_argv(task_dir, out, options.replace("--seeds 1,2", "--seeds 1,2,3"))
    m = len(log)
    assert cli.main([*more, "--evals", "4"]) == 0  # a new seed adds its own steps only
    assert log[m:] and all("-s3" in " ".join(a) for a in log[m:])  # its shards, its runs
    r = json.loads((out / "results.json").read_text())
    assert all(a["seeds"] == [1, 2, 3] for a in r["arms"])


def test_interrupted_run_resumes_the_step_it_stopped_in(
    task_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[list[str]] = []
    options = OPTIONS.replace("bilstm,layers:1:tiny", "bilstm") + " --seeds 1 --arms noda,da-exact"
    argv = run_argv(task_dir, tmp_path / "out", options)
    # commands: teacher, subset logits, augment, its logits, then the first distill
    monkeypatch.setattr(Steps, "kdaug", fake_kdaug(log, interrupt_at=5))
    assert cli.main(argv) == 130
    assert log[-1][0] == "distill" and "--resume" not in log[-1]
    stopped = _opt(log[-1], "-o")

    monkeypatch.setattr(Steps, "kdaug", fake_kdaug(log))
    assert cli.main(argv) == 0
    rest = log[5:]
    assert rest[0][0] == "distill" and _opt(rest[0], "-o") == stopped and "--resume" in rest[0]
    assert {a[0] for a in rest} == {"distill"}  # what had finished was not run again


def test_teacher_and_subset_steps_recorded_by_the_earlier_script_are_reused(
    task_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings dicts of steps `subset` and `teacher` are those the single-seed script
    recorded (its cpu budget, --train-limit 100 --teacher-steps 40): nothing is redone."""
    out = tmp_path / "out"
    (out / "steps").mkdir(parents=True)
    (out / "data").mkdir()
    (out / "teacher").mkdir()
    subset = write_subset(task_dir / "train.tsv", out / "data" / "train.tsv", get_task("sst2"), 100)
    train, dev = task_dir / "train.tsv", task_dir / "dev.tsv"
    legacy = {
        "subset": {
            "settings": {"train": str(train), "train_sha256": sha256_file(train), "limit": 100},
            "result": subset,
        },
        "teacher": {
            "settings": {
                "base": "minilm-packaged",
                "train": str(train),
                "train_sha256": sha256_file(train),
                "budget": {
                    "eval_every": 10,
                    "finetune": {"batch_size": 32, "max_steps": 40, "epochs": 1000},
                },
                "flags": [
                    "--task",
                    "sst2",
                    "--seed",
                    "42",
                    "--eval",
                    str(dev),
                    "--max-length",
                    "64",
                ],
                "dev": {str(dev): sha256_file(dev)},
            },
            "result": {
                "parameters": 1000,
                "stages": {"finetune": {"steps": 40}},
                "last_dev": {"dev": {"accuracy": 0.9}},
            },
        },
    }
    for name, record in legacy.items():
        full = {"name": name, "commands": [], "resumed": False, "seconds": 12.0, **record}
        (out / "steps" / f"{name}.json").write_text(json.dumps(full))
    log: list[list[str]] = []
    monkeypatch.setattr(Steps, "kdaug", fake_kdaug(log))
    options = "--task sst2 --mlm m --train-limit 100 --teacher-steps 40 --students bilstm "
    options += "--seeds 1 --arms noda,da-exact --n 2"
    assert cli.main(run_argv(task_dir, out, options)) == 0
    assert "finetune-teacher" not in {a[0] for a in log}
    r = json.loads((out / "results.json").read_text())
    assert r["steps"]["subset"]["skipped"] and r["steps"]["teacher"]["skipped"]
    assert r["teacher"]["seconds"] == 12.0


def test_teacher_steps_follow_its_epochs(
    task_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[list[str]] = []
    monkeypatch.setattr(Steps, "kdaug", fake_kdaug(log))
    options = "--task sst2 --mlm m --train-limit 100 --students bilstm --seeds 1 --arms noda"
    assert cli.main(run_argv(task_dir, tmp_path / "a", options)) == 0
    r = json.loads((tmp_path / "a" / "results.json").read_text())
    assert r["teacher"]["steps"] == 3 * math.ceil(120 / 32)  # 3 epochs: 120 rows <= 10,000
    assert cli.main(run_argv(task_dir, tmp_path / "b", options + " --teacher-epochs 1")) == 0
    assert json.loads((tmp_path / "b" / "results.json").read_text())["teacher"]["steps"] == 4


def test_several_subset_sizes_plot_the_gain_against_size(
    task_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[list[str]] = []
    monkeypatch.setattr(Steps, "kdaug", fake_kdaug(log))
    out = tmp_path / "out"
    options = OPTIONS.replace("--train-limit 100", "--train-limit 50,100")
    options = options.replace("bilstm,layers:1:tiny", "bilstm") + " --arms noda,da-exact"
    assert cli.main(run_argv(task_dir, out, options)) == 0
    r = json.loads((out / "results.json").read_text())
    assert [s["rows"] for s in r["subsets"]] == [50, 100]
    assert r["subset"]["rows"] == 50  # the first size listed is the main one
    assert {d["size"] for d in r["deltas"]} == {50, 100}
    assert "subset" in r["steps"] and "subset-n50" in r["steps"]  # the largest keeps the name
    assert (out / "data" / "train.tsv").read_text().count("\n") == 101
    assert (out / "data-n50" / "train.tsv").read_text().count("\n") == 51
    assert (out / "ablation-sizes.png").stat().st_size > 1000
    assert "| train subset |" in (out / "table.md").read_text()


def test_bad_options_are_one_line(task_dir: Path, tmp_path: Path, capsys: Any) -> None:
    base = ["--data-dir", str(task_dir), "--out", str(tmp_path / "o"), "--mlm", "m"]
    cases = [
        (["--task", "nope"], "unknown task"),
        (["--task", "sst2", "--arms", "noda,da-slow"], "--arms: a comma list among noda"),
        (["--task", "sst2", "--transformer-arms", ""], "--transformer-arms"),
        (["--task", "sst2", "--seeds", "1,1"], "--seeds: a comma list of distinct integers"),
        (["--task", "sst2", "--train-limit", "500,x"], "--train-limit"),
        (["--task", "sst2", "--students", ","], "--students"),
        (["--task", "sst2", "--bilstm-epochs", "0"], "--bilstm-epochs must be at least 1"),
    ]
    for extra, message in cases:
        assert cli.main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    missing = ["--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--mlm", "m"]
    assert cli.main(["--task", "sst2", *missing]) == 2
    assert "train.tsv not found" in capsys.readouterr().err


# ---- the real thing ----------------------------------------------------------------------------
@pytest.mark.slow
def test_real_run_with_tiny_models(task_dir: Path, tmp_path: Path, tiny_mlm_dir: Path) -> None:
    """Every kdaug command for real (a few minutes): teacher, the label-conditional MLM, augment
    (2 arms x 2 seeds), teacher logits, the BiLSTM (noda, da-exact) and a 1-layer transformer
    student from the tiny MLM (noda, da-cond) at both budgets."""
    out = tmp_path / "out"
    options = "--task sst2 --train-limit 40 --seeds 1,2 --n 2 --bilstm-epochs 1 --evals 1 "
    options += "--teacher-steps 2 --transformer-epochs 2,1 --batch-size 8 --arms noda,da-exact "
    options += "--transformer-arms noda,da-cond --cond-steps 2 "
    options += f"--max-length 32 --threads 1 --device cpu --students bilstm,layers:2:{tiny_mlm_dir}"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.ablation",
        "--data-dir",
        str(task_dir),
        "--out",
        str(out),
    ]
    cmd += ["--teacher-base", str(tiny_mlm_dir), "--mlm", str(tiny_mlm_dir), *options.split()]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=REPO)
    assert first.returncode == 0, first.stderr[-3000:]
    r = json.loads((out / "results.json").read_text())
    assert {(a["student"].split(":")[0], a["budget"]) for a in r["arms"]} == {
        ("bilstm", "equal-epochs"),
        ("bilstm", "equal-steps"),
        ("layers", "equal-epochs"),
        ("layers", "equal-steps"),
    }
    for a in r["arms"]:
        assert a["seeds"] == [1, 2] and all(0 <= s <= 100 for s in a["scores"])
    assert len([d for d in r["deltas"] if d["student"] == "bilstm"]) == 2
    cond = [d for d in r["deltas"] if d["arm"] == "da-cond"]
    assert [d["budget"] for d in cond] == ["equal-epochs", "equal-steps"]
    assert (out / "mlm-cond" / "n40" / "config.json").is_file()
    assert not list((out / "students").glob("*/teacher_states"))
    for run in r["runs"]:
        if run["matched_to"]:
            da = [
                x
                for x in r["runs"]
                if x["arm"] == run["matched_to"]
                and x["seed"] == run["seed"]
                and x["student"] == "bilstm"
            ]
            assert run["steps"] == da[0]["steps"]
    exact = [g for g in r["label_agreement"] if g["arm"] == "da-exact"][0]
    assert exact["per_seed"][0]["original_rows"] == 40 and exact["per_seed"][0]["variant_rows"] > 0
    assert 0 <= exact["variants"] <= 100 and 0 <= exact["originals"] <= 100
    assert r["bilstm"]["speedup"] > 0
    assert (out / "ablation.png").is_file() and (out / "table.md").is_file()

    t = time.monotonic()
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert second.returncode == 0, second.stderr[-3000:]
    assert time.monotonic() - t < 60
    assert "running" not in second.stdout
    assert json.loads((out / "results.json").read_text())["arms"] == r["arms"]
