"""benchmarks.augment_speed runs end to end on a tiny masked-LM and reports what it measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SENTENCES = [
    "the acting is sharp and the story moves quickly .",
    "a gorgeous , witty and seductive movie .",
    "the plot is a pile of tired clichés .",
    "an intelligent , moving portrait of a family .",
    "the director keeps the tension high until the end .",
    "too long , too loud and far too pleased with itself .",
    "a quiet , thoughtful drama with two excellent performances .",
    "the jokes fall flat and the characters are thin .",
    "a bright , funny and surprisingly tender comedy .",
    "this dull film never finds its footing .",
    "the music is lovely and the photography is superb .",
    "a clever script undone by careless editing .",
]


def test_script_measures_every_method_and_writes_the_report(tiny_mlm_dir, tmp_path):
    data = tmp_path / "dev.tsv"
    data.write_text(
        "sentence\tlabel\n" + "".join(f"{s}\t{i % 2}\n" for i, s in enumerate(SENTENCES)),
        encoding="utf-8",
    )
    out = tmp_path / "speed.json"
    cmd = [
        sys.executable,
        *("-m", "benchmarks.augment_speed"),
        *("--models", str(tiny_mlm_dir), "--data", str(data), "--out", str(out)),
        *("--limit", "4", "--slow-limit", "2", "--peers", "none"),
        *("--threads", "1", "--floor-repeats", "1"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]

    result = json.loads(out.read_text(encoding="utf-8"))
    rows = {r["method"]: r for r in result["rows"]}
    exact, floor, official = (
        rows["kdaug exact"],
        rows["floor (MLM passes only)"],
        rows["official TinyBERT"],
    )
    for r in (exact, floor, official):
        assert r["status"] == "ok" and r["seconds"] > 0 and r["sentences_per_s"] > 0
    assert exact["sentences"] == floor["sentences"] == 4
    assert official["sentences"] == 2
    assert exact["variants"] > 0 and exact["variants_per_s"] > 0
    assert official["variants"] > 0 and official["mlm_passes"] > 0
    assert floor["mlm_copies"] == exact["mlm_copies"] > 0
    assert official["vs_official"] == 1.0
    assert exact["vs_kdaug_exact"] == 1.0
    assert exact["time_over_floor"] > 0
    fast = rows["kdaug fast"]
    assert fast["status"] == "skipped" or fast["sentences_per_s"] > 0
    assert not any(r["method"] in ("nlpaug", "TextAttack") for r in result["rows"])

    modes = {q["mode"]: q for q in result["quality"]}
    assert 0.0 <= modes["exact"]["pos_agreement"] <= 1.0
    if "fast" in modes:
        assert 0.0 <= modes["fast"]["topk_overlap"] <= 1.0
    assert result["machine"]["torch_threads"] == 1 and result["machine"]["cores"] >= 1
    assert out.with_suffix(".png").stat().st_size > 0

    assert "| model | method | sentences |" in proc.stdout
    assert f"| {tiny_mlm_dir.name} | kdaug exact | 4 |" in proc.stdout
