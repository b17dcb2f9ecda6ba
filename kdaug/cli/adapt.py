"""`kdaug adapt-mlm`: adapt a masked-LM to a corpus (optionally label-conditional)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kdaug.machine import DEVICE_HELP
from kdaug.terminal import printable


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "adapt-mlm",
        help="fine-tune the augmentation masked-LM on your corpus (optionally per label)",
        description=(
            "Masked-LM fine-tuning of a BERT-family model on a corpus; a missing MLM head is "
            "created and tied to the input embeddings. With --label-column the model is "
            "label-conditional (label -> token type id). --default builds kdaug's offline "
            "default MLM from the packaged MiniLM encoder."
        ),
    )
    p.add_argument(
        "--default",
        action="store_true",
        help="build the offline default MLM into kdaug's cache (cached by inputs)",
    )
    p.add_argument("--base", help="model name or path (default with --default: minilm-packaged)")
    p.add_argument(
        "--corpus",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="txt (one sentence a line, .txt.gz too), csv, tsv, jsonl or parquet",
    )
    p.add_argument(
        "--corpus-repeat",
        nargs="+",
        type=int,
        metavar="N",
        help="times each --corpus file's training sentences are seen an epoch, one number per "
        "file (default 1 each), to weight a small in-domain file against a large one",
    )
    p.add_argument("-o", "--output", type=Path, help="output model folder")
    p.add_argument("--minutes", type=float, help="training time budget (steps only)")
    p.add_argument("--steps", type=int, help="training step budget")
    p.add_argument("--text-column", default="sentence", help="text column of table files")
    p.add_argument("--label-column", help="train label-conditional on this column")
    p.add_argument(
        "--eval-file", type=Path, help="held-out sentences (default: 15%% of the corpus)"
    )
    p.add_argument("--max-eval", type=int, help="cap on held-out sentences (default 1000)")
    p.add_argument("--batch-size", type=int, help="sentences per step (default 32)")
    p.add_argument("--lr", type=float, help="AdamW learning rate (default 2e-4)")
    p.add_argument("--max-length", type=int, help="WordPiece tokens per sentence (default 64)")
    p.add_argument("--whole-word-mask", action="store_true", help="mask whole words")
    p.add_argument(
        "--label-dropout",
        type=float,
        help="share of examples trained unconditionally (default 0.15)",
    )
    p.add_argument(
        "--label-lr-scale",
        type=float,
        help="learning-rate multiplier of the label embeddings (default 20)",
    )
    p.add_argument(
        "--head-lr-scale",
        type=float,
        help="learning-rate multiplier of an MLM head created here (default 10)",
    )
    p.add_argument(
        "--mlm-probability",
        type=float,
        help="share of tokens masked in training (default 0.15; 0.3 with --default)",
    )
    p.add_argument(
        "--group-by-length",
        action=argparse.BooleanOptionalAction,
        help="batch sentences of similar length, so steps pad less (default: on)",
    )
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 50)")
    p.add_argument("--seed", type=int, help="seed for split, order and masking (default 0)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--no-resume", action="store_true", help="ignore a checkpoint in the output")
    p.add_argument("--force", action="store_true", help="retrain even if the output is up to date")
    p.set_defaults(func=run)  # fmt: skip


def _settings(args: argparse.Namespace):
    from augment.adapt.default import default_settings
    from augment.adapt.settings import AdaptSettings, SettingsError

    fields = {
        "base": args.base,
        "corpus": args.corpus,
        "corpus_repeat": args.corpus_repeat,
        "output": args.output,
        "minutes": args.minutes,
        "steps": args.steps,
        "text_column": args.text_column,
        "label_column": args.label_column,
        "eval_file": args.eval_file,
        "max_eval": args.max_eval,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "max_length": args.max_length,
        "whole_word_mask": args.whole_word_mask or None,
        "label_dropout": args.label_dropout,
        "label_lr_scale": args.label_lr_scale,
        "head_lr_scale": args.head_lr_scale,
        "mlm_probability": args.mlm_probability,
        "group_by_length": args.group_by_length,
        "checkpoint_every": args.checkpoint_every,
        "seed": args.seed,
        "device": args.device,
        "threads": args.threads,
        "resume": not args.no_resume,
        "force": args.force,
    }
    if args.default:
        settings = default_settings(**fields)
        if args.steps is not None and args.minutes is None:
            settings.minutes = None  # a step budget replaces the default time budget
        return settings
    missing = [f for f in ("base", "corpus", "output") if not fields[f]]
    if missing:
        opts = ", ".join("-o" if m == "output" else f"--{m}" for m in missing)
        raise SettingsError(f"missing {opts} (or use --default for the offline default MLM)")
    return AdaptSettings(**{k: v for k, v in fields.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    from augment.adapt.train import MLMAdapter

    settings = _settings(args)
    adapter = MLMAdapter(settings)
    record = adapter.run()
    if record.get("cached"):
        print(printable(f"adapt-mlm: {settings.output} is up to date (cached; --force to rebuild)"))
        return 0
    if args.default:
        adapter.drop_checkpoint()
    ev = record["eval"]
    b, a = ev["before"], ev["after"]
    print(
        f"adapt-mlm: wrote {printable(settings.output)} ({record['steps']} steps, "
        f"{record['train_seconds'] / 60:.1f} min, loss {record['final_loss']})\n"
        f"held-out masked-token accuracy ({a['masked_tokens']} masked tokens in "
        f"{a['sentences']} sentences): top-1 {b['top1']:.3f} -> {a['top1']:.3f}, "
        f"top-10 {b['top10']:.3f} -> {a['top10']:.3f}"
    )
    if "after_unconditional" in ev:
        u = ev["after_unconditional"]
        print(f"  without the label (token type 0): top-1 {u['top1']:.3f}, top-10 {u['top10']:.3f}")
    return 0
