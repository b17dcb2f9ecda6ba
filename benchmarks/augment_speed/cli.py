"""Augmentation throughput side by side: kdaug (exact and fast mode), the official TinyBERT
algorithm, nlpaug and TextAttack, and the masked-LM floor, on the same sentences, masked-LMs, word
vectors and machine, in one process.

    python -m benchmarks.augment_speed [--models small,base] [--limit 200] [--slow-limit 20]

Models: `small` is the shared 6-layer MLM; `base` is bert-base-uncased's shape (12 layers, 768
wide, 30,522 pieces) with seeded random weights, which costs what the real model costs; any other
entry is an MLM folder. kdaug and the floor run on the first --limit sentences; the official
algorithm and the peers, 10-1000x slower, on --slow-limit of those, evenly spaced, each row
stopping after the sentence that uses up --slow-budget-s. Rates are per sentence; the table says
how many sentences each row ran. With the defaults a run takes 20-40 minutes on 2 cores, most of
it TextAttack's. The floor is the time of only the masked-LM forward passes that kdaug's
exact mode needs for its sentences (batched, inference mode, vocabulary logits at the masks only).
Peers are optional (`pip install --no-deps -r benchmarks/requirements-peers.txt`); a peer that
does not install or run is a "skipped" row with the reason. Prints markdown tables and writes JSON
(--out) with a PNG chart beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.augment_speed.inputs import load_inputs, mean_words
from benchmarks.augment_speed.measure import measure_kdaug, measure_official, measure_peer
from benchmarks.augment_speed.models import resolve_models
from benchmarks.augment_speed.peers import PEERS
from benchmarks.augment_speed.report import add_ratios, check_targets, machine, plot, print_report
from benchmarks.augment_speed.rows import EXACT, first, skipped
from benchmarks.paths import RESULTS, shared_assets
from kdaug.files import write_text_atomic


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.augment_speed", description=__doc__.splitlines()[0]
    )
    assets = shared_assets()
    ap.add_argument("--models", default="small,base", help="small, base and/or MLM folders")
    ap.add_argument("--mlm-small", type=Path, default=assets / "mlm-minilm-adapted")
    ap.add_argument("--data", type=Path, default=assets / "glue" / "SST-2" / "dev.tsv")
    ap.add_argument("--limit", type=int, default=200, help="sentences for kdaug and the floor")
    ap.add_argument("--slow-limit", type=int, default=20, help="sentences for official/peers")
    ap.add_argument("--slow-budget-s", type=float, default=300.0, help="per slow row; 0: none")
    ap.add_argument("--floor-repeats", type=int, default=3, help="the floor is the best of")
    ap.add_argument("--peers", default="nlpaug,textattack", help="nlpaug,textattack or none")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--p", type=float, default=0.4)
    ap.add_argument("--top-k", type=int, default=15)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=RESULTS / "augment_speed.json")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    import torch
    from transformers.utils import logging as hf_logging

    from augment.config import AugmentConfig

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    inp, data_name = load_inputs(args)
    rows: list[dict] = []
    quality_rows: list[dict] = []
    floors: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        models = resolve_models(args.models, args.mlm_small, Path(tmp))
        for name, model_dir, random_weights in models:
            print(f"model {name}: {model_dir.name}", flush=True)
            if not (model_dir / "config.json").is_file():
                rows.append(skipped(name, EXACT, f"no model folder {model_dir}"))
                continue
            krows, qrows, floor, vectors = measure_kdaug(name, model_dir, random_weights, inp)
            rows += krows
            quality_rows += qrows
            if floor:
                floors[name] = floor
            rows.append(measure_official(name, model_dir, vectors, inp))
            for peer in PEERS:
                if peer.lower() in inp.peers:
                    rows.append(measure_peer(name, model_dir, peer, inp))
    if "mode" not in AugmentConfig.model_fields:
        inp.notes.append("kdaug fast mode: skipped, AugmentConfig has no `mode` field here")
    add_ratios(rows, floors)
    mach = machine(args)
    mach["load_average_end"] = round(os.getloadavg()[0], 2)
    result = {
        "machine": mach,
        "settings": {
            "n": args.n,
            "p": args.p,
            "top_k": args.top_k,
            "data": data_name,
            "sentences": len(inp.records),
            "mean_words": mean_words([r.text_a for r in inp.records]),
            "slow_limit": args.slow_limit,
            "slow_mean_words": mean_words(inp.slow_sentences),
            "slow_budget_s": args.slow_budget_s,
            "floor_repeats": args.floor_repeats,
            "models": {name: str(path.name) for name, path, _ in models},
            "threads": args.threads,
        },
        "rows": rows,
        "targets": check_targets(rows),
        "quality": quality_rows,
        "notes": list(dict.fromkeys(inp.notes)),
    }
    print_report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(result, indent=2, default=str))
    png = args.out.with_suffix(".png")
    try:
        plot(result, png)
        print(f"\nwrote {args.out} and {png}")
    except ImportError as exc:
        print(f"\nwrote {args.out} (no chart: {first(exc)})")
    return result
