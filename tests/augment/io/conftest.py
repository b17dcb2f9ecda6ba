from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from augment.build.build import build
from augment.build.executors import SerialExecutor
from augment.build.spec import BuildSpec
from augment.io.readers import columns_for
from tests.augment.io.support import ROWS, SHARD_SIZE


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, augmenter) -> Path:
    """A complete three-shard SST-2 build (never modified: tests copy it first)."""
    tmp = tmp_path_factory.mktemp("export")
    src = tmp / "train.tsv"
    lines = ["sentence\tlabel"] + [
        f"the film number {i} was a delightful story\t{i % 2}" for i in range(ROWS)
    ]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp / "out"
    spec = BuildSpec(
        input=str(src),
        output=out,
        config=augmenter.config,
        columns=columns_for("sst2"),
        task="sst2",
        shard_size=SHARD_SIZE,
    )
    build(spec, executor=SerialExecutor(spec.config, augmenter))
    return out


@pytest.fixture
def build_copy(tmp_path: Path, built: Path) -> Path:
    out = tmp_path / "build"
    shutil.copytree(built, out)
    return out
