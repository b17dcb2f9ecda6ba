"""The Python API for `datasets` users: the variants `kdaug augment` makes of the same rows,
whatever the batch size, with the dataset's own columns and features."""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from augment import AugmentConfig, VariantExpander, augment_dataset
from augment.hf import dataset_columns
from kdaug.cli import main
from kdaug.errors import InputError
from tests.augment.build.support import CLI_SETTINGS, SENTENCES, SETTINGS

LABELS = datasets.ClassLabel(names=["negative", "positive"])


def sst2(rows: int = 24, idx: list[int] | None = None) -> datasets.Dataset:
    data = {
        "sentence": [f"{SENTENCES[i % len(SENTENCES)]} ( take {i} )" for i in range(rows)],
        "label": [i % 2 for i in range(rows)],
    }
    if idx is not None:
        data["idx"] = idx
    return datasets.Dataset.from_dict(data).cast_column("label", LABELS)


def cli_build(ds: datasets.Dataset, tmp_path: Path, *flags: str) -> list[dict]:
    """The shard rows `kdaug augment` writes for `ds` (saved to disk)."""
    ds.save_to_disk(str(tmp_path / "ds"))
    out = tmp_path / "out"
    argv = [
        "augment",
        str(tmp_path / "ds"),
        "-o",
        str(out),
        "--task",
        "sst2",
        *CLI_SETTINGS,
        *flags,
    ]
    assert main(argv) == 0
    return pq.read_table(sorted((out / "data").glob("*.parquet"))).to_pylist()


def same_variants(api: datasets.Dataset, shards: list[dict], text: str = "sentence") -> None:
    got = [(r[text], r["variant"], r["replacements"]) for r in api]
    want = [(r["text_a"], r["variant"], r["replacements"]) for r in shards]
    assert got == want and len({r[0] for r in got}) > len(api) // 2


@pytest.fixture(scope="module")
def vectors_augmenter():
    from augment.augmenter import Augmenter

    return Augmenter(AugmentConfig.build(**SETTINGS))


def test_same_variants_as_the_cli_whatever_the_batch_size(tmp_path, vectors_augmenter):
    ds = sst2()
    shards = cli_build(ds, tmp_path)
    for batch_size in (1, 7, 1000):
        api = augment_dataset(ds, augmenter=vectors_augmenter, task="sst2", batch_size=batch_size)
        same_variants(api, shards)


def test_records_are_seeded_by_the_id_column_as_in_the_cli(tmp_path, vectors_augmenter):
    ds = sst2(idx=[(7 * i) % 24 + 100 for i in range(24)])
    shards = cli_build(ds, tmp_path, "--id-column", "idx")
    api = augment_dataset(ds, augmenter=vectors_augmenter, task="sst2", id_column="idx")
    same_variants(api, shards)
    assert [r["id"] for r in shards] == [str(i) for i in api["idx"]]
    shuffled = augment_dataset(
        ds.select(list(range(23, -1, -1))),
        augmenter=vectors_augmenter,
        task="sst2",
        id_column="idx",
    )
    by_id = {(r["idx"], r["variant"]): r["sentence"] for r in api}
    assert {(r["idx"], r["variant"]): r["sentence"] for r in shuffled} == by_id


def test_the_mlm_path_matches_the_cli_too(tmp_path, tiny_mlm_dir, augmenter):
    ds = sst2(rows=8)
    ds.save_to_disk(str(tmp_path / "ds"))
    flags = ["--mlm", str(tiny_mlm_dir), "--n", "6", "--device", "cpu"]
    assert (
        main(["augment", str(tmp_path / "ds"), "-o", str(tmp_path / "o"), "--task", "sst2", *flags])
        == 0
    )
    shards = pq.read_table(sorted((tmp_path / "o" / "data").glob("*.parquet"))).to_pylist()
    api = augment_dataset(ds, augmenter=augmenter, task="sst2", batch_size=3)
    same_variants(api, shards)
    assert any(r["source"] == "mlm" for row in api["replacements"] for r in row)


def test_the_output_keeps_the_datasets_features(vectors_augmenter):
    api = augment_dataset(sst2(), augmenter=vectors_augmenter, task="sst2")
    assert api.features["label"] == LABELS
    assert api.features["variant"] == datasets.Value("int32")
    assert api.features["replacements"].feature["rank"] == datasets.Value("int32")
    assert api.column_names == ["sentence", "label", "variant", "replacements"]
    originals = api.filter(lambda r: r["variant"] == 0)
    assert originals["sentence"] == sst2()["sentence"] and originals["label"] == sst2()["label"]
    changed = api.filter(lambda r: r["variant"] > 0)
    for row in changed:
        for rep in row["replacements"]:
            assert row["sentence"][rep["start"] : rep["end"]] == rep["replacement"]


def test_the_map_function_and_an_iterable_dataset_give_the_same(vectors_augmenter):
    ds = sst2()
    api = augment_dataset(ds, augmenter=vectors_augmenter, task="sst2")
    cols = dataset_columns(ds.column_names, task="sst2")
    expander = VariantExpander(augmenter=vectors_augmenter, columns=cols)
    mapped = ds.map(
        expander, batched=True, with_indices=True, batch_size=5, remove_columns=ds.column_names
    )
    assert mapped["sentence"] == api["sentence"]
    lazy = augment_dataset(
        ds.to_iterable_dataset(), augmenter=vectors_augmenter, task="sst2", batch_size=4
    )
    assert [r["sentence"] for r in lazy] == api["sentence"]


