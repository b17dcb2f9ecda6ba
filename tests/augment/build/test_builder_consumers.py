"""What reads the output: `datasets`, `kdaug export` (TinyBERT's train_aug.tsv), `kdaug inspect`."""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq
import pytest

from augment.io.readers import columns_for
from kdaug.cli import main
from tests.augment.build.support import build_until, build_with, make_spec, read_tsv

QUOTED = [
    "he said \"it is a 'great' film\" and left",
    '"quoted from the start" of the review',
    "a tab\tinside and\na line break",
]


@pytest.fixture(scope="module")
def mnli_out(tmp_path_factory, augmenter):
    """A pair task read from JSON lines, with quotes, a tab and a line break in its texts."""
    tmp = tmp_path_factory.mktemp("mnli")
    path = tmp / "train.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(30):
            a = QUOTED[i % 3] if i < 6 else f"the cat sat on the mat number {i}"
            row = {"pairID": f"p{i}", "sentence1": a, "sentence2": "a small dog runs fast"}
            f.write(json.dumps({**row, "gold_label": ["entailment", "neutral"][i % 2]}) + "\n")
    out = tmp / "out"
    build_with(make_spec(path, out, columns=columns_for("mnli"), task="mnli"), augmenter)
    return out


def test_datasets_reads_the_shards(reference):
    import datasets

    files = sorted(str(p) for p in (reference / "data").glob("*.parquet"))
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    stats = json.loads((reference / "stats.json").read_text())
    assert ds.num_rows == stats["variants_out"]
    # a single-sentence task has no text_b (as `datasets`' GLUE sst2), its label a ClassLabel
    assert ds.column_names == ["id", "variant", "text_a", "label", "replacements"]
    assert ds.features["label"] == datasets.ClassLabel(names=["negative", "positive"])
    row = next(r for r in ds if r["variant"] > 0)
    rep = row["replacements"][0]
    assert row["text_a"][rep["start"] : rep["end"]] == rep["replacement"]


def test_export_sst2_layout(tmp_path, reference, capsys):
    target = tmp_path / "train_aug.tsv"
    assert main(["export", str(reference), "--format", "tsv", "-o", str(target)]) == 0
    rows = read_tsv(target)
    table = pq.read_table(sorted((reference / "data").glob("*.parquet")))
    assert rows[0] == ["sentence", "label"]
    assert rows[1:] == [[r["text_a"], str(r["label"])] for r in table.to_pylist()]
    assert f"{table.num_rows} rows" in capsys.readouterr().out


