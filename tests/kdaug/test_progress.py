"""Progress: a bar on a terminal, a line at most every N seconds in a log, never a line a step."""

from __future__ import annotations

import io
import re
import threading

import pytest

from kdaug.progress import LogProgress, progress, track


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_a_tqdm_bar():
    out = FakeTTY()
    bar = progress(total=50, desc="augment", unit=" rows", stream=out)
    for _ in range(50):
        bar.update(1)
    bar.close()
    text = out.getvalue()
    assert type(bar).__name__ == "tqdm"
    assert "\r" in text and "augment" in text and "50/50" in text and "100%" in text


def test_a_log_gets_a_line_every_interval_with_rate_and_eta():
    out, clock = io.StringIO(), Clock()
    bar = progress(total=100, desc="adapt-mlm", unit="step", stream=out, interval=10, clock=clock)
    assert isinstance(bar, LogProgress)
    for _ in range(100):
        clock.now += 1
        bar.update(1)
        bar.set_postfix(loss="2.345")
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # at 10, 20, ..., 100 s, and the closing line
    assert lines[0] == (
        "adapt-mlm: 10/100 step (10%) | 1.0 step/s | elapsed 0:10 | ETA 1:30 | loss=2.345"
    )
    assert lines[4].startswith(
        "adapt-mlm: 50/100 step (50%) | 1.0 step/s | elapsed 0:50 | ETA 0:50"
    )
    assert (
        lines[-1] == "adapt-mlm: done 100/100 step (100%) | 1.0 step/s | elapsed 1:40 | loss=2.345"
    )


def test_a_log_does_not_get_a_line_per_step():
    out, clock = io.StringIO(), Clock()
    bar = progress(total=5000, desc="augment", unit=" rows", stream=out, interval=15, clock=clock)
    for _ in range(5000):
        clock.now += 0.001  # 5 s of quick steps
        bar.update(1)
    assert out.getvalue() == ""
    bar.close()
    bar.close()  # a second close says nothing more
    (line,) = out.getvalue().splitlines()
    assert line.startswith("augment: done 5,000/5,000 rows (100%) | 1,000 rows/s | elapsed 0:05")


def test_resumed_work_counts_its_rate_from_where_it_started():
    out, clock = io.StringIO(), Clock()
    bar = progress(total=100, initial=60, desc="distill", stream=out, interval=5, clock=clock)
    clock.now = 5
    bar.update(10)
    bar.close()
    first = out.getvalue().splitlines()[0]
    assert first == "distill: 70/100 it (70%) | 2.0 it/s | elapsed 0:05 | ETA 0:15"


def test_unknown_total_and_disabled():
    out, clock = io.StringIO(), Clock()
    bar = progress(desc="augment", unit=" rows", stream=out, interval=1, clock=clock)
    clock.now = 2
    bar.update(30)
    bar.close()
    assert out.getvalue().splitlines()[0] == "augment: 30 rows | 15.0 rows/s | elapsed 0:02"
    quiet = io.StringIO()
    off = progress(total=3, stream=FakeTTY(), disable=True)
    off2 = progress(total=3, stream=quiet, disable=True, interval=0)
    for bar in (off, off2):
        bar.update(3)
        bar.close()
    assert quiet.getvalue() == ""


def test_updates_from_several_threads_are_all_counted():
    out, clock = io.StringIO(), Clock()
    bar = LogProgress(total=4000, stream=out, interval=0, clock=clock)
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        for _ in range(1000):
            bar.update(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    lines = out.getvalue().splitlines()
    assert bar.n == 4000 and len(lines) == 4001  # interval 0: a line an update, none torn
    assert all(re.fullmatch(r"(done )?[\d,]+/4,000 it \(\d+%\) \| elapsed 0:00", x) for x in lines)
    assert lines[-1] == "done 4,000/4,000 it (100%) | elapsed 0:00"


def test_track_counts_the_items():
    out, clock = io.StringIO(), Clock()
    items = list(track(range(7), desc="teacher logits", stream=out, interval=100, clock=clock))
    assert items == list(range(7))
    assert out.getvalue().startswith("teacher logits: done 7/7 it (100%)")


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), ("nonsense", 15.0), ("-2", 0.0)])
def test_interval_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("KDAUG_PROGRESS_INTERVAL", value)
    assert LogProgress(total=1, stream=io.StringIO()).interval == expected


def test_a_log_line_goes_above_the_bar_not_into_it(monkeypatch):
    """The `kdaug` command runs inside logs_above_bars: a log line clears the bar, is written on
    its own line, and the bar is drawn again below it."""
    import logging
    import sys

    from kdaug import cli

    out = FakeTTY()
    monkeypatch.setattr(sys, "stderr", out)
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def command(args):
        bar = progress(total=10, desc="augment", unit="rows")
        bar.update(3)
        logging.getLogger("kdaug.test").warning("a log line")
        bar.update(1)
        bar.close()
        return 0

    monkeypatch.setattr(cli.data, "cmd_inspect", command)
    logging.getLogger().addHandler(handler)
    try:
        assert cli.main(["inspect", "out"]) == 0
    finally:
        logging.getLogger().removeHandler(handler)
    before, after = out.getvalue().split("WARNING a log line\n")
    assert "augment" in before and before.endswith("\r")  # the bar, then cleared
    assert after.startswith("\raugment") and "4/10" in after  # drawn again below the line


def test_quiet_progress_reports_nothing_and_ends_with_its_block():
    from kdaug.progress import quiet_progress

    for stream in (FakeTTY(), io.StringIO()):
        with quiet_progress():
            bar = progress(total=3, desc="augment", stream=stream, interval=0)
            bar.update(3)
            bar.close()
        assert stream.getvalue() == ""
    with quiet_progress(False):
        assert type(progress(total=1, stream=FakeTTY())).__name__ == "tqdm"
