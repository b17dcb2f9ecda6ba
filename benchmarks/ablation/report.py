"""What the ablation writes: results.json, table.md (one row per student, budget, size and arm,
then the notes) and the plots."""

from __future__ import annotations

from pathlib import Path
from statistics import fmean
from typing import Any

from benchmarks.ablation.arms import BILSTM, DA_ARM_NAMES, NODA
from kdaug.files import write_json_atomic, write_text_atomic


# ---- table.md -----------------------------------------------------------------------------------
def _pm(mean: float, std: float | None) -> str:
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def _arm_label(entry: dict[str, Any]) -> str:
    if entry.get("matched_to"):
        return f"noda (steps of {entry['matched_to']})"
    return entry["arm"]


def _agreement_cell(results: dict[str, Any], arm: str, size: int) -> str:
    found = [g for g in results["label_agreement"] if g["arm"] == arm and g["size"] == size]
    if not found:
        return ""
    g = found[0]
    unit = "%" if g["measure"] == "agreement" else ""
    prefix = "" if g["measure"] == "agreement" else "r "
    if g.get("variants") is not None:
        cell = f"{prefix}{g['variants']:.1f}{unit} variants"
        if g.get("originals") is not None:
            cell += f", {g['originals']:.1f}{unit} originals"
        return cell
    return f"{prefix}{g['all']:.1f}{unit}" if g["all"] is not None else ""


def _stages(values: dict[str, float], fmt: str) -> str:
    return " + ".join(format(v, fmt) for v in values.values())


