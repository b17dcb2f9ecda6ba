"""The `kdaug` console script: one entry point, subcommands registered by each package.

Heavy libraries are imported inside the command functions so that `kdaug --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

from augment.errors import KdaugError

# Modules exposing `register(subparsers)`; each adds its own subcommands.
COMMAND_MODULES = (
    "augment.cli_augment",
    "augment.cli_data",
    "augment.adapt.cli",
    "distill.cli",
    "service.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdaug",
        description="Augmented corpora for task-specific knowledge distillation, and the distillation.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KdaugError as exc:
        print(f"kdaug: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kdaug: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
