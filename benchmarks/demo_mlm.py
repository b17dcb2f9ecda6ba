"""Benchmark the offline default MLM (`kdaug adapt-mlm --default`) over seeds: the default corpus
(packaged Wikipedia sample + gensim's review sentences, repeated) against the Wikipedia sample
alone, each in the demo's budget, scored on SST-2 dev.

    python -m benchmarks.demo_mlm --assets PATH_TO_SHARED_ASSETS [--seeds 0 1 2 --minutes 4]

Each (arm, seed) trains `--default` with `--seed s` (the wiki arm adds
`--corpus augment/data/enwiki-sample-sentences.txt.gz`), then measures masked-token top-1/top-10
on the 872 SST-2 dev sentences (max length 64) and the fill-mask words of two probe sentences.
The table gives each arm's mean and std over seeds and default - wiki paired by seed with a 95%
t interval. Results go to OUT/results.json after every run; a rerun skips runs already there.
The runs take the CPU one at a time: run nothing else beside them.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from benchmarks.adapt_mlm import read_tsv
from benchmarks.paths import REPO, shared_assets, shown

ARMS = ("wiki", "default")
PROBES = ("the movie was really [MASK] .", "the [MASK] barked at the mailman .")
METRICS = ("top1", "top10")


def sst2_dev(assets: Path) -> list[str]:
    return [r["sentence"] for r in read_tsv(assets / "glue" / "SST-2" / "dev.tsv")]


def train_and_score(arm: str, seed: int, out: Path, minutes: float, dev: list[str]) -> dict:
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    from augment.adapt.default import default_corpus_path, default_settings
    from augment.adapt.evaluate import masked_token_accuracy
    from augment.adapt.train import MLMAdapter

    corpus = [default_corpus_path()] if arm == "wiki" else None
    settings = default_settings(output=out, minutes=minutes, seed=seed, corpus=corpus)
    record = MLMAdapter(settings).run()
    model, tok = AutoModelForMaskedLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    sst2 = masked_token_accuracy(model, tok, dev, max_length=64)
    fill = pipeline("fill-mask", model=model, tokenizer=tok, top_k=5)
    return {
        "steps": record["steps"],
        "train_seconds": record["train_seconds"],
        "heldout": record["eval"]["after"],
        "sst2_dev": {k: sst2[k] for k in METRICS},
        "fill_mask": {p: [x["token_str"] for x in fill(p)] for p in PROBES},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=Path, default=shared_assets())
    ap.add_argument("--out", type=Path, default=REPO / "bench-out" / "demo-mlm")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--minutes", type=float, default=None, help="default: the demo's budget")
    ap.add_argument("--keep-models", action="store_true", help="keep each run's model folder")
    args = ap.parse_args()

    from augment.adapt.default import DEFAULT_MINUTES
    from kdaug.files import write_json_atomic

    minutes = args.minutes or DEFAULT_MINUTES
    dev = sst2_dev(args.assets)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.setdefault("minutes", minutes)
    results.setdefault("sst2_dev_sentences", len(dev))
    runs = results.setdefault("runs", {})
    for seed in args.seeds:
        for arm in ARMS:
            key = f"{arm}/{seed}"
            if key in runs:
                continue
            model_dir = args.out / f"{arm}-s{seed}"
            print(f"demo-mlm: {key} -> {shown(model_dir)}", flush=True)
            runs[key] = train_and_score(arm, seed, model_dir, minutes, dev)
            write_json_atomic(path, results, sort_keys=False)
            if not args.keep_models:
                shutil.rmtree(model_dir, ignore_errors=True)
    results["summary"] = summary(runs, args.seeds)
    write_json_atomic(path, results, sort_keys=False)
    print_table(results, args.seeds)


def summary(runs: dict, seeds: list[int]) -> dict:
    from benchmarks.ablation.stats import paired_difference, summarize

    out: dict = {}
    for metric in METRICS:
        per_arm = {a: {s: runs[f"{a}/{s}"]["sst2_dev"][metric] for s in seeds} for a in ARMS}
        out[metric] = {a: summarize(list(per_arm[a].values())) for a in ARMS}
        out[metric]["default_minus_wiki"] = paired_difference(per_arm["default"], per_arm["wiki"])
    return out


def print_table(results: dict, seeds: list[int]) -> None:
    runs, summ = results["runs"], results["summary"]
    print(f"\nSST-2 dev masked-token accuracy, {results['minutes']} min, seeds {seeds}")
    print(f"{'arm':8} {'steps':>12} {'top-1 mean (std)':>18} {'top-10 mean (std)':>18}")
    for arm in ARMS:
        steps = [runs[f"{arm}/{s}"]["steps"] for s in seeds]
        cells = []
        for m in METRICS:
            s = summ[m][arm]
            cells.append(f"{s['mean']:.3f} ({s['std'] or 0:.3f})")
        print(f"{arm:8} {min(steps):>5}-{max(steps):<6} {cells[0]:>18} {cells[1]:>18}")
    for m in METRICS:
        d = summ[m]["default_minus_wiki"]
        interval = "" if d["ci_low"] is None else f", 95% [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
        print(f"default - wiki, {m}: {d['mean']:+.3f}{interval}")
    for seed in seeds[:1]:
        for arm in ARMS:
            for probe, words in runs[f"{arm}/{seed}"]["fill_mask"].items():
                print(f"{arm} seed {seed}: {probe} -> {', '.join(words)}")


if __name__ == "__main__":
    main()
