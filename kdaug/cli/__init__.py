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
from kdaug.terminal import PrintableFormatter, printable

# Command groups, in `kdaug --help` order; each exposes `register(subparsers)`.
COMMAND_GROUPS = (augment, data, adapt, distill, serve)


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose error line shows the user's arguments `printable`."""

    def error(self, message: str):  # type: ignore[override]
        super().error(printable(message, keep=""))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KdaugError as exc:
        print(f"kdaug: error: {printable(exc, keep='')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kdaug: interrupted", file=sys.stderr)
        return 130
