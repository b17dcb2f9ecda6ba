"""benchmarks.cpu_cost: one measurement in its own process against a chosen checkout, and the
table's ratios and targets."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.cpu_cost import cli

REPO = Path(__file__).resolve().parents[2]


def test_measure_runs_the_chosen_checkout(tmp_path, tiny_mlm_dir):
    data = tmp_path / "dev.tsv"
    rows = [  # distinct: a repeated sentence would be answered from the masked LM's cache
        "A gripping film about old friends .",
        "The cast is charming and funny .",
        "Slow scenes drag the second half down .",
        "Bright colours fill every frame .",
        "The music lifts a thin story .",
        "Nobody in the theatre laughed once .",
    ]
    data.write_text("sentence\tlabel\n" + "".join(f"{r}\t1\n" for r in rows))
    cmd = [sys.executable, str(cli.MEASURE), "--code", str(REPO), "--mlm", str(tiny_mlm_dir)]
    cmd += ["--data", str(data), "--rows", "4", "--warmup", "2", "--n", "3"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(got["augment"]).parent == REPO / "augment"
    assert got["sentences"] == 4 and got["cpu_s"] > 0 and got["variants"] >= 4
    assert got["cpu_ms_per_sentence"] == 1000 * got["cpu_s"] / 4
    # the masked LM's own forward was timed, and is part of the whole
    assert 0 < got["model_ms_per_sentence"] < got["cpu_ms_per_sentence"]
    assert len(got["outputs_sha256"]) == 64


def _run(ms: float, digest: str = "d", model: float | None = None) -> dict:
    run = {"augment": "x", "cpu_ms_per_sentence": ms, "outputs_sha256": digest}
    return run if model is None else run | {"model_ms_per_sentence": model}


def _args(base: str) -> argparse.Namespace:
    """The settings `cli.report` reads, with `base` as the 'before' commit."""
    return argparse.Namespace(
        base=base,
        n=20,
        data=Path("d.tsv"),
        mlm=Path("m"),
        rows=400,
        minilm_rows=100,
        warmup=32,
        repeats=1,
    )


def test_report_ratios_targets_and_identity(capsys):
    args = _args("abc1234")
    res = {
        "null": {"before": _run(12.0), "after": _run(4.0)},
        "minilm": {"before": _run(90.0, "e"), "after": _run(80.0, "f")},
    }
    doc = cli.report(args, res)
    assert doc["after_over_before"]["null"] == 4.0 / 12.0
    assert doc["null_share_of_minilm"]["after"] == 4.0 / 80.0
    assert doc["targets"]["null_ratio_met"] and doc["targets"]["null_share_met"]
    assert doc["outputs_identical"] == {"null": True, "minilm": False}
    out = capsys.readouterr().out
    assert "outputs identical before/after: null yes, minilm NO" in out


def test_report_splits_the_null_models_own_forward_off(capsys):
    args = _args("none")
    res = {"null": {"after": _run(4.0, model=1.5)}, "minilm": {"after": _run(100.0, model=90.0)}}
    doc = cli.report(args, res)
    assert doc["null_model_ms_per_sentence"] == {"after": 1.5}
    assert doc["null_without_model_ms_per_sentence"] == {"after": 2.5}
    assert doc["null_share_of_minilm"]["after"] == 0.04  # the target is on the whole null figure
    out = capsys.readouterr().out
    assert "of it the null model itself" in out and "2.50" in out
    # an older measurement without the model's part: shown as unknown, not as zero
    doc = cli.report(args, {"null": {"after": _run(4.0)}, "minilm": {"after": _run(100.0)}})
    assert doc["null_without_model_ms_per_sentence"] == {"after": None}
