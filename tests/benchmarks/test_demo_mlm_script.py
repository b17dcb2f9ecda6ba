"""benchmarks.demo_mlm: runs every (arm, seed) once, resumes from its results file, and pairs the
arms by seed."""

from __future__ import annotations

import json
import sys

import pytest

from benchmarks import demo_mlm


def fake_run(arm: str, seed: int, out, minutes, dev) -> dict:
    top10 = {"wiki": 0.35, "default": 0.40}[arm] + 0.01 * seed
    return {
        "steps": 200 + seed,
        "train_seconds": 60.0 * minutes,
        "heldout": {"top1": 0.2, "top10": 0.4},
        "sst2_dev": {"top1": top10 / 2, "top10": top10},
        "fill_mask": {p: [arm, "good"] for p in demo_mlm.PROBES},
    }


@pytest.fixture
def assets(tmp_path):
    sst = tmp_path / "assets" / "glue" / "SST-2"
    sst.mkdir(parents=True)
    (sst / "dev.tsv").write_text('sentence\tlabel\na "quoted" film .\t1\ndull .\t0\n')
    return tmp_path / "assets"


def run_main(monkeypatch, assets, out, seeds, calls):
    def record(arm, seed, out_dir, minutes, dev):
        calls.append((arm, seed))
        assert dev == ['a "quoted" film .', "dull ."]  # read unquoted, as GLUE files need
        return fake_run(arm, seed, out_dir, minutes, dev)

    monkeypatch.setattr(demo_mlm, "train_and_score", record)
    argv = ["demo_mlm", "--assets", str(assets), "--out", str(out), "--seeds", *map(str, seeds)]
    monkeypatch.setattr(sys, "argv", argv)
    demo_mlm.main()
    return json.loads((out / "results.json").read_text())


def test_every_arm_and_seed_once_and_a_rerun_skips_them(monkeypatch, assets, tmp_path, capsys):
    calls: list = []
    out = tmp_path / "out"
    result = run_main(monkeypatch, assets, out, [0, 1], calls)
    assert calls == [("wiki", 0), ("default", 0), ("wiki", 1), ("default", 1)]
    assert set(result["runs"]) == {"wiki/0", "default/0", "wiki/1", "default/1"}

    calls.clear()
    result = run_main(monkeypatch, assets, out, [0, 1, 2], calls)
    assert calls == [("wiki", 2), ("default", 2)]  # the runs already in results.json are kept
    diff = result["summary"]["top10"]["default_minus_wiki"]
    assert diff["seeds"] == [0, 1, 2]
    assert diff["mean"] == pytest.approx(0.05)
    assert diff["ci_low"] == pytest.approx(0.05) == diff["ci_high"]  # same gap every seed
    wiki = result["summary"]["top10"]["wiki"]
    assert wiki["mean"] == pytest.approx(0.36) and wiki["std"] == pytest.approx(0.01)
    table = capsys.readouterr().out
    assert "default - wiki, top10: +0.050, 95% [+0.050, +0.050]" in table
    assert "wiki seed 0: the movie was really [MASK] . -> wiki, good" in table