def markdown(results: dict[str, Any]) -> str:
    """The table: one row per student x budget x (size) x arm, then the notes."""
    sizes = sorted({a["size"] for a in results["arms"]})
    head = ["student", "budget", *(["train subset"] if len(sizes) > 1 else []), "arm", "seeds"]
    head += [f"{results['primary_metric']} mean ± std", "DA − noDA [95% CI]", "excludes 0?"]
    head += ["teacher agrees with labels", "train rows", "epochs", "steps", "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    deltas = {(d["student"], d["budget"], d["size"], d["arm"]): d for d in results["deltas"]}
    for a in results["arms"]:
        d = deltas.get((a["student"], a["budget"], a["size"], a["arm"]))
        if d is None:
            delta, excl = "", ""
        elif d["ci_low"] is None:
            delta, excl = f"{d['mean']:+.1f} (one seed)", "no interval"
        else:
            delta = f"{d['mean']:+.1f} [{d['ci_low']:+.1f}, {d['ci_high']:+.1f}]"
            excl = "yes" if d["excludes_zero"] else "no"
        cells = [a["student"], a["budget"], *([str(a["size"])] if len(sizes) > 1 else [])]
        cells += [_arm_label(a), str(len(a["seeds"])), _pm(a["mean"], a["std"]), delta, excl]
        cells += [
            _agreement_cell(results, a["arm"], a["size"]),
            f"{a['train_rows']:,}",
            _stages(a["epochs"], "g"),
            _stages(a["steps"], ","),
            f"{a['seconds']:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + notes(results))


def notes(results: dict[str, Any]) -> list[str]:
    t, s, b = results["teacher"], results["subset"], results["budget"]
    out = [
        f"Task {results['task']}, dev {results['primary_metric']} in points; seeds "
        f"{','.join(map(str, results['seeds']))} (augmentation seed = training seed); each run "
        f"scored by the best of {b['evals_per_run']} dev evaluations. Train subset: the first "
        f"{s['rows']} of {s['source_rows']} train rows"
        + (
            f" (also {', '.join(str(x['rows']) for x in results['subsets'][1:])})"
            if len(results["subsets"]) > 1
            else ""
        )
        + ".",
        f"Teacher: {t['base']} fine-tuned on the {t['data']} train set ({t['train_rows']:,} "
        f"rows, {t['steps']} steps of {t['batch_size']}, {t['epochs']:g} epochs, seed "
        f"{t['seed']}, {t['seconds']:.0f} s): dev {t['score']:.1f}.",
    ]
    bl = results.get("bilstm")
    if bl:
        frac = bl["fraction_of_teacher"]
        speed = f"{bl['speedup']:.0f}x" if bl["speedup"] else "n/a"
        out.append(
            f"BiLSTM ({bl['figure']}): {bl['mean']:.1f}, "
            f"{100 * frac:.1f}% of the teacher's {bl['teacher']:.1f}; "
            f"{(bl['parameters'] or 0) / 1e6:.2f}M parameters; {speed} the teacher's CPU speed "
            "per sentence (its runs' metrics.json inference)."
        )
    for name, text in results["budgets"].items():
        out.append(f"Budget {name}: {text}.")
    out += [f"Cut: {c}" for c in results["cut"]]
    out += ["", *(d["sentence"] for d in results["deltas"]), ""]
    if results.get("between_arms"):
        out += [*(d["sentence"] for d in results["between_arms"]), ""]
    out.append(
        "Teacher agreement: how often the teacher's prediction is the label a row inherited "
        "(Pearson r x 100 on regression tasks); noda rows are the gold subset."
    )
    out.append("Wall time of the steps: " + wall_times(results) + ".")
    ref = results["paper_reference"]["delta_points"]
    out.append(
        f"Paper (TinyBERT4, full data) DA - noDA: MRPC {ref['mrpc']:+.1f}, "
        f"CoLA {ref['cola']:+.1f}, MNLI-m {ref['mnli_m']:+.1f} points."
    )
    mc = results.get("machine")
    if mc:
        out.append(
            f"Machine: {mc['cpu']}, {mc['cores']} cores, torch threads {mc['torch_threads']}, "
            f"GPU {mc['gpu'] or 'none'}, load average at start {mc['load_average_at_start'][0]}; "
            f"torch {mc['torch']}, transformers {mc['transformers']}, kdaug {mc['kdaug']}."
        )
    return out


def wall_times(results: dict[str, Any]) -> str:
    """Seconds per kind of step: the teacher, then augment / logits per arm, students summed."""
    kinds: dict[str, list[float]] = {}
    for name, r in results["steps"].items():
        if name.startswith(("augment-", "logits-")):
            kind, rest = name.split("-", 1)
            arm = next((a for a in DA_ARM_NAMES if rest.startswith(a)), "")
            key = f"{kind} {arm or 'subset'}"
        elif name.startswith("subset") or name == "teacher":
            key = name.split("-")[0]
        else:
            key = "students " + ("bilstm" if name.startswith(BILSTM) else "transformer")
        kinds.setdefault(key, []).append(r["seconds"])
    parts = []
    for key, values in kinds.items():
        many = len(values) > 1
        parts.append(
            f"{key} {fmean(values):.0f} s each x {len(values)}"
            if many and not key.startswith("students")
            else f"{key} {sum(values):.0f} s" + (f" ({len(values)} runs)" if many else "")
        )
    return "; ".join(parts)


# ---- plots --------------------------------------------------------------------------------------
def plot(path: Path, results: dict[str, Any]) -> None:
    """Per student and budget, bars of each arm's mean with std error bars and each seed's score
    as a dot, at the first subset size; the teacher's score as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = results["subset"]["rows"]
    panels: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for a in results["arms"]:
        if a["size"] == size:
            panels.setdefault((a["student"], a["budget"]), []).append(a)
    if not panels:
        return
    fig, axes = plt.subplots(
        1, len(panels), figsize=(1.0 + 3.6 * len(panels), 4.6), squeeze=False, sharey=True
    )
    teacher = results["teacher"]["score"]
    for ax, ((student, budget), entries) in zip(axes[0], panels.items(), strict=True):
        xs = range(len(entries))
        means = [e["mean"] for e in entries]
        errs = [e["std"] or 0.0 for e in entries]
        colors = ["tab:gray" if e["arm"] == NODA else "tab:blue" for e in entries]
        bars = ax.bar(xs, means, yerr=errs, capsize=4, color=colors, alpha=0.8)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
        for x, e in zip(xs, entries, strict=True):
            ax.plot([x] * len(e["scores"]), e["scores"], "k.", markersize=4)
        ax.axhline(teacher, color="tab:red", linestyle="--", linewidth=1, label="teacher")
        labels = [_arm_label(e).replace(" (steps of ", "\n(steps of ") for e in entries]
        ax.set_xticks(list(xs), labels, fontsize=7, rotation=30, ha="right")
        ax.set_title(f"{student}\n{budget}", fontsize=9)
    axes[0][0].set_ylabel(f"dev {results['primary_metric']} (points)")
    lows = [min(e["scores"]) for es in panels.values() for e in es]
    axes[0][0].set_ylim(max(0.0, min(lows) - 10), max(teacher, *lows) + 8)
    axes[0][0].legend(fontsize=7, loc="lower left")
    n = len(results["seeds"])
    fig.suptitle(
        f"{results['task']}: students with and without augmentation, {size} train rows, "
        f"mean ± std over {n} seeds",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sizes(path: Path, results: dict[str, Any]) -> bool:
    """DA - noDA with its 95% interval against the train-subset size, per student and budget;
    only when several sizes ran."""
    sizes = sorted({d["size"] for d in results["deltas"]})
    if len(sizes) < 2:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in results["deltas"]:
        panels.setdefault((d["student"], d["budget"]), []).append(d)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(1.0 + 3.6 * len(panels), 4.0), squeeze=False, sharey=True
    )
    for ax, ((student, budget), ds) in zip(axes[0], panels.items(), strict=True):
        for arm in dict.fromkeys(d["arm"] for d in ds):
            mine = sorted((d for d in ds if d["arm"] == arm), key=lambda d: d["size"])
            xs = [d["size"] for d in mine]
            ys = [d["mean"] for d in mine]
            lo = [d["mean"] - d["ci_low"] if d["ci_low"] is not None else 0.0 for d in mine]
            hi = [d["ci_high"] - d["mean"] if d["ci_high"] is not None else 0.0 for d in mine]
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=arm)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("train subset rows")
        ax.set_title(f"{student}\n{budget}", fontsize=9)
    axes[0][0].set_ylabel("DA - noDA (points), 95% interval")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{results['task']}: the gain from augmentation against data size", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(out: Path, results: dict[str, Any]) -> None:
    """results.json, table.md, the plots; the table is printed too."""
    write_json_atomic(out / "results.json", results, sort_keys=False, default=float)
    plot(out / "ablation.png", results)
    if not plot_sizes(out / "ablation-sizes.png", results):
        (out / "ablation-sizes.png").unlink(missing_ok=True)
    table = markdown(results)
    write_text_atomic(out / "table.md", table + "\n")
    print("\n" + table, flush=True)
