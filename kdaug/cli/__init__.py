"""The `kdaug` console script: one entry point, one module per command group.

The command modules are imported explicitly; each keeps its heavy libraries (torch, transformers,
spaCy, the product packages) inside its command functions so that `kdaug --help` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys

from kdaug.cli import adapt, augment, data, distill, serve
from kdaug.errors import KdaugError

# Command groups, in `kdaug --help` order; each exposes `register(subparsers)`.
COMMAND_GROUPS = (augment, data, adapt, distill, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdaug",
        description="Augmented corpora for task-specific knowledge distillation, and the distillation.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
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
