"""The teacher-logits cache is keyed on what its logits were computed from: the shards' (or a
plain training file's) content and every file of the teacher, weights included. A rebuilt build,
an edited file or a changed teacher makes it stale: distillation computes the logits again,
`kdaug export --labels teacher` refuses in one line; neither ever uses them. `kdaug
teacher-logits` checks that it can write its cache before the teacher runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from distill.bilstm_job import distill_bilstm
from distill.config import DistillConfig
from distill.logits_cache import CACHE_DIR, META
from distill.pipeline import cache_teacher_logits, distill
from kdaug.cli import main
from tests.augment.build.support import CLI_SETTINGS, write_sst2


def _augment(src: Path, out: Path, seed: int) -> None:
    argv = ["augment", str(src), "-o", str(out), "--task", "sst2", *CLI_SETTINGS]
    argv += ["--shard-size", "10", "--workers", "1", "--overwrite", "--seed", str(seed)]
    assert main(argv) == 0


def _rows(out: Path) -> dict[str, int]:
    return {f.name: pq.read_metadata(f).num_rows for f in sorted((out / "data").glob("*.parquet"))}


@pytest.fixture(scope="module")
def sst2_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sst2(tmp_path_factory.mktemp("src") / "train.tsv", 20)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, sst2_src: Path) -> Path:
    """A real build of 20 SST-2 rows in 2 shards (seed 0)."""
    out = tmp_path_factory.mktemp("built") / "out"
    _augment(sst2_src, out, seed=0)
    return out


@pytest.fixture()
def build(built: Path, tmp_path: Path) -> Path:
    """This test's copy of the build (same input path, so it can be rebuilt in place)."""
    return Path(shutil.copytree(built, tmp_path / "out"))


def _cfg(task: str = "sst2", **bilstm: Any) -> DistillConfig:
    return DistillConfig.build(
        task=task,
        max_length=32,
        prediction={"batch_size": 8, "max_steps": 2, "lr": 1e-3},
        bilstm={"hidden_size": 8, "mlp_hidden": 8, "extra_words": 0, "embeddings": "none"},
    )


def _teacher_logits(shards: Path, teacher: Path, task: str = "sst2") -> Path:
    return cache_teacher_logits(_cfg(task), str(shards), str(teacher), batch_size=16)


def _export(build: Path, teacher: Path, target: Path, capsys: Any) -> tuple[int, str]:
    argv = ["export", str(build), "-o", str(target), "--labels", "teacher"]
    capsys.readouterr()  # what earlier steps printed
    code = main([*argv, "--teacher", str(teacher), "--max-length", "32"])
    return code, capsys.readouterr().err.strip()


def _forwards(metrics: dict[str, Any]) -> int:
    return metrics["stages"]["prediction"]["teacher_forwards"]


def test_a_rebuilt_build_is_never_served_the_old_logits(
    build: Path, sst2_src: Path, tiny_teacher: Path, tmp_path: Path, capsys: Any
) -> None:
    cache = _teacher_logits(build, tiny_teacher)
    old = np.load(cache / "part-00000.npy")
    before = _rows(build)
    _augment(sst2_src, build, seed=1)  # other variants, the same rows per shard
    assert _rows(build) == before

    code, err = _export(build, tiny_teacher, tmp_path / "a.tsv", capsys)
    assert code != 0 and err.startswith("kdaug: error:") and "\n" not in err
    assert "stale" in err and "part-00000.parquet changed" in err
    assert "re-run `kdaug teacher-logits" in err and not (tmp_path / "a.tsv").exists()

    args = (str(tiny_teacher), "teacher-layers:2", str(build), [])
    m = distill(_cfg(), *args, tmp_path / "t", stages="prediction")
    assert _forwards(m) == 2  # the stale cache was not used: the teacher ran
    m = distill_bilstm(_cfg(), str(tiny_teacher), str(build), [], tmp_path / "b")
    assert _forwards(m) > 0  # ... and the BiLSTM job wrote it again
    assert not np.allclose(np.load(cache / "part-00000.npy"), old)
    m = distill(_cfg(), *args, tmp_path / "t2", stages="prediction")
    assert _forwards(m) == 0  # fresh again: used

    code, err = _export(build, tiny_teacher, tmp_path / "a.tsv", capsys)
    assert code == 0, err


