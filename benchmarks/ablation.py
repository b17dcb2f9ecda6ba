"""Does augmentation make better students? TinyBERT's data-augmentation ablation on a GLUE task,
run with kdaug's own commands only.

    python benchmarks/ablation.py --task mrpc                  # CPU budget (about 20-30 min)
    python benchmarks/ablation.py --task sst2 --augment-modes exact,fast
    python benchmarks/ablation.py --task mrpc --budget paper   # the paper's epochs (GPU)

Steps, each one `kdaug` command in a subprocess: write the first --train-limit train rows as a
GLUE tsv; fine-tune the teacher (`finetune-teacher`, on the full train set unless
--teacher-data subset: at a fixed step budget that costs the same and gives a better teacher);
`augment` the subset once per augmentation mode; `distill` (both stages) one student on the
subset itself (no DA) and one per mode on its shards (DA). Dev metrics come from each distill
run's metrics.json: its best student, and the teacher's best model on the same dev files.

With the CPU budget every stage runs a fixed number of optimizer steps, the same for every
student: the no-DA student sees the small subset for several epochs, the DA students draw the
same steps from the augmented shards. `--budget paper` trains for the paper's epochs instead
(teacher 3, stage 1 20 (CoLA 50; 10 for MNLI, QQP, QNLI), stage 2 3, batch 32, full train set),
so there the no-DA student takes fewer steps, as in the paper's ablation.

Resumable: steps/<name>.json records a finished step, its settings and commands, and the step is
skipped on the next run; an interrupted training step continues with `--resume`. A step whose
settings changed (or whose inputs did) is refused unless --redo is given. Writes results.json,
ablation.png and table.md under --out, and prints the table with DA - noDA in points.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))  # machine_info, when loaded from elsewhere

from distill.tasks import TaskError, TaskSpec, get_task  # noqa: E402

GLUE_DIRS = {
    "sst2": "SST-2",
    "mrpc": "MRPC",
    "stsb": "STS-B",
    "cola": "CoLA",
    "rte": "RTE",
    "qnli": "QNLI",
    "qqp": "QQP",
    "mnli": "MNLI",
}
MODES = ("exact", "fast")
LARGE_EPOCHS = 1000  # with a step budget, epochs never bind
BUDGETS: dict[str, dict[str, Any]] = {
    # Chosen from measured step times (MRPC, max length 64, batch 32, 1 thread: teacher 2.6 s,
    # stage 1 1.8 s, stage 2 1.5 s per step; augmentation 3.6 pairs/s with the shared MLM).
    "cpu": {
        "train_limit": 640,
        "teacher_steps": 300,
        "stage1_steps": 200,
        "stage2_steps": 100,
        "batch_size": 32,
        "max_length": 64,
        "evals": 4,
    },
    "paper": {
        "train_limit": 0,
        "teacher_steps": None,
        "stage1_steps": None,
        "stage2_steps": None,
        "batch_size": 32,
        "max_length": None,
        "evals": None,
    },
}
PAPER_REFERENCE = {
    "source": "TinyBERT (arXiv 1909.10351), ablation of the distillation procedure, "
    "TinyBERT4 from a BERT-base teacher, GLUE dev, full train sets, 20 (CoLA 50) + 3 epochs",
    "with_da": {"mnli_m": 82.8, "mnli_mm": 82.9, "mrpc": 85.8, "cola": 50.8},
    "without_da": {"mnli_m": 80.5, "mnli_mm": 81.0, "mrpc": 82.4, "cola": 29.8},
    # DA - noDA, as the tables here: removing DA cost TinyBERT4 these points
    "delta_points": {"mnli_m": 2.3, "mnli_mm": 1.9, "mrpc": 3.4, "cola": 21.0},
    "metrics": "MNLI accuracy, CoLA MCC, MRPC F1 (the metric the paper's GLUE tables give)",
    "note": "the drop is largest on the small tasks (MRPC 3.7k, CoLA 8.5k train rows)",
}


class AblationError(Exception):
    """A one-line problem for the user (bad option, missing file, changed settings)."""


def shown(value: Any) -> str:
    """Paths beside the repository relative to it, the interpreter as `python`: what is written
    into the results does not name this machine's directories."""
    text = str(value)
    if text == sys.executable:
        return "python"
    if os.path.isabs(text) and REPO.parent in Path(text).parents:
        return os.path.relpath(text, REPO)
    return text


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: names the setting that changed."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


