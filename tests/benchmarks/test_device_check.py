"""The device check: its dry run (every part at toy sizes on the CPU) and how it records a part
that fails."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from benchmarks.device_check import cli, environment
from benchmarks.device_check.sizes import DRY
from benchmarks.paths import REPO


def test_dry_run_runs_every_part(shared_assets: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.device_check", "--dry-run", "--out", str(out)],
        cwd=REPO,
        env={**env, "KDAUG_SHARED_ASSETS": str(shared_assets)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads((out / "device_check.json").read_text())
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert report["ok"] and report["dry_run"] and set(report["parts"]) == set(cli.PARTS)
    parts = report["parts"]
    for part in parts.values():
        assert part["status"] == "ok"
        assert all(s["status"] in ("ok", "skipped") for s in part["steps"].values())
    tests = parts["gpu_tests"]["steps"]["pytest -m gpu"]
    assert tests["tests"] >= 5 and tests["skipped"] == tests["tests"]  # no CUDA here
    augment = parts["augment"]
    for step in ("kdaug_exact", "kdaug_fast", "official"):
        assert augment["steps"][step]["sentences_per_s"] > 0
        assert augment["steps"][step]["gpu_util"]["samples"] == 0  # no nvidia-smi here
    assert set(augment["speedup_over_official"]) == {"exact", "fast"}
    workers = parts["augment_workers"]["steps"]
    assert workers["K=1"]["status"] == "ok" and workers["K=1"]["rows"] == DRY.worker_rows
    if not parts["augment_workers"]["workers_per_device_flag"]:
        assert workers["K=2"]["status"] == "skipped"
        assert "--workers-per-device" in workers["K=2"]["reason"]
    else:
        assert workers["K=2"]["status"] == "ok"
    distill = parts["distill"]["steps"]
    for step in ("intermediate_fp32", "prediction_fp32", "intermediate_bf16", "prediction_bf16"):
        assert distill[step]["steps_per_s"] > 0 and distill[step]["finite"]
    assert distill["loss_parity_fp32"]["within_tolerance"]
    table = (out / "device_check.md").read_text()
    assert "dry run" in table and "every part ok" in table
    assert table.strip() in proc.stdout


def test_a_part_stopped_at_its_cap_is_a_failure_and_the_report_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    capped = dataclasses.replace(DRY, caps={**DRY.caps, "gpu_tests": 0.05})
    monkeypatch.setattr(cli, "sizes", lambda dry_run: capped)
    out = tmp_path / "out"
    code = cli.main(["--dry-run", "--isolate", "yes", "--parts", "gpu_tests", "--out", str(out)])
    assert code == 1
    report = json.loads((out / "device_check.json").read_text())
    part = report["parts"]["gpu_tests"]
    assert part["status"] == "failed" and "cap" in part["error"] and not report["ok"]
    assert "SOME PART FAILED" in (out / "device_check.md").read_text()


def test_missing_modules_come_from_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "build" / "site"
    (site / "kdaug_bundle_probe").mkdir(parents=True)
    (site / "kdaug_bundle_probe" / "__init__.py").write_text("VALUE = 42\n")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    with tarfile.open(bundle / "site.tar.xz", "w:xz") as tar:
        tar.add(site, arcname="site")
    monkeypatch.setattr(environment, "NEEDED", ("kdaug_bundle_probe",))
    monkeypatch.setattr(environment, "SITE", tmp_path / "unpacked")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "")
    monkeypatch.delitem(sys.modules, "kdaug_bundle_probe", raising=False)
    assert "kdaug_bundle_probe from" in environment.ensure(bundle)
    import kdaug_bundle_probe

    assert kdaug_bundle_probe.VALUE == 42
    monkeypatch.delitem(sys.modules, "kdaug_bundle_probe")
    child = [sys.executable, "-c", "import kdaug_bundle_probe, kdaug.files"]
    subprocess.run(child, check=True, cwd=tmp_path)  # the repository is on PYTHONPATH too
    assert environment.ensure(bundle) == "environment: every module found"
    monkeypatch.setattr(environment, "NEEDED", ("kdaug_no_such_module",))
    with pytest.raises(SystemExit, match="kdaug_no_such_module.*device_check.bundle"):
        environment.ensure(tmp_path / "no-bundle")


def test_gpu_sampler_reads_the_samples_of_a_window(tmp_path: Path) -> None:
    import time

    from benchmarks.device_check.gpu_util import GpuSampler

    fake = tmp_path / "fake-nvidia-smi"
    fake.write_text("#!/bin/sh\nfor v in 10 50 90 70 30; do echo $v; done\nexec sleep 60\n")
    fake.chmod(0o755)
    with GpuSampler([str(fake)]) as gpu:
        deadline = time.monotonic() + 30
        while len(gpu.samples) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        got = gpu.window(0, time.monotonic())
    assert got == {"samples": 5, "mean": 50.0, "steady": 70.0, "max": 90.0}
    assert gpu.window(0, 0)["samples"] == 0
    with GpuSampler(["kdaug-no-such-tool"]) as none:
        assert none.window(0, time.monotonic()) == {
            "samples": 0,
            "unavailable": "kdaug-no-such-tool not found",
        }


def test_full_sizes_without_a_gpu_stop_at_once_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert cli.main(["--out", str(tmp_path)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "device check: no CUDA GPU is visible; --dry-run runs every part on the CPU"
    assert not (tmp_path / "device_check.json").exists()
