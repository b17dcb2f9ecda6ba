"""What one distillation step of the ablation's transformer student costs on this machine, before
and after each saving, measured in the same run on the same batches.

    python -m benchmarks.ablation.step_speed                 # SST-2's first 1,000 rows
    python -m benchmarks.ablation.step_speed --teacher DIR --steps 12 --rounds 3

The student is `layers:3:minilm-packaged`; the teacher is --teacher (the ablation's fine-tuned
MiniLM: benchmarks/results/ablation-sst2/teacher when that run is present), else the packaged
MiniLM with the task's new head, which costs the same per step. Stage 1 (intermediate layers)
is measured as the code ran before (AdamW's per-tensor loop, the teacher run at every step),
then with each change added: the fused AdamW, the teacher's targets read from disk
(distill.teacher_states); stage 2 (prediction, logits cached) before and after the fused AdamW;
each at every --threads count (default: torch's default, then 1). Variants take turns, `--steps`
steps each per round (after a warm-up step), so background load falls on all alike; each figure
is the median over rounds of CPU seconds (user + system of this process) and wall seconds per
step; ratios are against the stage's first row. The load average is printed before and after.
Writes benchmarks/results/step_speed.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.machine_info import cpu_model
from benchmarks.paths import RESULTS, shared_assets, shown

STUDENT = "layers:3:minilm-packaged"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _setup(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch

    from benchmarks.ablation.data import write_subset
    from distill.config import DistillConfig
    from distill.models import build_student, layer_map, load_classifier
    from distill.stages import streams
    from distill.tasks import get_task

    spec = get_task("sst2")
    train = write_subset(args.data / "train.tsv", work / "train.tsv", spec, args.rows)
    teacher, tok = load_classifier(str(args.teacher or "minilm-packaged"), spec)
    teacher.eval().requires_grad_(False)
    cfg = DistillConfig.build(task="sst2", max_length=args.max_length)
    stream, _ = streams(cfg, tok, str(work / "train.tsv"), [], args.batch_size)
    batches = [b for _, b in zip(range(args.steps + 1), stream.epoch(0), strict=False)]
    torch.manual_seed(0)
    student = build_student(STUDENT, teacher, tok, spec)
    g = layer_map(student.config.num_hidden_layers, teacher.config.num_hidden_layers, "uniform")
    return {
        "cfg": cfg,
        "teacher": teacher,
        "student": student,
        "stream": stream,
        "batches": batches,
        "g": g,
        "rows": train["rows"],
    }


def _trainer(s: dict[str, Any], stage: str, fused: bool, stored: Any, work: Path) -> Any:
    import copy

    import torch

    from distill.objectives import IntermediateObjective, PredictionObjective, TeacherTargets
    from distill.runtime import Runtime
    from distill.trainer import StageTrainer, _param_groups, _schedule

    cfg, student = s["cfg"], copy.deepcopy(s["student"])
    if stage == "intermediate":
        objective = IntermediateObjective(student, 384, cfg.weights, len(s["g"]))
        targets = TeacherTargets(
            s["teacher"], hidden=[0, *s["g"]], attention=[x - 1 for x in s["g"]]
        )
        targets.states = stored
    else:
        objective = PredictionObjective(student, cfg.weights, 1.0, False)
        targets = TeacherTargets(s["teacher"])  # the batch's logits (the ablation caches them)
    rt = Runtime(torch.device("cpu"))
    t = StageTrainer(stage, cfg, objective, student, None, s["stream"], rt, work, teacher=targets)
    if not fused:  # the optimizer before: AdamW's per-tensor loop
        params = _param_groups(t.objective, t.stage.weight_decay)
        t.optimizer = torch.optim.AdamW(params, lr=t.stage.lr, foreach=False, fused=False)
        t.scheduler = torch.optim.lr_scheduler.LambdaLR(t.optimizer, _schedule(t.stage, t.total))
    return t


def _timed(trainer: Any, batches: list[Any], threads: int) -> tuple[float, float]:
    import torch

    torch.set_num_threads(threads)
    trainer._optimizer_step(batches[0])  # warm-up
    c, w = _cpu(), time.perf_counter()
    for b in batches[1:]:
        trainer._optimizer_step(b)
    n = len(batches) - 1
    return (_cpu() - c) / n, (time.perf_counter() - w) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.ablation.step_speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--teacher", type=Path, help="fine-tuned teacher dir (see above)")
    ap.add_argument("--data", type=Path, help="GLUE SST-2 dir (default: the shared assets')")
    ap.add_argument("--rows", type=int, default=1000, help="first train rows (1000)")
    ap.add_argument("--steps", type=int, default=12, help="timed steps per variant per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    ap.add_argument(
        "--threads",
        default="",
        help="torch thread counts, each variant at each (default: torch's default, then 1)",
    )
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--out", type=Path, default=RESULTS / "step_speed.json")
    args = ap.parse_args(argv)
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    args.data = args.data or shared_assets() / "glue" / "SST-2"
    default = RESULTS / "ablation-sst2" / "teacher" / "best"
    if args.teacher is None and (default / "config.json").is_file():
        args.teacher = default
    threads = torch.get_num_threads()
    wanted = [int(x) for x in args.threads.split(",") if x.strip()]
    args.threads = wanted or list(dict.fromkeys([threads, 1]))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        s = _setup(args, work)
        from distill.objectives import TeacherTargets
        from distill.teacher_states import find_states, write_states

        g = s["g"]
        filler = TeacherTargets(s["teacher"], hidden=[0, *g], attention=[x - 1 for x in g])
        once = type(s["stream"])(s["stream"].source, s["stream"].tokenizer, args.max_length, 128)
        c, w = _cpu(), time.perf_counter()
        write_states(work / "states", "k", filler, once, torch.device("cpu"))
        store = {"cpu_s": _cpu() - c, "wall_s": time.perf_counter() - w, "rows": s["rows"]}
        stored = find_states(work / "states", "k", once.source)
        variants = {}  # name -> (stage, fused AdamW, stored teacher targets, torch threads)
        for n in args.threads:
            variants |= {
                f"stage 1, before, {n} threads": ("intermediate", False, None, n),
                f"stage 1, fused AdamW, {n} threads": ("intermediate", True, None, n),
                f"stage 1, fused + stored targets, {n} threads": ("intermediate", True, stored, n),
            }
        for n in args.threads:
            variants |= {
                f"stage 2, before, {n} threads": ("prediction", False, None, n),
                f"stage 2, fused AdamW, {n} threads": ("prediction", True, None, n),
            }
        # stage 2 reads the teacher's logits from the batch, as with the ablation's logits cache
        teacher = s["teacher"]
        with torch.no_grad():
            for b in s["batches"]:
                b.teacher_logits = teacher(**b.inputs()).logits
        trainers = {k: _trainer(s, st, f, sd, work) for k, (st, f, sd, _) in variants.items()}
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
        for r in range(args.rounds):
            for k, (_, _, _, n_threads) in variants.items():
                times[k].append(_timed(trainers[k], s["batches"], n_threads))
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    load_after = os.getloadavg()
    rows = []
    for k, t in times.items():
        cpu = statistics.median(x[0] for x in t)
        wall = statistics.median(x[1] for x in t)
        rows.append(
            {"variant": k, "cpu_s_per_step": round(cpu, 4), "wall_s_per_step": round(wall, 4)}
        )
    for row in rows:  # against the same stage's first row: before, at the first --threads
        base = next(r for r in rows if r["variant"][:7] == row["variant"][:7])
        row["cpu_ratio"] = round(row["cpu_s_per_step"] / base["cpu_s_per_step"], 3)
        row["steps_per_s_wall"] = round(1 / row["wall_s_per_step"], 3)
        row["steps_per_cpu_s"] = round(1 / row["cpu_s_per_step"], 3)
    lines = [
        "| variant | CPU s / step | x before (CPU) | wall s / step | steps/s (wall) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['variant']} | {row['cpu_s_per_step']:.3f} | {row['cpu_ratio']:.2f} | "
            f"{row['wall_s_per_step']:.3f} | {row['steps_per_s_wall']:.2f} |"
        )
    print("\n".join(lines))
    print(
        f"teacher targets stored once: {store['rows']} rows in {store['cpu_s']:.1f} CPU s "
        f"({store['wall_s']:.1f} s wall); batch {args.batch_size}, {args.steps} steps x "
        f"{args.rounds} rounds per variant; torch's default threads {threads}; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; teacher "
        f"{shown(args.teacher) if args.teacher else 'minilm-packaged, new head'}"
    )
    result = {
        "student": STUDENT,
        "teacher": shown(args.teacher) if args.teacher else "minilm-packaged (new head)",
        "rows": store["rows"],
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "steps": args.steps,
        "rounds": args.rounds,
        "variants": rows,
        "store_teacher_targets": {k: round(v, 2) for k, v in store.items()},
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "torch_threads_default": threads,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "torch": torch.__version__,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from kdaug.files import write_json_atomic

    write_json_atomic(args.out, result, sort_keys=False)
    print(f"wrote {shown(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
