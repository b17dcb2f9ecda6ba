"""The jobs behind the commands: fine-tune a teacher, distil a student in two stages, evaluate,
and cache teacher logits. Each writes its outputs under one directory."""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any

import torch

from distill import checkpoint as ckpt
from distill.bilstm import STUDENT as STUDENT_BILSTM
from distill.bilstm import is_bilstm, load_bilstm
from distill.checkpoint import seed_everything
from distill.config import DistillConfig, StageConfig
from distill.data import BatchStream, ExampleSource
from distill.evaluate import evaluate, time_forward
from distill.fingerprint import model_sha256, teacher_fingerprint
from distill.logits_cache import find_cache, writable_cache_dir, write_cache
from distill.models import (
    build_student,
    count_parameters,
    layer_map,
    load_classifier,
    load_teacher,
)
from distill.objectives import (
    IntermediateObjective,
    PredictionObjective,
    SupervisedObjective,
    TeacherTargets,
)
from distill.runtime import setup_runtime, teardown_runtime
from distill.stages import Job, stage_settings, streams
from distill.teacher_states import CACHE_DIR as STATES_DIR
from distill.teacher_states import (
    TeacherStates,
    find_states,
    row_lengths,
    states_bytes,
    states_key,
    write_states,
)
from kdaug.errors import KdaugError

log = logging.getLogger(__name__)


def trained_dir(path: str) -> str:
    """A run directory stands for its best model (`-o DIR` of finetune-teacher or distill)."""
    best = Path(path) / "best"
    return str(best) if (best / "config.json").is_file() else path


def teacher_folder(teacher: str | Path) -> str:
    """The fine-tuned teacher's model folder (`trained_dir` of `--teacher`); a path that is
    not a directory is a one-line error before anything is loaded."""
    if not Path(teacher).is_dir():
        raise KdaugError(f"--teacher {teacher} is not a directory: give the fine-tuned teacher")
    return trained_dir(str(teacher))


def finetune_teacher(
    cfg: DistillConfig, model: str, train: str, evals: list[str], out: Path, resume: bool = False
) -> dict[str, Any]:
    """Fine-tune a BERT-family encoder on the task; the best dev model goes to out/best."""
    rt = setup_runtime(cfg.device, cfg.precision)
    job = Job(cfg, rt, out, resume)
    try:
        files = ExampleSource(train, cfg.spec).files
        settings = stage_settings(cfg, "finetune", files, (), model=model)
        job.check_resume("finetune", settings)  # before the model is loaded
        seed_everything(cfg.seed)
        net, tokenizer = load_classifier(model, cfg.spec)
        net.to(rt.device)
        train_stream, dev = job.streams(tokenizer, train, evals, cfg.finetune.batch_size)
        objective = SupervisedObjective(net, cfg.spec.is_regression)
        state, record = job.train(
            "finetune",
            objective,
            net,
            tokenizer,
            train_stream,
            dev=dev,
            final=True,
            settings=settings,
        )
        metrics = {
            "task": cfg.spec.name,
            "base_model": model,
            "dev": state.best_dev or state.dev,  # the model in best/
            "last_dev": state.dev,
            "parameters": count_parameters(net),
            "stages": {"finetune": record},
        }
        result = job.report(metrics, {"finetune": state.history}) if rt.is_main else None
        rt.barrier()
        return result
    finally:
        teardown_runtime(rt)


