"""`kdaug distill --student bilstm`: a BiLSTM trained on the teacher's logits over the transfer
set. The teacher runs once per shard set: its logits are cached beside the shards (as `kdaug
teacher-logits` does) and read from there by every later run."""

from __future__ import annotations

import copy
import itertools
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill.bilstm import (
    STUDENT,
    TEACHER,
    BiLSTMClassifier,
    BiLSTMConfig,
    BiLSTMError,
    LogitObjective,
    WordTokenizer,
    build_vocabulary,
    embedding_matrix,
    load_bilstm,
    load_vectors,
    pad_batch,
    teacher_vectors,
    teacher_words,
)
from distill.checkpoint import seed_everything
from distill.config import DistillConfig
from distill.data import BatchStream, ExampleSource
from distill.evaluate import evaluate, time_forward
from distill.fingerprint import model_sha256, teacher_fingerprint
from distill.logits_cache import LogitsCache, find_cache, write_cache
from distill.models import count_parameters, load_teacher
from distill.runtime import Runtime, setup_runtime, teardown_runtime
from distill.stages import Job, stage_settings
from kdaug.vectors import WordVectors

log = logging.getLogger(__name__)
LATENCY_SENTENCES = 64


def check_stage(stages: str) -> None:
    if stages != "prediction":
        raise BiLSTMError(
            f"--student {STUDENT} has one stage, prediction (not {stages}): its layers differ "
            "from the teacher's"
        )


def teacher_logits(
    rt: Runtime,
    cfg: DistillConfig,
    teacher: nn.Module,
    tokenizer: Any,
    teacher_dir: str,
    train: str,
) -> tuple[LogitsCache, int]:
    """The teacher's logits over every training row, from the cache beside the shards (written
    first when absent). Returns the cache and the teacher forward passes this run needed."""
    source = ExampleSource(train, cfg.spec)
    fp = teacher_fingerprint(teacher_dir, cfg.seq_len)
    cache = find_cache(source, fp)
    forwards = 0
    if cache is None:
        stream = BatchStream(source, tokenizer, cfg.seq_len, cfg.eval_batch_size, shuffle=False)
        try:
            if rt.is_main:
                write_cache(teacher, stream, fp, rt.device, rt.autocast, teacher_dir)
            rt.barrier()
        except OSError as exc:
            raise BiLSTMError(
                f"cannot write the teacher-logits cache beside {train}: {exc}; copy the "
                "training data somewhere writable"
            ) from None
        forwards = len(stream)
        cache = find_cache(source, fp)
        if cache is None:
            raise BiLSTMError(f"the teacher-logits cache beside {train} could not be written")
    log.info("bilstm: teacher logits from %s", cache.directory)
    return cache, forwards


def build_bilstm(
    cfg: DistillConfig,
    train: str,
    seed: int,
    vectors: WordVectors | None,
    teacher: tuple[nn.Module, Any] | None = None,
) -> tuple[BiLSTMClassifier, WordTokenizer, dict[str, Any]]:
    """A new BiLSTM: vocabulary from the training rows and the vectors, embeddings from the
    vectors (None: random, `cfg.bilstm.embedding_dim` wide) or, with `embeddings: teacher`,
    from the input embeddings of `teacher` (model, tokenizer). Also returns a summary for
    metrics.json."""
    b, spec = cfg.bilstm, cfg.spec
    source = ExampleSource(train, spec)
    if b.embeddings == TEACHER:
        if teacher is None:
            raise BiLSTMError("embeddings: teacher needs the teacher model")
        teacher_model, tok = teacher
        vocab = build_vocabulary(source, teacher_words(tok), b.extra_words)
        vectors = teacher_vectors(teacher_model.get_input_embeddings().weight, tok, vocab[2:])
    else:
        vocab = build_vocabulary(source, vectors.words if vectors else [], b.extra_words)
    tokenizer = WordTokenizer(vocab)
    weight, found = embedding_matrix(tokenizer.vocab, vectors, b.embedding_dim, seed)
    config = BiLSTMConfig(
        vocab_size=len(tokenizer),
        num_labels=spec.num_labels,
        pair=spec.is_pair,
        embedding_dim=weight.shape[1],
        hidden_size=b.hidden_size,
        num_layers=b.layers,
        dropout=b.dropout,
        mlp_hidden=b.mlp_hidden,
        vocab_sha256=tokenizer.sha256,
        id2label=tuple(spec.labels or ("score",)),
    )
    model = BiLSTMClassifier(config)
    with torch.no_grad():
        model.embedding.weight.copy_(weight)
    summary = {
        **b.model_dump(),
        "embedding_dim": config.embedding_dim,
        "vocab_size": len(tokenizer),
        "words_with_vectors": found,
    }
    return model, tokenizer, summary


