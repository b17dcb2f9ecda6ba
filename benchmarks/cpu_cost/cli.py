"""The augmenter's own CPU cost per sentence (tagging, candidates, POS filter, sampling), before
and after a change, measured side by side in one run.

    python -m benchmarks.cpu_cost [--base REV] [--rows 400] [--minilm-rows 100] [--repeats 1]

Exact mode, n=20, one process with one torch thread, on SST-2 dev sentences. The cost is
`time.process_time()` of the augmenting process (CPU, not wall: a shared machine's wall time is
noise) per sentence, after a warm-up of --warmup other sentences (pipeline checks, lexicon), with
two masked-LMs: a "null" one (BertForMaskedLM, 1 layer, hidden 32, 2 heads, intermediate 64, the
real 30,522-piece vocabulary and tokenizer, seeded random weights: what is left is mostly kdaug's
own work) and the shared MiniLM MLM (what exact mode costs with a real model on CPU). The null
model's forward is cheap but not free (its encoder and the projection onto the vocabulary,
timed inside the run by `measure.py`): the table shows its part and the rest, kdaug's own. "before" runs the code of --base (extracted with `git archive`),
"after" this checkout, each in its own process; each figure is the best of --repeats, taken in
turns. The outputs of both are hashed: the table says whether they are identical. Prints a table
and writes JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.machine_info import cpu_model
from benchmarks.paths import REPO, RESULTS, shared_assets, shown
from kdaug.files import write_json_atomic

# The commit before the CPU-cost work of issue 24: the baseline the targets are stated against.
BASELINE = "f5477e2"
TARGET_RATIO = 0.5  # after / before, null MLM
TARGET_SHARE = 0.05  # null MLM after / MiniLM after
MEASURE = Path(__file__).with_name("measure.py")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.cpu_cost", description=__doc__.splitlines()[0]
    )
    assets = shared_assets()
    ap.add_argument("--base", default=BASELINE, help="the commit measured as 'before'; 'none'")
    ap.add_argument("--mlm", type=Path, default=assets / "mlm-minilm-adapted", help="MiniLM")
    ap.add_argument("--data", type=Path, default=assets / "glue" / "SST-2" / "dev.tsv")
    ap.add_argument("--rows", type=int, default=400, help="sentences measured, null MLM")
    ap.add_argument("--minilm-rows", type=int, default=100, help="sentences measured, MiniLM")
    ap.add_argument("--warmup", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--out", type=Path, default=RESULTS / "cpu-cost.json")
    return ap.parse_args(argv)


def make_null_mlm(tokenizer_from: Path, out: Path) -> Path:
    """A 1-layer, 32-wide BertForMaskedLM with seeded random weights and the real vocabulary
    and tokenizer of `tokenizer_from`: its forward pass is almost free."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    tok = AutoTokenizer.from_pretrained(tokenizer_from)
    shape = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(0)
    BertForMaskedLM(shape).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def extract(rev: str, into: Path) -> Path:
    """The tree of commit `rev` of this repository, written under `into`."""
    archive = into / "base.tar"
    subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(archive), rev], check=True
    )
    tree = into / "base"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def measure(code: Path, mlm: Path, rows: int, args: argparse.Namespace) -> dict:
    """One measurement, in a fresh process with one thread everywhere."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="0")
    cmd = [sys.executable, str(MEASURE), "--code", str(code), "--mlm", str(mlm)]
    cmd += ["--data", str(args.data), "--rows", str(rows), "--warmup", str(args.warmup)]
    cmd += ["--n", str(args.n), "--mode", "exact"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=code)
    if done.returncode != 0:
        sys.exit(f"measurement failed ({' '.join(cmd)}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_of(runs: list[dict]) -> dict:
    best = min(runs, key=lambda r: r["cpu_ms_per_sentence"])
    digests = {r["outputs_sha256"] for r in runs}
    return dict(
        best, runs_ms=[round(r["cpu_ms_per_sentence"], 3) for r in runs], stable=len(digests) == 1
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kdaug-cpu-cost-") as tmp:
        tmp = Path(tmp)
        null = make_null_mlm(args.mlm, tmp / "null-mlm")
        trees = {"after": REPO}
        if args.base != "none":
            trees = {"before": extract(args.base, tmp), "after": REPO}
        models = {"null": (null, args.rows), "minilm": (args.mlm, args.minilm_rows)}
        runs: dict[str, dict[str, list[dict]]] = {m: {t: [] for t in trees} for m in models}
        for _ in range(args.repeats):
            for model, (path, rows) in models.items():
                for name, code in trees.items():
                    runs[model][name].append(measure(code, path, rows, args))
        shutil.rmtree(tmp / "null-mlm", ignore_errors=True)
    result = report(args, {m: {t: best_of(r) for t, r in by.items()} for m, by in runs.items()})
    write_json_atomic(args.out, result)
    print(f"\nwritten: {shown(args.out)}")


def report(args: argparse.Namespace, res: dict[str, dict[str, dict]]) -> dict:
    """Print the table; return the JSON document."""
    cols = [c for c in ("before", "after") if c in res["null"]]
    ms = {m: {c: res[m][c]["cpu_ms_per_sentence"] for c in cols} for m in res}
    share = {c: ms["null"][c] / ms["minilm"][c] for c in cols}
    ratio = {m: ms[m]["after"] / ms[m]["before"] for m in ms} if "before" in cols else {}
    same = (
        {m: res[m]["before"]["outputs_sha256"] == res[m]["after"]["outputs_sha256"] for m in res}
        if ratio
        else {}
    )
    head = f"{'CPU ms per sentence':<34}" + "".join(f"{c:>10}" for c in cols)
    print(head + (f"{'after/before':>14}" if ratio else ""))
    model = {m: {c: res[m][c].get("model_ms_per_sentence") for c in cols} for m in res}
    own = {c: None if model["null"][c] is None else ms["null"][c] - model["null"][c] for c in cols}
    for m, label in (("null", "null MLM"), ("minilm", "shared MiniLM MLM")):
        line = f"{label:<34}" + "".join(f"{ms[m][c]:>10.2f}" for c in cols)
        print(line + (f"{ratio[m]:>14.2f}" if ratio else ""))
        if m == "null":
            print(f"{'  of it the null model itself':<34}" + _cells(model["null"], cols))
            line = f"{'  the rest: kdaug own work':<34}" + _cells(own, cols)
            if ratio and None not in own.values():
                line += f"{own['after'] / own['before']:>14.2f}"
            print(line)
    print(f"{'null / MiniLM':<34}" + "".join(f"{share[c]:>9.1%} " for c in cols))
    for m in res:
        kernel = "".join(
            f"{res[m][c].get('system_ms_per_sentence', float('nan')):>10.2f}" for c in cols
        )
        print(f"{'  of it in the kernel, ' + m:<34}" + kernel)
    targets = {
        "null_share_of_minilm_at_most": TARGET_SHARE,
        "null_share_met": share["after"] <= TARGET_SHARE,
    }
    if ratio:
        targets |= {
            "null_after_over_before_at_most": TARGET_RATIO,
            "null_ratio_met": ratio["null"] <= TARGET_RATIO,
        }
        print(
            f"targets: after/before <= {TARGET_RATIO} ({'met' if targets['null_ratio_met'] else 'NOT met'}), "
            f"null/MiniLM <= {TARGET_SHARE:.0%} ({'met' if targets['null_share_met'] else 'NOT met'})"
        )
        print(
            "outputs identical before/after: "
            + ", ".join(f"{m} {'yes' if s else 'NO'}" for m, s in same.items())
        )
    for m in res:
        for c in cols:
            res[m][c]["augment"] = (
                shown(res[m][c]["augment"]) if c == "after" else f"{args.base}:augment"
            )
    return {
        "benchmark": "cpu_cost",
        "method": "time.process_time of the augmenting process over the measured sentences, "
        "after a warm-up on other sentences; best of the repeats; system_ms_per_sentence is "
        "the kernel's part of it (getrusage), minor_faults the page faults",
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "mode": "exact",
            "n": args.n,
            "torch_threads": 1,
            "workers": 1,
            "base": args.base,
            "data": shown(args.data),
            "mlm": shown(args.mlm),
            "rows_null": args.rows,
            "rows_minilm": args.minilm_rows,
            "warmup": args.warmup,
            "repeats": args.repeats,
        },
        "results": res,
        "cpu_ms_per_sentence": ms,
        "after_over_before": ratio,
        "null_share_of_minilm": share,
        # the null model's own forward (encoder and vocabulary projection), part of the null
        # figures, and what is left of them: kdaug's own work
        "null_model_ms_per_sentence": model["null"],
        "null_without_model_ms_per_sentence": own,
        "outputs_identical": same,
        "targets": targets,
    }


def _cells(values: dict, cols: list[str]) -> str:
    return "".join(f"{'?':>10}" if values[c] is None else f"{values[c]:>10.2f}" for c in cols)
