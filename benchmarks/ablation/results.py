"""What the ablation's results.json holds: every run; per arm the mean and spread over seeds;
DA - noDA paired by seed with a 95% interval, and each masked-LM arm minus the vectors-only arm
(between_arms); the teacher; its agreement with the inherited
labels; the wall time of every step; the machine."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from statistics import fmean
from typing import Any

from benchmarks.ablation.arms import ARMS, BILSTM, EQUAL_EPOCHS, EQUAL_STEPS, NODA
from benchmarks.ablation.stats import delta_sentence, paired_difference, summarize
from benchmarks.machine_info import cpu_model
from benchmarks.paths import shown

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
        out.append(_paired(da, noda, da["budget"]))
    return out


def _paired(
    arm: dict[str, Any], ref: dict[str, Any], budget: str, versus: str | None = None
) -> dict[str, Any]:
    """`arm` minus `ref` (two entries of `arms`) over their common seeds, with the interval and
    the table's sentence; `versus` names `ref` when it is not the noda arm."""
    d = paired_difference(
        dict(zip(arm["seeds"], arm["scores"], strict=True)),
        dict(zip(ref["seeds"], ref["scores"], strict=True)),
    )
    label = f"{arm['student']}, {budget}, {arm['size']} rows, {arm['arm']} - {versus or NODA}"
    return {
        "student": arm["student"],
        "arm": arm["arm"],
        **({"versus": versus} if versus else {}),
        "budget": budget,
        "mean": _r(d["mean"]),
        "ci_low": _r(d["ci_low"]),
        "ci_high": _r(d["ci_high"]),
        "size": arm["size"],
        "excludes_zero": d["excludes_zero"],
        "seeds": d["seeds"],
        "differences": [_r(x) for x in d["differences"]],
        "level": d["level"],
        "sentence": delta_sentence(label, d),
    }


def compare_da_arms(arms: list[dict[str, Any]], base: str = "da-vectors") -> list[dict[str, Any]]:
    """Each other DA arm minus `base` (the word vectors alone) of the same student and size,
    paired by seed: does the masked LM earn its cost? At equal epochs only (the DA runs are the
    same runs in both budgets)."""
    out = []
    for da in arms:
        if da["arm"] in (NODA, base) or da["budget"] != EQUAL_EPOCHS:
            continue
        ref = next(
            (
                a
                for a in arms
                if a["arm"] == base
                and (a["student"], a["budget"], a["size"])
                == (da["student"], EQUAL_EPOCHS, da["size"])
            ),
            None,
        )
        if ref is None:
            continue
        out.append(_paired(da, ref, EQUAL_EPOCHS, versus=base))
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
        e1, e2 = a.transformer_epochs
        notes.append(
            f"{student}: arms {', '.join(a.transformer_arm_list)} only"
            + (f" (not {', '.join(missing)})" if missing else "")
            + f"; {EQUAL_EPOCHS} {e1:g} + {e2:g} epochs (the paper's 20 + 3 does not fit this "
            f"machine), batch {a.batch_size}; {len(a.seed_list)} seeds."
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
            "transformer_epochs": {
                "intermediate": a.transformer_epochs[0],
                "prediction": a.transformer_epochs[1],
            },
            "transformer_batch_size": a.batch_size,
            "max_length": a.max_length,
            "evals_per_run": a.evals,
            "score": "each run's best dev evaluation of the primary metric",
        },
        "budgets": {
            EQUAL_EPOCHS: f"every BiLSTM trains for {a.bilstm_epochs} epochs over its own train set, "
            f"a transformer student {a.transformer_epochs[0]:g} epochs of stage 1 (intermediate "
            f"layers) then {a.transformer_epochs[1]:g} of stage 2 (prediction): the noda student "
            "over the subset, a DA student over its augmented set",
            EQUAL_STEPS: "the noda student takes as many optimizer steps (per stage, for a "
            "transformer) as the DA student of the same seed and arm took at equal epochs "
            f"(matched_to names that arm); the DA runs are the same runs as at {EQUAL_EPOCHS}",
        },
        "students": a.student_list,
        "cut": cut_notes(a),
        "augment": {
            "arms": {
                "da-vectors": "--mlm none (the vectors only)",
                "da-exact": f"--mlm {shown(a.mlm)}, exact mode",
                "da-fast": f"--mlm {shown(a.mlm)} --mode fast",
                "da-cond": f"--mlm: {shown(a.mlm)} adapted label-conditionally on the subset "
                f"(`adapt-mlm --label-column`, {a.cond_steps} steps), exact mode",
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
        "between_arms": compare_da_arms(arms),
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
