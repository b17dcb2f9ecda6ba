"""`kdaug export --labels teacher`: the argmax (the score, for regression) of the logits that
`kdaug teacher-logits` cached beside the shards, found by the fingerprint distillation uses; the
agreement with the inherited labels in the summary line; a one-line error when no cache
matches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from augment.io.readers import columns_for
from kdaug.cli import main
from tests.augment.build.support import SENTENCES, build_with, make_spec, read_tsv


def _cache(out: Path, teacher: Path, task: str, *flags: str) -> np.ndarray:
    """Run `kdaug teacher-logits` on the build; its logits, all shards in order."""
    assert main(["teacher-logits", str(out), "--teacher", str(teacher), "--task", task,
                 "--device", "cpu", *flags]) == 0  # fmt: skip
    (directory,) = [p for p in (out / "teacher_logits").iterdir() if p.is_dir()]
    files = sorted((out / "data").glob("*.parquet"))
    return np.concatenate([np.load(directory / f"{f.stem}.npy") for f in files])


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def sst2_cached(tmp_path_factory, reference, save_tiny_bert):
    """A copy of the reference SST-2 build with a tiny teacher's cached logits."""
    tmp = tmp_path_factory.mktemp("teacher")
    out = tmp / "out"
    shutil.copytree(reference, out)
    teacher = save_tiny_bert(tmp / "teacher", num_labels=2)
    return out, teacher, _cache(out, teacher, "sst2")


def test_export_writes_the_teachers_argmax_and_its_agreement(tmp_path, sst2_cached, capsys):
    out, teacher, logits = sst2_cached
    target = tmp_path / "train_aug.tsv"
    code, stdout, err = _run(
        capsys, "export", str(out), "-o", str(target), "--labels", "teacher",
        "--teacher", str(teacher),
    )  # fmt: skip
    assert code == 0, err
    rows = pq.read_table(sorted((out / "data").glob("*.parquet"))).to_pylist()
    teacher_labels = logits.argmax(1)
    body = read_tsv(target)
    assert body[0] == ["sentence", "label"]
    assert [line[1] for line in body[1:]] == [str(x) for x in teacher_labels]
    inherited = np.array([r["label"] for r in rows])
    variants = np.array([r["variant"] > 0 for r in rows])
    same = teacher_labels == inherited
    assert f"{100 * same.mean():.1f}% of {len(rows)} rows" in stdout
    assert f"{100 * same[variants].mean():.1f}% of {variants.sum()} variants" in stdout
    assert "teacher agrees with the inherited label on" in stdout


def test_generic_layouts_keep_the_inherited_label_and_the_logits(tmp_path, sst2_cached, capsys):
    import datasets

    out, teacher, logits = sst2_cached
    flags = ["--labels", "teacher", "--teacher", str(teacher), "--teacher-logits"]
    jsonl, parquet = tmp_path / "x.jsonl", tmp_path / "x.parquet"
    assert _run(capsys, "export", str(out), "-o", str(jsonl), *flags)[0] == 0
    objs = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    rows = pq.read_table(sorted((out / "data").glob("*.parquet"))).to_pylist()
    assert [o["label"] for o in objs] == logits.argmax(1).tolist()
    assert [o["inherited_label"] for o in objs] == [r["label"] for r in rows]
    assert np.allclose([o["teacher_logits"] for o in objs], logits)
    assert _run(capsys, "export", str(out), "-o", str(parquet), *flags)[0] == 0
    ds = datasets.load_dataset("parquet", data_files=str(parquet), split="train")
    assert ds.features["label"] == ds.features["inherited_label"]
    assert ds.features["label"].names == ["negative", "positive"]
    assert ds["label"] == logits.argmax(1).tolist()
    assert np.allclose(ds["teacher_logits"], logits)


