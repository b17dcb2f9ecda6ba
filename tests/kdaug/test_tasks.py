"""The one task registry: every GLUE task once, and each consumer's view of it (reader presets and
label sets, shard label names, export layouts, distillation settings, benchmark directories) as
each consumer held it in its own table before there was one registry."""

from __future__ import annotations

import pytest

from kdaug.tasks import GLUE_TASKS, class_index, find_task, task_key

GLUE = ("sst2", "cola", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")


def test_every_glue_task_once_under_every_spelling() -> None:
    assert tuple(GLUE_TASKS) == GLUE
    dirs = [t.glue_dir for t in GLUE_TASKS.values()]
    assert len(set(dirs)) == len(dirs) == len(GLUE)
    for task in GLUE_TASKS.values():
        for spelling in (task.name, task.name.upper(), task.glue_dir, f" {task.glue_dir} "):
            assert find_task(spelling) is task
    assert task_key("MNLI-mm") == task_key("mnli-m") == "mnli"
    assert find_task("squad") is None and find_task(None) is None


def test_reader_presets_and_label_sets_are_unchanged() -> None:
    from augment.io.readers import GLUE_PRESETS, Columns

    before = {
        "sst2": Columns("sentence", label="label"),
        "cola": Columns(3, label=1, header=False),
        "mrpc": Columns("#1 String", "#2 String", label="Quality"),
        "stsb": Columns("sentence1", "sentence2", label="score", id="index"),
        "qqp": Columns("question1", "question2", label="is_duplicate", id="id"),
        "mnli": Columns("sentence1", "sentence2", label="gold_label", id="pairID"),
        "qnli": Columns("question", "sentence", label="label", id="index"),
        "rte": Columns("sentence1", "sentence2", label="label", id="index"),
        "wnli": Columns("sentence1", "sentence2", label="label", id="index"),
    }
    assert before == GLUE_PRESETS
    assert {n: t.accepted_labels for n, t in GLUE_TASKS.items()} == {
        "sst2": ("0", "1", "negative", "positive"),
        "cola": ("0", "1", "unacceptable", "acceptable"),
        "mrpc": ("0", "1", "not_equivalent", "equivalent"),
        "stsb": None,
        "qqp": ("0", "1", "not_duplicate", "duplicate"),
        "mnli": ("entailment", "neutral", "contradiction", "0", "1", "2"),
        "qnli": ("entailment", "not_entailment", "0", "1"),
        "rte": ("entailment", "not_entailment", "0", "1"),
        "wnli": ("0", "1", "not_entailment", "entailment"),
    }
    assert GLUE_TASKS["stsb"].score_range == (0.0, 5.0)


def test_hub_glue_columns_are_unchanged() -> None:
    assert {n: t.hub_columns for n, t in GLUE_TASKS.items()} == {
        "sst2": ("sentence", None),
        "cola": ("sentence", None),
        "mrpc": ("sentence1", "sentence2"),
        "stsb": ("sentence1", "sentence2"),
        "rte": ("sentence1", "sentence2"),
        "wnli": ("sentence1", "sentence2"),
        "qqp": ("question1", "question2"),
        "mnli": ("premise", "hypothesis"),
        "qnli": ("question", "sentence"),
    }


def test_shard_label_names_and_glue_label_text_are_unchanged() -> None:
    from augment.io.layout import LabelCodec, ShardLayout

    names = {n: ShardLayout.for_build(n, True, True).names for n in GLUE}
    assert names == {
        "cola": ("unacceptable", "acceptable"),
        "sst2": ("negative", "positive"),
        "mrpc": ("not_equivalent", "equivalent"),
        "qqp": ("not_duplicate", "duplicate"),
        "stsb": (),
        "mnli": ("entailment", "neutral", "contradiction"),
        "qnli": ("entailment", "not_entailment"),
        "rte": ("entailment", "not_entailment"),
        "wnli": ("not_entailment", "entailment"),
    }
    assert ShardLayout.for_build("stsb", True, True).label == "score"
    text = {n: LabelCodec("class", names[n], n).text(1) for n in GLUE if n != "stsb"}
    assert text == {
        "cola": "1",
        "sst2": "1",
        "mrpc": "1",
        "qqp": "1",
        "wnli": "1",
        "mnli": "neutral",
        "qnli": "not_entailment",
        "rte": "not_entailment",
    }
    assert LabelCodec("string", (), "stsb").regression
    assert class_index("1", names["sst2"], GLUE_TASKS["sst2"].file_labels) == 1


GLUE_EXPORT_HEADERS = {
    "cola": None,
    "sst2": ["sentence", "label"],
    "mrpc": ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
    "stsb": ["index", "genre", "filename", "year", "old_index", "source1", "source2"]
    + ["sentence1", "sentence2", "score"],
    "qqp": ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
    "mnli": ["index", "promptID", "pairID", "genre", "sentence1_binary_parse"]
    + ["sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
    + ["label1", "gold_label"],
    "qnli": ["index", "question", "sentence", "label"],
    "rte": ["index", "sentence1", "sentence2", "label"],
    "wnli": ["index", "sentence1", "sentence2", "label"],
}


def test_glue_export_layouts_are_unchanged() -> None:
    from augment.io.writers import glue_layout

    keys = {}
    for name, header in GLUE_EXPORT_HEADERS.items():
        pair = GLUE_TASKS[name].is_pair
        got_header, keys[name] = glue_layout(name, pair)
        assert got_header == header
        assert len(keys[name]) == len(header or keys[name])
    assert keys["cola"] == ["=0|id", "label", "=2", "a"]
    assert keys["mrpc"] == ["label", "=#1 ID|id", "=#2 ID|id", "a", "b"]
    assert keys["mnli"][:4] == ["index", "=promptID", "id", "=genre"]
    assert keys["mnli"][4:] == ["~sentence1_binary_parse", "~sentence2_binary_parse"] + [
        "~sentence1_parse",
        "~sentence2_parse",
        "a",
        "b",
        "label",
        "label",
    ]
    with pytest.raises(ValueError, match="no GLUE layout for task 'squad'; choose from"):
        glue_layout("squad", True)
    with pytest.raises(ValueError, match="holds single texts but this build has pairs"):
        glue_layout("SST-2", True)


def test_distill_tasks_are_the_papers_eight_with_their_settings() -> None:
    from distill.tasks import TASKS, TaskError, get_task

    assert list(TASKS) == ["sst2", "mrpc", "stsb", "cola", "rte", "qnli", "qqp", "mnli"]
    assert get_task("mrpc").text_a == ("#1 String", "sentence1")
    assert get_task("mrpc").label == ("Quality", "label")
    assert get_task("mnli").text_b == ("sentence2", "hypothesis")
    assert get_task("cola").header == ("source", "label", "original_label", "sentence")
    assert get_task("stsb").metrics == ("pearson", "spearman")
    assert {n: t.intermediate_epochs for n, t in TASKS.items()} == {
        "sst2": 20,
        "mrpc": 20,
        "stsb": 20,
        "cola": 50,
        "rte": 20,
        "qnli": 10,
        "qqp": 10,
        "mnli": 10,
    }
    assert get_task("sst2").label_id("0") == 0 and get_task("sst2").label_id("positive") == 1
    assert get_task("mnli").label_id("contradiction") == get_task("mnli").label_id("2") == 2
    with pytest.raises(TaskError, match=r"unknown label 'maybe'; expected one of"):
        get_task("rte").label_id("maybe")
    with pytest.raises(TaskError, match=r"unknown task 'wnli'; choose from \['cola'"):
        get_task("wnli")


def test_ablation_default_data_dirs_are_unchanged() -> None:
    from distill.tasks import TASKS

    assert {n: t.glue_dir for n, t in TASKS.items()} == {
        "sst2": "SST-2",
        "mrpc": "MRPC",
        "stsb": "STS-B",
        "cola": "CoLA",
        "rte": "RTE",
        "qnli": "QNLI",
        "qqp": "QQP",
        "mnli": "MNLI",
    }