class Steps:
    """Runs named steps once: a finished step is skipped while its settings are unchanged."""

    def __init__(self, out: Path, env: dict[str, str], redo: bool) -> None:
        self.out, self.env, self.redo = out, env, redo
        self.dir = out / "steps"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.t0 = time.monotonic()
        self.records: dict[str, dict[str, Any]] = {}
        self._commands: list[str] = []
        self._name = ""

    def say(self, name: str, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:8.1f}s] {name}: {message}", flush=True)

    def run(
        self,
        name: str,
        settings: dict[str, Any],
        output: Path | None,
        body: Callable[[bool], dict[str, Any]],
        note: Callable[[dict[str, Any]], str] = lambda _: "",
    ) -> dict[str, Any]:
        """body(resume) -> result. `output` is the directory the step owns (cleared on redo);
        `note` says in a few words what the result was, on the step's progress line."""
        settings = json.loads(json.dumps(settings))
        done, started = self.dir / f"{name}.json", self.dir / f"{name}.started.json"
        if done.is_file() and output is not None and not output.exists():
            done.unlink()  # its output was deleted: run it again
        if done.is_file():
            record = json.loads(done.read_text())
            if record["settings"] == settings:
                self.records[name] = {**record, "skipped": True}
                self.say(name, f"done before in {record['seconds']:.1f} s, skipped")
                return record["result"]
            self._changed(name, record["settings"], settings)
            done.unlink()
            self._clear(output)
        resume = False
        if started.is_file():
            previous = json.loads(started.read_text())["settings"]
            if previous == settings:
                resume = output is not None and output.exists()
            else:
                self._changed(name, previous, settings)
                self._clear(output)
        else:
            self._clear(output)  # left by something else: never mix it in
        started.write_text(json.dumps({"settings": settings}, indent=2) + "\n")
        self.say(name, "resuming" if resume else "running")
        self._commands, self._name = [], name
        t = time.monotonic()
        result = body(resume)
        seconds = time.monotonic() - t
        record = {
            "name": name,
            "settings": settings,
            "commands": self._commands,
            "resumed": resume,
            "seconds": round(seconds, 1),
            "result": result,
        }
        done.write_text(json.dumps(record, indent=2, default=float) + "\n")
        started.unlink()
        self.records[name] = record
        self.say(name, f"done in {seconds:.1f} s {note(result)}".rstrip())
        return result

    def kdaug(self, *args: Any) -> str:
        """Run one kdaug command; its stdout is returned, both streams go to steps/<name>.log."""
        cmd = [sys.executable, "-m", "augment.cli", *(str(a) for a in args)]
        self._commands.append(" ".join(shown(a) for a in cmd))
        log = self.dir / f"{self._name}.log"
        with log.open("a") as err:
            err.write(f"$ {self._commands[-1]}\n")
            err.flush()
            proc = subprocess.run(
                cmd, cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=err, text=True
            )
            err.write(proc.stdout)
        if proc.returncode != 0:
            tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
            raise AblationError(
                f"step {self._name} failed (exit {proc.returncode}); end of {shown(log)}:\n{tail}"
            )
        return proc.stdout

    def _changed(self, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        before, after = flatten(old), flatten(new)
        keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        diff = ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in keys)
        if not self.redo:
            raise AblationError(
                f"step {name} was run with other settings ({diff}); pass --redo to run it "
                "(and the steps that depend on it) again, or choose another --out"
            )
        self.say(name, f"settings changed ({', '.join(keys)}): redoing")

    def _clear(self, output: Path | None) -> None:
        if output is not None and output.exists() and self.out in output.parents:
            shutil.rmtree(output)


# ------------------------------------------------------------------------------------------------
def shared_assets() -> Path:
    env = os.environ.get("KDAUG_SHARED_ASSETS")
    return Path(env) if env else REPO.parent / "shared" / "assets"


