"""Progress that suits where it runs: a tqdm bar on a terminal; in a log (CI, `make demo | tee`,
a file), one line at most every `interval` seconds with done/total, rate and ETA, and a last
line when the work ends, instead of a line per step.

    bar = progress(total=4000, desc="augment", unit="rows")
    bar.update(256); bar.set_postfix(shards=3); bar.close()

The builder, distillation, teacher logits and adapt-mlm all report through `progress`.
`KDAUG_PROGRESS_INTERVAL` sets the seconds between log lines (default 15).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

from kdaug.terminal import is_terminal

DEFAULT_INTERVAL = 15.0
T = TypeVar("T")
_quiet = False  # set by `quiet_progress` (`kdaug -q`): no bar and no lines


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("KDAUG_PROGRESS_INTERVAL", DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    try:
        return type(shell.get_ipython()).__name__ == "ZMQInteractiveShell" if shell else False
    except AttributeError:
        return False


def _clock_text(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _number(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


class LogProgress:
    """tqdm's `update` / `set_postfix` / `close` for a stream that is not a terminal: a line at
    most every `interval` seconds (`clock` seconds, injectable), and one when closed.
    Safe to update from several threads."""

    def __init__(
        self,
        total: float | None = None,
        *,
        initial: float = 0,
        desc: str = "",
        unit: str = "it",
        stream: TextIO | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        disable: bool = False,
    ) -> None:
        self.total, self.n, self.initial = total, initial, initial
        self.desc, self.unit = desc, unit
        self.stream = stream
        self.interval = _interval() if interval is None else interval
        self.clock, self.disable = clock, disable
        self.start = self.last = clock()
        self.postfix: dict[str, Any] = {}
        self.lines = 0
        self.closed = False
        self._lock = threading.Lock()

    def update(self, n: float = 1) -> None:
        with self._lock:
            self.n += n
            now = self.clock()
            if not self.disable and now - self.last >= self.interval:
                self.last = now
                self._emit(self._line(now))

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, **kwargs: Any) -> None:
        with self._lock:
            self.postfix = {**(ordered_dict or {}), **kwargs}

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if not self.disable:
                self._emit(self._line(self.clock(), final=True))

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _line(self, now: float, final: bool = False) -> str:
        elapsed = max(now - self.start, 0.0)
        done = self.n - self.initial
        unit = self.unit.strip() or "it"
        rate = done / elapsed if elapsed > 0 else None
        count = _number(self.n)
        if self.total:
            count += f"/{_number(self.total)} {unit} ({100 * self.n / self.total:.0f}%)"
        else:
            count += f" {unit}"
        parts = [f"{self.desc}: " if self.desc else "", "done " if final else "", count]
        stats = []
        if rate is not None:
            stats.append(f"{rate:,.1f} {unit}/s" if rate < 100 else f"{rate:,.0f} {unit}/s")
        stats.append(f"elapsed {_clock_text(elapsed)}")
        if not final and self.total and rate:
            stats.append(f"ETA {_clock_text(max(self.total - self.n, 0) / rate)}")
        stats += [f"{k}={v}" for k, v in self.postfix.items()]
        return "".join(parts) + " | " + " | ".join(stats)

    def _emit(self, line: str) -> None:
        stream = self.stream or sys.stderr
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: progress is not worth a crash
            pass
        self.lines += 1


def progress(total: float | None = None, **options: Any) -> Any:
    """A progress reporter for `stream` (default stderr), with LogProgress's keywords: a tqdm
    bar when it is a terminal (or a notebook's widget), else a LogProgress. Both have
    update(n), set_postfix(**kw) and close(). Inside `quiet_progress` it reports nothing."""
    if _quiet:
        options["disable"] = True
    log = LogProgress(total, **options)
    out = log.stream if log.stream is not None else sys.stderr
    if not log.disable and (is_terminal(out) or (log.stream is None and _in_notebook())):
        if log.stream is None and _in_notebook():
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
        return tqdm(
            total=total,
            initial=log.initial,
            desc=log.desc,
            unit=log.unit,
            file=out,
            dynamic_ncols=True,
        )
    return log


@contextlib.contextmanager
def quiet_progress(quiet: bool = True) -> Iterator[None]:
    """While open (and `quiet`), `progress` reports nothing: `kdaug -q`."""
    global _quiet
    before, _quiet = _quiet, quiet or _quiet
    try:
        yield
    finally:
        _quiet = before


@contextlib.contextmanager
def logs_above_bars() -> Iterator[None]:
    """While open, what the root logger writes to the console goes above the live tqdm bars
    (tqdm's `logging_redirect_tqdm`), so that a log line never breaks a bar in two. The `kdaug`
    command runs every command inside it."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        yield


def track(iterable: Iterable[T], total: float | None = None, **kwargs: Any) -> Iterator[T]:
    """Iterate `iterable`, reporting one step per item (`progress`'s keywords apply)."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    bar = progress(total, **kwargs)
    try:
        for item in iterable:
            yield item
            bar.update(1)
    finally:
        bar.close()
