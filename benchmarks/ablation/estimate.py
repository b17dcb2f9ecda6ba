"""`--dry-run`: the steps a run would take, in order, which of them are done already (a finished
step's record in OUT/steps), and what the rest will cost, estimated; nothing is run or written.

Unknown sizes are estimated: an augmented set has `AUGMENTED_SHARE` x (1 + n) rows per subset row
(after de-duplication; SST-2 at n=20 kept 17,058-17,724 of 21,000) until its teacher-logits step
has counted them. Costs are CPU seconds on one thread of this project's 2-core VM (AMD EPYC,
benchmarks.ablation.step_speed and the SST-2 run's step records); the transformer's per-step
costs are --step-seconds."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from benchmarks.ablation.arms import BILSTM, COND, DA_ARMS, NODA

AUGMENTED_SHARE = 0.83
SECONDS = {  # CPU seconds per unit, one thread
    "teacher_step": 0.37,  # MiniLM fine-tuning, batch 32, max length 64
    "augment_record": 0.03,  # one subset record at n=20, exact mode
    "logits_row": 0.004,  # the teacher's forward pass per row
    "bilstm_step": 0.031,  # batch 50
    "adapt_step": 0.5,  # adapt-mlm, batch 32
    "stage1_store_row": 0.005,  # the teacher's pass storing stage-1 targets, per row
}


def _records(out: Path) -> dict[str, dict[str, Any]]:
    records = {}
    for f in (out / "steps").glob("*.json"):
        if f.name.endswith(".started.json"):
            continue
        try:
            records[f.stem] = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
    return records


def _rows(path: Path, header: bool) -> int:
    with path.open(encoding="utf-8-sig") as f:
        return sum(1 for line in f if line.strip()) - int(header)


def estimate(a: Any, step_seconds: tuple[float, float]) -> tuple[list[str], float]:
    """Lines `[done|to run] name: what (estimated s)` and the estimated CPU seconds left."""
    from benchmarks.ablation.plan import augment_step, size_tag, slug

    records = _records(a.out)
    lines: list[str] = []
    left = 0.0

    def step(name: str, what: str, seconds: float) -> None:
        nonlocal left
        done = name in records
        left += 0 if done else seconds
        cost = f"{records[name]['seconds']:.0f} s" if done else f"~{seconds:.0f} s"
        lines.append(f"{'done  ' if done else 'to run'} {name}: {what} ({cost})")

    source = _rows(a.data_dir / "train.tsv", a.spec.header is None)
    teacher_rows = source if a.teacher_data == "full" else (max(a.sizes) or source)
    t_steps = a.teacher_steps or math.ceil(
        (a.teacher_epochs or (3 if teacher_rows <= 10_000 else 1))
        * math.ceil(teacher_rows / a.batch_size)
    )
    step("teacher", f"{t_steps} steps", t_steps * SECONDS["teacher_step"])
    wanted = set(a.arm_list) if BILSTM in a.student_list else set()
    if any(s != BILSTM for s in a.student_list):
        wanted |= set(a.transformer_arm_list)
    for limit in a.sizes:
        rows, tag = min(limit or source, source), size_tag(limit)
        step(f"logits-subset-{tag}", f"{rows} rows", rows * SECONDS["logits_row"])
        if "da-cond" in wanted and DA_ARMS["da-cond"]["mlm"] == COND:
            step(f"adapt-cond-{tag}", f"{a.cond_steps} steps", a.cond_steps * SECONDS["adapt_step"])
        for seed in a.seed_list:
            trains = {NODA: rows}
            for arm in (x for x in DA_ARMS if x in wanted):
                name = f"logits-{arm}-{tag}-s{seed}"
                guess = round(rows * (1 + a.n) * AUGMENTED_SHARE)
                trains[arm] = records.get(name, {}).get("result", {}).get("rows", guess)
                cost = rows * SECONDS["augment_record"] * (2 if arm == "da-fast" else 1)
                step(augment_step(arm, {"tag": tag}, seed), f"{rows} records", cost)
                step(name, f"{trains[arm]} rows", trains[arm] * SECONDS["logits_row"])
            for student in a.student_list:
                if student == BILSTM:
                    _bilstm(a, tag, seed, trains, step)
                else:
                    _transformer(a, slug(student), tag, seed, trains, step, step_seconds)
    return lines, left


def _bilstm(a: Any, tag: str, seed: int, trains: dict[str, int], step: Any) -> None:
    e, cost = a.bilstm_epochs, SECONDS["bilstm_step"]
    took = {}
    for arm in a.arm_list:
        took[arm] = e * math.ceil(trains[arm] / 50)
        step(f"bilstm-{arm}-epochs{e}-{tag}-s{seed}", f"{took[arm]} steps", took[arm] * cost)
    if NODA in a.arm_list:
        for arm, n in took.items():  # one run per arm (arms of equal sizes share theirs)
            if arm != NODA:
                step(f"bilstm-noda-steps{n}-{tag}-s{seed}", f"{n} steps", n * cost)


def _transformer(
    a: Any,
    s: str,
    tag: str,
    seed: int,
    trains: dict[str, int],
    step: Any,
    per_step: tuple[float, float],
) -> None:
    e1, e2 = a.transformer_epochs
    took = {}
    for arm in a.transformer_arm_list:
        per_epoch = math.ceil(trains[arm] / a.batch_size)
        n1, n2 = math.ceil(e1 * per_epoch), math.ceil(e2 * per_epoch)
        took[arm] = (n1, n2)
        store = trains[arm] * SECONDS["stage1_store_row"] if e1 > 1 else 0.0
        cost = n1 * per_step[0] + n2 * per_step[1] + store
        step(f"{s}-{arm}-epochs{e1:g}-{e2:g}-{tag}-s{seed}", f"{n1} + {n2} steps", cost)
    if NODA in a.transformer_arm_list:
        for arm, (n1, n2) in took.items():  # one run per arm (arms of equal sizes share theirs)
            if arm == NODA:
                continue
            cost = n1 * per_step[0] + n2 * per_step[1] + trains[NODA] * SECONDS["stage1_store_row"]
            step(f"{s}-noda-steps{n1}-{n2}-{tag}-s{seed}", f"{n1} + {n2} steps", cost)
