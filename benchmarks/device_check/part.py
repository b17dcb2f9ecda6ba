"""One part of the device check, run in its own process by the check (`cli.py`) so that a crash,
a hang or an out-of-memory in one part loses nothing of the others:

    python -m benchmarks.device_check.part NAME --result FILE --work DIR --assets DIR [--dry-run]

Each step of a part records its figures, or its own failure, and the result file is rewritten
after every step, so a part stopped at its time cap still leaves the steps it finished."""

from __future__ import annotations

import argparse
import contextlib
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.augment_speed.rows import first
from benchmarks.device_check.sizes import Sizes, sizes
from kdaug.files import write_json_atomic


@dataclass
class Context:
    """What a part works with, and its result: {"steps": {name: {...}}, ...}."""

    name: str
    sizes: Sizes
    work: Path
    assets: Path
    result_path: Path
    dry_run: bool
    result: dict[str, Any] = field(default_factory=lambda: {"steps": {}})
    deadline: float = float("inf")

    @property
    def device(self) -> str:
        return self.sizes.device

    def left(self) -> float:
        """Seconds left before the part's cap (the check kills the process at the cap)."""
        return self.deadline - time.monotonic()

    def save(self) -> None:
        write_json_atomic(self.result_path, self.result, sort_keys=False)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[dict[str, Any]]:
        """Record a step: what the body puts in the yielded dict, its seconds and status ok;
        on an exception, status failed with the error (the part goes on with its next step)."""
        rec: dict[str, Any] = {"status": "running"}
        self.result["steps"][name] = rec
        self.save()
        t0 = time.perf_counter()
        try:
            yield rec
        except Exception as exc:  # one failed step must not lose the others
            rec.update(status="failed", error=first(exc), trace=traceback.format_exc()[-2000:])
        else:
            if rec["status"] == "running":  # a body may say "skipped" itself
                rec["status"] = "ok"
        rec["seconds"] = round(time.perf_counter() - t0, 2)
        self.save()


def run_part(ctx: Context) -> None:
    from benchmarks.device_check import augment_part, distill_part, tests_part

    parts = {
        "gpu_tests": tests_part.run,
        "augment": augment_part.run,
        "augment_workers": augment_part.run_workers,
        "distill": distill_part.run,
    }
    parts[ctx.name](ctx)


def in_process(name: str, result: Path, work: Path, assets: Path, cap: float, dry_run: bool) -> int:
    """Run part `name` here (the dry run does, to import torch once); 0 when every step is ok
    or skipped. An exception outside the part's steps is recorded as the part's error."""
    ctx = Context(name, sizes(dry_run), work, assets, result, dry_run)
    ctx.deadline = time.monotonic() + cap
    work.mkdir(parents=True, exist_ok=True)
    if dry_run:  # toy models run fastest on one thread, and leave the other cores alone
        import torch

        torch.set_num_threads(1)
    try:
        run_part(ctx)
    except Exception as exc:
        ctx.result["error"] = first(exc)
        ctx.save()
        return 1
    ctx.save()
    return 0 if all(s["status"] in ("ok", "skipped") for s in ctx.result["steps"].values()) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.device_check.part")
    ap.add_argument("name")
    ap.add_argument("--result", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--assets", type=Path, required=True)
    ap.add_argument("--cap", type=float, default=None, help="seconds the part may run")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    cap = args.cap if args.cap is not None else sizes(args.dry_run).caps[args.name]
    return in_process(args.name, args.result, args.work, args.assets, cap, args.dry_run)


if __name__ == "__main__":
    raise SystemExit(main())
