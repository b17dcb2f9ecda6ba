"""Benchmark `kdaug adapt-mlm` on SST-2: held-out masked-token accuracy after the demo budget and
after a longer run, and how often label-conditional vs unconditional replacements flip sentiment.

    python -m benchmarks.adapt_mlm --assets PATH_TO_SHARED_ASSETS [--short 4 --long 15]

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
import random
import time
from pathlib import Path

from benchmarks.paths import REPO, shared_assets


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


def flip_probes(dev: list[dict[str, str]], tokenizer, clf, kind: str, seed: int) -> list[tuple]:
    """(sentence index, word index), one per dev sentence, among content words that are one
    WordPiece each: a random one ('random'), or the one the classifier weighs most ('sentiment')."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    tfidf, lr = clf.named_steps["tfidfvectorizer"], clf.named_steps["logisticregression"]
    weight = {w: abs(lr.coef_[0][i]) for w, i in tfidf.vocabulary_.items() if " " not in w}
    rng, probes = random.Random(seed), []
    vocab = tokenizer.get_vocab()
    for i, row in enumerate(dev):
        words = row["sentence"].split()
        ok = [
            j
            for j, w in enumerate(words)
            if w.isalpha() and len(w) > 2 and w not in ENGLISH_STOP_WORDS and w in vocab
        ]
        if not ok:
            continue
        if kind == "sentiment":
            probes.append((i, max(ok, key=lambda j: weight.get(words[j], 0.0))))
        else:
            probes.append((i, rng.choice(ok)))
    return probes


def flip_table(u: Path, c: Path, dev, clf, probes: dict, top_k: int) -> dict:
    """Flip shares of the unconditional model and of the conditional one fed the true label,
    the opposite label and no label (token type 0), for each probe set."""
    modes = {
        "unconditional_model": (u, "none"),
        "conditional_true_label": (c, "label"),
        "conditional_opposite_label": (c, "opposite"),
        "conditional_type0": (c, "none"),
    }
    return {
        kind: {
            name: flip_share(path, dev, clf, ps, mode, top_k)
            for name, (path, mode) in modes.items()
        }
        for kind, ps in probes.items()
    }


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

    from augment.candidates.conditioning import load_conditioning, token_type_for

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
    ap.add_argument("--assets", type=Path, default=shared_assets())
    ap.add_argument("--out", type=Path, default=REPO / "bench-out" / "adapt-mlm")
    ap.add_argument("--short", type=float, default=4.0, help="demo budget, minutes")
    ap.add_argument("--long", type=float, default=15.0, help="longer budget, minutes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--flips-only",
        action="store_true",
        help="skip training: measure flips of the models already in --out",
    )
    ap.add_argument("--top-k", type=int, default=5)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from augment.adapt.default import default_settings
    from augment.adapt.evaluate import masked_token_accuracy
    from kdaug.files import write_json_atomic
    from kdaug.resolve import resolve_model

    torch.set_num_threads(args.threads)
    sst = args.assets / "glue" / "SST-2"
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results: dict = {"budgets_minutes": {"short": args.short, "long": args.long}}

    def save() -> None:
        write_json_atomic(results_path, results, sort_keys=False)

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

    # The offline default MLM (Wikipedia sample, demo budget), also scored on SST-2 dev.
    default_dir = args.out / "mlm-default"
    if args.flips_only:
        results = json.loads(results_path.read_text())
    else:
        settings = default_settings(output=default_dir, minutes=args.short, threads=args.threads)
        adapt(results, "default_mlm", **vars(settings))
        results["default_mlm"]["sst2_dev"] = masked_token_accuracy(
            AutoModelForMaskedLM.from_pretrained(default_dir),
            AutoTokenizer.from_pretrained(default_dir),
            [r["sentence"] for r in dev],
        )
        save()

    clf = sentiment_classifier(train_rows)
    results["classifier_dev_accuracy"] = round(
        float((clf.predict([r["sentence"] for r in dev]) == [r["label"] for r in dev]).mean()), 4
    )
    tok = AutoTokenizer.from_pretrained(resolve_model("minilm-packaged"))
    probes = {kind: flip_probes(dev, tok, clf, kind, seed=0) for kind in ("random", "sentiment")}
    results["flip_probes"] = {kind: len(ps) for kind, ps in probes.items()}
    u, c = args.out / "sst2-uncond", args.out / "sst2-cond"
    for budget in ("short", "long"):
        minutes = getattr(args, budget)
        if not args.flips_only:
            adapt(results, f"sst2_unconditional_{budget}", minutes=minutes, output=u, **common)
            save()
            adapt(results, f"sst2_conditional_{budget}", minutes=minutes, output=c,
                  label_column="label", **common)  # fmt: skip
            save()
        if budget == "long" or not args.flips_only:
            results[f"flips_{budget}"] = flip_table(u, c, dev, clf, probes, args.top_k)
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
    print("\nsentiment flips per replacement (one masked word per dev sentence, top-k candidates)")
    for budget in ("short", "long"):
        flips = r.get(f"flips_{budget}", {})
        if flips and "flip_share" in next(iter(flips.values())):
            flips = {"random": flips}  # results of a run that measured random probes only
        for kind, table in flips.items():
            for name, v in table.items():
                print(f"{budget:6} {kind:9} {name:28} {v['flip_share']:>6.3f}  "
                      f"off-label {v['off_label_share']:.3f}  n={v['replacements']}")  # fmt: skip


if __name__ == "__main__":
    main()
