"""Input columns that are not a text, label or id travel into the shards (a `passthrough` struct
of strings, the same schema in every shard and across a resume), so `kdaug export` rebuilds the
official GLUE layouts with the original ids and extra fields, and `--layout generic` writes every
column of any build."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from augment.io.readers import Columns, columns_for
from kdaug.cli import main
from tests.augment.build.support import SENTENCES, build_with, make_spec, read_tsv, shard_bytes


def _rows(out) -> list[dict]:
    return pq.read_table(sorted((out / "data").glob("*.parquet"))).to_pylist()


def _export(capsys, out, target, *flags) -> str:
    code = main(["export", str(out), "-o", str(target), *flags])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


# --- GLUE layouts with the original ids and fields ----------------------------------------------

MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"


@pytest.fixture(scope="module")
def mrpc(tmp_path_factory, augmenter):
    tmp = tmp_path_factory.mktemp("mrpc")
    lines = [
        f"{i % 2}\t{1000 + i}\t{2000 + 7 * i}\t{SENTENCES[i % 12]}\t{SENTENCES[(i + 3) % 12]}"
        for i in range(25)
    ]
    src = tmp / "train.tsv"
    src.write_text("\ufeff" + "\n".join([MRPC_HEADER, *lines]) + "\n", encoding="utf-8")
    out = tmp / "out"
    build_with(
        make_spec(src, out, columns=columns_for("mrpc"), task="mrpc", shard_size=10), augmenter
    )
    return out, lines


def test_mrpc_export_keeps_the_original_ids(tmp_path, mrpc, capsys):
    out, lines = mrpc
    rows = _rows(out)
    assert rows[0]["passthrough"] == {"#1 ID": "1000", "#2 ID": "2000"}
    target = tmp_path / "train_aug.tsv"
    _export(capsys, out, target)
    exported = read_tsv(target)
    assert exported[0] == MRPC_HEADER.split("\t")
    originals = {r["id"]: lines[int(r["id"])].split("\t") for r in rows}
    assert len(exported) - 1 == len(rows)
    for line, row in zip(exported[1:], rows, strict=True):
        orig = originals[row["id"]]
        assert line[1:3] == orig[1:3]  # the pair's ids, on every variant
        if row["variant"] == 0:
            assert line == orig  # the original row, byte for byte
        assert line[3:] == [row["text_a"], row["text_b"]]


def test_every_shard_has_the_same_schema(mrpc):
    out, _ = mrpc
    schemas = [pq.read_schema(p) for p in sorted((out / "data").glob("*.parquet"))]
    assert len(schemas) == 3 and all(s.equals(schemas[0], check_metadata=True) for s in schemas)


STSB_HEADER = (
    "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
)


def test_stsb_export_keeps_genre_and_the_other_fields(tmp_path, augmenter, capsys):
    lines = [
        f"{i}\tmain-{('news', 'captions')[i % 2]}\tMSR{i}\t2012test\t{i:04d}\tnone\tsrc{i}\t"
        f"{SENTENCES[i % 12]}\t{SENTENCES[(i + 1) % 12]}\t{i % 5}.{i % 10}00"
        for i in range(12)
    ]
    src = tmp_path / "train.tsv"
    src.write_text("\n".join([STSB_HEADER, *lines]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    build_with(make_spec(src, out, columns=columns_for("stsb"), task="stsb"), augmenter)
    target = tmp_path / "x.tsv"
    _export(capsys, out, target)
    exported = read_tsv(target)
    assert exported[0] == STSB_HEADER.split("\t")
    for n, (line, row) in enumerate(zip(exported[1:], _rows(out), strict=True)):
        orig = lines[int(row["id"])].split("\t")
        assert line[0] == str(n)  # a running index
        assert line[1:7] == orig[1:7]
        assert float(line[9]) == pytest.approx(float(orig[9]))


def test_cola_headerless_columns_travel_by_position(tmp_path, augmenter, capsys):
    lines = [f"src{i % 3}\t{i % 2}\t{'' if i % 2 else '*'}\t{SENTENCES[i % 12]}" for i in range(8)]
    src = tmp_path / "in_domain_train.tsv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    build_with(make_spec(src, out, columns=columns_for("cola"), task="cola"), augmenter)
    assert _rows(out)[0]["passthrough"] == {"0": "src0", "2": "*"}
    target = tmp_path / "x.tsv"
    _export(capsys, out, target)
    for line, row in zip(read_tsv(target), _rows(out), strict=True):
        orig = lines[int(row["id"])].split("\t")
        assert line[:3] == orig[:3] and line[3] == row["text_a"]


MNLI_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label"
)


def test_mnli_parses_are_written_for_originals_only(tmp_path, augmenter, capsys):
    labels = ("entailment", "neutral", "contradiction")
    lines = [
        f"{i}\t{500 + i}\t{500 + i}e\tfiction\t( a{i} )\t( b{i} )\t(ROOT a{i})\t(ROOT b{i})\t"
        f"{SENTENCES[i % 12]}\t{SENTENCES[(i + 2) % 12]}\t{labels[i % 3]}\t{labels[i % 3]}"
        for i in range(9)
    ]
    src = tmp_path / "train.tsv"
    src.write_text("\n".join([MNLI_HEADER, *lines]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    build_with(make_spec(src, out, columns=columns_for("mnli"), task="mnli"), augmenter)
    target = tmp_path / "x.tsv"
    _export(capsys, out, target)
    body = read_tsv(target)[1:]
    rows = _rows(out)
    assert any(r["variant"] > 0 for r in rows)
    for line, row in zip(body, rows, strict=True):
        orig = lines[[x.split("\t")[2] for x in lines].index(row["id"])].split("\t")
        assert line[1:4] == orig[1:4]  # promptID, pairID, genre
        assert line[4:8] == (orig[4:8] if row["variant"] == 0 else ["", "", "", ""])
        assert line[10:] == orig[10:]


# --- JSON lines: keys that vary from line to line ----------------------------------------------


def _odd_jsonl(path, rows: int = 45) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            obj = {"text": f"{SENTENCES[i % 12]} ( {i} )", "label": str(i % 2), "n": i}
            if i >= 30:
                obj["late"] = {"nested": [i, None]}  # a key that first appears in shard 2
            if i == 7:
                obj.update(flag=True, gone=None, lone="\ud800x")
            if i == 12:
                f.write('{"text": "broken\n')  # rejected, and its keys are not columns
                continue
            f.write(json.dumps(obj) + "\n")


def test_jsonl_keys_form_one_schema_across_shards_and_a_resume(tmp_path, augmenter):
    src = tmp_path / "train.jsonl"
    _odd_jsonl(src)
    out = tmp_path / "out"
    spec = make_spec(src, out, columns=Columns("text", label="label"), task=None)
    stats = build_with(spec, augmenter)
    assert stats["rows_in"] == 45 == stats["records"] + stats["rows_rejected"]
    assert stats["rows_rejected"] == 1
    files = sorted((out / "data").glob("*.parquet"))
    fields = [[f.name for f in pq.read_schema(p).field("passthrough").type] for p in files]
    assert fields == [["n", "flag", "gone", "lone", "late"]] * 3
    by_id = {(r["id"], r["variant"]): r["passthrough"] for r in _rows(out)}
    assert by_id[("7", 0)] == {
        "n": "7",
        "flag": "true",
        "gone": None,
        "lone": "\\ud800x",
        "late": None,
    }
    assert by_id[("31", 0)]["late"] == '{"nested": [31, null]}'
    # a lost shard is redone in the same schema: the bytes of an uninterrupted build
    first = shard_bytes(out)
    (out / "data" / "part-00001.parquet").unlink()
    build_with(spec, augmenter)
    assert shard_bytes(out) == first


# --- generic export of any build ------------------------------------------------------------------


def test_generic_export_of_a_task_build_in_every_format(tmp_path, mrpc, capsys):
    import datasets

    out, _ = mrpc
    rows = _rows(out)
    tsv, jsonl, parquet = tmp_path / "all.tsv", tmp_path / "all.jsonl", tmp_path / "all.parquet"
    assert "generic layout, tsv" in _export(capsys, out, tsv, "--layout", "generic")
    assert "generic layout, jsonl" in _export(capsys, out, jsonl)
    assert "generic layout, parquet" in _export(capsys, out, parquet)
    header = ["id", "variant", "text_a", "text_b", "label", "replacements", "#1 ID", "#2 ID"]
    body = read_tsv(tsv)
    assert body[0] == header and len(body) == 1 + len(rows)
    assert body[1][4] == str(rows[0]["label"]) and body[1][6:] == ["1000", "2000"]
    objs = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert list(objs[0]) == header
    assert [o["replacements"] for o in objs] == [r["replacements"] for r in rows]
    ds = datasets.load_dataset("parquet", data_files=str(parquet), split="train")
    assert ds.features["label"].names == ["not_equivalent", "equivalent"]
    assert ds.to_list() == rows


def test_generic_export_renames_a_passthrough_column_that_collides(tmp_path, augmenter, capsys):
    src = tmp_path / "train.jsonl"
    src.write_text(
        "".join(
            json.dumps({"text": SENTENCES[i], "sentiment": "pos", "variant": f"v{i}"}) + "\n"
            for i in range(4)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    build_with(
        make_spec(src, out, columns=Columns("text", label="sentiment"), task=None), augmenter
    )
    target = tmp_path / "x.jsonl"
    _export(capsys, out, target)
    first = json.loads(target.read_text(encoding="utf-8").splitlines()[0])
    assert first["variant"] == 0 and first["passthrough.variant"] == "v0"
    assert first["label"] == "pos"


def test_glue_layout_of_a_build_without_a_task_needs_one(tmp_path, mrpc, capsys):
    out, _ = mrpc
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["input"]["task"] = None
    (copy / "manifest.json").write_text(json.dumps(manifest))
    code = main(["export", str(copy), "-o", str(tmp_path / "x.tsv"), "--layout", "glue"])
    err = capsys.readouterr().err
    assert code == 2 and "--layout glue needs a task" in err and len(err.splitlines()) == 1
    code = main(["export", str(copy), "-o", str(tmp_path / "x.jsonl"), "--layout", "glue"])
    assert code == 2 and "GLUE layout is TSV" in capsys.readouterr().err


def test_parquet_columns_of_any_type_pass_through_as_text(tmp_path, augmenter):
    import datetime

    import pyarrow as pa

    n = 6
    table = pa.table(
        {
            "text": [SENTENCES[i] for i in range(n)],
            "label": [str(i % 2) for i in range(n)],
            "score": pa.array([0.5 * i for i in range(n)], pa.float64()),
            "tags": [["a", str(i)] for i in range(n)],
            "raw": pa.array([b"ok", b"\xff\xfe", None, b"x", b"y", b"z"], pa.binary()),
            "when": pa.array([datetime.date(2024, 1, i + 1) for i in range(n)], pa.date32()),
        }
    )
    src = tmp_path / "train.parquet"
    pq.write_table(table, src)
    out = tmp_path / "out"
    stats = build_with(
        make_spec(src, out, columns=Columns("text", label="label"), task=None), augmenter
    )
    assert stats["rows_in"] == n == stats["records"]
    first = {r["id"]: r["passthrough"] for r in _rows(out) if r["variant"] == 0}
    assert first["0"] == {"score": "0.0", "tags": '["a", "0"]', "raw": "ok", "when": "2024-01-01"}
    assert first["1"]["raw"] == "\\xff\\xfe" and first["2"]["raw"] is None
