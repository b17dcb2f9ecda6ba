"""What every training job shares (the transformer pipeline and the BiLSTM job alike): the
task's batch streams of a training file and dev files, and one timed training stage."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from distill.config import DistillConfig
from distill.data import BatchStream, ExampleSource, RejectLog
from distill.trainer import StageTrainer


def streams(
    cfg: DistillConfig,
    tokenizer: Any,
    train: str | None,
    evals: list[str],
    batch_size: int,
    rejects: RejectLog | None = None,
) -> tuple[BatchStream | None, dict[str, BatchStream]]:
    """The shuffled training stream (None without `train`) and one dev stream per file, by name.
    `rejects`: the run's RejectLog (rows the files reject are reported once per run)."""
    spec = cfg.spec
    train_stream = None
    if train:
        train_stream = BatchStream(
            ExampleSource(train, spec, rejects),
            tokenizer,
            cfg.seq_len,
            batch_size,
            seed=cfg.seed,
            group_batches=cfg.group_batches,
        )
    dev: dict[str, BatchStream] = {}
    for i, path in enumerate(evals):
        name = Path(path).stem if Path(path).stem not in dev else f"{Path(path).stem}-{i}"
        dev[name] = BatchStream(
            ExampleSource(path, spec, rejects),
            tokenizer,
            cfg.seq_len,
            cfg.eval_batch_size,
            shuffle=False,
        )
    return train_stream, dev


def train_stage(name: str, *args: Any, resume: bool, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """`StageTrainer(name, *args, **kwargs).train(resume)`: its state and its metrics record."""
    t0 = time.perf_counter()
    state = StageTrainer(name, *args, **kwargs).train(resume)
    wall = time.perf_counter() - t0
    record = {
        "steps": state.step,
        "seconds": round(wall, 1),
        "train_seconds": round(state.seconds, 1),
    }
    return state, record


def run_rejects(out: Path) -> RejectLog:
    """The RejectLog of a run writing into `out`: rejected rows go to out/rejects.jsonl."""
    return RejectLog(Path(out) / "rejects.jsonl")