def test_an_edited_training_file_is_never_served_the_old_logits(
    tiny_teacher: Path, mrpc_dev: Path, tmp_path: Path
) -> None:
    train = tmp_path / "data" / "train.tsv"
    train.parent.mkdir()
    shutil.copy(mrpc_dev, train)
    cfg = _cfg("mrpc")
    first = distill_bilstm(cfg, str(tiny_teacher), str(train), [], tmp_path / "a")
    assert _forwards(first) > 0
    again = distill_bilstm(cfg, str(tiny_teacher), str(train), [], tmp_path / "b")
    assert _forwards(again) == 0  # unchanged: the cache is used
    (directory,) = (train.parent / CACHE_DIR).iterdir()
    old = np.load(directory / "train.npy")

    lines = train.read_text(encoding="utf-8").splitlines()
    lines[1] = "1\t0\t100\tan entirely new sentence about rivers\tnothing at all like it"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")  # the same number of rows
    edited = distill_bilstm(cfg, str(tiny_teacher), str(train), [], tmp_path / "c")
    assert _forwards(edited) > 0
    new = np.load(directory / "train.npy")
    assert new.shape == old.shape and not np.allclose(new[0], old[0])
    assert np.allclose(new[1:], old[1:], atol=1e-5)
    args = (str(tiny_teacher), "teacher-layers:2", str(train), [])
    assert _forwards(distill(cfg, *args, tmp_path / "t", stages="prediction")) == 0


def test_changed_teacher_weights_make_the_cache_stale(
    build: Path, make_classifier: Any, tmp_path: Path, capsys: Any
) -> None:
    """A teacher saved in several weight files (as large models are): the files' names stay,
    their contents change."""
    from transformers import AutoModelForSequenceClassification

    def save_sharded(seed: int) -> Path:
        folder = make_classifier(tmp_path / f"seed{seed}", layers=2, seed=seed)
        model = AutoModelForSequenceClassification.from_pretrained(folder)
        model.save_pretrained(tmp_path / "teacher", max_shard_size="200KB")
        shutil.copy(folder / "tokenizer.json", tmp_path / "teacher")
        shutil.copy(folder / "tokenizer_config.json", tmp_path / "teacher")
        return tmp_path / "teacher"

    teacher = save_sharded(seed=0)
    assert len(list(teacher.glob("model-*.safetensors"))) > 1
    _teacher_logits(build, teacher)
    assert _export(build, teacher, tmp_path / "a.tsv", capsys)[0] == 0
    save_sharded(seed=1)  # retrained: the same file names, other weights

    code, err = _export(build, teacher, tmp_path / "b.tsv", capsys)
    assert code != 0 and "\n" not in err and "stale" in err and "changed" in err
    args = (str(teacher), "teacher-layers:2", str(build), [])
    assert _forwards(distill(_cfg(), *args, tmp_path / "t", stages="prediction")) == 2


def test_teacher_logits_checks_it_can_write_before_the_teacher_runs(
    build: Path, tiny_teacher: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import distill.pipeline

    def no_teacher(*a: Any) -> None:
        raise AssertionError("the teacher was loaded before the cache was known to be writable")

    monkeypatch.setattr(distill.pipeline, "load_teacher", no_teacher)
    capsys.readouterr()
    (build / CACHE_DIR).write_text("not a directory")  # where the cache would go
    argv = ["teacher-logits", str(build), "--teacher", str(tiny_teacher), "--task", "sst2"]
    assert main([*argv, "--device", "cpu"]) != 0
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("kdaug: error: cannot write the teacher-logits cache in") and "\n" not in err
    )
    assert str(build / CACHE_DIR) in err


def test_the_cache_records_what_it_was_computed_from(build: Path, tiny_teacher: Path) -> None:
    from kdaug.files import sha256_file

    cache = _teacher_logits(build, tiny_teacher)
    meta = json.loads((cache / META).read_text())
    manifest = json.loads((build / "manifest.json").read_text())
    want = {
        entry["file"].split("/")[-1]: {"rows": entry["variants"], "sha256": entry["sha256"]}
        for entry in manifest["shards"].values()
    }
    assert meta["files"] == want
    for f in (build / "data").glob("*.parquet"):
        assert meta["files"][f.name]["sha256"] == sha256_file(f)
