"""Does augmentation make better students? A multi-seed ablation on a GLUE task, run with kdaug's
own commands only.

    python -m benchmarks.ablation --task sst2                 # CPU, every default below
    python -m benchmarks.ablation --task mrpc --train-limit 500,1000 --seeds 1,2,3,4,5
    python -m benchmarks.ablation --task NAME --data-dir DIR  # any GLUE-layout task directory

Steps, each one `kdaug` command in a subprocess: write the first --train-limit train rows as a
GLUE tsv; fine-tune the teacher (`finetune-teacher` on the full train set, --teacher-epochs);
for every seed s, augment the subset once per DA arm with augmentation seed s (`augment`:
da-vectors = `--mlm none`, the vectors only; da-exact = the masked LM, exact mode; da-fast =
`--mode fast`); cache the teacher's logits over every train set (`teacher-logits`, timed; it also
measures how often the teacher agrees with the labels the variants inherited); then distil each
student with training seed s on the subset (noda) and on every arm's shards.

Students and budgets. At *equal epochs* every student passes over its own train set as often:
the BiLSTM (`--student bilstm`) --bilstm-epochs times, a transformer student (`layers:K:MODEL`:
every K-th layer of the pre-trained, not fine-tuned, encoder; --transformer-arms only)
--transformer-epochs E1,E2: E1 epochs of stage 1 (intermediate layers), then E2 of stage 2
(prediction). At *equal steps* the noda student takes as many optimizer steps (per stage) as the
DA student of the same seed and arm took at equal epochs, so many more epochs over its subset;
the DA runs are the same runs in both budgets. da-cond (named in --arms or --transformer-arms)
augments with --mlm adapted label-conditionally on the subset (`adapt-mlm --label-column`,
--cond-steps).
Each run is scored by its best dev evaluation.

Resumable: steps/<name>.json records a finished step, its settings and commands, and the step is
skipped on the next run; an interrupted training step continues with `--resume`. A step whose
settings changed (or whose inputs did) is refused unless --redo is given. Writes results.json,
table.md, ablation.png (and ablation-sizes.png with several subset sizes) under --out, and prints
the table: per arm mean +- std over seeds, DA - noDA with a 95% interval paired by seed.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from benchmarks.ablation.arms import ARMS, DEFAULT_ARMS
from benchmarks.ablation.plan import Ablation
from benchmarks.ablation.steps import AblationError
from benchmarks.paths import RESULTS, shared_assets
from distill.tasks import TaskError, get_task

DEFAULT_STUDENTS = "bilstm,layers:3:minilm-packaged"
DEFAULT_TRANSFORMER_EPOCHS = "2,1"
DEFAULT_STEP_SECONDS = "0.26,0.27"


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _ints(flag: str, text: str, minimum: int) -> list[int]:
    try:
        values = [int(x) for x in _csv(text)]
    except ValueError:
        values = []
    if not values or any(v < minimum for v in values) or len(set(values)) != len(values):
        raise AblationError(f"{flag}: a comma list of distinct integers >= {minimum}, not {text!r}")
    return values


def _epochs(flag: str, text: str) -> tuple[float, float]:
    try:
        values = tuple(float(x) for x in _csv(text))
    except ValueError:
        values = ()
    if len(values) != 2 or any(not 0 < v < 1000 for v in values):
        raise AblationError(f"{flag}: two epoch counts E1,E2 (each > 0), not {text!r}")
    return values  # type: ignore[return-value]


def _arms(flag: str, text: str) -> list[str]:
    arms = _csv(text)
    if not arms or any(a not in ARMS for a in arms) or len(set(arms)) != len(arms):
        raise AblationError(f"{flag}: a comma list among {', '.join(ARMS)}, not {text!r}")
    return [a for a in ARMS if a in arms]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.ablation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--task", required=True, help="sst2, mrpc, stsb, cola, rte, qnli, qqp, mnli")
    ap.add_argument(
        "--data-dir",
        type=Path,
        help="GLUE task dir with train.tsv and dev files "
        "(default: $KDAUG_SHARED_ASSETS or ../shared/assets, then glue/<MRPC|SST-2|...>)",
    )
    ap.add_argument("--out", type=Path, help="default: benchmarks/results/ablation-<task>")
    ap.add_argument(
        "--train-limit",
        default="1000",
        help="first N train rows, 0 = all; a comma list (500,1000) runs every size (default 1000)",
    )
    ap.add_argument("--seeds", default="1,2,3", help="augmentation and training seeds (1,2,3)")
    ap.add_argument(
        "--arms",
        default=",".join(DEFAULT_ARMS),
        help=f"among {', '.join(ARMS)} ({','.join(DEFAULT_ARMS)})",
    )
    ap.add_argument(
        "--students",
        default=DEFAULT_STUDENTS,
        help=f"`distill --student` specs ({DEFAULT_STUDENTS})",
    )
    ap.add_argument(
        "--transformer-arms", default="noda,da-exact", help="arms of non-BiLSTM students"
    )
    ap.add_argument("--mlm", help="default: the shared mlm-minilm-adapted, else 'default'")
    ap.add_argument("--n", type=int, default=20, help="variants per record")
    ap.add_argument("--p", type=float, default=0.4, help="replacement probability per word")
    ap.add_argument("--teacher-base", default="minilm-packaged", help="model to fine-tune")
    ap.add_argument(
        "--teacher-data",
        choices=["full", "subset"],
        default="full",
        help="the teacher's train set (default: full; subset: the largest --train-limit)",
    )
    ap.add_argument(
        "--teacher-epochs",
        type=float,
        help="epochs over the teacher's train set (default 3 up to 10,000 rows, else 1)",
    )
    ap.add_argument("--teacher-steps", type=int, help="optimizer steps (instead of epochs)")
    ap.add_argument("--teacher-evals", type=int, default=4, help="dev evaluations (4)")
    ap.add_argument("--seed", type=int, default=42, help="the teacher's training seed (42)")
    ap.add_argument("--bilstm-epochs", type=int, default=6, help="BiLSTM equal-epochs budget (6)")
    ap.add_argument(
        "--transformer-epochs",
        default=DEFAULT_TRANSFORMER_EPOCHS,
        help="transformer students' equal-epochs budget: E1,E2 epochs of stage 1 (intermediate "
        f"layers) and stage 2 (prediction) over each arm's own train set "
        f"({DEFAULT_TRANSFORMER_EPOCHS}; the paper's is 20,3)",
    )
    ap.add_argument(
        "--cond-steps",
        type=int,
        default=300,
        help="da-cond: `adapt-mlm --label-column` steps from --mlm on the subset (300)",
    )
    ap.add_argument(
        "--batch-size", type=int, default=32, help="teacher and transformer student (32)"
    )
    ap.add_argument("--max-length", type=int, default=64, help="tokens, every command (64)")
    ap.add_argument(
        "--evals",
        type=int,
        default=6,
        help="dev evaluations per student run, evenly spaced; the best is its score (6)",
    )
    ap.add_argument("--checkpoint-every", type=int, default=500, help="steps (for resuming)")
    ap.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of every command (1: on 2 shared cores one thread took 0.07-0.2x "
        "the CPU time per step of two; 0 = torch's default)",
    )
    ap.add_argument("--redo", action="store_true", help="rerun steps whose settings changed")
    ap.add_argument(
        "--dry-run",
        action="store_true",
        help="list the steps, those done already and the CPU time the rest will take (an "
        "estimate); run and write nothing",
    )
    ap.add_argument(
        "--step-seconds",
        default=DEFAULT_STEP_SECONDS,
        help="--dry-run: CPU seconds of one transformer step, stage 1,stage 2 "
        f"({DEFAULT_STEP_SECONDS}: layers:3:minilm-packaged, batch 32, one thread, measured "
        "by benchmarks.ablation.step_speed)",
    )
    args = ap.parse_args(argv)
    try:
        args.spec = get_task(args.task)
    except TaskError as exc:
        raise AblationError(str(exc)) from None
    args.task = args.spec.name
    args.sizes = _ints("--train-limit", args.train_limit, 0)
    args.seed_list = _ints("--seeds", args.seeds, 0)
    args.arm_list = _arms("--arms", args.arms)
    args.transformer_arm_list = _arms("--transformer-arms", args.transformer_arms)
    args.student_list = list(dict.fromkeys(_csv(args.students)))
    if not args.student_list:
        raise AblationError("--students: name at least one student")
    args.transformer_epochs = _epochs("--transformer-epochs", args.transformer_epochs)
    args.step_seconds = _epochs("--step-seconds", args.step_seconds)
    for flag in ("n", "bilstm_epochs", "cond_steps", "batch_size", "evals"):
        if getattr(args, flag) < 1:
            raise AblationError(f"--{flag.replace('_', '-')} must be at least 1")
    assets = shared_assets()
    if args.data_dir is None:
        if not args.spec.glue_dir:
            raise AblationError(f"--data-dir: no default directory for task {args.task}")
        args.data_dir = assets / "glue" / args.spec.glue_dir
    args.out = (args.out or RESULTS / f"ablation-{args.task}").resolve()
    if args.mlm is None:
        adapted = assets / "mlm-minilm-adapted"
        args.mlm = str(adapted) if (adapted / "config.json").is_file() else "default"
    return args


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so that the running kdaug command is stopped too


def _dry_run(args: argparse.Namespace) -> int:
    from benchmarks.ablation.estimate import estimate
    from benchmarks.paths import shown

    if not (args.data_dir / "train.tsv").is_file():
        raise AblationError(f"{shown(args.data_dir / 'train.tsv')} not found")
    lines, left = estimate(args, args.step_seconds)
    print("\n".join(lines))
    done = sum(line.startswith("done") for line in lines)
    print(
        f"{len(lines)} steps, {done} done; the rest: ~{left / 3600:.1f} CPU hours on one "
        f"thread (an estimate; --out {shown(args.out)})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        args = parse_args(argv)
        if args.dry_run:
            return _dry_run(args)
        Ablation(args).run()
    except AblationError as exc:
        print(f"ablation: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ablation: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
