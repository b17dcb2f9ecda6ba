"""What the ablation writes: results.json (every run; per arm the mean and spread over seeds;
DA - noDA paired by seed with a 95% interval; the teacher; its agreement with the inherited
labels; the wall time of every step), table.md and the plots."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from statistics import fmean
from typing import Any

from ablation_stats import delta_sentence, paired_difference, summarize

from kdaug.files import write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = ("results.json", "table.md", "ablation.png", "ablation-sizes.png")
NODA = "noda"
DA_ARM_NAMES = ("da-vectors", "da-exact", "da-fast")
ARMS = (NODA, *DA_ARM_NAMES)
BILSTM = "bilstm"
EQUAL_EPOCHS, EQUAL_STEPS = "equal-epochs", "equal-steps"
PAPER_REFERENCE = {
    "source": "TinyBERT (arXiv 1909.10351), ablation of the distillation procedure, "
    "TinyBERT4 from a BERT-base teacher, GLUE dev, full train sets, 20 (CoLA 50) + 3 epochs",
    "with_da": {"mnli_m": 82.8, "mnli_mm": 82.9, "mrpc": 85.8, "cola": 50.8},
    "without_da": {"mnli_m": 80.5, "mnli_mm": 81.0, "mrpc": 82.4, "cola": 29.8},
    # DA - noDA, as the tables here: removing DA cost TinyBERT4 these points
    "delta_points": {"mnli_m": 2.3, "mnli_mm": 1.9, "mrpc": 3.4, "cola": 21.0},
    "metrics": "MNLI accuracy, CoLA MCC, MRPC F1 (the metric the paper's GLUE tables give)",
    "note": "the drop is largest on the small tasks (MRPC 3.7k, CoLA 8.5k train rows)",
    "tang_et_al": "Tang et al. 2019 (arXiv 1903.12136): a BiLSTM trained on an augmented "
    "transfer set labelled by a BERT teacher's logits",
}


def shown(value: Any) -> str:
    """Paths beside the repository relative to it, the interpreter as `python`: what is written
    into the results does not name this machine's directories."""
    text = str(value)
    if text == sys.executable:
        return "python"
    if os.path.isabs(text) and REPO.parent in Path(text).parents:
        return os.path.relpath(text, REPO)
    return text


def flat_metrics(dev: dict[str, dict[str, float]]) -> dict[str, float]:
    """{dev set: {metric: value}} -> {'metric' or 'set metric': points}."""
    single = len(dev) == 1
    return {
        (name if single else f"{dev_set} {name}"): round(100 * value, 2)
        for dev_set, metrics in dev.items()
        for name, value in metrics.items()
    }


def primary_points(dev: dict[str, dict[str, float]], primary: str) -> float:
    """The task's primary metric on the first dev set (what picks a run's best checkpoint)."""
    return round(100 * next(iter(dev.values()))[primary], 2)


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


# ---- results.json -------------------------------------------------------------------------------
def run_rows(runs: Iterable[dict[str, Any]], primary: str) -> list[dict[str, Any]]:
    """One row per student run: its arm, budgets, seed, data, steps, passes and score."""
    rows = []
    for run in runs:
        result = run["result"]
        steps = {stage: r["steps"] for stage, r in result["stages"].items()}
        per_epoch = math.ceil(run["train_rows"] / run["batch_size"])  # batches, as kdaug counts
        rows.append(
            {
                "step": run["step"],
                "student": run["student"],
                "arm": run["arm"],
                "budgets": run["budgets"],
                "matched_to": run.get("matched_to"),
                "size": run["size"],
                "seed": run["seed"],
                "train_rows": run["train_rows"],
                "batch_size": run["batch_size"],
                "steps": steps,
                "epochs": {s: round(n / per_epoch, 2) for s, n in steps.items()},
                "dev": flat_metrics(result["student_dev"]),
                "score": primary_points(result["student_dev"], primary),
                "parameters": (result.get("parameters") or {}).get("student"),
                "inference": result.get("inference") or {},
                "seconds": run["seconds"],
            }
        )
    return rows


