"""POS agreement and speed of the augmenter on real sentences, per POS-filter method.

For every replacement in every variant, re-tag the variant with the spaCy pipeline and compare the
new word's coarse POS with the original word's. Prints a table; writes JSON with --json.

    python -m benchmarks.pos_agreement --mlm PATH --data .../SST-2/dev.tsv --limit 500
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path

from benchmarks.paths import shared_assets
from kdaug.files import write_text_atomic


def read_sentences(path: Path, limit: int) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [r["sentence"] for _, r in zip(range(limit), rows, strict=False)]


def agreement(aug, records, variants) -> tuple[int, int, dict[str, list[int]]]:
    """(agreeing, total, per source [agree, total]) over all replacements."""
    texts = [r.text_a for r in records]
    var_texts = [v.text_a for vs in variants for v in vs if v.replacements]
    tagged = dict(zip(texts + var_texts, aug.tagger.tag(texts + var_texts), strict=True))
    agree = total = 0
    per: dict[str, list[int]] = {}
    for rec, vs in zip(records, variants, strict=True):
        orig = {w.start: w for w in tagged[rec.text_a].words}
        for v in vs:
            new = {w.start: w for w in tagged[v.text_a].words} if v.replacements else {}
            shift = 0
            for r in v.replacements:
                o = orig[r.start - shift]
                n = new.get(r.start)
                ok = n is not None and n.pos == o.pos
                agree += ok
                total += 1
                s = per.setdefault(r.source, [0, 0])
                s[0] += ok
                s[1] += 1
                shift += len(r.replacement) - len(r.original)
    return agree, total, per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    assets = shared_assets()
    ap.add_argument("--mlm", default=str(assets / "mlm-minilm-adapted"))
    ap.add_argument("--data", default=str(assets / "glue" / "SST-2" / "dev.tsv"))
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--filters", default="none,lexicon,retag")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    from augment import AugmentConfig, Augmenter, Record

    sentences = read_sentences(Path(args.data), args.limit)
    records = [Record(str(i), s) for i, s in enumerate(sentences)]
    base = Augmenter(AugmentConfig.build(mlm=args.mlm))
    results = []
    for mode in args.filters.split(","):
        cfg = AugmentConfig.build(mlm=args.mlm, pos_filter=mode)
        aug = Augmenter(cfg, tagger=base.tagger, mlm=base.mlm, vectors=base.vectors)
        aug.augment(records[:8])  # warm-up
        t0 = time.perf_counter()
        out = []
        for i in range(0, len(records), cfg.batch_size):
            out += aug.augment(records[i : i + cfg.batch_size])
        secs = time.perf_counter() - t0
        agree, total, per = agreement(aug, records, out)
        variants = sum(len(v) - 1 for v in out)
        results.append(
            {
                "pos_filter": mode,
                "sentences": len(records),
                "seconds": round(secs, 2),
                "sentences_per_s": round(len(records) / secs, 2),
                "variants": variants,
                "replacements": total,
                "pos_agreement": round(agree / max(total, 1), 4),
                "by_source": {k: round(a / max(t, 1), 4) for k, (a, t) in per.items()},
            }
        )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} threads {torch.get_num_threads()}"
    )
    print("| pos_filter | sentences/s | variants | replacements | POS agreement | by source |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['pos_filter']} | {r['sentences_per_s']} | {r['variants']} | "
            f"{r['replacements']} | {r['pos_agreement']:.1%} | {r['by_source']} |"
        )
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
