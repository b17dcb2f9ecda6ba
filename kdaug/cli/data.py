"""`kdaug export` (shards -> the GLUE TSV the TinyBERT scripts read, or every column as TSV, JSON
lines or Parquet, optionally relabelled by a teacher) and `kdaug inspect` (summary): the flags,
wired to `augment.io.export` and `augment.io.inspect`.
"""

from __future__ import annotations

import argparse

from kdaug.terminal import printable


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a built output as one file (TinyBERT's train_aug.tsv, or every column)",
        description="Check every shard against manifest.json, then write them in order as one "
        "file (atomically): the GLUE TSV layout of the build's task, or every column (--layout "
        "generic) as TSV, JSON lines or Parquet. OUTPUT must be a file outside OUTDIR.",
    )
    p.add_argument("outdir", help="output directory of `kdaug augment`")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="file to write, e.g. train_aug.tsv (outside OUTDIR; an existing file is replaced)",
    )
    p.add_argument(
        "--format",
        choices=["tsv", "jsonl", "parquet"],
        default=None,
        help="default: from the name of -o (.jsonl, .parquet), else tsv",
    )
    p.add_argument(
        "--layout",
        choices=["glue", "generic"],
        default=None,
        help="glue: the GLUE TSV layout of the task, with the input's ids and extra columns "
        "(default for TSV when the build or --task names a task); generic: every column (id, "
        "variant, texts, label, replacements, the input's other columns)",
    )
    p.add_argument(
        "--task",
        default=None,
        help="GLUE layout of this task (sst2, mnli, ...; default: the build's --task; 'none': "
        "--layout generic)",
    )
    p.add_argument(
        "--labels",
        choices=["inherited", "teacher"],
        default="inherited",
        help="inherited (default): each variant's record's label; teacher: the argmax (the score, "
        "for regression) of the teacher's logits cached by `kdaug teacher-logits` (needs "
        "--teacher); the inherited label is kept as inherited_label in the generic layout",
    )
    p.add_argument("--teacher", help="the fine-tuned teacher whose cached logits to use")
    p.add_argument(
        "--max-length",
        type=int,
        help="the --max-length the logits were cached with (default 64 single texts, 128 pairs)",
    )
    p.add_argument(
        "--teacher-logits",
        action="store_true",
        help="add a teacher_logits column (generic layout; needs --teacher)",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("inspect", help="print a built output's summary and sampled variants")
    p.add_argument("outdir")
    p.add_argument("--samples", type=int, default=5, help="variants to show (default 5)")
    p.add_argument("--seed", type=int, default=0, help="which variants to sample")
    p.set_defaults(func=cmd_inspect)


def cmd_export(args: argparse.Namespace) -> int:
    from augment.io.export import ExportOptions, TeacherCache, export_build
    from distill.teacher_labels import find_logits, teacher_names

    options = ExportOptions(
        output=args.output,
        format=args.format,
        layout=args.layout,
        task=args.task,
        labels=args.labels,
        teacher=args.teacher,
        max_length=args.max_length,
        teacher_logits=args.teacher_logits,
    )
    result = export_build(args.outdir, options, TeacherCache(teacher_names, find_logits))
    print(printable(result.summary()))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from augment.io.inspect import inspect_build

    for line in inspect_build(args.outdir, args.samples, args.seed):
        print(line)
    return 0
