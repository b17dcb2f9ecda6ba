"""Timing each method on the same sentences: kdaug (exact and fast mode, with the floor and the
quality figures), the official algorithm and the peers, one row each."""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.augment_speed.baselines import OfficialTinyBERT, time_floor
from benchmarks.augment_speed.inputs import Inputs
from benchmarks.augment_speed.peers import PEERS
from benchmarks.augment_speed.quality import quality, slot_overlap, topk_overlap
from benchmarks.augment_speed.rows import EXACT, FAST, FLOOR, OFFICIAL, first, row, skipped


def reseed(seed: int = 0) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_slow(
    augment: Callable[[str], list[str]],
    sentences: Sequence[str],
    budget_s: float,
    counts_original: bool,
) -> tuple[int, float, int]:
    """(sentences run, seconds, variants) of a one-sentence-at-a-time augmenter (warmed up)."""
    reseed()
    done = variants = 0
    seconds = 0.0
    for s in sentences:
        t0 = time.perf_counter()
        out = augment(s)
        seconds += time.perf_counter() - t0
        done += 1
        variants += len(out) - (1 if counts_original else 0)
        if budget_s and seconds >= budget_s:
            break
    return done, seconds, variants


def kdaug_config(model_dir: Path, args: argparse.Namespace, mode: str):
    from augment import AugmentConfig

    settings: dict[str, Any] = {"mlm": str(model_dir), "device": args.device}
    settings.update(n=args.n, p=args.p, top_k=args.top_k)
    if mode != "exact":
        settings["mode"] = mode
    return AugmentConfig.build(**settings)


def run_kdaug(aug, records: list, warm: list) -> tuple[float, list, list]:
    """Seconds and variants of `augment_stream` over `records` (default batch size), and the
    masked-LM queries it issued (captured by a pass-through wrapper)."""
    captured: list = []
    mlm = aug.mlm
    if warm:
        aug.augment(warm)
    if mlm is not None:
        inner = mlm.predict

        def capture(queries):
            captured.extend(queries)
            return inner(queries)

        mlm.predict = capture
    reseed()
    t0 = time.perf_counter()
    out = [v for _, v in aug.augment_stream(records)]
    seconds = time.perf_counter() - t0
    if mlm is not None:
        del mlm.predict
    return seconds, out, captured


def measure_kdaug(name: str, model_dir: Path, random_weights: bool, inp: Inputs) -> tuple:
    """Rows for kdaug exact, the floor and kdaug fast; quality rows; the floor's seconds."""
    from augment import Augmenter
    from augment.config import AugmentConfig

    args, records = inp.args, inp.records
    rows, qrows, floor = [], [], None
    exact = Augmenter(kdaug_config(model_dir, args, "exact"))
    secs, out_exact, queries = run_kdaug(exact, records, inp.warm)
    n_var = sum(len(v) - 1 for v in out_exact)
    rows.append(row(name, EXACT, len(records), secs, n_var, mlm_copies=len(set(queries))))
    print(f"  {EXACT}: {len(records) / secs:.3g} sentences/s", flush=True)
    if exact.mlm is not None and queries:
        fl = time_floor(exact.mlm, queries, args.top_k, args.floor_repeats)
        floor = fl["seconds"]
        extra = {"mlm_copies": fl["copies"], "forward_passes": fl["passes"]}
        rows.append(row(name, FLOOR, len(records), floor, 0, **extra))
        rows[-1].update(variants_per_s=None, repeat_seconds=[round(t, 3) for t in fl["times"]])
    fast = None
    if "mode" in AugmentConfig.model_fields:
        fast = Augmenter(kdaug_config(model_dir, args, "fast"))
        secs, out_fast, _ = run_kdaug(fast, records, inp.warm)
        n_var = sum(len(v) - 1 for v in out_fast)
        extra = {k: getattr(fast.mlm, k, None) for k in ("copies", "forward_passes")}
        rows.append(row(name, FAST, len(records), secs, n_var, **extra))
        print(f"  {FAST}: {len(records) / secs:.3g} sentences/s", flush=True)
    else:
        rows.append(skipped(name, FAST, "this kdaug has no AugmentConfig.mode (fast mode)"))
    if not random_weights:  # quality means nothing for random weights
        qe = quality(exact, records, out_exact, "exact")
        qrows.append({"model": name, **qe})
        if fast is not None:
            qf = quality(fast, records, out_fast, "fast")
            qf["topk_overlap"] = topk_overlap(exact.mlm, fast.mlm, queries, args.top_k)
            qf["candidate_overlap"] = slot_overlap(qe["_slots"], qf["_slots"])
            qrows.append({"model": name, **qf})
    for q in qrows:
        q.pop("_slots", None)
    return rows, qrows, floor, exact.config.vectors if exact.vectors else None


def measure_official(name: str, model_dir: Path, vectors: str | None, inp: Inputs) -> dict:
    from kdaug.vectors import read_vectors

    if vectors is None:
        return skipped(name, OFFICIAL, "kdaug has no word vectors configured")
    args = inp.args
    vec = read_vectors(vectors)
    official = OfficialTinyBERT(
        model_dir, vec.words, vec.matrix, m=args.top_k, n=args.n, p=args.p, device=args.device
    )
    reseed()
    official.augment(inp.slow_warm)
    official.mlm_passes = official.vector_searches = 0
    done, secs, n_var = run_slow(official.augment, inp.slow_sentences, args.slow_budget_s, True)
    print(f"  {OFFICIAL}: {done / secs:.3g} sentences/s", flush=True)
    return row(
        name,
        OFFICIAL,
        done,
        secs,
        n_var,
        mlm_passes=official.mlm_passes,
        vector_searches=official.vector_searches,
    )


def measure_peer(name: str, model_dir: Path, peer: str, inp: Inputs) -> dict:
    try:
        augment = PEERS[peer](model_dir, inp.args, inp.notes)
        reseed()
        augment(inp.slow_warm)
        done, secs, n_var = run_slow(augment, inp.slow_sentences, inp.args.slow_budget_s, False)
    except ImportError as exc:
        hint = "pip install --no-deps -r benchmarks/requirements-peers.txt"
        return skipped(name, peer, f"not installed or not importable ({first(exc)}); {hint}")
    except Exception as exc:  # a peer that fails is reported, not fatal
        return skipped(name, peer, first(exc))
    print(f"  {peer}: {done / secs:.3g} sentences/s", flush=True)
    return row(name, peer, done, secs, n_var)
