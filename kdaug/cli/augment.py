"""`kdaug sample` and `kdaug augment`."""

from __future__ import annotations

import argparse
from typing import Any, Literal, get_args, get_origin

from kdaug.terminal import use_color

SAMPLE_N = 5  # variants `kdaug sample` prints unless --n says otherwise
# Settings of AugmentConfig that are flags too (--top-k for top_k): each flag's type, choices and
# help come from the config's declaration of the setting, and its help ends with the default.
CONFIG_FLAGS = (
    "n", "p", "seed", "top_k", "mlm", "mlm_context", "mode", "mlm_quantize", "vectors",
    "vectors_limit", "tagger", "pos_filter", "fields", "sources", "batch_size", "device",
)  # fmt: skip


def comma_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def config_default(name: str) -> str:
    """A setting's default as a flag would spell it (lists comma-separated)."""
    from augment.config import default

    value = default(name)
    return ",".join(value) if isinstance(value, list) else str(value)


def flag_options(name: str) -> dict[str, Any]:
    """argparse options of the flag of setting `name`, as AugmentConfig declares the setting."""
    from augment.config import AugmentConfig

    field = AugmentConfig.model_fields[name]
    kind, about = field.annotation, field.description or ""
    if get_origin(kind) is Literal:
        return {"choices": list(get_args(kind)), "help": about}
    if get_origin(kind) is list:  # e.g. sources: comma-separated, among the choices if any
        among = ",".join(get_args(get_args(kind)[0]))
        about += f"; comma-separated: {among}" if among else "; comma-separated"
        return {"type": comma_list, "metavar": "A,B", "help": about}
    return {"type": kind, "help": about} if kind in (int, float) else {"help": about}


def add_config_flags(p: argparse.ArgumentParser, defaults: dict[str, str] | None = None) -> None:
    """The config flags; `defaults` names the ones whose default this command changes."""
    p.add_argument("--config", metavar="FILE.yaml", help="settings file; flags override it")
    for name in CONFIG_FLAGS:
        kw = flag_options(name)
        shown = (defaults or {}).get(name) or config_default(name)
        kw["help"] = f"{kw['help']} (default {shown})".replace("%", "%%")
        p.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **kw)


def workers_arg(text: str) -> int | str:
    """`--workers`: 'auto' or a positive number of worker processes."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a number, not {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1 (or auto)")
    return n


def config_from_args(args: argparse.Namespace, **extra: Any):
    from augment.config import AugmentConfig

    overrides = {k: getattr(args, k) for k in CONFIG_FLAGS if getattr(args, k) is not None}
    overrides.update({k: v for k, v in extra.items() if v is not None})
    if args.config:
        return AugmentConfig.from_yaml(args.config, **overrides)
    return AugmentConfig.build(**overrides)


def register(sub) -> None:
    p = sub.add_parser("sample", help="print variants of one text, replacements highlighted")
    p.add_argument("text")
    p.add_argument("--text-b", default=None, help="second text of a pair")
    p.add_argument("--label", default=None)
    p.add_argument("--no-color", action="store_true", help="no colours (also when NO_COLOR is set)")
    add_config_flags(p, defaults={"n": str(SAMPLE_N)})
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "augment",
        help="augment a corpus into sharded Parquet (resumable, parallel)",
        description="Augment csv/tsv/jsonl/parquet or a Hugging Face dataset into OUTDIR/data/"
        "part-NNNNN.parquet with manifest.json, stats.json and rejects/. Re-running the same "
        "command resumes: finished shards are verified and skipped.",
    )
    p.add_argument("input", help="file, saved Hugging Face dataset directory, or hub NAME[:CONFIG]")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--format", choices=["csv", "tsv", "jsonl", "parquet", "hf"], default=None)
    p.add_argument("--split", default="train", help="split of a Hugging Face dataset")
    p.add_argument("--task", default=None, help="GLUE column preset (sst2, mrpc, mnli, ...)")
    p.add_argument("--text-column", default=None)
    p.add_argument("--text-b-column", default=None)
    p.add_argument("--label-column", default=None)
    p.add_argument("--id-column", default=None)
    p.add_argument("--no-original", action="store_true", help="do not emit originals (variant 0)")
    p.add_argument(
        "--shard-size", type=int, default=10_000, help="input rows per shard (default 10000)"
    )
    p.add_argument(
        "--workers",
        type=workers_arg,
        default="auto",
        metavar="auto|N",
        help="worker processes (default auto: one per visible GPU; on CPU, processes and torch "
        "threads from the cores and memory, one process for small inputs; Ray: its GPUs or CPUs)",
    )
    p.add_argument(
        "--workers-per-device",
        type=workers_arg,
        default=None,
        metavar="auto|K",
        help="worker processes sharing each device (default 1 per GPU): a GPU is kept busy by "
        "several workers' CPU side; auto: from the cores per visible GPU and the memory; on CPU, "
        "K processes (as --workers K); Ray: actors asking for 1/K of a GPU",
    )
    p.add_argument("--executor", choices=["local", "ray"], default="local")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start locally)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output (needed when the config or input changed); only files "
        "the output's manifest lists are deleted",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with an error when the build has warnings (every row rejected)",
    )
    add_config_flags(p)
    p.set_defaults(func=cmd_augment)


def cmd_sample(args: argparse.Namespace) -> int:
    import sys

    from augment.augmenter import TEXT_ID, Augmenter
    from augment.io.inspect import marked
    from augment.records import Record

    cfg = config_from_args(args, n=args.n or SAMPLE_N)
    aug = Augmenter(cfg)
    color = use_color(sys.stdout, disabled=args.no_color)
    (variants,) = aug.augment([Record(TEXT_ID, args.text, args.text_b, args.label)])
    for v in variants:
        print(f"{v.variant:>3}  {marked(v.text_a, v.text_b, v.replacements, color)}")
    if len(variants) <= 1:
        print("(no variants: no eligible word got a candidate)")
    return 0


def cmd_augment(args: argparse.Namespace) -> int:
    from pathlib import Path

    from augment.build.build import build
    from augment.build.spec import BuildSpec
    from augment.io.readers import columns_for

    cfg = config_from_args(args, include_original=False if args.no_original else None)
    cols = columns_for(
        args.task, args.text_column, args.text_b_column, args.label_column, args.id_column
    )
    spec = BuildSpec(
        input=args.input,
        output=Path(args.output),
        config=cfg,
        columns=cols,
        fmt=args.format,
        split=args.split,
        task=args.task,
        shard_size=args.shard_size,
        workers=None if args.workers == "auto" else args.workers,
        workers_per_device=args.workers_per_device,
        executor=args.executor,
        address=args.address,
        overwrite=args.overwrite,
        strict=args.strict,
    )
    build(spec)
    return 0
