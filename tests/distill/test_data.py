"""GLUE files and kdaug shards into length-grouped batches, deterministically and resumably."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distill.data import BatchStream, ExampleSource
from distill.tasks import get_task
from kdaug.errors import InputError


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def test_mrpc_tsv_with_bom_and_quotes(mrpc_dev: Path, pairs: list) -> None:
    rows = list(ExampleSource(mrpc_dev, get_task("mrpc")))
    assert len(rows) == len(pairs) + 1
    assert rows[0].text_a == pairs[0][0] and rows[0].label == 1
    assert rows[-1].text_a == 'He said "yes" to it.' and rows[-1].text_b.endswith('"yes".')


def test_headerless_cola_and_jsonl(tmp_path: Path) -> None:
    f = tmp_path / "dev.tsv"
    f.write_text("gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\nx\t0\t*\tSaw he.\n")
    rows = list(ExampleSource(f, get_task("cola")))
    assert [r.label for r in rows] == [1, 0] and rows[1].text_a == "Saw he."
    j = tmp_path / "dev.jsonl"
    j.write_text('{"premise": "a", "hypothesis": "b", "label": 2}\n')
    (row,) = ExampleSource(j, get_task("mnli"))
    assert (row.text_a, row.text_b, row.label) == ("a", "b", 2)


def test_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "x.tsv"
    f.write_text("foo\tlabel\nhello\t1\n")
    with pytest.raises(InputError, match="no text column"):
        list(ExampleSource(f, get_task("sst2")))


def test_shards_stream_with_string_labels(shards: Path, pairs: list) -> None:
    src = ExampleSource(shards, get_task("mrpc"))
    assert len(src) == 3 * len(pairs) and len(src.files) == 2
    rows = list(src)
    assert {r.label for r in rows} == {0, 1} and rows[3].key == (0, 3)
    assert all(r.text_b for r in rows)


def test_epoch_covers_every_row_once_and_groups_lengths(shards: Path, tokenizer) -> None:
    stream = BatchStream(ExampleSource(shards, get_task("mrpc")), tokenizer, 128, 4, seed=1)
    batches = list(stream.epoch(0))
    assert len(batches) == len(stream) == 6
    keys = sorted(tuple(k) for b in batches for k in b.rows.tolist())
    assert keys == sorted((f, r) for f in range(2) for r in range(12))
    for b in batches:  # dynamic padding: the longest row of each batch has no padding
        assert b.attention_mask[:, -1].any() and b.labels.dtype == torch.long
    again = [b.rows.tolist() for b in stream.epoch(0)]
    assert again == [b.rows.tolist() for b in batches]
    assert again != [b.rows.tolist() for b in stream.epoch(1)]


@pytest.mark.parametrize("group_batches", [1, 50])
def test_start_skips_exactly(shards: Path, tokenizer, group_batches: int) -> None:
    stream = BatchStream(
        ExampleSource(shards, get_task("mrpc")),
        tokenizer,
        128,
        5,
        seed=3,
        group_batches=group_batches,
    )
    full = [b.rows.tolist() for b in stream.epoch(2)]
    for k in range(len(full) + 1):
        assert [b.rows.tolist() for b in stream.epoch(2, start=k)] == full[k:]


def test_split_trims_padding(shards: Path, tokenizer) -> None:
    stream = BatchStream(ExampleSource(shards, get_task("mrpc")), tokenizer, 128, 8, shuffle=False)
    batch = next(iter(stream.epoch(0)))
    parts = batch.split(3)
    assert [len(p) for p in parts] == [3, 2, 3]
    assert torch.equal(torch.cat([p.rows for p in parts]), batch.rows)
    for p in parts:
        assert p.attention_mask[:, -1].any()
