"""Distillation on the device: optimizer steps per second of a TinyBERT4-shaped student learning
from a BERT-base-shaped teacher (random weights), in fp32 and under bf16 autocast, for both
stages, through distill's own objectives and trainer step; and the loss parts of one fixed batch
computed on the CPU and on the device in fp32, which must agree to a relative 1e-4."""

from __future__ import annotations

import copy
import csv
import itertools
import time
from pathlib import Path
from typing import Any

from benchmarks.augment_speed.inputs import read_rows
from benchmarks.device_check.models import save_bert
from benchmarks.device_check.part import Context

PARITY_TOLERANCE = 1e-4
STAGES = ("intermediate", "prediction")


def config(ctx: Context):
    from distill.config import DistillConfig

    s = ctx.sizes
    stage = {"batch_size": s.batch_size, "max_steps": 10**6}
    return DistillConfig.build(
        task="sst2",
        max_length=s.seq_len,
        checkpoint_every=10**6,
        intermediate=stage,
        prediction=stage,
        device=ctx.device,
    )


def models(ctx: Context, cfg):
    """Teacher (fp32, frozen), a fresh student and the tokenizer."""
    from distill.models import PRESETS, build_student, load_teacher

    s = ctx.sizes
    tok_dir = ctx.assets / "mlm-minilm-adapted"
    folder = save_bert(
        ctx.work / "teacher", tok_dir, s.teacher, "BertForSequenceClassification", num_labels=2
    )
    teacher, tokenizer = load_teacher(str(folder), cfg.spec)
    if isinstance(s.student, str) and s.student in PRESETS:
        student = build_student(s.student, teacher, tokenizer, cfg.spec)
    else:
        from transformers import AutoModelForSequenceClassification

        shape = {**teacher.config.to_dict(), **s.student}
        student = AutoModelForSequenceClassification.from_config(type(teacher.config)(**shape))
    return teacher, student, tokenizer


def objective(stage: str, cfg, student, teacher, autocast=None):
    """The stage's objective and teacher targets, wired as distill.pipeline wires them."""
    from distill.models import layer_map
    from distill.objectives import IntermediateObjective, PredictionObjective, TeacherTargets

    w = cfg.weights
    if stage == "intermediate":
        m = student.config.num_hidden_layers
        g = layer_map(m, teacher.config.num_hidden_layers, cfg.layer_map)
        obj = IntermediateObjective(student, teacher.config.hidden_size, w, m)
        targets = TeacherTargets(
            teacher,
            hidden=[0, *g] if (w.hidden or w.embedding) else None,
            attention=[x - 1 for x in g] if w.attention else None,
            autocast=autocast,
        )
    else:
        obj = PredictionObjective(student, w, cfg.temperature, cfg.spec.is_regression)
        targets = TeacherTargets(teacher, autocast=autocast)
    return obj, targets


def release(obj, targets) -> None:
    for capture in (getattr(obj, "scores", None), targets.scores):
        if capture is not None:
            capture.remove()


def train_file(ctx: Context) -> Path:
    rows, _ = read_rows(ctx.assets / "glue" / "SST-2" / "dev.tsv", 10**6)
    path = ctx.work / "distill-train.tsv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        w.writerow(["sentence", "label"])
        w.writerows((text, lab if lab is not None else "0") for text, lab in rows)
    return path