def cpu_latency(
    teacher: nn.Module,
    teacher_tok: Any,
    student: nn.Module,
    student_tok: Any,
    examples: list,
    max_length: int,
) -> dict[str, Any]:
    """Seconds per sentence of one CPU forward pass over the same dev sentences, both models."""
    if not examples:
        return {}
    cpu = torch.device("cpu")
    pair = examples[0].text_b is not None
    a = [e.text_a for e in examples]
    b = [e.text_b or "" for e in examples] if pair else None
    out: dict[str, Any] = {"device": "cpu", "sentences": len(examples)}
    for name, model, tok in (("teacher", teacher, teacher_tok), ("student", student, student_tok)):
        enc = tok(a, b, truncation=True, max_length=max_length)
        batch = pad_batch(enc, tok.pad_token_id or 0)
        on_cpu = copy.deepcopy(model).cpu()
        out[f"{name}_seconds_per_sentence"] = time_forward(on_cpu, batch, cpu) / len(examples)
    out["speedup"] = out["teacher_seconds_per_sentence"] / out["student_seconds_per_sentence"]
    return out


def distill_bilstm(
    cfg: DistillConfig,
    teacher_dir: str,
    train: str,
    evals: list[str],
    out: Path,
    resume: bool = False,
) -> dict[str, Any]:
    """Train a BiLSTM student on the teacher's logits; the best dev model goes to out/best."""
    if cfg.weights.cosine:
        raise BiLSTMError(f"--student {STUDENT}: the cosine loss needs a transformer student")
    vectors = load_vectors(cfg.bilstm.embeddings)  # a missing file fails before any work
    rt = setup_runtime(cfg.device, cfg.precision)
    job = Job(cfg, rt, out, resume)
    try:
        spec = cfg.spec
        seed_everything(cfg.seed)
        files = ExampleSource(train, spec).files
        parts = ("temperature", "weights", "bilstm")
        settings = stage_settings(
            cfg, "prediction", files, parts, teacher=model_sha256(teacher_dir)
        )
        job.check_resume("prediction", settings)  # before the teacher runs
        teacher, teacher_tok = load_teacher(teacher_dir, spec)
        teacher.to(rt.device)
        cache, forwards = teacher_logits(rt, cfg, teacher, teacher_tok, teacher_dir, train)
        _, teacher_dev_streams = job.streams(teacher_tok, None, evals, 1)
        teacher_dev = job.evaluate(teacher, teacher_dev_streams)
        student, tokenizer, summary = build_bilstm(
            cfg, train, cfg.seed, vectors, (teacher, teacher_tok)
        )
        student.to(rt.device)
        stream, dev = job.streams(tokenizer, train, evals, cfg.prediction.batch_size)
        stream = stream.with_logits(cache)
        w = cfg.weights
        objective = LogitObjective(
            student, cfg.bilstm.loss, w.soft, w.hard, cfg.temperature, spec.is_regression
        )
        state, record = job.train(
            "prediction",
            objective,
            student,
            tokenizer,
            stream,
            teacher=lambda batch: {"logits": batch.teacher_logits},
            dev=dev,
            final=True,
            settings=settings,
        )
        record["teacher_forwards"] = forwards

        result: dict[str, Any] | None = None
        if rt.is_main:  # the best model's metrics and speed, written once
            best, best_tok = load_bilstm(out / "best", spec)
            best.to(rt.device)
            examples = (
                list(itertools.islice(ExampleSource(evals[0], spec), LATENCY_SENTENCES))
                if evals
                else []
            )
            metrics = {
                "task": spec.name,
                "teacher": teacher_dir,
                "student": STUDENT,
                "bilstm": summary,
                "device": str(rt.device),
                "world_size": rt.world,
                "teacher_dev": teacher_dev,
                "student_dev": evaluate(best, dev, spec, rt.device, rt.autocast) if dev else {},
                "parameters": {
                    "teacher": count_parameters(teacher),
                    "student": count_parameters(best),
                },
                "inference": cpu_latency(
                    teacher, teacher_tok, best, best_tok, examples, cfg.seq_len
                ),
                "stages": {"prediction": record},
            }
            result = job.report(metrics, {"prediction": state.history})
        rt.barrier()
        return result
    finally:
        teardown_runtime(rt)
