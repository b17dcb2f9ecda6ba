import json
import subprocess
import sys

import pyarrow.parquet as pq

from augment.cli import main


def _sst(tmp_path, rows):
    f = tmp_path / "in.tsv"
    f.write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows))
    return f


def test_augment_end_to_end(tmp_path, tiny_mlm_dir, capsys):
    rows = [
        ("the acting is brilliant and the story moves quickly .", 1),
        ("", 0),
        ("a dull , lifeless and painfully slow film .", 0),
        ('he said "wonderful" twice .', 1),
    ]
    out = tmp_path / "out"
    code = main(
        [
            "augment",
            str(_sst(tmp_path, rows)),
            "-o",
            str(out),
            "--task",
            "sst2",
            "--mlm",
            str(tiny_mlm_dir),
            "--n",
            "4",
            "--batch-size",
            "2",
        ]
    )
    assert code == 0
    table = pq.read_table(out / "data" / "part-00000.parquet")
    assert table.column_names == ["id", "variant", "text_a", "text_b", "label", "replacements"]
    data = table.to_pylist()
    assert {r["id"] for r in data} == {"0", "2", "3"}
    assert sum(r["variant"] == 0 for r in data) == 3 and len(data) > 3
    assert all(r["text_b"] is None for r in data)
    rejects = (out / "rejects" / "part-00000.jsonl").read_text().splitlines()
    assert len(rejects) == 1 and json.loads(rejects[0])["row"] == 1
    stats = json.loads((out / "stats.json").read_text())
    assert stats["rows_in"] == 4 == stats["records"] + stats["rows_rejected"]
    assert "4 rows in = 3 records + 1 rejected" in capsys.readouterr().out


def test_existing_output_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("keep")
    code = main(["augment", str(_sst(tmp_path, [("a b", 1)])), "-o", str(out), "--mlm", "none"])
    assert code == 2 and "--overwrite" in capsys.readouterr().err


def test_user_errors_are_one_line(tmp_path):
    cases = [
        ["augment", str(tmp_path / "missing.tsv"), "-o", str(tmp_path / "o"), "--mlm", "none"],
        [
            "augment",
            str(_sst(tmp_path, [("a b", 1)])),
            "-o",
            str(tmp_path / "o2"),
            "--mlm",
            str(tmp_path / "no-such-model"),
        ],
        ["augment", str(_sst(tmp_path, [("a b", 1)])), "-o", str(tmp_path / "o3"), "--p", "2"],
        ["sample", "hello world", "--tagger", "xx_no_such_pipeline", "--mlm", "none"],
    ]
    for argv in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "augment.cli", *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        errors = [x for x in proc.stderr.splitlines() if x.startswith("kdaug: error:")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_sample_prints_variants(tiny_mlm_dir, capsys):
    code = main(
        [
            "sample",
            "The quiet village slowly disappeared under heavy snow.",
            "--mlm",
            str(tiny_mlm_dir),
            "--n",
            "3",
            "--no-color",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0].strip().startswith("0  The quiet village")
    assert len(out) >= 2 and "|" in out[1]
