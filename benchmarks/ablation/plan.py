"""The ablation's plan: every step of one task (subsets, teacher, augmentation per arm and seed,
teacher logits, students at both budgets) as `kdaug` commands run through `Steps`."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

from benchmarks.ablation import report, results
from benchmarks.ablation.arms import (
    BILSTM,
    COND,
    DA_ARMS,
    EQUAL_EPOCHS,
    EQUAL_STEPS,
    NODA,
    OUTPUTS,
)
from benchmarks.ablation.data import read_teacher_logits, write_subset
from benchmarks.ablation.steps import AblationError, Steps, digest
from benchmarks.paths import shown
from kdaug.files import sha256_file, write_json_atomic, write_text_atomic

LARGE_EPOCHS = 1000  # with a step budget, epochs never bind


def slug(text: str) -> str:
    """A step-name-safe form of a student spec (a hash is added when it had to be cut)."""
    s = re.sub(r"[^A-Za-z0-9.]+", "-", shown(text)).strip("-")
    return s if len(s) <= 40 else f"{s[:32]}-{digest(text)[:7]}"


def augment_step(arm: str, subset: dict[str, Any], seed: int) -> str:
    """The name of the augment step of one arm, subset and seed."""
    return f"augment-{arm}-{subset['tag']}-s{seed}"


def size_tag(limit: int) -> str:
    return f"n{limit}" if limit else "nall"


class Ablation:
    """The pipeline of one task: each method is one step (or one kind of step), run through
    `Steps`; `run` puts them together and hands the numbers to the report."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.spec = args, args.spec
        self.train = args.data_dir / "train.tsv"
        self.dev = [args.data_dir / name for name in self.spec.dev_files]
        for path in (self.train, *self.dev):
            if not path.is_file():
                raise AblationError(f"{shown(path)} not found (--data-dir: a GLUE task directory)")
        self.out = args.out
        (self.out / "configs").mkdir(parents=True, exist_ok=True)
        keep = "".join(f"!{name}\n" for name in OUTPUTS)
        write_text_atomic(self.out / ".gitignore", f"*\n!.gitignore\n{keep}")
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        if args.threads:
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[var] = str(args.threads)
        self.steps = Steps(self.out, env, args.redo)
        self.train_sha = sha256_file(self.train)
        self.dev_sha = {shown(d): sha256_file(d) for d in self.dev}
        # Flags that settings record (the device is left out: it changes where a step runs, not
        # what it computes). The teacher's seed is fixed; each student run adds its own.
        self.task_flags = ["--task", args.task]
        for d in self.dev:
            self.task_flags += ["--eval", str(d)]
        if args.max_length:
            self.task_flags += ["--max-length", str(args.max_length)]
        self.device = ["--device", args.device] if args.device else []
        self.largest = max(args.sizes, key=lambda n: n or math.inf)
        self.subset_path = self.out / "data" / "train.tsv"  # the largest size
        self.teacher_dir = self.out / "teacher"
        self.teacher_key = ""

    @property
    def max_length(self) -> int:
        return self.args.max_length or self.spec.max_length

    def write_config(self, name: str, budget: dict[str, Any]) -> Path:
        """The run's DistillConfig file (JSON, which YAML reads)."""
        path = self.out / "configs" / f"{name}.yaml"
        cfg = {**budget, "checkpoint_every": self.args.checkpoint_every}
        write_json_atomic(path, cfg, sort_keys=False)
        return path

    # ---- data and teacher ----------------------------------------------------------------------
    def subsets(self) -> list[dict[str, Any]]:
        """One subset per size: the largest is step `subset` (data/train.tsv), each smaller one
        `subset-nN` (data-nN/train.tsv); every one is the first rows of train.tsv."""
        out = []
        for limit in self.args.sizes:
            name = "subset" if limit == self.largest else f"subset-{size_tag(limit)}"
            path = (
                self.subset_path
                if limit == self.largest
                else self.out / f"data-{size_tag(limit)}" / "train.tsv"
            )
            settings = {"train": shown(self.train), "train_sha256": self.train_sha, "limit": limit}
            result = self.steps.run(
                name,
                settings,
                path.parent,
                lambda _, p=path, n=limit: write_subset(self.train, p, self.spec, n),
                lambda r: f"({r['rows']} of {r['source_rows']} rows)",
            )
            out.append({**result, "limit": limit, "tag": size_tag(limit), "file": path})
        return out

    def teacher(self, subset: dict[str, Any]) -> dict[str, Any]:
        """Fine-tune the teacher (the settings dict is the one earlier versions recorded, so a
        finished teacher is reused); sets the key that changes with its settings."""
        a = self.args
        full = a.teacher_data == "full"
        train = self.train if full else self.subset_path
        rows = subset["source_rows"] if full else subset["rows"]
        steps = a.teacher_steps
        if steps is None:
            epochs = a.teacher_epochs or (3 if rows <= 10_000 else 1)
            steps = math.ceil(epochs * math.ceil(rows / a.batch_size))  # kdaug's epochs
        budget = {
            "eval_every": max(1, steps // a.teacher_evals),
            "finetune": {"batch_size": a.batch_size, "max_steps": steps, "epochs": LARGE_EPOCHS},
        }
        flags = [*self.task_flags[:2], "--seed", str(a.seed), *self.task_flags[2:]]
        settings = {
            "base": shown(a.teacher_base),
            "train": shown(train),
            "train_sha256": self.train_sha if full else subset["sha256"],
            "budget": budget,
            "flags": [shown(f) for f in flags],
            "dev": self.dev_sha,
        }

        def body(resume: bool) -> dict[str, Any]:
            cfg = self.write_config("teacher", budget)
            cmd: list[Any] = ["finetune-teacher", "--model", a.teacher_base, "--train", train]
            cmd += ["-o", self.teacher_dir, "--config", cfg, *flags, *self.device]
            self.steps.kdaug(*cmd, *(["--resume"] if resume else []))
            m = json.loads((self.teacher_dir / "metrics.json").read_text())
            return {"parameters": m["parameters"], "stages": m["stages"], "last_dev": m["dev"]}

        note = lambda r: f"({r['stages']['finetune']['steps']} steps)"  # noqa: E731
        result = self.steps.run("teacher", settings, self.teacher_dir, body, note)
        self.teacher_key = digest(settings)
        return {**result, "train_rows": rows, "batch_size": a.batch_size}

    def teacher_logits(self, name: str, train: Path, data_key: str) -> dict[str, Any]:
        """`kdaug teacher-logits` over one train set, at the max length every distill run uses
        (so the cache's fingerprint is theirs), and the teacher's agreement with its labels."""
        settings = {"teacher": self.teacher_key, "data": data_key, "max_length": self.max_length}
        cache = (train if train.is_dir() else train.parent) / "teacher_logits"

        def body(_: bool) -> dict[str, Any]:
            cmd: list[Any] = ["teacher-logits", train, "--teacher", self.teacher_dir]
            printed = self.steps.kdaug(
                *cmd, *self.task_flags[:2], "--max-length", self.max_length, *self.device
            )
            return read_teacher_logits(train, self.spec, self.teacher_dir, self.max_length, printed)

        def note(r: dict[str, Any]) -> str:
            m = r["teacher_vs_labels"]
            return f"({r['rows']} rows, teacher {m['measure']} {m['all']:.1f})"

        return self.steps.run(name, settings, cache, body, note)

    def augment_dir(self, arm: str, subset: dict[str, Any], seed: int) -> Path:
        return self.out / "augment" / f"{arm}-{subset['tag']}-s{seed}"

    def cond_mlm(self, subset: dict[str, Any]) -> tuple[Path, str]:
        """The da-cond arm's masked LM: `kdaug adapt-mlm --label-column` from --mlm on the
        subset's texts and labels, --cond-steps steps, the teacher's seed; its dir and key."""
        a = self.args
        header = subset["file"].read_text(encoding="utf-8").split("\n", 1)[0].split("\t")
        text = next((c for c in self.spec.text_a if c in header), None)
        label = next((c for c in self.spec.label if c in header), None)
        if self.spec.header is not None or text is None or label is None:
            raise AblationError(f"da-cond: no text and label columns in {shown(subset['file'])}")
        out = self.out / "mlm-cond" / subset["tag"]
        settings = {"subset": subset["sha256"], "base": shown(a.mlm), "steps": a.cond_steps}
        settings.update(seed=a.seed, text_column=text, label_column=label)

        def body(_: bool) -> dict[str, Any]:
            cmd: list[Any] = ["adapt-mlm", "--base", a.mlm, "--corpus", subset["file"], "-o", out]
            cmd += ["--text-column", text, "--label-column", label, "--steps", a.cond_steps]
            self.steps.kdaug(*cmd, "--seed", a.seed, *self.device)
            return {"model": shown(out)}

        self.steps.run(f"adapt-cond-{subset['tag']}", settings, out, body)
        return out, digest(settings)

    def augment(self, arm: str, subset: dict[str, Any], seed: int) -> tuple[dict[str, Any], str]:
        a = self.args
        mlm: Any = DA_ARMS[arm]["mlm"] or a.mlm
        mode = DA_ARMS[arm]["mode"]
        settings = {"subset": subset["sha256"], "arm": arm, "mode": mode}
        if mlm == COND:
            mlm, settings["mlm_key"] = self.cond_mlm(subset)
        settings["mlm"] = shown(mlm)
        settings.update(n=a.n, p=a.p, seed=seed)
        name, out = augment_step(arm, subset, seed), self.augment_dir(arm, subset, seed)

        def body(_: bool) -> dict[str, Any]:
            cmd: list[Any] = ["augment", subset["file"], "--task", a.task, "-o", out, "--mlm", mlm]
            cmd += ["--n", a.n, "--p", a.p, "--seed", seed, "--mode", mode, *self.device]
            self.steps.kdaug(*cmd)
            stats = json.loads((out / "stats.json").read_text())
            keep = ("records", "rows_rejected", "variants_out", "replacements", "run")
            return {k: stats.get(k) for k in keep}

        rows = lambda r: f"({r['records']} records -> {r['variants_out']} rows)"  # noqa: E731
        return self.steps.run(name, settings, out, body, rows), digest(settings)

    # ---- students ------------------------------------------------------------------------------
    def bilstm(self, name: str, train: dict[str, Any], seed: int, **budget: int) -> dict[str, Any]:
        """`distill --student bilstm --stage prediction` on `train` (its file, data key and
        rows), batch and learning rate kdaug's BiLSTM defaults; budget: epochs= (equal epochs)
        or max_steps= (equal steps), and eval_every=."""
        a = self.args
        out = self.out / "students" / name
        flags = [*self.task_flags, "--seed", str(seed)]
        settings = {
            **train["data"],
            "student": BILSTM,
            "budget": {"epochs": LARGE_EPOCHS, **budget},
            "flags": [shown(f) for f in flags],
            "dev": self.dev_sha,
        }

        def body(resume: bool) -> dict[str, Any]:
            b = settings["budget"]
            cmd: list[Any] = ["distill", "--teacher", self.teacher_dir, "--student", BILSTM]
            cmd += ["--stage", "prediction", "--train", train["file"], "-o", out, *flags]
            cmd += ["--epochs", b["epochs"], "--eval-every", b["eval_every"]]
            cmd += ["--max-steps", b["max_steps"]] if "max_steps" in b else []
            cmd += ["--checkpoint-every", a.checkpoint_every, *self.device]
            self.steps.kdaug(*cmd, *(["--resume"] if resume else []))
            return self._student_metrics(out)

        return self.steps.run(name, settings, out, body, self._score_note)

    def transformer(
        self, name: str, student: str, train: dict[str, Any], seed: int, **stages: dict[str, Any]
    ) -> dict[str, Any]:
        """`distill --stage both` on `train`; per stage (intermediate=, prediction=) its budget:
        {"epochs": E} (equal epochs) or {"max_steps": N} (equal steps)."""
        a = self.args
        out = self.out / "students" / name
        per_epoch = math.ceil(train["rows"] / a.batch_size)  # batches, as kdaug counts them
        last = stages["prediction"]
        steps = last.get("max_steps") or math.ceil(last["epochs"] * per_epoch)
        budget: dict[str, Any] = {"eval_every": max(1, steps // a.evals)}
        for stage, b in stages.items():
            budget[stage] = {"batch_size": a.batch_size, "epochs": LARGE_EPOCHS, **b}
        flags = [*self.task_flags, "--seed", str(seed)]
        settings = {
            **train["data"],
            "student": shown(student),
            "budget": budget,
            "flags": [shown(f) for f in flags],
            "dev": self.dev_sha,
        }

        def body(resume: bool) -> dict[str, Any]:
            cfg = self.write_config(name, budget)
            cmd: list[Any] = ["distill", "--teacher", self.teacher_dir, "--student", student]
            cmd += ["--train", train["file"], "--stage", "both", "-o", out, "--config", cfg]
            cmd += flags
            self.steps.kdaug(*cmd, *self.device, *(["--resume"] if resume else []))
            metrics = self._student_metrics(out)
            # what only a resume reads: the teacher's stored stage-1 targets (fp16, ~0.7 GB for
            # 17,000 SST-2 rows) and the checkpoints (~0.2 GB each with AdamW's state)
            for kept in ("teacher_states", "checkpoints"):
                shutil.rmtree(out / kept, ignore_errors=True)
            return metrics

        return self.steps.run(name, settings, out, body, self._score_note)

    @staticmethod
    def _student_metrics(out: Path) -> dict[str, Any]:
        m = json.loads((out / "metrics.json").read_text())
        keep = ("student_dev", "teacher_dev", "parameters", "stages", "inference", "bilstm")
        return {k: m.get(k) for k in keep if k in m}

    def _score_note(self, r: dict[str, Any]) -> str:
        dev = results.flat_metrics(r["student_dev"])
        return "(dev " + ", ".join(f"{k} {v:.1f}" for k, v in dev.items()) + ")"

    def students_of_seed(
        self, subset: dict[str, Any], seed: int, trains: dict[str, dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Every student run of one subset size and seed; `trains` holds, per arm, the train
        set, its data key and its row count. Returns the runs for the report."""
        a, tag = self.args, subset["tag"]
        runs: list[dict[str, Any]] = []

        def record(name: str, student: str, arm: str, budgets: list[str], **extra: Any) -> None:
            runs.append(
                {
                    "step": name,
                    "student": student,
                    "arm": arm,
                    "budgets": budgets,
                    "size": subset["rows"],
                    "seed": seed,
                    "train_rows": trains[arm]["rows"],
                    "seconds": self.steps.records[name]["seconds"],
                    **extra,
                }
            )

        from distill.config import BILSTM_STAGE

        batch = BILSTM_STAGE["batch_size"]
        per_epoch = {arm: math.ceil(t["rows"] / batch) for arm, t in trains.items()}
        for student in a.student_list:
            if student != BILSTM:
                self._transformer_runs(student, subset, seed, trains, record)
                continue
            e = a.bilstm_epochs
            done: dict[str, int] = {}
            for arm in a.arm_list:
                name = f"bilstm-{arm}-epochs{e}-{tag}-s{seed}"
                every = max(1, e * per_epoch[arm] // a.evals)
                result = self.bilstm(name, trains[arm], seed, epochs=e, eval_every=every)
                budgets = [EQUAL_EPOCHS] if arm == NODA else [EQUAL_EPOCHS, EQUAL_STEPS]
                record(name, student, arm, budgets, result=result, batch_size=batch)
                done[arm] = result["stages"]["prediction"]["steps"]
            if NODA in a.arm_list:
                for arm, steps in done.items():
                    if arm == NODA:
                        continue
                    name = f"bilstm-noda-steps{steps}-{tag}-s{seed}"
                    every = max(1, steps // a.evals)
                    result = self.bilstm(
                        name, trains[NODA], seed, max_steps=steps, eval_every=every
                    )
                    kind = {"batch_size": batch, "matched_to": arm}
                    record(name, student, NODA, [EQUAL_STEPS], result=result, **kind)
        return runs

    def _transformer_runs(
        self,
        student: str,
        subset: dict[str, Any],
        seed: int,
        trains: dict[str, dict[str, Any]],
        record: Any,
    ) -> None:
        """A transformer student's runs of one seed: every arm at equal epochs (--transformer-
        epochs E1,E2 over its own train set), then per DA arm a noda run taking the steps of
        each stage that arm took (equal steps)."""
        a, tag, s = self.args, subset["tag"], slug(student)
        e1, e2 = a.transformer_epochs
        took: dict[str, dict[str, Any]] = {}
        for arm in a.transformer_arm_list:
            name = f"{s}-{arm}-epochs{e1:g}-{e2:g}-{tag}-s{seed}"
            epochs = {"intermediate": {"epochs": e1}, "prediction": {"epochs": e2}}
            result = self.transformer(name, student, trains[arm], seed, **epochs)
            budgets = [EQUAL_EPOCHS] if arm == NODA else [EQUAL_EPOCHS, EQUAL_STEPS]
            record(name, student, arm, budgets, result=result, batch_size=a.batch_size)
            took[arm] = result["stages"]
        if NODA in a.transformer_arm_list:
            for arm, stages in took.items():
                if arm == NODA:
                    continue
                n1, n2 = stages["intermediate"]["steps"], stages["prediction"]["steps"]
                name = f"{s}-noda-steps{n1}-{n2}-{tag}-s{seed}"
                steps = {"intermediate": {"max_steps": n1}, "prediction": {"max_steps": n2}}
                result = self.transformer(name, student, trains[NODA], seed, **steps)
                kind = {"batch_size": a.batch_size, "matched_to": arm}
                record(name, student, NODA, [EQUAL_STEPS], result=result, **kind)

    # ---- the whole ------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        a = self.args
        load = os.getloadavg()
        print(
            f"ablation of {a.task}: sizes {','.join(map(str, a.sizes))}, seeds "
            f"{','.join(map(str, a.seed_list))}, arms {','.join(a.arm_list)}, students "
            f"{','.join(a.student_list)} -> {shown(self.out)}",
            flush=True,
        )
        subsets = self.subsets()
        largest = next(s for s in subsets if s["limit"] == self.largest)
        teacher = self.teacher(largest)
        wanted = set(a.arm_list) if BILSTM in a.student_list else set()
        if any(s != BILSTM for s in a.student_list):
            wanted |= set(a.transformer_arm_list)
        da_arms = [arm for arm in DA_ARMS if arm in wanted]
        augments: list[dict[str, Any]] = []
        runs: list[dict[str, Any]] = []
        for subset in subsets:
            noda_data = {"teacher": self.teacher_key, "subset": subset["sha256"]}
            name = f"logits-subset-{subset['tag']}"
            logits = self.teacher_logits(name, subset["file"], digest(noda_data))
            noda = {"file": subset["file"], "data": noda_data, "rows": logits["rows"]}
            seconds = {"teacher_logits": self.steps.records[name]["seconds"]}
            augments.append(self._augment_record(NODA, subset, None, None, logits, seconds))
            for seed in a.seed_list:
                trains = {NODA: noda}
                for arm in da_arms:
                    stats, key = self.augment(arm, subset, seed)
                    out = self.augment_dir(arm, subset, seed)
                    data = {"teacher": self.teacher_key, "augment": key}
                    name = f"logits-{arm}-{subset['tag']}-s{seed}"
                    logits = self.teacher_logits(name, out, digest(data))
                    trains[arm] = {"file": out, "data": data, "rows": logits["rows"]}
                    seconds = {
                        "augment": self.steps.records[augment_step(arm, subset, seed)]["seconds"],
                        "teacher_logits": self.steps.records[name]["seconds"],
                    }
                    augments.append(self._augment_record(arm, subset, seed, stats, logits, seconds))
                runs += self.students_of_seed(subset, seed, trains)
        summary = results.assemble(a, self.steps.records, subsets, teacher, augments, runs)
        summary["machine"] = results.machine(a.threads, load)
        report.write(self.out, summary)
        return summary

    @staticmethod
    def _augment_record(
        arm: str,
        subset: dict[str, Any],
        seed: int | None,
        stats: dict[str, Any] | None,
        logits: dict[str, Any],
        seconds: dict[str, float],
    ) -> dict[str, Any]:
        return {
            "arm": arm,
            "size": subset["rows"],
            "seed": seed,
            "rows": logits["rows"],
            "augment": stats,
            "teacher_vs_labels": logits["teacher_vs_labels"],
            "seconds": seconds,
        }
