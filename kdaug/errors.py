"""User-facing errors: the CLI prints their message on one line, without a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class KdaugError(Exception):
    """Base of every error whose message is meant for the user as it is: the command could not
    do its work (a missing or damaged input, a model that will not load), exit status 1."""

    exit_code = 1


class UsageError(KdaugError):
    """The command line or a setting is wrong (an invalid value, flags that do not go together):
    exit status 2, as for argparse's own errors."""

    exit_code = 2


class InputError(KdaugError):
    """The input file or its columns cannot be used."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a command (see `interrupts`): the CLI prints the message on
    one line and exits with 128 + the signal's number (130, 143)."""

    def __init__(self, signum: int, what: str = "") -> None:
        import signal

        self.signum, self.exit_code = signum, 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}" + (f": {what}" if what else ""))


@contextlib.contextmanager
def interrupts(what: str = "") -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise `Interrupted(signum, what)` in the main thread,
    once: further signals are ignored until the block has ended, so that the clean-up it runs on
    the way out (finally clauses, context managers) is not cut short. Signals that are ignored
    (a background job's SIGINT) stay ignored; outside the main thread nothing changes."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if not fired:
            fired.append(signum)
            raise Interrupted(signum, what)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def one_line(message: BaseException | str, limit: int | None = None) -> str:
    """A library's exception (pyarrow, datasets, a model loader) or a message quoting one, as one
    line for a KdaugError: every run of whitespace, line breaks included, is one space; cut to
    `limit` characters (the last three "...") when one is given."""
    text = " ".join(str(message).split())
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."
