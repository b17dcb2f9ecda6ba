"""The report: ratios between the rows, the targets they are held to, the machine, the
markdown tables and the chart."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

from benchmarks.augment_speed.rows import EXACT, FAST, FLOOR, OFFICIAL
from benchmarks.machine_info import cpu_model

METHOD_ORDER = [OFFICIAL, "TextAttack", "nlpaug", EXACT, FAST, FLOOR]
TARGETS = {"exact_over_floor": 1.3, "fast_vs_official": {"small": 50.0, "base": 25.0}, "peer": 20.0}


def machine(args: argparse.Namespace) -> dict:
    import torch

    from augment import __version__

    cpu = cpu_model()
    versions = {"python": platform.python_version(), "kdaug": __version__}
    from importlib import metadata

    for pkg in ("torch", "transformers", "numpy", "spacy", "nlpaug", "textattack"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": args.device,
        "gpu": gpu,
        "platform": platform.platform(),
        "load_average_start": round(os.getloadavg()[0], 2),
        "versions": versions,
    }


def add_ratios(rows: list[dict], floors: dict[str, float]) -> None:
    ok = [r for r in rows if r["status"] == "ok"]
    by = {(r["model"], r["method"]): r for r in ok}
    for r in ok:
        off = by.get((r["model"], OFFICIAL))
        ex = by.get((r["model"], EXACT))
        rate = r["sentences_per_s"]
        r["vs_official"] = rate / off["sentences_per_s"] if off else None
        r["vs_kdaug_exact"] = rate / ex["sentences_per_s"] if ex else None
        floor = floors.get(r["model"])
        if r["method"] in (EXACT, FAST) and floor:
            r["time_over_floor"] = r["seconds"] / floor


def check_targets(rows: list[dict]) -> list[dict]:
    by = {(r["model"], r["method"]): r for r in rows if r["status"] == "ok"}
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        ex, fa = by.get((model, EXACT)), by.get((model, FAST))
        if ex and ex.get("time_over_floor"):
            v, t = ex["time_over_floor"], TARGETS["exact_over_floor"]
            out.append(_target(model, "kdaug exact time / floor time", v, f"<= {t}", v <= t))
        want = TARGETS["fast_vs_official"].get(model)
        if want and fa and fa.get("vs_official"):
            v = fa["vs_official"]
            out.append(_target(model, "kdaug fast vs official (x)", v, f">= {want}", v >= want))
        for peer in ("nlpaug",):
            pr = by.get((model, peer))
            if pr and ex:
                v, t = ex["sentences_per_s"] / pr["sentences_per_s"], TARGETS["peer"]
                out.append(_target(model, f"kdaug exact vs {peer} (x)", v, f">= {t}", v >= t))
    return out


def _target(model: str, what: str, value: float, target: str, met: bool) -> dict:
    return {"model": model, "what": what, "value": value, "target": target, "met": met}


def fmt(x: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def print_report(result: dict) -> None:
    m = result["machine"]
    print(
        f"\n# Augmentation throughput ({m['cpu']}, {m['cores']} cores, torch "
        f"{m['versions']['torch']} with {m['torch_threads']} threads, device {m['device']}; "
        f"N={result['settings']['n']}, p={result['settings']['p']}, "
        f"top-k={result['settings']['top_k']})\n"
    )
    print(
        "| model | method | sentences | wall s | sentences/s | variants/s | vs official | "
        "vs kdaug exact | time / floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        if r["status"] != "ok":
            print(f"| {r['model']} | {r['method']} | skipped: {r['reason']} | | | | | | |")
            continue
        print(
            f"| {r['model']} | {r['method']} | {r['sentences']} | {r['seconds']:.2f} | "
            f"{fmt(r['sentences_per_s'], '.3g')} | {fmt(r['variants_per_s'], '.3g')} | "
            f"{fmt(r.get('vs_official'), '.3g', 'x')} | {fmt(r.get('vs_kdaug_exact'), '.3g', 'x')} "
            f"| {fmt(r.get('time_over_floor'), '.2f', 'x')} |"
        )
    s = result["settings"]
    print(
        f"\nkdaug and the floor: the first {s['sentences']} sentences of {s['data']} "
        f"({s['mean_words']} words on average); the official algorithm and the peers: up to "
        f"{s['slow_limit']} of them, evenly spaced ({s['slow_mean_words']} words on average), "
        f"each row stopping after {s['slow_budget_s']:.0f} s. The floor is the best of "
        f"{s['floor_repeats']} runs. Ratios are of sentences/s on the same model; 'time / floor' is "
        "kdaug's wall time over the time of only the masked-LM forward passes exact mode needs "
        "for the same sentences. 'base' has random weights: its variants/s reflects candidates "
        "that the POS filter rejects, not the method."
    )
    if result["targets"]:
        print("\n| model | target | value | wanted | met |\n|---|---|---|---|---|")
        for t in result["targets"]:
            print(
                f"| {t['model']} | {t['what']} | {t['value']:.2f} | {t['target']} | "
                f"{'yes' if t['met'] else 'NO'} |"
            )
    if result["quality"]:
        print(
            "\n| model | mode | top-15 overlap with exact | filtered-candidate overlap | "
            "POS agreement | candidates/word | words without | variants/sentence | sources |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for q in result["quality"]:
            src = ", ".join(f"{k} {v:.0%}" for k, v in q["replacement_sources"].items())
            print(
                f"| {q['model']} | {q['mode']} | {fmt(q.get('topk_overlap'), '.1%')} | "
                f"{fmt(q.get('candidate_overlap'), '.1%')} | {q['pos_agreement']:.1%} | "
                f"{q['candidates_per_word']:.1f} | {q['words_without_candidates']:.1%} | "
                f"{q['variants_per_sentence']:.1f} | {src} |"
            )
    for note in result["notes"]:
        print(f"- {note}")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in result["rows"] if r["status"] == "ok"]
    models = list(dict.fromkeys(r["model"] for r in ok))
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in ok)]
    if not models or not methods:
        return
    by = {(r["model"], r["method"]): r["sentences_per_s"] for r in ok}
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(4.0 + 2.2 * len(models), 4.5))
    for j, method in enumerate(methods):
        xs = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(models))]
        ys = [by.get((mo, method), 0) for mo in models]
        bars = ax.bar(xs, ys, width, label=method)
        for b, y in zip(bars, ys, strict=True):
            if y:
                ax.annotate(
                    f"{y:.3g}",
                    (b.get_x() + b.get_width() / 2, y),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_yscale("log")
    low = min(v for v in by.values() if v)
    ax.set_ylim(bottom=low / 3, top=max(by.values()) * 3)
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("sentences / s (log)")
    m = result["machine"]
    ax.set_title(
        f"Augmentation throughput, N={result['settings']['n']} ({m['cpu']}, "
        f"{m['torch_threads']} threads)",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
