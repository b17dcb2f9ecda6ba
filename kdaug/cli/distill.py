"""`kdaug finetune-teacher | distill | evaluate | teacher-logits`.

torch and transformers are imported inside the command functions so `kdaug --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kdaug.machine import DEVICE_HELP
from kdaug.terminal import printable

STAGE_FLAGS = ("epochs", "max_steps", "batch_size", "grad_accum", "lr")
BILSTM_FLAGS = {  # flag dest -> BiLSTMSettings field
    "lstm_hidden": "hidden_size",
    "lstm_layers": "layers",
    "lstm_dropout": "dropout",
    "embeddings": "embeddings",
    "logit_loss": "loss",
}


def _common(p: argparse.ArgumentParser, train: bool = True) -> None:
    p.add_argument(
        "--task", required=True, help="sst2, mrpc, stsb, cola, rte, qnli, qqp, mnli or custom"
    )
    p.add_argument("--config", help="YAML file of DistillConfig settings (flags override it)")
    p.add_argument(
        "--max-length", type=int, help="tokens per example (default 64 single, 128 pairs)"
    )
    p.add_argument("--device", help=f"{DEVICE_HELP} (default auto)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], help="CUDA autocast")
    p.add_argument("--text-a", help="custom task: first text column")
    p.add_argument("--text-b", help="custom task: second text column")
    p.add_argument("--label-column", help="custom task: label column")
    p.add_argument("--labels", help="custom task: comma-separated label names (omit: regression)")
    if not train:
        return
    p.add_argument("-o", "--output", required=True, type=Path, help="run directory")
    p.add_argument("--eval", action="append", default=[], help="dev file (repeat for MNLI m/mm)")
    p.add_argument("--epochs", type=float, help="epochs of every stage run")
    p.add_argument("--max-steps", type=int, help="cap on optimizer steps per stage")
    p.add_argument("--batch-size", type=int, help="examples per optimizer step (all processes)")
    p.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    p.add_argument("--lr", type=float, help="learning rate of every stage run")
    p.add_argument("--seed", type=int)
    p.add_argument("--checkpoint-every", type=int, help="optimizer steps between checkpoints")
    p.add_argument("--eval-every", type=int, help="steps between dev evaluations (default: epoch)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")


def _config(args: argparse.Namespace) -> Any:
    from distill.config import BILSTM_STAGE, DistillConfig

    overrides = {
        "task": args.task,
        "max_length": args.max_length,
        "device": args.device,
        "precision": args.precision,
        "text_a": args.text_a,
        "text_b": args.text_b,
        "label_column": args.label_column,
        "labels": args.labels.split(",") if args.labels else None,
    }
    keys = ("seed", "checkpoint_every", "eval_every", "compile", "layer_map", "temperature")
    for key in (*keys, "cache_teacher"):
        overrides[key] = getattr(args, key, None)
    if isinstance(overrides["layer_map"], str) and overrides["layer_map"][:1].isdigit():
        overrides["layer_map"] = [int(x) for x in overrides["layer_map"].split(",")]
    bilstm = {k: getattr(args, f, None) for f, k in BILSTM_FLAGS.items()}
    overrides["bilstm"] = {k: v for k, v in bilstm.items() if v is not None}
    if getattr(args, "hard_weight", None) is not None:
        overrides["weights"] = {"hard": args.hard_weight}
    stage = {k: getattr(args, k, None) for k in STAGE_FLAGS}
    defaults = {"prediction": BILSTM_STAGE} if getattr(args, "student", None) == "bilstm" else None
    return DistillConfig.load(args.config, overrides, stage, defaults)


def _print(result: Any) -> None:
    if result is not None:
        print(json.dumps(result, indent=2, default=float))


def _finetune(args: argparse.Namespace) -> int:
    from distill.pipeline import finetune_teacher

    args.output.mkdir(parents=True, exist_ok=True)
    _print(
        finetune_teacher(_config(args), args.model, args.train, args.eval, args.output, args.resume)
    )
    return 0


def _distill(args: argparse.Namespace) -> int:
    from distill.pipeline import distill

    args.output.mkdir(parents=True, exist_ok=True)
    _print(
        distill(
            _config(args),
            args.teacher,
            args.student,
            args.train,
            args.eval,
            args.output,
            args.stage,
            args.resume,
        )
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from distill.pipeline import evaluate_model

    _print(evaluate_model(_config(args), args.model, args.eval))
    return 0


def _teacher_logits(args: argparse.Namespace) -> int:
    from distill.pipeline import cache_teacher_logits

    print(
        printable(cache_teacher_logits(_config(args), args.shards, args.teacher, args.batch_size))
    )
    return 0


def register(subparsers: Any) -> None:
    """Add the distillation commands to the `kdaug` parser."""
    p = subparsers.add_parser("finetune-teacher", help="fine-tune a BERT-family teacher on a task")
    p.add_argument("--model", default="minilm-packaged", help="base model name or path")
    p.add_argument("--train", required=True, help="training file or kdaug shards")
    _common(p)
    p.set_defaults(func=_finetune)

    p = subparsers.add_parser("distill", help="TinyBERT task-specific distillation")
    p.add_argument("--teacher", required=True, help="fine-tuned teacher (dir)")
    p.add_argument(
        "--student",
        required=True,
        help="checkpoint path/name, tinybert4, tinybert6, teacher-layers:K (every K-th layer of "
        "the teacher), layers:K:MODEL (every K-th layer of the pre-trained MODEL, new head), or "
        "bilstm",
    )
    p.add_argument("--train", required=True, help="kdaug shard dir, Parquet file or data file")
    p.add_argument(
        "--stage",
        choices=["intermediate", "prediction", "both"],
        help="default: both (bilstm: prediction, its only stage)",
    )
    p.add_argument("--layer-map", help="uniform, top, bottom, or teacher layers like 3,6,9,12")
    p.add_argument("--temperature", type=float, help="soft cross-entropy temperature")
    p.add_argument("--hard-weight", type=float, help="weight of the gold-label loss (default 0)")
    p.add_argument(
        "--cache-teacher",
        action=argparse.BooleanOptionalAction,
        help="stage 1 over several epochs: run the teacher once, its targets kept in "
        "OUTPUT/teacher_states (fp16; default on)",
    )
    g = p.add_argument_group("BiLSTM student (--student bilstm)")
    g.add_argument("--lstm-hidden", type=int, help="LSTM units per direction (default 150)")
    g.add_argument("--lstm-layers", type=int, help="stacked BiLSTM layers (default 1)")
    g.add_argument("--lstm-dropout", type=float, help="dropout (default 0.1)")
    g.add_argument(
        "--embeddings",
        help="glove-6b-50d (default), a GloVe/word2vec/KeyedVectors file, teacher (its input "
        "embeddings), or none",
    )
    g.add_argument(
        "--logit-loss",
        choices=["mse", "soft-ce"],
        help="logit MSE (default, Tang et al.) or soft cross-entropy at --temperature",
    )
    _common(p)
    p.set_defaults(func=_distill)

    p = subparsers.add_parser("evaluate", help="dev metrics of a saved model")
    p.add_argument("model", help="model dir (or a run dir with best/)")
    p.add_argument("--eval", action="append", required=True, help="dev file (repeatable)")
    _common(p, train=False)
    p.set_defaults(func=_evaluate)

    p = subparsers.add_parser("teacher-logits", help="cache teacher logits beside kdaug shards")
    p.add_argument("shards", help="kdaug shard dir or Parquet file")
    p.add_argument("--teacher", required=True, help="fine-tuned teacher (dir)")
    p.add_argument("--batch-size", type=int, default=128)
    _common(p, train=False)
    p.set_defaults(func=_teacher_logits)