def run(ctx: Context) -> None:
    from distill.data import BatchStream, ExampleSource

    s = ctx.sizes
    cfg = config(ctx)
    with ctx.step("models") as rec:
        teacher, student, tokenizer = models(ctx, cfg)
        rec.update(teacher=s.teacher, student=s.student, batch_size=s.batch_size, seq_len=s.seq_len)
    stream = BatchStream(
        ExampleSource(str(train_file(ctx)), cfg.spec), tokenizer, cfg.seq_len, s.batch_size
    )
    ctx.result.update(device=ctx.device)
    rates: dict[str, float] = {}
    for precision, stage in itertools.product(("fp32", "bf16"), STAGES):
        with ctx.step(f"{stage}_{precision}") as rec:
            rate = steps_per_second(ctx, cfg, stage, precision, teacher, student, tokenizer, stream)
            rec.update(rate)
            rates[f"{stage}_{precision}"] = rate["steps_per_s"]
    ctx.result["bf16_speedup"] = {
        st: round(rates[f"{st}_bf16"] / rates[f"{st}_fp32"], 2)
        for st in STAGES
        if f"{st}_bf16" in rates and f"{st}_fp32" in rates
    }
    with ctx.step("loss_parity_fp32") as rec:
        batch = next(iter(stream.epoch(0))).select(0, s.parity_rows)
        rec.update(parity(ctx, cfg, teacher, student, batch))
        if not rec["within_tolerance"]:
            raise AssertionError(
                f"CPU and {ctx.device} losses differ by {rec['max_relative_difference']:.2e} "
                f"(> {PARITY_TOLERANCE:g})"
            )


def steps_per_second(ctx, cfg, stage, precision, teacher, student, tokenizer, stream) -> dict:
    """Optimizer steps per second of StageTrainer's own step (teacher forward, student forward
    and backward, optimizer), after warm-up steps; the batches are the stream's own."""
    import torch

    from distill.runtime import Runtime
    from distill.trainer import StageTrainer

    s = ctx.sizes
    device = torch.device(ctx.device)
    dtype = torch.bfloat16 if precision == "bf16" else None
    rt = Runtime(device, dtype=dtype)
    teacher = teacher.to(device)
    pupil = copy.deepcopy(student).to(device)
    obj, targets = objective(stage, cfg, pupil, teacher, rt.autocast)
    trainer = StageTrainer(
        stage, cfg, obj, pupil, tokenizer, stream, rt, ctx.work / "distill-run", teacher=targets
    )
    batches = list(itertools.islice(stream.epoch(0), s.warm_steps + s.timed_steps))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    obj.train()
    for b in batches[: s.warm_steps]:
        trainer._optimizer_step(b)
    sync()
    t0 = time.perf_counter()
    losses = [trainer._optimizer_step(b)["loss"] for b in batches[s.warm_steps :]]
    sync()
    seconds = time.perf_counter() - t0
    release(obj, targets)
    steps = len(losses)
    out: dict[str, Any] = {
        "steps": steps,
        "seconds": round(seconds, 3),
        "steps_per_s": round(steps / seconds, 2),
        "examples_per_s": round(sum(len(b) for b in batches[s.warm_steps :]) / seconds, 1),
        "first_loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
        "finite": all(x == x and abs(x) != float("inf") for x in losses),
    }
    if device.type == "cuda":
        out["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    if not out["finite"]:
        raise AssertionError(f"{stage} {precision}: a loss is not finite: {losses}")
    return out


def parity(ctx, cfg, teacher, student, batch) -> dict:
    """Each loss part of both stages on `batch`, CPU against the device, fp32, eval mode."""
    import torch

    def parts(device: str) -> dict[str, float]:
        out = {}
        t = copy.deepcopy(teacher).to(device).float()
        for stage in STAGES:
            torch.manual_seed(0)  # the same projections W_e, W_h on both sides
            obj, targets = objective(stage, cfg, copy.deepcopy(student).to(device).float(), t)
            obj.to(device).eval()  # the projections are made on the CPU
            b = batch.to(device)
            with torch.no_grad():
                got = obj(b, targets(b))
            release(obj, targets)
            out.update({f"{stage}.{k}": float(v) for k, v in got.items()})
        return out

    cpu, dev = parts("cpu"), parts(ctx.device)
    rel = {k: abs(dev[k] - cpu[k]) / max(abs(cpu[k]), 1e-12) for k in cpu}
    worst = max(rel.values())
    return {
        "rows": len(batch),
        "cpu": {k: round(v, 6) for k, v in cpu.items()},
        ctx.device: {k: round(v, 6) for k, v in dev.items()},
        "max_relative_difference": worst,
        "tolerance": PARITY_TOLERANCE,
        "within_tolerance": worst < PARITY_TOLERANCE,
    }
