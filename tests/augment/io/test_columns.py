"""One rule for the columns a mapping needs, whether the rows come from a file (`kdaug augment`,
augment.io.readers) or a `datasets` dataset (augment.hf): every mapped column must be there,
except a task preset's label column (a test split, whose rows get no label)."""

from __future__ import annotations

import logging

import pytest

from augment.hf import dataset_columns
from augment.io.readers import columns_for, missing_columns, read_records
from kdaug.errors import InputError


def _tsv(tmp_path, header: str, row: str):
    path = tmp_path / "train.tsv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    return path


def test_a_preset_label_column_may_be_absent_from_a_file_and_a_dataset(tmp_path, caplog):
    path = _tsv(tmp_path, "sentence\tother", "a fine film\tx")
    with caplog.at_level(logging.WARNING):
        (record,) = read_records(path, columns_for("sst2"))
    assert record.text_a == "a fine film" and record.label is None
    assert "no label column 'label'" in caplog.text
    assert dataset_columns(["sentence", "other"], "sst2").text_a == "sentence"
    assert missing_columns(columns_for("sst2"), ["sentence"], label_optional=True) == []


def test_a_file_and_a_dataset_name_the_same_missing_columns(tmp_path):
    """Without the text column, both name it alone: the preset's label may be absent anyway."""
    path = _tsv(tmp_path, "text\tother", "a fine film\tx")
    with pytest.raises(InputError, match=r"column\(s\) \['sentence'\] not found; the file has"):
        list(read_records(path, columns_for("sst2")))
    with pytest.raises(InputError, match=r"column\(s\) \['sentence'\] not found; the dataset"):
        dataset_columns(["text", "other"], "sst2")


def test_a_label_column_named_by_the_caller_must_be_there():
    with pytest.raises(InputError, match=r"\['stars'\] not found"):
        dataset_columns(["sentence"], "sst2", label="stars")
    cols = columns_for(text="review", label="stars")
    assert missing_columns(cols, ["review"], label_optional=False) == ["stars"]