def test_export_mnli_keeps_quotes_exact(tmp_path, mnli_out, capsys):
    target = tmp_path / "train_aug.tsv"
    assert main(["export", str(mnli_out), "-o", str(target)]) == 0
    table = pq.read_table(sorted((mnli_out / "data").glob("*.parquet"))).to_pylist()
    for reader_rows in (
        read_tsv(target),  # TinyBERT's _read_tsv (quotechar=None)
        list(csv.reader(target.open(encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE)),  # noqa: SIM115
    ):
        header, body = reader_rows[0], reader_rows[1:]
        assert len(header) == 12 and header[8:10] == ["sentence1", "sentence2"]
        assert len(body) == len(table)
        for line, row in zip(body, table, strict=True):
            assert len(line) == 12
            # TinyBERT's MNLI processor: text_a = line[8], text_b = line[9], label = line[-1]
            expect_a = row["text_a"].replace("\t", " ").replace("\n", " ")
            label = ("entailment", "neutral", "contradiction")[row["label"]]
            assert (line[8], line[9], line[-1]) == (expect_a, row["text_b"], label)
            assert line[2] == row["id"]
    originals = [line[8] for line in read_tsv(target)[1:]]
    assert QUOTED[0] in originals and QUOTED[1] in originals
    assert "a tab inside and a line break" in originals
    changed = sum("\t" in r["text_a"] or "\n" in r["text_a"] for r in table)
    assert changed > 0
    assert f"{changed} rows had tabs or line breaks" in capsys.readouterr().out


def test_inspect_prints_summary_and_samples(reference, capsys):
    assert main(["inspect", str(reference), "--samples", "3"]) == 0
    out = capsys.readouterr().out
    stats = json.loads((reference / "stats.json").read_text())
    assert "complete; 10 shards of 20 rows" in out
    assert f"{stats['rows_in']} in = {stats['records']} records + 0 rejected" in out
    assert "glove-6b-50d" in out
    samples = [line for line in out.splitlines() if line.startswith("    ")]
    assert len(samples) == 3 and all("|" in s for s in samples)


def test_export_refuses_an_unfinished_build(tmp_path, reference, capsys):
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(reference, partial)
    manifest = json.loads((partial / "manifest.json").read_text())
    manifest["complete"] = False
    (partial / "manifest.json").write_text(json.dumps(manifest))
    assert main(["export", str(partial), "-o", str(tmp_path / "x.tsv")]) == 1
    assert "not complete" in capsys.readouterr().err


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory, sst2_input, augmenter):
    """A build stopped (as by Ctrl-C) after 2 of its 10 shards: manifest.json says complete:
    false and the 2 finished shards have their completion records."""
    out = tmp_path_factory.mktemp("unfinished") / "out"
    build_until(make_spec(sst2_input, out), augmenter, shards=2)
    assert len(list((out / "data").glob("*.parquet"))) == 2
    assert json.loads((out / "manifest.json").read_text())["complete"] is False
    return out


def _one_line_failure(capsys, *argv: str) -> str:
    """The one error line of a failed command (besides transformers' loading bars)."""
    capsys.readouterr()
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code != 0, err
    errors = [line for line in err.splitlines() if line.startswith("kdaug")]
    assert len(errors) == 1 and errors[0].startswith("kdaug: error: "), err
    assert "Traceback" not in err
    return errors[0]


@pytest.mark.parametrize("command", ["distill", "teacher-logits", "export"])
def test_every_reader_refuses_an_unfinished_build(
    tmp_path, unfinished, save_tiny_bert, capsys, command
):
    """distill and teacher-logits used to train on (or cache) the 2 finished shards, exit 0."""
    teacher = save_tiny_bert(tmp_path / "teacher", num_labels=2, num_hidden_layers=4)
    argv = {
        "distill": ["distill", "--teacher", str(teacher), "--student", "tinybert4", "--task",
                    "sst2", "--train", str(unfinished), "-o", str(tmp_path / "student"),
                    "--device", "cpu", "--max-steps", "1"],
        "teacher-logits": ["teacher-logits", str(unfinished), "--teacher", str(teacher),
                           "--task", "sst2", "--device", "cpu"],
        "export": ["export", str(unfinished), "-o", str(tmp_path / "x.tsv")],
    }[command]  # fmt: skip
    line = _one_line_failure(capsys, *argv)
    assert f"{unfinished} is not complete" in line and "2 shards done" in line
    assert not (unfinished / "teacher_logits").exists()


def test_every_reader_refuses_a_shard_that_fails_its_sha256(tmp_path, reference, capsys):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(reference, out)
    with open(out / "data" / "part-00003.parquet", "ab") as f:
        f.write(b"x")
    line = _one_line_failure(capsys, "teacher-logits", str(out), "--teacher", str(tmp_path),
                             "--task", "sst2", "--device", "cpu")  # fmt: skip
    assert "part-00003" in line and "sha256" in line


def test_inspect_shows_an_unfinished_build_with_its_finished_shards(unfinished, capsys):
    assert main(["inspect", str(unfinished), "--samples", "1"]) == 0
    out = capsys.readouterr().out
    assert "incomplete (re-run to resume); 2 shards of 20 rows" in out
    assert "40 in = 40 records + 0 rejected" in out
