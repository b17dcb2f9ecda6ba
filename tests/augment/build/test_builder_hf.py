"""A Hugging Face user loads a build in one line: `load_dataset(OUTDIR)` through the dataset card,
labels as ClassLabel (float32 scores for regression) from the Parquet schema metadata, required
columns non-nullable, and three `transformers.Trainer` steps run on it without a cast."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from augment.io.card import CARD_NAME, MARKER
from augment.io.layout import ShardLayout
from augment.io.readers import columns_for
from tests.augment.build.support import SENTENCES, build_with, make_spec, shard_bytes


def write_stsb(path: Path, rows: int) -> Path:
    """A GLUE STS-B style tsv (pairs, a score, the genre and file columns kdaug passes through)."""
    header = (
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    )
    lines = [header]
    for i in range(rows):
        a, b = SENTENCES[i % 12], SENTENCES[(i + 5) % 12]
        lines.append(f"{i}\tmain-news\tfile{i % 3}\t2012\t{i:04d}\tnone\tnone\t{a}\t{b}\t{i % 6}.0")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stsb_out(tmp_path_factory, augmenter) -> Path:
    tmp = tmp_path_factory.mktemp("stsb")
    src = write_stsb(tmp / "train.tsv", 24)
    out = tmp / "out"
    build_with(make_spec(src, out, columns=columns_for("stsb"), task="stsb"), augmenter)
    return out


# --- the Parquet schema ------------------------------------------------------------------------


def test_shard_schema_carries_the_datasets_features(reference):
    import datasets

    schema = pq.read_schema(reference / "data" / "part-00000.parquet")
    meta = json.loads(schema.metadata[b"huggingface"])
    assert list(meta) == ["info"] and list(meta["info"]) == ["features"]
    features = datasets.Features.from_arrow_schema(schema)
    assert features["label"] == datasets.ClassLabel(names=["negative", "positive"])
    assert list(features) == ["id", "variant", "text_a", "label", "replacements"]  # no text_b
    assert [schema.field(c).nullable for c in ("id", "variant", "text_a")] == [False] * 3
    # what the shards hold: class ids, never a null
    labels = pq.read_table(sorted((reference / "data").glob("*.parquet"))).column("label")
    assert labels.null_count == 0 and set(labels.to_pylist()) == {0, 1}


def test_regression_labels_are_float32_scores_and_pairs_keep_text_b(stsb_out):
    import datasets

    schema = pq.read_schema(stsb_out / "data" / "part-00000.parquet")
    features = datasets.Features.from_arrow_schema(schema)
    assert features["label"] == datasets.Value("float32")
    assert not schema.field("label").nullable and not schema.field("text_b").nullable
    rows = pq.read_table(stsb_out / "data" / "part-00000.parquet").to_pylist()
    assert {r["label"] for r in rows} <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}
    assert rows[0]["passthrough"]["genre"] == "main-news"


# --- load_dataset and the dataset card ---------------------------------------------------------


def test_load_dataset_of_the_build_root(reference):
    import datasets

    ds = datasets.load_dataset(str(reference))  # no data_files: the card's configs block
    assert list(ds) == ["train"]
    train = ds["train"]
    stats = json.loads((reference / "stats.json").read_text())
    assert train.num_rows == stats["variants_out"]
    assert train.features["label"].names == ["negative", "positive"]
    assert "text_b" not in train.column_names
    # the documented one-liner of the parquet builder reads the same rows and features
    direct = datasets.load_dataset("parquet", data_dir=str(reference / "data"), split="train")
    assert direct.features == train.features and direct.num_rows == train.num_rows


def test_two_builds_in_folders_of_the_same_name_load_their_own_rows(tmp_path, augmenter):
    """`datasets` caches a card's dataset under its folder name and a hash of the card's
    metadata: two different builds both called `out` must not share that cache entry."""
    import datasets

    loaded = []
    for name, rows in (("a", SENTENCES[:3]), ("b", SENTENCES[3:8])):
        src = tmp_path / f"{name}.tsv"
        src.write_text("sentence\tlabel\n" + "".join(f"{s}\t1\n" for s in rows))
        out = tmp_path / name / "out"
        build_with(make_spec(src, out), augmenter)
        stats = json.loads((out / "stats.json").read_text())
        ds = datasets.load_dataset(str(out), split="train")
        assert ds.num_rows == stats["variants_out"]
        loaded.append(set(ds["text_a"]))
    assert loaded[0] != loaded[1]


def _front_matter(card: Path) -> dict:
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_describes_the_build(reference):
    card = reference / CARD_NAME
    meta = _front_matter(card)
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}
    ]
    layout = ShardLayout.from_dict(
        json.loads((reference / "manifest.json").read_text())["shard_layout"]
    )
    assert meta["dataset_info"]["features"] == layout.card_features()
    body = card.read_text(encoding="utf-8")
    stats = json.loads((reference / "stats.json").read_text())
    assert MARKER in body and "kdaug 0.1.0" in body
    assert f"| {stats['rows_in']} | {stats['records']} | 0 | {stats['variants_out']} | 10 |" in body
    assert f"| vectors | {stats['replacements']['vectors']:,} | 100.0% |" in body
    assert "POS filter `lexicon`" in body and "candidates were rejected" in body
    assert not list(reference.glob(".*.tmp"))


def test_card_is_rewritten_when_a_resume_completes(tmp_path, reference, sst2_input, augmenter):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    (out / "data" / "part-00004.parquet").unlink()  # a lost shard: the re-run redoes it
    (out / CARD_NAME).write_text("---\n---\n" + MARKER + "\nstale\n", encoding="utf-8")
    build_with(make_spec(sst2_input, out), augmenter)
    assert shard_bytes(out) == shard_bytes(reference)
    assert (out / CARD_NAME).read_text() == (reference / CARD_NAME).read_text()
    # a complete build whose card was deleted gets it back on a verify-only re-run
    (out / CARD_NAME).unlink()
    build_with(make_spec(sst2_input, out), augmenter)
    assert (out / CARD_NAME).read_text() == (reference / CARD_NAME).read_text()


def test_a_users_readme_is_neither_replaced_nor_deleted(tmp_path, reference, sst2_input, augmenter):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    (out / CARD_NAME).write_text("my own notes\n", encoding="utf-8")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    build_with(make_spec(sst2_input, out), augmenter)
    assert (out / CARD_NAME).read_text() == "my own notes\n"
    build_with(make_spec(sst2_input, out, shard_size=50, overwrite=True), augmenter)
    assert (out / CARD_NAME).read_text() == "my own notes\n"


def test_overwrite_replaces_kdaugs_card(tmp_path, reference, sst2_input, augmenter):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    build_with(make_spec(sst2_input, out, shard_size=50, overwrite=True), augmenter)
    assert "| 200 | 200 | 0 | 800 | 4 |" in (out / CARD_NAME).read_text()


# --- transformers.Trainer on the loaded dataset -------------------------------------------------


def _three_trainer_steps(out: Path, model_dir: Path, tmp_path: Path) -> tuple[object, object]:
    """`load_dataset(OUT)`, tokenization, and three Trainer steps: nothing else."""
    pytest.importorskip("accelerate")  # transformers.Trainer needs it
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
    )

    tok = AutoTokenizer.from_pretrained(model_dir)
    train = datasets.load_dataset(str(out), split="train")
    pair = "text_b" in train.column_names

    def tokenize(batch):
        return tok(batch["text_a"], batch["text_b"] if pair else None, truncation=True)

    train = train.map(tokenize, batched=True)
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        max_steps=3,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        logging_steps=1,
        dataloader_num_workers=0,
    )
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    trainer = Trainer(model=model, args=args, train_dataset=train, processing_class=tok)
    result = trainer.train()
    return train, result


def test_trainer_runs_on_load_dataset_of_a_classification_build(
    tmp_path, reference, save_tiny_bert
):
    import math

    import datasets

    train, result = _three_trainer_steps(
        reference, save_tiny_bert(tmp_path / "classifier", num_labels=2), tmp_path
    )
    assert isinstance(train.features["label"], datasets.ClassLabel)
    assert result.global_step == 3 and math.isfinite(result.training_loss)


def test_trainer_runs_on_load_dataset_of_a_regression_build(tmp_path, stsb_out, save_tiny_bert):
    import math

    import datasets

    train, result = _three_trainer_steps(
        stsb_out, save_tiny_bert(tmp_path / "classifier", num_labels=1), tmp_path
    )
    assert train.features["label"] == datasets.Value("float32")
    assert result.global_step == 3 and math.isfinite(result.training_loss)


# --- distillation reads the new shards and the old ones ------------------------------------------


def test_distill_reads_class_ids_scores_and_old_string_labels(tmp_path, reference, stsb_out):
    import pyarrow as pa

    from augment.io.writers import VARIANT_SCHEMA
    from distill.data import ExampleSource
    from distill.tasks import get_task

    new = list(ExampleSource(reference, get_task("sst2")))
    stored = pq.read_table(sorted((reference / "data").glob("*.parquet"))).to_pylist()
    assert [e.label for e in new] == [r["label"] for r in stored]
    assert all(e.text_b is None for e in new)
    scores = list(ExampleSource(stsb_out, get_task("stsb")))
    assert {round(e.label, 3) for e in scores} <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}
    # a shard of an older kdaug: string labels, text_b null
    old = tmp_path / "old" / "data"
    old.mkdir(parents=True)
    rows = [{**r, "label": str(r["label"]), "text_b": None} for r in stored[:10]]
    pq.write_table(pa.Table.from_pylist(rows, schema=VARIANT_SCHEMA), old / "part-00000.parquet")
    assert [e.label for e in ExampleSource(old.parent, get_task("sst2"))] == [
        r["label"] for r in stored[:10]
    ]


def test_unlabelled_rows_are_minus_one_and_read_as_no_label(tmp_path, augmenter):
    """A GLUE test file (no label column) under --task: ClassLabel -1, which distill reads as
    no label."""
    from distill.data import ExampleSource
    from distill.tasks import get_task

    src = tmp_path / "test.tsv"
    src.write_text("index\tsentence\n" + "".join(f"{i}\t{SENTENCES[i]}\n" for i in range(6)))
    out = tmp_path / "out"
    build_with(make_spec(src, out), augmenter)
    labels = pq.read_table(out / "data" / "part-00000.parquet").column("label").to_pylist()
    assert set(labels) == {-1}
    assert {e.label for e in ExampleSource(out, get_task("sst2"))} == {None}
    rows = pq.read_table(out / "data" / "part-00000.parquet").to_pylist()
    assert rows[0]["passthrough"] == {"index": "0"}
