"""Benchmark `kdaug adapt-mlm` on SST-2: held-out masked-token accuracy after the demo budget and
after a longer run, and how often label-conditional vs unconditional replacements flip sentiment.

    python benchmarks/adapt_mlm.py --assets PATH_TO_SHARED_ASSETS [--short 4 --long 15]

Stages run in order and each result is written to OUT/results.json as soon as it exists:
the default MLM (packaged MiniLM + packaged Wikipedia sample, demo budget), SST-2 adaptation
unconditional and label-conditional after the demo budget, then both resumed to the long budget.
The flip test trains a TF-IDF logistic-regression sentiment classifier on SST-2 train, replaces one
content word of an SST-2 dev sentence at a time with each of the MLM's top-k candidates (a minimal
candidate step written here: whole alphabetic words, not the original word, not stop words) and
counts how often the classifier's prediction changes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def sentiment_classifier(train: list[dict[str, str]]):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    clf = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(C=4.0, max_iter=2000),
    )
    clf.fit([r["sentence"] for r in train], [r["label"] for r in train])
    return clf


def flip_probes(dev: list[dict[str, str]], tokenizer, per_sentence: int, seed: int) -> list[tuple]:
    """(sentence index, word index) of content words that are one WordPiece each."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    rng, probes = random.Random(seed), []
    vocab = tokenizer.get_vocab()
    for i, row in enumerate(dev):
        words = row["sentence"].split()
        ok = [
            j
            for j, w in enumerate(words)
            if w.isalpha() and len(w) > 2 and w not in ENGLISH_STOP_WORDS and w in vocab
        ]
        probes += [(i, j) for j in rng.sample(ok, min(per_sentence, len(ok)))]
    return probes


def candidates(model, tokenizer, texts: list[str], types: list[int], top_k: int) -> list[list[str]]:
    """Top whole-word candidates at the single [MASK] of each text."""
    import torch
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from augment.adapt.evaluate import logits_at

    out: list[list[str]] = []
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(texts), 64):
            enc = tokenizer(texts[s : s + 64], padding=True, return_tensors="pt")
            enc["token_type_ids"] = enc["attention_mask"] * torch.tensor(types[s : s + 64])[:, None]
            select = enc["input_ids"] == tokenizer.mask_token_id
            top = logits_at(model, dict(enc), select).topk(50, dim=-1).indices
            for row in top.tolist():
                words = tokenizer.convert_ids_to_tokens(row)
                keep = [w for w in words if w.isalpha() and w not in ENGLISH_STOP_WORDS]
                out.append(keep[: top_k + 1])
    return out


