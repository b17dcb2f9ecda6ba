"""`--executor ray` on a local Ray instance: same bytes, manifest and resume as local runs."""

from __future__ import annotations

import json
import shutil

import pytest

from augment.build.build import build
from tests.augment.build.support import make_spec, shard_bytes


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
