"""A `datasets` export of a GLUE config (the hub's column names: `sentence1`, `label`, `idx`)
builds with the task preset alone, as the GLUE files do and as `augment_dataset` reads it."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from augment.io.readers import columns_for
from kdaug.errors import InputError
from tests.augment.build.support import SENTENCES, build_with, make_spec

ROWS = 12


def _pairs() -> list[tuple[str, str, int]]:
    return [(SENTENCES[i], SENTENCES[(i + 5) % 12], i % 2) for i in range(ROWS)]


def _rows(out) -> list[dict]:
    return pa.concat_tables(
        [pq.read_table(f) for f in sorted((out / "data").glob("*.parquet"))]
    ).to_pylist()


def test_mrpc_from_a_hub_export_gives_the_glue_files_rows(tmp_path, augmenter):
    glue = tmp_path / "train.tsv"
    lines = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    lines += [f"{y}\t{100 + i}\t{200 + i}\t{a}\t{b}" for i, (a, b, y) in enumerate(_pairs())]
    glue.write_text("\n".join(lines) + "\n", encoding="utf-8")
    hub = tmp_path / "train.parquet"
    a, b, y = zip(*_pairs(), strict=True)
    pq.write_table(pa.table({"sentence1": a, "sentence2": b, "label": y, "idx": range(ROWS)}), hub)
    spec = {"columns": columns_for("mrpc"), "task": "mrpc"}
    build_with(make_spec(glue, tmp_path / "glue", **spec), augmenter)
    stats = build_with(make_spec(hub, tmp_path / "hub", **spec), augmenter)
    assert stats["rows_in"] == ROWS and stats["rows_rejected"] == 0, stats
    from_glue, from_hub = _rows(tmp_path / "glue"), _rows(tmp_path / "hub")
    assert len(from_hub) > ROWS  # originals and variants
    shared = set(from_hub[0]) & set(from_glue[0])
    assert {"id", "text_a", "text_b", "label", "variant", "replacements"} <= shared
    assert [{k: r[k] for k in shared} for r in from_hub] == [
        {k: r[k] for k in shared} for r in from_glue
    ]
    assert not {"sentence1", "sentence2", "idx"} & set(from_hub[0])  # mapped, not carried


def test_cola_from_a_hub_export_in_json_lines(tmp_path, augmenter):
    hub = tmp_path / "train.jsonl"
    rows = [{"sentence": SENTENCES[i], "label": i % 2, "idx": i} for i in range(ROWS)]
    hub.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    stats = build_with(
        make_spec(hub, tmp_path / "out", columns=columns_for("cola"), task="cola"), augmenter
    )
    assert stats["rows_in"] == ROWS and stats["rows_rejected"] == 0, stats
    got = _rows(tmp_path / "out")
    originals = [r for r in got if r["variant"] == 0]
    assert [r["text_a"] for r in originals] == SENTENCES[:ROWS]
    assert [r["label"] for r in originals] == [i % 2 for i in range(ROWS)]


def test_a_text_column_the_user_named_is_not_replaced(tmp_path, augmenter):
    hub = tmp_path / "train.parquet"
    pq.write_table(pa.table({"sentence1": ["a b"], "sentence2": ["c d"], "label": [1]}), hub)
    cols = columns_for("mrpc", text="question")
    with pytest.raises(InputError, match="question"):
        build_with(make_spec(hub, tmp_path / "out", columns=cols, task="mrpc"), augmenter)
