"""Augmentation throughput with a BERT-base-shaped masked LM (random weights: the speed of the
real model, not its candidates) on the device: kdaug exact and fast mode in one process against
the official per-word TinyBERT algorithm on the same device (`augment`), and the builder, `kdaug
augment`, with K worker processes per device (`augment_workers`); GPU utilisation of each run."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.augment_speed.inputs import read_rows
from benchmarks.device_check.gpu_util import GpuSampler
from benchmarks.device_check.models import save_bert
from benchmarks.device_check.part import Context

WARM = 8  # sentences after the measured ones, run once before the clock starts
FLAG = "--workers-per-device"


def masked_lm(ctx: Context) -> Path:
    """The check's masked LM (shared by both augment parts through the work folder)."""
    return save_bert(
        ctx.work / "mlm", ctx.assets / "mlm-minilm-adapted", ctx.sizes.mlm, "BertForMaskedLM"
    )


def sst2(ctx: Context, split: str) -> Path:
    return ctx.assets / "glue" / "SST-2" / f"{split}.tsv"


def run(ctx: Context) -> None:
    from augment import AugmentConfig, Augmenter, Record
    from benchmarks.augment_speed.baselines import OfficialTinyBERT
    from benchmarks.augment_speed.measure import reseed, run_kdaug, run_slow
    from kdaug.vectors import read_vectors

    s = ctx.sizes
    with ctx.step("model") as rec:
        model = masked_lm(ctx)
        rec.update(shape=s.mlm, folder="mlm (random weights)")
    rows, source = read_rows(sst2(ctx, "dev"), s.sentences + WARM)
    records = [Record(str(i), text, label=lab) for i, (text, lab) in enumerate(rows[: s.sentences])]
    warm = [Record(f"w{i}", text, label=lab) for i, (text, lab) in enumerate(rows[s.sentences :])]
    ctx.result.update(data=source, sentences=len(records), n=s.n, device=ctx.device)
    rates: dict[str, float] = {}
    vectors, cfg = None, None
    with GpuSampler() as gpu:
        for mode in ("exact", "fast"):
            with ctx.step(f"kdaug_{mode}") as rec:
                cfg = AugmentConfig.build(mlm=str(model), device=ctx.device, n=s.n, mode=mode)
                aug = Augmenter(cfg)  # its own caches: nothing carried over between modes
                vectors = cfg.vectors if aug.vectors is not None else None
                t0 = time.monotonic()
                seconds, out, _ = run_kdaug(aug, records, warm)
                rec.update(
                    sentences=len(records),
                    seconds=round(seconds, 3),
                    sentences_per_s=round(len(records) / seconds, 2),
                    variants=sum(len(v) - 1 for v in out),
                    forward_passes=aug.mlm.forward_passes if aug.mlm else None,
                    gpu_util=gpu.window(t0, time.monotonic()),
                )
                rates[mode] = len(records) / seconds
                del aug
        with ctx.step("official") as rec:
            if vectors is None or cfg is None:
                raise RuntimeError(
                    "kdaug loaded no word vectors; the official algorithm needs them"
                )
            vec = read_vectors(vectors)
            official = OfficialTinyBERT(
                model, vec.words, vec.matrix, m=cfg.top_k, n=s.n, p=cfg.p, device=ctx.device
            )
            step = max(1, len(records) // s.official_sentences)
            sample = [r.text_a for r in records[::step]][: s.official_sentences]
            reseed()
            official.augment(min((r.text_a for r in warm), key=len))  # warm-up
            official.mlm_passes = 0
            budget = min(s.official_budget_s, max(1.0, ctx.left() - 10))
            t0 = time.monotonic()
            done, seconds, variants = run_slow(official.augment, sample, budget, True)
            rec.update(
                sentences=done,
                seconds=round(seconds, 3),
                sentences_per_s=round(done / seconds, 3),
                variants=variants,
                mlm_passes=official.mlm_passes,
                gpu_util=gpu.window(t0, time.monotonic()),
            )
            rates["official"] = done / seconds
    if "official" in rates:
        ctx.result["speedup_over_official"] = {
            m: round(rates[m] / rates["official"], 1) for m in ("exact", "fast") if m in rates
        }


def has_workers_per_device() -> bool:
    """Does this kdaug's builder take --workers-per-device? (read from `kdaug augment --help`)"""
    out = subprocess.run(
        [sys.executable, "-m", "kdaug.cli", "augment", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return FLAG in out.stdout


def write_input(path: Path, source: Path, rows: int) -> int:
    """The first `rows` sentences of `source` (a GLUE SST-2 tsv) as an sst2 tsv; their count."""
    got, _ = read_rows(source, rows)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        w.writerow(["sentence", "label"])
        w.writerows((text, lab if lab is not None else "0") for text, lab in got)
    return len(got)


def run_workers(ctx: Context) -> None:
    """`kdaug augment` over the same rows with K workers per device (1, auto, 8, 4, 2; exact
    mode, the defaults otherwise)."""
    s = ctx.sizes
    with ctx.step("model") as rec:
        model = masked_lm(ctx)
        rec.update(shape=s.mlm)
    flag = has_workers_per_device()
    ctx.result["workers_per_device_flag"] = flag
    data = ctx.work / "workers-input.tsv"
    rows = write_input(data, sst2(ctx, "train"), s.worker_rows)
    ctx.result.update(rows=rows, n=s.n, shard_size=s.shard_size, device=ctx.device)
    with GpuSampler() as gpu:
        for k in s.workers:
            with ctx.step(f"K={k}") as rec:
                if not flag and k != 1:
                    rec.update(
                        status="skipped",
                        reason=f"kdaug augment has no {FLAG} yet (K=1 runs as --workers 1)",
                    )
                    continue
                if ctx.left() < 15:
                    raise RuntimeError("not run: the part's time cap is nearly spent")
                rec.update(build(ctx, model, data, k, flag, gpu))


def build(ctx: Context, model: Path, data: Path, k: int, flag: bool, gpu: GpuSampler) -> dict:
    s = ctx.sizes
    out = ctx.work / f"workers-{k}"
    cmd = [sys.executable, "-m", "kdaug.cli", "augment", str(data), "-o", str(out)]
    cmd += ["--task", "sst2", "--mlm", str(model), "--device", ctx.device, "--n", str(s.n)]
    cmd += ["--shard-size", str(s.shard_size), "--overwrite"]
    cmd += [FLAG, str(k)] if flag else ["--workers", "1"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(5.0, ctx.left() - 5))
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"kdaug augment exited {proc.returncode}: {' | '.join(tail)}")
    stats: dict[str, Any] = json.loads((out / "stats.json").read_text())
    run = stats.get("run", {})
    return {
        "command": " ".join(["kdaug", *cmd[3:]]).replace(str(ctx.work), "WORK"),
        "rows": run.get("rows"),
        "wall_s": round(wall, 2),
        "seconds_total": run.get("seconds_total"),
        "seconds_load": run.get("seconds_load"),
        "rows_per_s": run.get("rows_per_s"),
        "gpu_util": gpu.window(t0, time.monotonic()),
    }