def flip_share(model_dir: Path, dev, clf, probes, mode: str, top_k: int) -> dict:
    """Share of replacements whose classifier prediction differs from the original sentence's.
    mode: 'label' (true label's token type), 'opposite' (the other label), 'none' (type 0)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from augment.adapt.conditional import load_conditioning, token_type_for

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForMaskedLM.from_pretrained(model_dir)
    cond = load_conditioning(model_dir)
    labels = cond[0] if cond else []
    texts, types = [], []
    for i, j in probes:
        words = dev[i]["sentence"].split()
        words[j] = tok.mask_token
        label = dev[i]["label"]
        if mode == "opposite":
            label = next(x for x in labels if x != label) if labels else None
        texts.append(" ".join(words))
        types.append(token_type_for(label if mode != "none" else None, labels))
    cands = candidates(model, tok, texts, types, top_k)
    originals = clf.predict([r["sentence"] for r in dev])
    variants, owners = [], []
    for (i, j), cs in zip(probes, cands, strict=True):
        words = dev[i]["sentence"].split()
        for c in [c for c in cs if c != words[j]][:top_k]:
            variants.append(" ".join(words[:j] + [c] + words[j + 1 :]))
            owners.append(i)
    preds = clf.predict(variants)
    flips = sum(p != originals[i] for p, i in zip(preds, owners, strict=True))
    wrong = sum(p != dev[i]["label"] for p, i in zip(preds, owners, strict=True))
    return {
        "replacements": len(variants),
        "flip_share": round(flips / len(variants), 4),
        "off_label_share": round(wrong / len(variants), 4),
    }


def adapt(results: dict, key: str, **kw) -> Path:
    from augment.adapt.settings import AdaptSettings
    from augment.adapt.train import MLMAdapter

    t = time.monotonic()
    record = MLMAdapter(AdaptSettings(**kw)).run()
    results[key] = {
        "minutes": kw.get("minutes"),
        "steps": record["steps"],
        "train_seconds": record["train_seconds"],
        "train_cpu_seconds": record.get("train_cpu_seconds"),
        "wall_seconds": round(time.monotonic() - t, 1),
        "final_loss": record["final_loss"],
        "eval": record["eval"],
    }
    return kw["output"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    env = os.environ.get("KDAUG_SHARED_ASSETS")
    ap.add_argument(
        "--assets", type=Path, default=Path(env) if env else REPO.parent / "shared" / "assets"
    )
    ap.add_argument("--out", type=Path, default=REPO / "bench-out" / "adapt-mlm")
    ap.add_argument("--short", type=float, default=4.0, help="demo budget, minutes")
    ap.add_argument("--long", type=float, default=15.0, help="longer budget, minutes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--probes-per-sentence", type=int, default=2)
    ap.add_argument("--top-k", type=int, default=5)
    args = ap.parse_args()

    import torch

    from augment.adapt.default import default_settings
    from augment.adapt.evaluate import masked_token_accuracy

    torch.set_num_threads(args.threads)
    sst = args.assets / "glue" / "SST-2"
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results: dict = {"budgets_minutes": {"short": args.short, "long": args.long}}

    def save() -> None:
        results_path.write_text(json.dumps(results, indent=2) + "\n")

    # Sentences (not short phrases) of SST-2 train as the adaptation corpus; dev is held out.
    train_rows = read_tsv(sst / "train.tsv")
    corpus = args.out / "sst2-train-sentences.tsv"
    with corpus.open("w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        for r in train_rows:
            if len(r["sentence"].split()) >= 6:
                f.write(f"{r['sentence']}\t{r['label']}\n")
    dev = read_tsv(sst / "dev.tsv")
    common = {"base": "minilm-packaged", "corpus": [corpus], "eval_file": sst / "dev.tsv",
              "text_column": "sentence", "threads": args.threads, "device": "cpu"}  # fmt: skip

    # 1. The offline default MLM (Wikipedia sample, demo budget), scored on SST-2 dev.
    default_dir = args.out / "mlm-default"
    adapt(results, "default_mlm",
          **{**vars(default_settings(output=default_dir, minutes=args.short, threads=args.threads))})  # fmt: skip
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(default_dir)
    tok = AutoTokenizer.from_pretrained(default_dir)
    results["default_mlm"]["sst2_dev"] = masked_token_accuracy(
        model, tok, [r["sentence"] for r in dev]
    )
    save()

    clf = sentiment_classifier(train_rows)
    results["classifier_dev_accuracy"] = round(
        float((clf.predict([r["sentence"] for r in dev]) == [r["label"] for r in dev]).mean()), 4
    )
    probes = flip_probes(dev, tok, args.probes_per_sentence, seed=0)
    results["flip_probes"] = len(probes)

    for budget in ("short", "long"):
        minutes = getattr(args, budget)
        u = adapt(results, f"sst2_unconditional_{budget}",
                  minutes=minutes, output=args.out / "sst2-uncond", **common)  # fmt: skip
        save()
        c = adapt(results, f"sst2_conditional_{budget}",
                  minutes=minutes, output=args.out / "sst2-cond", label_column="label", **common)  # fmt: skip
        save()
        results[f"flips_{budget}"] = {
            "unconditional_model": flip_share(u, dev, clf, probes, "none", args.top_k),
            "conditional_true_label": flip_share(c, dev, clf, probes, "label", args.top_k),
            "conditional_type0": flip_share(c, dev, clf, probes, "none", args.top_k),
            "conditional_opposite_label": flip_share(c, dev, clf, probes, "opposite", args.top_k),
        }
        save()
    print_table(results)


def print_table(r: dict) -> None:
    print(f"\nSST-2 dev masked-token accuracy (classifier dev acc {r['classifier_dev_accuracy']})")
    print(f"{'model':36} {'steps':>6} {'top1':>6} {'top10':>6}")
    d = r["default_mlm"]
    print(f"{'default MLM (wiki sample, short)':36} {d['steps']:>6} "
          f"{d['sst2_dev']['top1']:>6.3f} {d['sst2_dev']['top10']:>6.3f}")  # fmt: skip
    for key in [k for k in r if k.startswith("sst2_")]:
        e = r[key]["eval"]
        print(f"{key:36} {r[key]['steps']:>6} {e['after']['top1']:>6.3f} {e['after']['top10']:>6.3f}"
              f"   (before {e['before']['top1']:.3f}/{e['before']['top10']:.3f})")  # fmt: skip
    print(f"\nsentiment flips per replacement ({r['flip_probes']} masked words, top-k candidates)")
    for budget in ("short", "long"):
        for name, v in r.get(f"flips_{budget}", {}).items():
            print(f"{budget:6} {name:28} {v['flip_share']:>6.3f}  off-label {v['off_label_share']:.3f}"
                  f"  n={v['replacements']}")  # fmt: skip


if __name__ == "__main__":
    main()