def write_subset(src: Path, dst: Path, spec: TaskSpec, limit: int) -> dict[str, Any]:
    """The header (if the task's files have one) and the first `limit` rows (0: all) of `src`."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    rows = total = 0
    with src.open(encoding="utf-8-sig", newline="") as f, dst.open("w", encoding="utf-8") as g:
        if spec.header is None:
            g.write(f.readline().rstrip("\r\n") + "\n")
        for line in f:
            if not line.strip():
                continue
            total += 1
            if not limit or rows < limit:
                g.write(line.rstrip("\r\n") + "\n")
                rows += 1
    if rows == 0:
        raise AblationError(f"{shown(src)} has no data rows")
    return {"path": shown(dst), "rows": rows, "source_rows": total, "sha256": sha256(dst)}


def machine(threads: int | None, load: tuple[float, ...]) -> dict[str, Any]:
    import platform
    from importlib import metadata

    import torch
    from machine_info import cpu_model

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": threads or torch.get_num_threads(),
        "gpu": gpu,
        "load_average_at_start": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": metadata.version("transformers"),
        "kdaug": metadata.version("kdaug"),
    }


# ------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cpu = BUDGETS["cpu"]
    ap.add_argument("--task", required=True, help="sst2, mrpc, stsb, cola, rte, qnli, qqp, mnli")
    ap.add_argument(
        "--data-dir",
        type=Path,
        help="GLUE task dir with train.tsv and dev files "
        "(default: $KDAUG_SHARED_ASSETS or ../shared/assets, then glue/<MRPC|SST-2|...>)",
    )
    ap.add_argument("--out", type=Path, help="default: benchmarks/results/ablation-<task>")
    ap.add_argument(
        "--budget",
        choices=sorted(BUDGETS),
        default="cpu",
        help="cpu: fixed steps (below); paper: the paper's epochs, all train rows",
    )
    ap.add_argument("--teacher-base", default="minilm-packaged", help="model to fine-tune")
    ap.add_argument(
        "--teacher-data",
        choices=["full", "subset"],
        default="full",
        help="the teacher's train set (default: full)",
    )
    ap.add_argument("--student", default="teacher-layers:2", help="as `kdaug distill --student`")
    ap.add_argument("--mlm", help="default: the shared mlm-minilm-adapted, else 'default'")
    ap.add_argument("--augment-modes", default="exact", help="comma list of exact, fast")
    ap.add_argument(
        "--train-limit", type=int, help=f"first N train rows, 0 = all (cpu: {cpu['train_limit']})"
    )
    for flag, key in (
        ("--teacher-steps", "teacher_steps"),
        ("--stage1-steps", "stage1_steps"),
        ("--stage2-steps", "stage2_steps"),
    ):
        ap.add_argument(flag, type=int, help=f"optimizer steps (cpu: {cpu[key]})")
    ap.add_argument("--batch-size", type=int, help=f"every stage (default {cpu['batch_size']})")
    ap.add_argument(
        "--max-length",
        type=int,
        help=f"tokens (cpu: {cpu['max_length']}; paper: 64 single, 128 pairs)",
    )
    ap.add_argument(
        "--evals",
        type=int,
        help=f"dev evaluations in the last stage (cpu: {cpu['evals']}; paper: per epoch)",
    )
    ap.add_argument("--checkpoint-every", type=int, default=100, help="steps (for resuming)")
    ap.add_argument("--n", type=int, default=20, help="variants per record")
    ap.add_argument("--p", type=float, default=0.4, help="replacement probability per word")
    ap.add_argument("--seed", type=int, default=42, help="augmentation and training seed")
    ap.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    ap.add_argument("--threads", type=int, help="torch threads of every command")
    ap.add_argument("--redo", action="store_true", help="rerun steps whose settings changed")
    args = ap.parse_args(argv)
    for key, value in BUDGETS[args.budget].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        args.spec = get_task(args.task)
    except TaskError as exc:
        raise AblationError(str(exc)) from None
    args.task = args.spec.name
    args.modes = [m.strip() for m in args.augment_modes.split(",") if m.strip()]
    if not args.modes or any(m not in MODES for m in args.modes):
        raise AblationError(f"--augment-modes: choose among {', '.join(MODES)}")
    assets = shared_assets()
    args.data_dir = args.data_dir or assets / "glue" / GLUE_DIRS[args.task]
    args.out = (args.out or REPO / "benchmarks" / "results" / f"ablation-{args.task}").resolve()
    if args.mlm is None:
        adapted = assets / "mlm-minilm-adapted"
        args.mlm = str(adapted) if (adapted / "config.json").is_file() else "default"
    return args


class Ablation:
    """The pipeline of one task: each method is one step, run through `Steps`."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.spec = args, args.spec
        self.train = args.data_dir / "train.tsv"
        self.dev = [args.data_dir / name for name in self.spec.dev_files]
        for path in (self.train, *self.dev):
            if not path.is_file():
                raise AblationError(f"{shown(path)} not found (--data-dir: a GLUE task directory)")
        self.out = args.out
        (self.out / "configs").mkdir(parents=True, exist_ok=True)
        (self.out / ".gitignore").write_text(
            "*\n!.gitignore\n!results.json\n!ablation.png\n!table.md\n"
        )
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        if args.threads:
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[var] = str(args.threads)
        self.steps = Steps(self.out, env, args.redo)
        self.train_sha = sha256(self.train)
        self.dev_sha = {shown(d): sha256(d) for d in self.dev}
        # Flags of finetune-teacher and distill that settings record (the device is left out:
        # it changes where a step runs, not what it computes).
        self.flags = ["--task", args.task, "--seed", str(args.seed)]
        for d in self.dev:
            self.flags += ["--eval", str(d)]
        if args.max_length:
            self.flags += ["--max-length", str(args.max_length)]
        self.device = ["--device", args.device] if args.device else []
        self.subset_path = self.out / "data" / "train.tsv"
        self.teacher_dir = self.out / "teacher"

    def budget(self, stages: dict[str, int | None], dev_steps: int | None) -> dict[str, Any]:
        """DistillConfig settings of one run's budget: steps per stage (epochs never bind) or,
        without steps, the preset's epochs; dev evaluations spread over the last stage."""
        a = self.args
        cfg: dict[str, Any] = {}
        if a.evals and dev_steps:
            cfg["eval_every"] = max(1, dev_steps // a.evals)
        for stage, n in stages.items():
            cfg[stage] = {"batch_size": a.batch_size}
            if n is not None:
                cfg[stage].update(max_steps=n, epochs=LARGE_EPOCHS)
        return cfg

    def write_config(self, name: str, budget: dict[str, Any]) -> Path:
        """The run's DistillConfig file (JSON, which YAML reads)."""
        path = self.out / "configs" / f"{name}.yaml"
        cfg = {**budget, "checkpoint_every": self.args.checkpoint_every}
        path.write_text(json.dumps(cfg, indent=2) + "\n")
        return path

    def subset(self) -> dict[str, Any]:
        a = self.args
        settings = {
            "train": shown(self.train),
            "train_sha256": self.train_sha,
            "limit": a.train_limit,
        }
        return self.steps.run(
            "subset",
            settings,
            self.subset_path.parent,
            lambda _: write_subset(self.train, self.subset_path, self.spec, a.train_limit),
            lambda r: f"({r['rows']} of {r['source_rows']} rows)",
        )

    def teacher(self, subset: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """Fine-tune the teacher; returns its result and a key that changes with its settings."""
        a = self.args
        full = a.teacher_data == "full"
        train = self.train if full else self.subset_path
        budget = self.budget({"finetune": a.teacher_steps}, a.teacher_steps)
        settings = {
            "base": shown(a.teacher_base),
            "train": shown(train),
            "train_sha256": self.train_sha if full else subset["sha256"],
            "budget": budget,
            "flags": [shown(f) for f in self.flags],
            "dev": self.dev_sha,
        }

        def body(resume: bool) -> dict[str, Any]:
            cfg = self.write_config("teacher", budget)
            cmd: list[Any] = ["finetune-teacher", "--model", a.teacher_base, "--train", train]
            cmd += ["-o", self.teacher_dir, "--config", cfg, *self.flags, *self.device]
            self.steps.kdaug(*cmd, *(["--resume"] if resume else []))
            m = json.loads((self.teacher_dir / "metrics.json").read_text())
            return {"parameters": m["parameters"], "stages": m["stages"], "last_dev": m["dev"]}

        steps = lambda r: f"({r['stages']['finetune']['steps']} steps)"  # noqa: E731
        return self.steps.run("teacher", settings, self.teacher_dir, body, steps), digest(settings)

    def augment(self, mode: str, subset: dict[str, Any]) -> tuple[dict[str, Any], str]:
        a = self.args
        settings = {
            "subset": subset["sha256"],
            "mode": mode,
            "n": a.n,
            "p": a.p,
            "seed": a.seed,
            "mlm": shown(a.mlm),
        }
        out = self.out / f"augment-{mode}"

        def body(_: bool) -> dict[str, Any]:
            if mode != "exact":
                usage = self.steps.kdaug("augment", "--help")
                if "--mode" not in usage:
                    raise AblationError(f"this kdaug's augment has no --mode flag ({mode!r})")
            cmd: list[Any] = [
                "augment",
                self.subset_path,
                "--task",
                a.task,
                "-o",
                out,
                "--mlm",
                a.mlm,
            ]
            cmd += ["--n", a.n, "--p", a.p, "--seed", a.seed, *self.device]
            self.steps.kdaug(*cmd, *(["--mode", mode] if mode != "exact" else []))
            stats = json.loads((out / "stats.json").read_text())
            keep = ("records", "rows_rejected", "variants_out", "replacements", "run")
            return {k: stats.get(k) for k in keep}

        rows = lambda r: f"({r['records']} records -> {r['variants_out']} rows)"  # noqa: E731
        return self.steps.run(f"augment-{mode}", settings, out, body, rows), digest(settings)

    def student(self, key: str, train: Path, data_key: dict[str, str]) -> dict[str, Any]:
        """Distil one student through both stages on `train` (the subset or a shard dir)."""
        a = self.args
        stages = {"intermediate": a.stage1_steps, "prediction": a.stage2_steps}
        budget = self.budget(stages, a.stage2_steps)
        out = self.out / key
        settings = {
            **data_key,
            "student": shown(a.student),
            "budget": budget,
            "flags": [shown(f) for f in self.flags],
            "dev": self.dev_sha,
        }

        def body(resume: bool) -> dict[str, Any]:
            cfg = self.write_config(key, budget)
            cmd: list[Any] = ["distill", "--teacher", self.teacher_dir, "--student", a.student]
            cmd += ["--train", train, "--stage", "both", "-o", out, "--config", cfg]
            self.steps.kdaug(*cmd, *self.flags, *self.device, *(["--resume"] if resume else []))
            m = json.loads((out / "metrics.json").read_text())
            keep = ("student_dev", "teacher_dev", "parameters", "stages", "inference", "layer_map")
            return {k: m.get(k) for k in keep}

        def score(r: dict[str, Any]) -> str:
            dev = flat_metrics(r["student_dev"])
            return "(dev " + ", ".join(f"{k} {v:.1f}" for k, v in dev.items()) + ")"

        return self.steps.run(key, settings, out, body, score)

    def run(self) -> dict[str, Any]:
        a = self.args
        load = os.getloadavg()
        print(
            f"ablation of {a.task}: budget {a.budget}, train limit {a.train_limit or 'all'}, "
            f"augment modes {','.join(a.modes)} -> {shown(self.out)}",
            flush=True,
        )
        subset = self.subset()
        teacher, teacher_key = self.teacher(subset)
        runs: dict[str, dict[str, Any]] = {
            "student_noda": {
                "label": "student noDA",
                "train": self.subset_path,
                "rows": subset["rows"],
                "data": {"teacher": teacher_key, "subset": subset["sha256"]},
            }
        }
        for mode in a.modes:
            aug, aug_key = self.augment(mode, subset)
            runs[f"student_da_{mode}"] = {
                "label": "student DA" if len(a.modes) == 1 else f"student DA-{mode}",
                "train": self.out / f"augment-{mode}",
                "rows": aug["variants_out"],
                "augment": aug,
                "augment_seconds": self.steps.records[f"augment-{mode}"]["seconds"],
                "data": {"teacher": teacher_key, "augment": aug_key},
            }
        students = {key: self.student(key, r["train"], r["data"]) for key, r in runs.items()}
        results = assemble(a, self.steps, subset, teacher, runs, students)
        results["machine"] = machine(a.threads, load)
        (self.out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
        plot(self.out / "ablation.png", results)
        table = markdown(results)
        (self.out / "table.md").write_text(table + "\n")
        print("\n" + table, flush=True)
        return results


# ------------------------------------------------------------------------------------------------
def flat_metrics(dev: dict[str, dict[str, float]]) -> dict[str, float]:
    """{dev set: {metric: value}} -> {'metric' or 'set metric': points}."""
    single = len(dev) == 1
    return {
        (name if single else f"{dev_set} {name}"): round(100 * value, 2)
        for dev_set, metrics in dev.items()
        for name, value in metrics.items()
    }


def assemble(
    args: argparse.Namespace,
    steps: Steps,
    subset: dict[str, Any],
    teacher: dict[str, Any],
    runs: dict[str, dict[str, Any]],
    students: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """results.json: settings, budgets, per-model metrics and costs, DA - noDA deltas."""
    bs = args.batch_size
    teacher_rows = subset["source_rows"] if args.teacher_data == "full" else subset["rows"]
    t_steps = teacher["stages"]["finetune"]["steps"]
    models: dict[str, dict[str, Any]] = {
        "teacher": {
            "label": "teacher",
            "dev": flat_metrics(students["student_noda"]["teacher_dev"]),
            "parameters": teacher["parameters"],
            "train_rows": teacher_rows,
            "steps": {"finetune": t_steps},
            "examples_seen": {"finetune": t_steps * bs},
            "epochs_seen": {"finetune": round(t_steps * bs / teacher_rows, 2)},
            "seconds": {"finetune": steps.records["teacher"]["seconds"]},
        }
    }
    for key, spec_run in runs.items():
        m, rows = students[key], spec_run["rows"]
        stage_steps = {s: m["stages"][s]["steps"] for s in ("intermediate", "prediction")}
        seconds = {"distill": steps.records[key]["seconds"]}
        if "augment_seconds" in spec_run:
            seconds["augment"] = spec_run["augment_seconds"]
        models[key] = {
            "label": spec_run["label"],
            "dev": flat_metrics(m["student_dev"]),
            "parameters": m["parameters"]["student"],
            "train_rows": rows,
            "original_rows": subset["rows"],
            "steps": stage_steps,
            "examples_seen": {s: n * bs for s, n in stage_steps.items()},
            "epochs_seen": {s: round(n * bs / rows, 2) for s, n in stage_steps.items()},
            "seconds": seconds,
            "stage_seconds": {s: m["stages"][s]["seconds"] for s in stage_steps},
            "inference_speedup": (m.get("inference") or {}).get("speedup"),
        }
    noda = models["student_noda"]["dev"]
    deltas = {
        key[len("student_da_") :]: {k: round(v - noda[k], 2) for k, v in models[key]["dev"].items()}
        for key in models
        if key.startswith("student_da_")
    }
    return {
        "task": args.task,
        "data_dir": shown(args.data_dir),
        "metrics_in": "points (metric x 100)",
        "primary_metric": args.spec.primary,
        "subset": {
            "train_limit": args.train_limit,
            "rows": subset["rows"],
            "source_rows": subset["source_rows"],
            "selection": "first rows of train.tsv, in file order",
        },
        "budget": {
            "name": args.budget,
            "teacher_data": args.teacher_data,
            "teacher_steps": args.teacher_steps,
            "stage1_steps": args.stage1_steps,
            "stage2_steps": args.stage2_steps,
            "batch_size": bs,
            "max_length": args.max_length or args.spec.max_length,
            "evals_per_stage": args.evals or "one per epoch",
            "note": "steps per stage are equal for all students"
            if args.stage1_steps and args.stage2_steps
            else "epochs per stage as in the paper; steps follow the train rows",
        },
        "teacher_base": shown(args.teacher_base),
        "student": args.student,
        "augment": {"modes": args.modes, "n": args.n, "p": args.p, "mlm": shown(args.mlm)},
        "augmented": {
            key[len("student_da_") :]: {
                k: r["augment"][k] for k in ("records", "rows_rejected", "variants_out")
            }
            for key, r in runs.items()
            if "augment" in r
        },
        "seed": args.seed,
        "models": models,
        "delta_da_minus_noda_points": deltas,
        "steps": {
            name: {k: r[k] for k in ("seconds", "resumed", "commands")}
            | {"skipped": "skipped" in r}
            for name, r in steps.records.items()
        },
        "paper_reference": PAPER_REFERENCE,
    }


def plot(path: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results["models"].values())
    metrics = list(models[0]["dev"])
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 + 0.9 * len(metrics) * len(models)), 4.5))
    for i, model in enumerate(models):
        xs = [j + (i - (len(models) - 1) / 2) * width for j in range(len(metrics))]
        bars = ax.bar(xs, [model["dev"][m] for m in metrics], width, label=model["label"])
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_ylabel("dev (points)")
    b, s = results["budget"], results["subset"]
    steps = (
        f"steps {b['stage1_steps']} + {b['stage2_steps']} per student"
        if b["stage1_steps"] and b["stage2_steps"]
        else "the paper's epochs"
    )
    ax.set_title(
        f"{results['task']} dev: students distilled with and without augmentation\n"
        f"{s['rows']} of {s['source_rows']} train rows, {b['name']} budget ({steps})",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=len(models))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(results: dict[str, Any]) -> str:
    models = results["models"]
    metrics = list(models["teacher"]["dev"])
    primary = next((m for m in metrics if m.endswith(results["primary_metric"])), metrics[0])
    base = models["student_noda"]
    base_wall = sum(base["seconds"].values())
    head = [
        "model",
        "train rows",
        "steps",
        "epochs seen",
        *metrics,
        f"{primary}: DA - noDA",
        "params",
        "wall s",
        "wall vs noDA",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, m in models.items():
        wall = sum(m["seconds"].values())
        delta = m["dev"][primary] - base["dev"][primary]
        cells = [
            m["label"],
            str(m["train_rows"]),
            " / ".join(str(v) for v in m["steps"].values()),
            " / ".join(f"{v:g}" for v in m["epochs_seen"].values()),
            *(f"{m['dev'][k]:.1f}" for k in metrics),
            f"{delta:+.1f}" if key.startswith("student_da") else "",
            f"{m['parameters'] / 1e6:.1f}M",
            f"{wall:.0f}",
            f"{wall / base_wall:.2f}x" if key != "teacher" and base_wall else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    b, s, mc = results["budget"], results["subset"], results.get("machine", {})
    ref = results["paper_reference"]["delta_points"]
    budget = ", ".join(
        f"{name} {b[key]} steps" if b[key] else f"{name} the paper's epochs"
        for name, key in (
            ("teacher", "teacher_steps"),
            ("stage 1", "stage1_steps"),
            ("stage 2", "stage2_steps"),
        )
    )
    lines += [
        "",
        f"Task {results['task']}, dev metrics in points. Train subset: first {s['rows']} of "
        f"{s['source_rows']} rows; teacher trained on the {b['teacher_data']} train set. "
        f"Budget {b['name']}: {budget}, batch {b['batch_size']}, max length {b['max_length']}. "
        f"Student {results['student']}, augmentation n={results['augment']['n']} "
        f"p={results['augment']['p']}. Wall s of DA students include augmenting the subset.",
        f"Paper (TinyBERT4, full data) DA - noDA: MRPC {ref['mrpc']:+.1f}, "
        f"CoLA {ref['cola']:+.1f}, MNLI-m {ref['mnli_m']:+.1f} points.",
    ]
    if mc:
        lines.append(
            f"Machine: {mc['cpu']}, {mc['cores']} cores, torch threads {mc['torch_threads']}, "
            f"GPU {mc['gpu'] or 'none'}, load average at start {mc['load_average_at_start'][0]}; "
            f"torch {mc['torch']}, transformers {mc['transformers']}, kdaug {mc['kdaug']}."
        )
    return "\n".join(lines)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so that the running kdaug command is stopped too


def main(argv: list[str] | None = None) -> int:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        Ablation(parse_args(argv)).run()
    except AblationError as exc:
        print(f"ablation: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ablation: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