def test_no_matching_cache_is_a_one_line_error(tmp_path, sst2_cached, capsys, save_tiny_bert):
    out, teacher, _ = sst2_cached
    other = save_tiny_bert(tmp_path / "other", seed=1, num_labels=2)
    capsys.readouterr()  # what saving it printed
    cases = [  # exit status 1: no usable cache; 2: the command line is wrong
        (["--teacher", str(other)], "kdaug teacher-logits", 1),
        (["--teacher", str(teacher), "--max-length", "32"], "--max-length 32", 1),
        ([], "needs --teacher", 2),
        (["--teacher", str(tmp_path / "nope")], "not a directory", 1),
    ]
    for flags, needle, status in cases:
        target = tmp_path / "x.tsv"
        code, _, err = _run(capsys, "export", str(out), "-o", str(target), "--labels", "teacher",
                            *flags)  # fmt: skip
        lines = err.strip().splitlines()
        assert code == status and len(lines) == 1 and needle in lines[0], err
        assert "Traceback" not in err and not target.exists()


def test_regression_teacher_labels_are_scores(tmp_path, augmenter, capsys, save_tiny_bert):
    src = tmp_path / "train.tsv"
    lines = ["index\tsentence1\tsentence2\tscore"]
    lines += [f"{i}\t{SENTENCES[i]}\t{SENTENCES[i + 1]}\t{i % 5}.5" for i in range(8)]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    build_with(make_spec(src, out, columns=columns_for("stsb"), task="stsb"), augmenter)
    teacher = save_tiny_bert(tmp_path / "teacher", num_labels=1)
    logits = _cache(out, teacher, "stsb")
    target = tmp_path / "x.jsonl"
    code, stdout, err = _run(capsys, "export", str(out), "-o", str(target), "--labels", "teacher",
                             "--teacher", str(teacher))  # fmt: skip
    assert code == 0, err
    objs = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert np.allclose([o["label"] for o in objs], logits[:, 0], atol=1e-6)
    mad = np.mean([abs(o["label"] - o["inherited_label"]) for o in objs])
    assert (
        f"mean absolute difference from the inherited score {mad:.3f} over {len(objs)} rows"
        in stdout
    )


def test_old_string_label_shards_export_and_relabel(tmp_path, sst2_cached, capsys):
    """Shards of an older kdaug (every column nullable, string labels, a null text_b)."""
    from augment.io.writers import VARIANT_SCHEMA
    from kdaug.files import sha256_file

    out, teacher, logits = sst2_cached
    old = tmp_path / "old"
    shutil.copytree(out, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["shard_layout"]
    for entry in manifest["shards"].values():
        path = old / entry["file"]
        rows = pq.read_table(path).to_pylist()
        legacy = [{**r, "label": str(r["label"]), "text_b": None} for r in rows]
        pq.write_table(pa.Table.from_pylist(legacy, schema=VARIANT_SCHEMA), path)
        entry["sha256"] = sha256_file(path)
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert np.array_equal(_cache(old, teacher, "sst2"), logits)  # new shard files: cached anew
    rows = pq.read_table(sorted((old / "data").glob("*.parquet"))).to_pylist()
    plain, relabelled = tmp_path / "plain.tsv", tmp_path / "teacher.tsv"
    assert _run(capsys, "export", str(old), "-o", str(plain))[0] == 0
    assert [line[1] for line in read_tsv(plain)[1:]] == [r["label"] for r in rows]
    code, stdout, err = _run(capsys, "export", str(old), "-o", str(relabelled), "--labels",
                             "teacher", "--teacher", str(teacher))  # fmt: skip
    assert code == 0, err
    assert [line[1] for line in read_tsv(relabelled)[1:]] == [str(x) for x in logits.argmax(1)]
    same = logits.argmax(1) == np.array([int(r["label"]) for r in rows])
    assert f"{100 * same.mean():.1f}% of {len(rows)} rows" in stdout
    assert _run(capsys, "inspect", str(old), "--samples", "2")[0] == 0
