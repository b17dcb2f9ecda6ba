"""The `kdaug` console script: one entry point, one module per command group.

The command modules are imported explicitly; each keeps its heavy libraries (torch, transformers,
spaCy, the product packages) inside its command functions so that `kdaug --help` is instant.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys

from kdaug import __version__
from kdaug.cli import adapt, augment, data, distill, serve
from kdaug.errors import KdaugError
from kdaug.progress import logs_above_bars, quiet_progress
from kdaug.terminal import PrintableFormatter, printable

# Command groups, in `kdaug --help` order; each exposes `register(subparsers)`.
COMMAND_GROUPS = (augment, data, adapt, distill, serve)


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose error line shows the user's arguments `printable`."""

    def error(self, message: str):  # type: ignore[override]
        super().error(printable(message, keep=""))


def add_log_level_flags(parser: argparse.ArgumentParser, default: object) -> None:
    """-v / -q: debug logging, or warnings and errors only and no progress (the last one given
    wins)."""
    kw = {"dest": "log_level", "action": "store_const", "default": default}
    parser.add_argument("-v", "--verbose", const=logging.DEBUG, help="debug logging", **kw)
    parser.add_argument(
        "-q", "--quiet", const=logging.WARNING, help="warnings and errors only, no progress", **kw
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="kdaug",
        description="Augmented corpora for task-specific knowledge distillation, and the distillation.",
        epilog="Exit status: 0 done, 1 the command failed (one `kdaug: error:` line says why), "
        "2 the command line or a setting is wrong, 130 interrupted (SIGINT; 143: SIGTERM).",
    )
    parser.add_argument("-V", "--version", action="version", version=f"kdaug {__version__}")
    add_log_level_flags(parser, logging.INFO)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    for command in {id(p): p for p in sub.choices.values()}.values():
        # also after the command; SUPPRESS keeps a value given before it
        add_log_level_flags(command, argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command: its exit status (0 done, 1 failed, 2 usage error, 130 or 143 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level, handlers=[handler])
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with logs_above_bars(), quiet_progress(args.log_level > logging.INFO):
            return int(args.func(args) or 0)
    except KdaugError as exc:
        print(f"kdaug: error: {printable(exc, keep='')}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # kdaug.errors.Interrupted says which signal, and what now
        print(f"kdaug: {str(exc) or 'interrupted'}", file=sys.stderr)
        gc.freeze()  # exit now: the interpreter's last collection of every object takes seconds
        return getattr(exc, "exit_code", 130)