def distill(
    cfg: DistillConfig,
    teacher_dir: str,
    student_spec: str,
    train: str,
    evals: list[str],
    out: Path,
    stages: str | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Intermediate-layer then prediction-layer distillation (or one of them; default both); a
    BiLSTM student (`bilstm`) has the prediction stage only."""
    if student_spec == STUDENT_BILSTM:
        from distill.bilstm_job import check_stage, distill_bilstm

        check_stage(stages or "prediction")
        return distill_bilstm(cfg, teacher_folder(teacher_dir), train, evals, out, resume)
    teacher = teacher_folder(teacher_dir)
    rt = setup_runtime(cfg.device, cfg.precision)
    try:
        job = Job(cfg, rt, out, resume)
        return _distill(job, teacher, student_spec, train, evals, stages or "both")
    finally:
        teardown_runtime(rt)


def _distill(
    job: Job, teacher_dir: str, student_spec: str, train: str, evals: list[str], stages: str
) -> dict[str, Any]:
    cfg, rt, out, resume = job.cfg, job.rt, job.out, job.resume
    spec = cfg.spec
    names = {"both": ("intermediate", "prediction")}.get(stages, (stages,))
    files = ExampleSource(train, spec).files
    models = {"teacher": model_sha256(teacher_dir), "student": student_spec}
    parts = ("layer_map", "temperature", "weights")
    settings = {name: stage_settings(cfg, name, files, parts, **models) for name in names}
    for name in names:
        job.check_resume(name, settings[name])  # before any model is loaded
    seed_everything(cfg.seed)
    teacher, tokenizer = load_teacher(teacher_dir, spec)
    student = build_student(trained_dir(student_spec), teacher, tokenizer, spec)
    teacher.to(rt.device)
    student.to(rt.device)
    n, m = teacher.config.num_hidden_layers, student.config.num_hidden_layers
    g = layer_map(m, n, cfg.layer_map)
    histories: dict[str, list[dict[str, Any]]] = {}
    records: dict[str, dict[str, Any]] = {}
    _, dev = job.streams(tokenizer, None, evals, 1)
    teacher_dev = job.evaluate(teacher, dev)

    if stages in ("intermediate", "both"):
        done = out / "intermediate"
        # a finished stage 1 is resumed from its checkpoint (its settings checked, its budget
        # extended if asked), or, without one, taken from its saved model
        unchecked = resume and not ckpt.latest(out / "checkpoints" / done.name)
        if unchecked and (done / "config.json").is_file():
            student.load_state_dict(type(student).from_pretrained(done).state_dict())
        else:
            stream, _ = job.streams(tokenizer, train, [], cfg.intermediate.batch_size)
            w = cfg.weights
            objective = IntermediateObjective(student, teacher.config.hidden_size, w, m)
            targets = TeacherTargets(
                teacher,
                hidden=[0, *g] if (w.hidden or w.embedding) else None,
                attention=[x - 1 for x in g] if w.attention else None,
                autocast=rt.autocast,
            )
            stored = cfg.cache_teacher and targets.hidden and targets.scores is not None
            if stored and _passes(cfg.intermediate, stream) > 1:
                targets.states = _teacher_states(job, targets, stream, teacher_dir)
            state, records["intermediate"] = job.train(
                "intermediate",
                objective,
                student,
                tokenizer,
                stream,
                teacher=targets,
                final=stages == "intermediate",
                settings=settings["intermediate"],
            )
            records["intermediate"]["teacher_forwards"] = targets.forwards
            for capture in (objective.scores, targets.scores):
                if capture is not None:
                    capture.remove()
            histories["intermediate"] = state.history
            job.save(student, tokenizer, done.name)

    if stages in ("prediction", "both"):
        stream, _ = job.streams(tokenizer, train, [], cfg.prediction.batch_size)
        if not cfg.weights.cosine and stream is not None:
            cache = find_cache(stream.source, teacher_fingerprint(teacher_dir, cfg.seq_len))
            if cache is not None:
                log.info("prediction stage: teacher logits from %s", cache.directory)
                stream = stream.with_logits(cache)
        targets = TeacherTargets(
            teacher, hidden=[n] if cfg.weights.cosine else None, autocast=rt.autocast
        )
        objective = PredictionObjective(student, cfg.weights, cfg.temperature, spec.is_regression)
        state, records["prediction"] = job.train(
            "prediction",
            objective,
            student,
            tokenizer,
            stream,
            teacher=targets,
            dev=dev,
            final=True,
            settings=settings["prediction"],
        )
        records["prediction"]["teacher_forwards"] = targets.forwards
        histories["prediction"] = state.history

    result: dict[str, Any] | None = None
    if rt.is_main:  # the best model's metrics and speed, written once
        best = type(student).from_pretrained(out / "best").to(rt.device)
        speed = {}
        if dev:
            sample = next(iter(next(iter(dev.values())).epoch(0)))
            t_teacher = time_forward(teacher, sample, rt.device)
            t_student = time_forward(best, sample, rt.device)
            speed = {
                "batch_size": len(sample),
                "teacher_seconds": t_teacher,
                "student_seconds": t_student,
                "speedup": t_teacher / t_student,
            }
        metrics = {
            "task": spec.name,
            "teacher": teacher_dir,
            "student": student_spec,
            "layer_map": g,
            "device": str(rt.device),
            "world_size": rt.world,
            "teacher_dev": teacher_dev,
            "student_dev": evaluate(best, dev, spec, rt.device, rt.autocast) if dev else {},
            "parameters": {"teacher": count_parameters(teacher), "student": count_parameters(best)},
            "inference": speed,
            "stages": records,
        }
        result = job.report(metrics, histories)
    rt.barrier()
    return result


def _passes(stage: StageConfig, stream: BatchStream) -> float:
    """How many times a stage goes over its training data."""
    steps = math.ceil(stage.epochs * len(stream))
    return min(steps, stage.max_steps or steps) / max(1, len(stream))


def _teacher_states(
    job: Job, targets: TeacherTargets, stream: BatchStream, teacher_dir: str
) -> TeacherStates | None:
    """Stage 1's teacher targets over every training row, stored under RUN/teacher_states (a
    stored set is reused when it matches the teacher, the layers and the data; otherwise the
    teacher runs over the data once, on the main process). None where the set would take more
    than `cache_teacher_max_gb` or half the free disk: the teacher then runs at every step."""
    cfg, rt = job.cfg, job.rt
    attention = targets.scores.layers if targets.scores is not None else []
    key = states_key(teacher_fingerprint(teacher_dir, cfg.seq_len), targets.hidden, attention)
    root = job.out / STATES_DIR
    skip = torch.zeros(1, device=rt.device)
    if rt.is_main and find_states(root, key, stream.source) is None:
        once = BatchStream(
            stream.source, stream.tokenizer, cfg.seq_len, cfg.eval_batch_size, shuffle=False
        )
        lengths = row_lengths(once)
        root.mkdir(parents=True, exist_ok=True)
        model = targets.model.config
        shapes = (
            (len(targets.hidden), model.hidden_size),
            (len(attention), model.num_attention_heads),
        )
        needed = states_bytes(lengths, *shapes)
        room = min(cfg.cache_teacher_max_gb * 2**30, shutil.disk_usage(root).free / 2)
        if needed > room:
            log.warning(
                "intermediate stage: the teacher's targets would take %.1f GiB on disk, more than "
                "%.1f GiB (cache_teacher_max_gb, or half the free space): the teacher runs at "
                "every step instead",
                needed / 2**30,
                room / 2**30,
            )
            skip += 1
        else:
            log.info(
                "intermediate stage: the teacher's targets over %d rows (%.2f GiB)",
                len(lengths),
                needed / 2**30,
            )
            write_states(root, key, targets, once, rt.device, lengths)
    if rt.sum(skip).item() > 0:  # every rank waits for the main one here, and learns its choice
        return None
    states = find_states(root, key, stream.source)
    if states is None:
        raise KdaugError(f"the teacher's stage-1 targets in {root / key} could not be read back")
    return states


def cache_teacher_logits(
    cfg: DistillConfig, shards: str, teacher_dir: str, batch_size: int
) -> Path:
    """`kdaug teacher-logits`: store the teacher's logits for every shard row. Where they go is
    checked writable before the teacher is loaded."""
    teacher_dir = trained_dir(teacher_dir)
    source = ExampleSource(shards, cfg.spec)
    fp = teacher_fingerprint(teacher_dir, cfg.seq_len)
    writable_cache_dir(source, fp)
    rt = setup_runtime(cfg.device, cfg.precision)
    teacher, tokenizer = load_teacher(teacher_dir, cfg.spec)
    teacher.to(rt.device)
    stream = BatchStream(source, tokenizer, cfg.seq_len, batch_size, shuffle=False)
    return write_cache(teacher, stream, fp, rt.device, rt.autocast, teacher_dir)


def evaluate_model(cfg: DistillConfig, model: str, evals: list[str]) -> dict[str, Any]:
    """`kdaug evaluate`: the task's metrics of a saved model on dev files."""
    rt = setup_runtime(cfg.device, cfg.precision)
    path = trained_dir(model)
    if is_bilstm(path):
        net, tokenizer = load_bilstm(path, cfg.spec)
    else:
        net, tokenizer = load_teacher(path, cfg.spec)
    net.to(rt.device)
    _, dev = streams(cfg, tokenizer, None, evals, 1)  # no output directory: rejects are logged
    with torch.inference_mode():
        return evaluate(net, dev, cfg.spec, rt.device, rt.autocast)