def test_pairs_with_the_hub_glue_column_names(vectors_augmenter):
    ds = datasets.Dataset.from_dict(
        {
            "sentence1": ["the film is charming and moving", "a dull script and tired acting"],
            "sentence2": ["a moving story about a family", "the acting is tired and dull"],
            "label": [1, 0],
            "idx": [10, 11],
        }
    )
    api = augment_dataset(ds, augmenter=vectors_augmenter, task="mrpc")
    assert dataset_columns(ds.column_names, task="mrpc").id == "idx"
    assert set(api["idx"]) == {10, 11} and len(api) > 2
    assert any(r["field"] == "b" for row in api["replacements"] for r in row)
    for row in api:
        changed_b = any(r["field"] == "b" for r in row["replacements"])
        assert (row["sentence2"] not in ds["sentence2"]) == changed_b


def test_bad_rows_raise_one_line_or_are_dropped_with_a_warning(vectors_augmenter, caplog):
    ds = datasets.Dataset.from_dict(
        {"sentence": ["a warm performance", "   ", "the story wanders"], "label": [1, 0, 0]}
    )
    with pytest.raises(InputError) as err:
        augment_dataset(ds, augmenter=vectors_augmenter, task="sst2")
    assert "row 1: empty or missing text in column 'sentence'" in str(err.value)
    assert "on_reject='drop'" in str(err.value) and "\n" not in str(err.value)
    with caplog.at_level(logging.WARNING, logger="augment.hf"):
        api = augment_dataset(ds, augmenter=vectors_augmenter, task="sst2", on_reject="drop")
    assert "row 1 left out: empty or missing text" in caplog.text
    assert set(api.filter(lambda r: r["variant"] == 0)["sentence"]) == {
        "a warm performance",
        "the story wanders",
    }


def test_unusable_datasets_are_one_line_errors(vectors_augmenter):
    ds = sst2(rows=3)
    cases = [
        (datasets.DatasetDict({"train": ds}), "pass one split"),
        (ds.rename_column("label", "variant"), "already has column(s) ['variant']"),
        (ds, "column(s) ['text'] not found"),  # no task and no text column
    ]
    for bad, needle in cases:
        with pytest.raises(InputError, match=None) as err:
            augment_dataset(bad, augmenter=vectors_augmenter)
        assert needle in str(err.value) and "\n" not in str(err.value)


def test_the_expander_pickles_its_settings_only(vectors_augmenter):
    expander = VariantExpander(
        augmenter=vectors_augmenter, columns=dataset_columns(["sentence"], "sst2")
    )
    data = pickle.dumps(expander)
    assert len(data) < 5000  # no models inside
    back = pickle.loads(data)
    assert back.config == vectors_augmenter.config and back.columns == expander.columns
    assert back._augmenter is None  # loaded again where it is used


# Run in a fresh interpreter, as a user's script would be (spawned workers import its main
# module, hence the guard); the parent uses torch before the workers start.
NUM_PROC_SCRIPT = """
import json, sys

if __name__ == "__main__":
    import datasets
    import multiprocess
    from augment import AugmentConfig, augment_dataset
    from augment.augmenter import Augmenter

    sentences, mlm = json.loads(sys.argv[1]), sys.argv[2]
    ds = datasets.Dataset.from_dict({"sentence": sentences, "label": [0, 1] * (len(sentences) // 2)})
    loaded = Augmenter(AugmentConfig(mlm=mlm, n=3, pos_filter="lexicon", device="cpu"))
    one = augment_dataset(ds, augmenter=loaded, task="sst2").to_list()
    two = augment_dataset(ds, augmenter=loaded, task="sst2", num_proc=2, batch_size=5).to_list()
    method = multiprocess.get_start_method(allow_none=True)  # restored
    print(json.dumps({"one": one, "two": two, "method": method}))
"""


def test_num_proc_workers_give_the_same_variants_and_do_not_hang(tmp_path, tiny_mlm_dir):
    script = tmp_path / "num_proc.py"
    script.write_text(NUM_PROC_SCRIPT, encoding="utf-8")
    sentences = [f"{SENTENCES[i % len(SENTENCES)]} ( take {i} )" for i in range(12)]
    argv = [sys.executable, str(script), json.dumps(sentences), str(tiny_mlm_dir)]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        # a deadlocked worker fails the test instead of hanging the suite
        stdout, stderr = proc.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the workers too
        _, stderr = proc.communicate()
        pytest.fail(f"augment_dataset(num_proc=2) hung: {stderr[-2000:]}")
    assert proc.returncode == 0, stderr[-3000:]
    out = json.loads(stdout.splitlines()[-1])
    assert len(out["one"]) > len(sentences)
    assert out["two"] == out["one"] and out["method"] is None
    sources = {r["source"] for row in out["one"] for r in row["replacements"]}
    assert "mlm" in sources  # the tiny masked-LM ran in the workers too
