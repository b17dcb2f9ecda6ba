"""The contract of `augment.build.executors.base.Executor`, held by every executor: a worker's
error reaches the user as the error it is (one line), and each worker reports its load."""

from __future__ import annotations

from pathlib import Path

import pytest

from augment.build.build import build
from augment.build.executors import make_executor
from augment.build.manifest import LOCK_NAME
from kdaug.errors import KdaugError
from tests.augment.build.support import make_spec, shard_bytes
from tests.augment.build.test_builder_ray import local_ray

__all__ = ["local_ray"]  # a fixture of the Ray tests, used here too
EXECUTORS = {"in-process": {"workers": 1}, "pool": {"workers": 2}, "ray": {"executor": "ray"}}


@pytest.fixture
def unloadable_mlm(tmp_path) -> Path:
    """A model folder that exists (so the coordinator plans the build) but that no worker can
    load: the worker's KdaugError says so."""
    path = tmp_path / "broken-mlm"
    path.mkdir()
    (path / "config.json").write_text("{}")
    return path


@pytest.mark.parametrize("kind", list(EXECUTORS))
def test_a_workers_error_is_its_own_one_line(request, tmp_path, sst2_input, unloadable_mlm, kind):
    """Raised while a worker loads its models (a Ray actor would die of it) and reported with
    its first shard: the KdaugError itself, not a dead pool or Ray's ActorDiedError."""
    if kind == "ray":
        request.getfixturevalue("local_ray")
    out = tmp_path / "out"
    spec = make_spec(sst2_input, out, config={"mlm": str(unloadable_mlm)}, **EXECUTORS[kind])
    with pytest.raises(KdaugError) as err:
        build(spec)
    assert type(err.value).__module__ == "kdaug.errors", type(err.value).__mro__
    message = str(err.value)
    assert message.startswith(f"cannot load masked-LM '{unloadable_mlm}'") and "\n" not in message
    assert not (out / LOCK_NAME).exists()


def test_every_executor_reports_its_workers_loads(tmp_path, sst2_input, reference, local_ray):
    """One WorkerLoad per worker that loaded models, whichever executor ran them."""
    for kind, options in EXECUTORS.items():
        spec = make_spec(sst2_input, tmp_path / kind, **options)
        executor = make_executor(spec)
        build(spec, executor=executor)
        assert shard_bytes(tmp_path / kind) == shard_bytes(reference), kind
        workers = 1 if kind == "in-process" else 2
        assert len(executor.worker_loads) == workers, (kind, executor.worker_loads)
        for load in executor.worker_loads:
            assert set(load) == {"pid", "seconds", "threads", "int8"} and load["seconds"] > 0
