"""`--executor ray` on a local Ray instance: same bytes, manifest and resume as local runs, paths
that mean the same to actors started elsewhere, and actors sharing GPUs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from augment.build.build import build
from augment.build.executors import SerialExecutor
from augment.build.executors.ray import actor_plan
from augment.config import AugmentConfig
from kdaug.errors import KdaugError
from tests.augment.build.support import build_with, make_spec, shard_bytes


@pytest.fixture()
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_resumes_a_local_build_to_the_same_bytes(tmp_path, sst2_input, reference, local_ray):
    """Half of a local build is lost (files deleted, or never recorded); two Ray actors redo
    exactly those shards, and the output equals the uninterrupted local build."""
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    manifest = json.loads((out / "manifest.json").read_text())
    lost = ["part-00000", "part-00003", "part-00004", "part-00007", "part-00009"]
    for name in lost:
        del manifest["shards"][name]
    manifest["in_progress"] = lost  # dispatched (their files are kdaug's) but never recorded
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    for name in lost[:3]:
        (out / "data" / f"{name}.parquet").unlink()
    stats = build(make_spec(sst2_input, out, executor="ray", workers=2))
    assert stats["run"]["rows"] == 5 * 20
    assert stats["shards"] == 10 and stats["rows_in"] == 200
    assert shard_bytes(out) == shard_bytes(reference)
    assert json.loads((out / "manifest.json").read_text())["complete"]


def test_ray_workers_started_elsewhere_write_where_relative_paths_point(
    tmp_path, sst2_input, augmenter, tiny_mlm_dir, monkeypatch
):
    """Ray is started in one directory and the build runs in another with a relative --output
    and --mlm: the actors (whose working directory is where Ray started) load that MLM and write
    that output, and the shards are those of a local build."""
    ray = pytest.importorskip("ray")
    started_in, here = tmp_path / "ray-started-here", tmp_path / "build-runs-here"
    started_in.mkdir()
    here.mkdir()
    (here / "mlm").symlink_to(tiny_mlm_dir)
    monkeypatch.chdir(started_in)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        monkeypatch.chdir(here)
        spec = make_spec(sst2_input, Path("out"), executor="ray", workers=2, config={"mlm": "mlm"})
        stats = build(spec)
    finally:
        ray.shutdown()
    assert stats["shards"] == 10 and not (started_in / "out").exists()
    local = make_spec(sst2_input, tmp_path / "local", config={"mlm": str(tiny_mlm_dir)})
    build(local, executor=SerialExecutor(local.config))
    assert shard_bytes(here / "out") == shard_bytes(tmp_path / "local")


def test_actors_share_gpus_as_asked():
    cuda = AugmentConfig.build(mlm="none", device="cuda")
    cluster = {"GPU": 2.0, "CPU": 16.0}
    assert actor_plan(cuda, cluster, None, None) == (2, 1)
    assert actor_plan(cuda, cluster, None, 4) == (8, 0.25)
    assert actor_plan(cuda, cluster, 3, 4) == (3, 0.25)
    assert actor_plan(cuda, cluster, None, "auto") == (16, 0.125)  # 8 CPUs a GPU, at most 8
    assert actor_plan(cuda, {"GPU": 2.0, "CPU": 6.0}, None, "auto") == (6, 0.3333)
    assert actor_plan(cuda, {"GPU": 1.0, "CPU": 2.0}, None, 4) == (2, 0.25)  # a CPU an actor
    cpu = AugmentConfig.build(mlm="none", device="cpu")
    assert actor_plan(cpu, cluster, None, 4) == (16, 0)
    with pytest.raises(KdaugError, match="has no GPU"):
        actor_plan(cuda, {"CPU": 4.0}, None, None)


class _Overwriting(SerialExecutor):
    """Reports shard 3 with the sha256 of what it wrote, then leaves other bytes in its place,
    as a second worker writing the same path would."""

    def __init__(self, config, augmenter, out: Path) -> None:
        super().__init__(config, augmenter)
        self.out = out

    def map_unordered(self, tasks, progress):
        for result in super().map_unordered(tasks, progress):
            if result.index == 3:
                path = self.out / result.file
                path.write_bytes(path.read_bytes()[:-1] + b"!")
            yield result


def test_a_shard_is_recorded_only_with_the_bytes_its_worker_reported(
    tmp_path, sst2_input, reference, augmenter
):
    out = tmp_path / "out"
    spec = make_spec(sst2_input, out)
    with pytest.raises(KdaugError, match=r"shard part-00003 .*does not match its sha256"):
        build(spec, executor=_Overwriting(spec.config, augmenter, out))
    build_with(spec, augmenter)  # the resume redoes it
    assert shard_bytes(out) == shard_bytes(reference)


@pytest.mark.parametrize("refusal", ["connection", "authentication"])
def test_a_cluster_that_refuses_the_driver_is_one_line(monkeypatch, refusal):
    """A cluster the driver cannot join (Ray 2.60's token authentication without
    RAY_AUTH_MODE=token raises ConnectionError) is a one-line KdaugError that names the address
    and the setting, not Ray's traceback."""
    ray = pytest.importorskip("ray")
    from augment.build.executors.ray import RayExecutor

    def refuse(*args, **kwargs):
        if refusal == "authentication":
            raise ray.exceptions.AuthenticationError("InvalidAuthToken: token is missing\nmore")
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    executor = RayExecutor(AugmentConfig(mlm="none"), workers=1, address="10.0.0.1:6379")
    with pytest.raises(KdaugError) as err:
        next(executor.map_unordered(iter([]), lambda rows: None))
    message = str(err.value)
    assert "\n" not in message
    assert "10.0.0.1:6379" in message and "RAY_AUTH_MODE=token" in message
