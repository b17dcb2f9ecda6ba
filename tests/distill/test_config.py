"""Task presets, label order and the typed config (YAML, flags, one-line errors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.config import DistillConfig
from distill.tasks import TASKS, TaskError, get_task
from kdaug.settings import ConfigError


def test_label_order_matches_hf_datasets_glue() -> None:
    mnli = get_task("mnli")
    assert [mnli.label_id(x) for x in ("entailment", "neutral", "contradiction")] == [0, 1, 2]
    assert get_task("RTE").label_id("not_entailment") == 1
    assert get_task("qnli").label_id("entailment") == 0
    assert get_task("MRPC").label_id("1") == 1 and get_task("sst-2").label_id("0") == 0
    assert get_task("qqp").labels == ("not_duplicate", "duplicate")
    assert get_task("sts-b").label_id("3.8") == pytest.approx(3.8)
    with pytest.raises(TaskError):
        mnli.label_id("maybe")


def test_presets_lengths_and_metrics() -> None:
    assert set(TASKS) == {"sst2", "mrpc", "stsb", "cola", "rte", "qnli", "qqp", "mnli"}
    assert get_task("sst2").max_length == 64 and get_task("mrpc").max_length == 128
    assert get_task("cola").primary == "mcc" and get_task("stsb").is_regression
    assert get_task("mnli").dev_files == ("dev_matched.tsv", "dev_mismatched.tsv")


def test_stage_defaults_come_from_the_task() -> None:
    cola = DistillConfig.build(task="cola")
    assert cola.intermediate.epochs == 50 and cola.intermediate.lr == 5e-5
    assert cola.intermediate.schedule == "constant"
    assert cola.prediction.epochs == 3 and cola.prediction.lr == 3e-5
    assert cola.prediction.warmup == 0.1
    assert DistillConfig.build(task="mnli").intermediate.epochs == 10


def test_yaml_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("task: sst2\nseed: 7\nprediction:\n  lr: 1.0e-5\n  epochs: 4\n")
    cfg = DistillConfig.load(f, {"seed": None, "max_length": 32}, {"max_steps": 5, "epochs": None})
    assert cfg.seed == 7 and cfg.seq_len == 32
    assert cfg.prediction.lr == 1e-5 and cfg.prediction.epochs == 4
    assert cfg.prediction.max_steps == 5 and cfg.intermediate.max_steps == 5
    assert cfg.intermediate.epochs == 20


def test_custom_task_from_columns() -> None:
    cfg = DistillConfig.build(task="custom", text_a="q", text_b="p", labels=["no", "yes"])
    spec = cfg.spec
    assert spec.is_pair and spec.num_labels == 2 and spec.label_id("yes") == 1
    with pytest.raises(ConfigError, match="text_a"):
        DistillConfig.build(task="custom")


def test_errors_are_one_line() -> None:
    with pytest.raises(ConfigError) as exc:
        DistillConfig.build(task="mrpc", prediction={"lr": -1}, device="gpu")
    assert "\n" not in str(exc.value) and "prediction.lr" in str(exc.value)
    with pytest.raises(ConfigError, match="unknown task"):
        DistillConfig.build(task="squad")


@pytest.mark.parametrize(
    "text, field",
    [
        ("task: sst2\nseed: true\n", "seed"),
        ('task: sst2\nseed: "7"\n', "seed"),
        ("task: sst2\nprediction:\n  batch_size: 32.0\n", "prediction.batch_size"),
        ('task: sst2\nprediction:\n  lr: "1.0e-5"\n', "prediction.lr"),
        ("task: sst2\ncompile: 1\n", "compile"),
    ],
)
def test_yaml_types_are_strict(tmp_path: Path, text: str, field: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        DistillConfig.load(f, {}, {})
    assert f"{field}:" in str(exc.value) and "\n" not in str(exc.value)


def test_yaml_exponent_without_a_dot_is_a_number(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("task: sst2\nprediction:\n  lr: 1e-5\n  epochs: 2\n")
    cfg = DistillConfig.load(f, {}, {})
    assert cfg.prediction.lr == pytest.approx(1e-5) and cfg.prediction.epochs == 2.0


def test_non_utf8_config_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_bytes(b"task: sst2\ndevice: c\xe9pu\n")
    with pytest.raises(ConfigError) as exc:
        DistillConfig.load(f, {}, {})
    assert "UTF-8" in str(exc.value) and "\n" not in str(exc.value)


def test_integer_label_names_in_yaml_are_text(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("task: custom\ntext_a: s\nlabels: [0, 1]\n")
    cfg = DistillConfig.load(f, {}, {})
    assert cfg.labels == ["0", "1"]
    f.write_text("task: custom\ntext_a: s\nlabels: [true, false]\n")
    with pytest.raises(ConfigError):
        DistillConfig.load(f, {}, {})
