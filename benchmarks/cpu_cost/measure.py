"""One measurement in a process of its own: CPU seconds per sentence of an Augmenter.

Run as a file, `python measure.py --code TREE ...`, so that `augment` is imported from TREE (a
checkout of the baseline commit, or this one). It uses the standard library, torch and `augment`
only, so it runs against any commit. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
from dataclasses import asdict


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--code", required=True, help="the checkout whose augment package runs")
    ap.add_argument("--mlm", required=True)
    ap.add_argument("--data", required=True, help="a TSV whose first column is the text")
    ap.add_argument("--rows", type=int, default=400, help="sentences measured")
    ap.add_argument("--warmup", type=int, default=32, help="sentences augmented first, unmeasured")
    ap.add_argument("--mode", default="exact")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=256)
    return ap.parse_args(argv)


class ModelClock:
    """CPU seconds spent in the masked LM's own computation during the measured run: its encoder
    (`base_model`), its head, and the vocabulary projection however the code under test computes
    it (`torch.nn.functional.linear` or `torch.addmm` called outside the encoder: nothing else in
    exact mode calls them). Calls inside a timed call are not timed again."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.on = False
        self._inside = False

    def wrap(self, owner, name: str) -> None:
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            if self._inside or not self.on:
                return inner(*args, **kwargs)
            self._inside, start = True, time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - start
                self._inside = False

        setattr(owner, name, timed)


def clock_model(aug, torch) -> ModelClock | None:
    """A ModelClock on the augmenter's masked LM (this or an older layout); None without one."""
    mlm = getattr(aug, "mlm", None) or getattr(aug, "sources", {}).get("mlm")
    model = getattr(mlm, "model", None)
    if model is None:
        return None
    clock = ModelClock()
    clock.wrap(model, "forward")
    clock.wrap(model.base_model, "forward")
    head = getattr(mlm, "head", None)
    if head is not None:
        clock.wrap(head, "forward")
        transform = getattr(getattr(head, "predictions", None), "transform", None)
        if transform is not None:
            clock.wrap(transform, "forward")
    clock.wrap(torch.nn.functional, "linear")
    clock.wrap(torch, "addmm")
    return clock


def main(argv=None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, args.code)
    import torch

    torch.set_num_threads(1)
    import augment
    from augment import AugmentConfig, Augmenter, Record

    with open(args.data, encoding="utf-8") as f:
        texts = [line.rstrip("\n").split("\t")[0] for line in f][1:]
    need = args.warmup + args.rows
    if len(texts) < need:
        sys.exit(f"{args.data} has {len(texts)} rows, fewer than --warmup + --rows = {need}")
    records = [Record(str(i), t) for i, t in enumerate(texts[:need])]
    cfg = AugmentConfig.build(mlm=args.mlm, n=args.n, mode=args.mode, device="cpu")
    aug = Augmenter(cfg)
    aug.augment(records[: args.warmup])  # one-time costs: pipeline checks, lexicon, first caches
    measured = records[args.warmup :]
    clock = clock_model(aug, torch)
    if clock is not None:
        clock.on = True
    start, usage = time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
    out = []
    for i in range(0, len(measured), args.batch_size):
        out += aug.augment(measured[i : i + args.batch_size])
    cpu = time.process_time() - start
    model_s = clock.seconds if clock is not None else None
    end = resource.getrusage(resource.RUSAGE_SELF)
    digest = hashlib.sha256()
    for variants in out:
        for v in variants:
            digest.update(json.dumps(asdict(v), sort_keys=True).encode())
    print(
        json.dumps(
            {
                "augment": augment.__file__,
                "cpu_s": cpu,
                "sentences": len(measured),
                "cpu_ms_per_sentence": 1000 * cpu / len(measured),
                # the masked LM's own computation, part of the above (None: no masked LM)
                "model_ms_per_sentence": None
                if model_s is None
                else 1000 * model_s / len(measured),
                # the kernel's share (page faults, mostly) and the page faults themselves
                "system_ms_per_sentence": 1000 * (end.ru_stime - usage.ru_stime) / len(measured),
                "minor_faults": end.ru_minflt - usage.ru_minflt,
                "variants": sum(len(v) for v in out),
                "outputs_sha256": digest.hexdigest(),
            }
        )
    )


if __name__ == "__main__":
    main()