def _groups(rows: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        for budget in row["budgets"]:
            key = (row["student"], budget, row["size"], row["arm"], row["matched_to"])
            groups.setdefault(key, []).append(row)
    return groups


def summarize_arms(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per student, budget, size and arm (a noda run at equal steps: per DA arm whose steps it
    took, `matched_to`): the seeds, their scores and mean and sample std."""
    arms = []
    students = list(dict.fromkeys(r["student"] for r in rows))
    budgets = (EQUAL_EPOCHS, EQUAL_STEPS)

    def order(key: tuple) -> tuple:
        student, budget, size, arm, matched = key
        place = ARMS.index(matched or arm)
        return students.index(student), budgets.index(budget), size, place, arm != NODA

    for key in sorted(_groups(rows), key=order):
        student, budget, size, arm, matched = key
        group = _groups(rows)[key]
        group = sorted(group, key=lambda r: r["seed"])
        s = summarize([r["score"] for r in group])
        entry = {
            "student": student,
            "arm": arm,
            "budget": budget,
            "seeds": [r["seed"] for r in group],
            "scores": [r["score"] for r in group],
            "mean": _r(s["mean"]),
            "std": _r(s["std"]),
            "size": size,
        }
        if matched:
            entry["matched_to"] = matched
        stages = list(group[0]["steps"])
        entry["train_rows"] = round(fmean(r["train_rows"] for r in group))
        entry["steps"] = {st: round(fmean(r["steps"][st] for r in group)) for st in stages}
        entry["epochs"] = {st: round(fmean(r["epochs"][st] for r in group), 2) for st in stages}
        entry["seconds"] = round(fmean(r["seconds"] for r in group), 1)
        arms.append(entry)
    return arms


def compute_deltas(arms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each DA arm minus the noda arm of the same student, budget and size (at equal steps the
    noda runs that took that arm's steps), paired by seed."""
    out = []
    for da in arms:
        if da["arm"] == NODA:
            continue
        same = [
            a
            for a in arms
            if a["arm"] == NODA
            and (a["student"], a["budget"], a["size"]) == (da["student"], da["budget"], da["size"])
        ]
        noda = next((a for a in same if a.get("matched_to") == da["arm"]), None)
        noda = noda or next((a for a in same if "matched_to" not in a), None)
        if noda is None:
            continue
        d = paired_difference(
            dict(zip(da["seeds"], da["scores"], strict=True)),
            dict(zip(noda["seeds"], noda["scores"], strict=True)),
        )
        label = f"{da['student']}, {da['budget']}, {da['size']} rows, {da['arm']} - noda"
        out.append(
            {
                "student": da["student"],
                "arm": da["arm"],
                "budget": da["budget"],
                "mean": _r(d["mean"]),
                "ci_low": _r(d["ci_low"]),
                "ci_high": _r(d["ci_high"]),
                "size": da["size"],
                "excludes_zero": d["excludes_zero"],
                "seeds": d["seeds"],
                "differences": [_r(x) for x in d["differences"]],
                "level": d["level"],
                "sentence": delta_sentence(label, d),
            }
        )
    return out


def agreement_summary(augments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per arm and size, the teacher's agreement with the inherited labels (percent; Pearson x
    100 on regression tasks) averaged over seeds, with each seed's figures."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for a in augments:
        groups.setdefault((a["arm"], a["size"]), []).append(a)
    out = []
    for (arm, size), group in groups.items():
        entry: dict[str, Any] = {
            "arm": arm,
            "size": size,
            "measure": group[0]["teacher_vs_labels"]["measure"],
            "seeds": [a["seed"] for a in group if a["seed"] is not None],
        }
        for part in ("all", "originals", "variants"):
            values = [a["teacher_vs_labels"].get(part) for a in group]
            values = [v for v in values if v is not None]
            entry[part] = _r(fmean(values), 2) if values else None
        entry["per_seed"] = [
            {"seed": a["seed"], "rows": a["rows"], **a["teacher_vs_labels"]} for a in group
        ]
        out.append(entry)
    return out


def bilstm_summary(
    rows: list[dict[str, Any]], arms: list[dict[str, Any]], teacher_score: float, size: int
) -> dict[str, Any] | None:
    """The BiLSTM against the teacher: score fraction, parameters and CPU speed per sentence,
    from the da-exact arm at equal epochs (else the first DA arm, else noda) at `size`."""
    mine = [a for a in arms if a["student"] == BILSTM and a["budget"] == EQUAL_EPOCHS]
    mine = [a for a in mine if a["size"] == size]
    if not mine:
        return None
    pick = next((a for a in mine if a["arm"] == "da-exact"), None)
    pick = pick or next((a for a in mine if a["arm"] != NODA), mine[0])
    runs = [
        r
        for r in rows
        if r["student"] == BILSTM
        and r["arm"] == pick["arm"]
        and EQUAL_EPOCHS in r["budgets"]
        and r["size"] == size
    ]
    inference = [r["inference"] for r in runs if r["inference"].get("speedup")]

    def mean_of(key: str) -> float | None:
        values = [i[key] for i in inference if i.get(key) is not None]
        return fmean(values) if values else None

    return {
        "figure": f"{pick['arm']}, {EQUAL_EPOCHS}, {size} train rows, mean of seeds "
        f"{','.join(map(str, pick['seeds']))}",
        "arm": pick["arm"],
        "mean": pick["mean"],
        "teacher": teacher_score,
        "fraction_of_teacher": _r(pick["mean"] / teacher_score, 4) if teacher_score else None,
        "parameters": round(fmean(r["parameters"] for r in runs)) if runs else None,
        "cpu_seconds_per_sentence": {
            "teacher": _r(mean_of("teacher_seconds_per_sentence"), 7),
            "student": _r(mean_of("student_seconds_per_sentence"), 7),
        },
        "speedup": _r(mean_of("speedup"), 2),
    }


def cut_notes(a: Any) -> list[str]:
    """What this run left out, in words (the transformer student's cuts, arms not chosen)."""
    notes = []
    transformers = [s for s in a.student_list if s != BILSTM]
    for student in transformers:
        missing = [arm for arm in ARMS if arm not in a.transformer_arm_list]
        notes.append(
            f"{student}: arms {', '.join(a.transformer_arm_list)} only"
            + (f" (not {', '.join(missing)})" if missing else "")
            + f"; {EQUAL_STEPS} budget only ({a.stage1_steps} + {a.stage2_steps} steps, batch "
            f"{a.batch_size}, the same for every arm; no {EQUAL_EPOCHS}); "
            f"{len(a.seed_list)} seeds."
        )
    if BILSTM in a.student_list:
        missing = [arm for arm in ARMS if arm not in a.arm_list]
        if missing:
            notes.append(f"bilstm: arms {', '.join(missing)} not run (--arms).")
    return notes


def assemble(
    a: Any,
    records: dict[str, dict[str, Any]],
    subsets: list[dict[str, Any]],
    teacher: dict[str, Any],
    augments: list[dict[str, Any]],
    runs: list[dict[str, Any]],
) -> dict[str, Any]:
    """results.json from the pipeline's step results (`a`: the parsed options)."""
    primary = a.spec.primary
    rows = run_rows(runs, primary)
    arms = summarize_arms(rows)
    t_steps = teacher["stages"]["finetune"]["steps"]
    t_rows, t_bs = teacher["train_rows"], teacher["batch_size"]
    teacher_score = primary_points(teacher["last_dev"], primary)
    main = subsets[0]
    bilstm_batch = next((r["batch_size"] for r in rows if r["student"] == BILSTM), None)
    return {
        "task": a.task,
        "data_dir": shown(a.data_dir),
        "metrics_in": "points (metric x 100)",
        "primary_metric": primary,
        "seeds": a.seed_list,
        "subset": {
            "train_limit": main["limit"],
            "rows": main["rows"],
            "source_rows": main["source_rows"],
            "selection": "first rows of train.tsv, in file order",
        },
        "subsets": [
            {"train_limit": s["limit"], "rows": s["rows"], "source_rows": s["source_rows"]}
            for s in subsets
        ],
        "teacher": {
            "base": shown(a.teacher_base),
            "data": a.teacher_data,
            "dev": flat_metrics(teacher["last_dev"]),
            "score": teacher_score,
            "parameters": teacher["parameters"],
            "train_rows": t_rows,
            "steps": t_steps,
            "batch_size": t_bs,
            "epochs": round(t_steps / math.ceil(t_rows / t_bs), 2),
            "seed": a.seed,
            "seconds": records["teacher"]["seconds"],
        },
        "budget": {
            "bilstm_epochs": a.bilstm_epochs,
            "bilstm_batch_size": bilstm_batch,
            "transformer_stage1_steps": a.stage1_steps,
            "transformer_stage2_steps": a.stage2_steps,
            "transformer_batch_size": a.batch_size,
            "max_length": a.max_length,
            "evals_per_run": a.evals,
            "score": "each run's best dev evaluation of the primary metric",
        },
        "budgets": {
            EQUAL_EPOCHS: f"every BiLSTM trains for {a.bilstm_epochs} epochs over its own train set: "
            "the noda student over the subset, a DA student over its augmented set",
            EQUAL_STEPS: "the noda BiLSTM takes as many optimizer steps as the DA BiLSTM of the "
            "same seed and arm took at equal epochs (matched_to names that arm); the DA runs are "
            f"the same runs as at {EQUAL_EPOCHS}. Transformer students: {a.stage1_steps} + "
            f"{a.stage2_steps} steps for every arm",
        },
        "students": a.student_list,
        "cut": cut_notes(a),
        "augment": {
            "arms": {
                "da-vectors": "--mlm none (the vectors only)",
                "da-exact": f"--mlm {shown(a.mlm)}, exact mode",
                "da-fast": f"--mlm {shown(a.mlm)} --mode fast",
            },
            "n": a.n,
            "p": a.p,
            "seeds": "augmentation seed = training seed of the runs on those shards",
        },
        "augmented": [
            {"arm": x["arm"], "size": x["size"], "seed": x["seed"], "rows": x["rows"]}
            | {k: (x["augment"] or {}).get(k) for k in ("records", "rows_rejected")}
            for x in augments
            if x["arm"] != NODA
        ],
        "label_agreement": agreement_summary(augments),
        "runs": rows,
        "arms": arms,
        "deltas": compute_deltas(arms),
        "bilstm": bilstm_summary(rows, arms, teacher_score, main["rows"]),
        "steps": {
            name: {k: r[k] for k in ("seconds", "resumed", "commands")}
            | {"skipped": "skipped" in r}
            for name, r in records.items()
        },
        "paper_reference": PAPER_REFERENCE,
    }


def machine(threads: int | None, load: tuple[float, ...]) -> dict[str, Any]:
    import platform
    from importlib import metadata

    import torch
    from machine_info import cpu_model

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": threads or torch.get_num_threads(),
        "gpu": gpu,
        "load_average_at_start": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": metadata.version("transformers"),
        "kdaug": metadata.version("kdaug"),
    }


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
