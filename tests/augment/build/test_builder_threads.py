"""`--workers 1` runs its worker in the coordinator's process: torch and the BLAS / OpenMP thread
pools get the cores this process may use, as a pool worker's get its share (a cgroup CPU quota
counts, which torch's and OpenBLAS's own defaults ignore), unless the user set the variable."""

from __future__ import annotations

import pytest

from augment.build.build import build
from augment.build.executors import SerialExecutor, local, make_executor
from kdaug.machine import THREAD_VARS
from tests.augment.build.support import make_spec, shard_bytes


def _pools() -> dict[str, set[int]]:
    """The threads of torch and of every BLAS / OpenMP library loaded in this process."""
    import torch
    from threadpoolctl import threadpool_info

    seen: dict[str, set[int]] = {"torch": {torch.get_num_threads()}}
    for lib in threadpool_info():
        seen.setdefault(lib["user_api"], set()).add(lib["num_threads"])
    return seen


class _Watch:
    """Runs `inner`, noting the thread pools each time a batch of rows is reported done."""

    def __init__(self, inner) -> None:
        self.inner, self.seen = inner, []
        self.worker_loads = inner.worker_loads

    def map_unordered(self, tasks, progress):
        def note(rows: int) -> None:
            self.seen.append(_pools())
            progress(rows)

        yield from self.inner.map_unordered(tasks, note)


@pytest.fixture
def restore_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_one_worker_in_this_process_gets_the_cores_it_may_use(
    tmp_path, sst2_input, reference, monkeypatch, restore_threads
):
    for var in THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(local, "available_cores", lambda: 1)  # as under a one-core CPU quota
    spec = make_spec(sst2_input, tmp_path / "out", workers=1)
    executor = make_executor(spec)
    assert isinstance(executor, SerialExecutor)
    watch = _Watch(executor)
    build(spec, executor=watch)
    assert watch.seen and {"blas", "openmp"} <= set(watch.seen[0])
    assert all(pools == {api: {1} for api in pools} for pools in watch.seen), watch.seen
    assert executor.worker_loads[0]["threads"] == 1
    assert shard_bytes(tmp_path / "out") == shard_bytes(reference)


def test_a_thread_variable_the_user_set_is_kept(tmp_path, sst2_input, monkeypatch, restore_threads):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(local, "available_cores", lambda: 1)
    before = _pools()["blas"]
    spec = make_spec(sst2_input, tmp_path / "out", workers=1)
    watch = _Watch(make_executor(spec))
    build(spec, executor=watch)
    assert all(pools["blas"] == before and pools["openmp"] == {1} for pools in watch.seen)
