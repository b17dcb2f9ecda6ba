"""`--workers auto`: processes and threads from the cores, memory and rows; `--workers-per-device`:
processes sharing a device; the same bytes as one worker; fast mode's int8 calibration paid once
(shipped to workers, cached on disk); model paths made absolute for workers."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from augment.build.build import build
from augment.build.executors import (
    AutoExecutor,
    ProcessExecutor,
    SerialExecutor,
    make_executor,
    portable_config,
)
from augment.build.executors.sizing import (
    GIB,
    MIB,
    available_memory,
    gpu_slots,
    plan_per_device,
    plan_workers,
    worker_bytes,
)
from augment.candidates import quant
from augment.config import AugmentConfig
from kdaug.errors import KdaugError
from kdaug.machine import available_cores
from tests.augment.build.support import make_spec, shard_bytes

NO_MLM = AugmentConfig.build(mlm="none", device="cpu")


@pytest.fixture
def calibration_cache(tmp_path, monkeypatch) -> Path:
    """An empty disk cache and empty in-memory calibration state for one test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("KDAUG_CACHE", str(cache))
    monkeypatch.setattr(quant, "_memory", {})
    monkeypatch.setattr(quant, "_received", set())
    monkeypatch.setattr(quant, "_fingerprints", {})
    monkeypatch.setattr(quant, "counts", quant.Counter())
    return cache / quant.CALIBRATION_DIR


# --- the plan ----------------------------------------------------------------------------------
def test_plan_uses_every_core_when_the_work_fills_them():
    plan = plan_workers(NO_MLM, cores=4, free_bytes=32 * GIB, rows=100_000, shards=10)
    assert (plan.processes, plan.threads) == (4, 1)
    assert plan.describe() == "workers auto: 4 processes x 1 thread (4 cores, 32 GiB free)"


def test_plan_keeps_small_work_in_one_process_with_every_thread():
    plan = plan_workers(NO_MLM, cores=2, free_bytes=23 * GIB, rows=300, shards=15)
    assert (plan.processes, plan.threads) == (1, 2)
    assert plan.describe() == (
        "workers auto: 1 process x 2 threads (2 cores, 23 GiB free; 300 rows to do: a process "
        "needs 1000 to pay for its start-up)"
    )
    exact = AugmentConfig.build(mlm="none", device="cpu").model_copy(update={"mlm": "x"})
    assert plan_workers(exact, cores=2, free_bytes=None, rows=290, shards=15).processes == 1
    assert plan_workers(exact, cores=8, free_bytes=None, rows=2000, shards=15).processes == 5


def test_plan_is_capped_by_shards_and_memory():
    assert plan_workers(NO_MLM, cores=8, free_bytes=None, rows=10**6, shards=3).processes == 3
    one_worker = worker_bytes(NO_MLM)
    tight = plan_workers(NO_MLM, cores=8, free_bytes=3 * one_worker, rows=10**6, shards=64)
    assert (tight.processes, tight.threads) == (2, 4)  # 80% of 3 workers' memory holds 2
    assert "memory for 2 workers" in tight.describe()
    assert plan_workers(NO_MLM, cores=8, free_bytes=one_worker // 2).processes == 1


def test_worker_memory_grows_with_the_mlm_and_its_int8_copy(tiny_mlm_dir):
    base = worker_bytes(NO_MLM)
    exact = worker_bytes(AugmentConfig.build(mlm=str(tiny_mlm_dir), device="cpu"))
    fast = worker_bytes(AugmentConfig.build(mlm=str(tiny_mlm_dir), mode="fast", device="cpu"))
    assert base < exact < fast
    assert base == 700 * MIB


def test_cores_follow_the_cgroup_quota(tmp_path):
    affinity = len(__import__("os").sched_getaffinity(0))
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("max 100000\n")
    assert available_cores(v2) == affinity
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert available_cores(v2) == 1  # 1.5 cores: threads beyond one would be throttled
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cores(v1.parent) == affinity
    assert available_cores(tmp_path / "none") == affinity


def test_memory_is_meminfo_capped_by_the_cgroup_limit(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 64000000 kB\nMemAvailable:   8000000 kB\n")
    none = tmp_path / "none"
    assert available_memory(none, meminfo) == 8_000_000 * 1024
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text(f"{4 * GIB}\n")
    (v2 / "memory.current").write_text(f"{1 * GIB}\n")
    assert available_memory(v2, meminfo) == 3 * GIB
    (v2 / "memory.max").write_text("max\n")
    assert available_memory(v2, meminfo) == 8_000_000 * 1024
    v1 = tmp_path / "v1" / "memory"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text(f"{2**63 - 4096}\n")  # no limit
    (v1 / "memory.usage_in_bytes").write_text(f"{GIB}\n")
    assert available_memory(v1.parent, meminfo) == 8_000_000 * 1024
    assert available_memory(none, tmp_path / "no-meminfo") is None


# --- choosing the executor ----------------------------------------------------------------------
def test_workers_auto_is_the_default_on_cpu(tmp_path, sst2_input):
    for workers in (None, "auto"):
        spec = make_spec(sst2_input, tmp_path / "o", workers=workers)
        assert isinstance(make_executor(spec), AutoExecutor)
    assert isinstance(make_executor(make_spec(sst2_input, tmp_path, workers=1)), SerialExecutor)
    two = make_executor(make_spec(sst2_input, tmp_path, workers=2))
    assert isinstance(two, ProcessExecutor) and two.devices == ["cpu", "cpu"]
    for bad in (0, -1, "many", True, 1.5):
        with pytest.raises(KdaugError, match="--workers must be auto"):
            make_executor(make_spec(sst2_input, tmp_path, workers=bad))


def test_auto_keeps_a_small_input_in_one_process(tmp_path, sst2_input, reference, caplog):
    executor = AutoExecutor(make_spec(sst2_input, tmp_path).config, cores=2, free_bytes=8 * GIB)
    with caplog.at_level(logging.INFO, logger="augment.build"):
        build(make_spec(sst2_input, tmp_path / "out"), executor=executor)
    assert executor.plan.processes == 1 and executor.plan.threads == 2
    assert isinstance(executor.inner, SerialExecutor)
    assert "workers auto: 1 process x 2 threads (2 cores, 8 GiB free; 200 rows to do" in caplog.text
    assert shard_bytes(tmp_path / "out") == shard_bytes(reference)


def test_auto_pool_matches_one_worker_and_ships_the_calibration(
    tmp_path, sst2_input, tiny_mlm_dir, calibration_cache
):
    """Two worker processes in fast mode (int8): the coordinator calibrates once, the workers
    receive the ranges (and do not calibrate), and the shards are the bytes of one worker's."""
    fast = {"mlm": str(tiny_mlm_dir), "mode": "fast"}
    spec = make_spec(sst2_input, tmp_path / "auto", config=fast)
    executor = AutoExecutor(spec.config, cores=2, free_bytes=8 * GIB, min_rows=10)
    build(spec, executor=executor)
    assert executor.plan.processes == 2 and isinstance(executor.inner, ProcessExecutor)
    loads = executor.inner.worker_loads
    assert len(loads) == 2 and [w["int8"] for w in loads] == ["shipped", "shipped"]
    assert quant.counts == {"calibrated": 1}  # here, once, for both workers
    assert len(list(calibration_cache.glob("*.json"))) == 1

    one = make_spec(sst2_input, tmp_path / "one", config=fast)
    build(one, executor=SerialExecutor(one.config))
    assert quant.counts == {"calibrated": 1, "memory": 1}
    assert shard_bytes(tmp_path / "auto") == shard_bytes(tmp_path / "one")


# --- several workers per device ------------------------------------------------------------------
def test_workers_per_device_fill_each_gpu_in_turn():
    assert gpu_slots(2, 1) == ["cuda:0", "cuda:1"]
    assert gpu_slots(2, 2) == ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]
    assert gpu_slots(2, 3, workers=4) == ["cuda:0", "cuda:0", "cuda:0", "cuda:1"]
    assert gpu_slots(2, 1, workers=3) == ["cuda:0", "cuda:1", "cuda:0"]  # --workers alone


def test_auto_workers_per_device_from_the_cores_and_memory():
    plan = plan_per_device(NO_MLM, devices=8, cores=128, free_bytes=None)
    assert (plan.processes, plan.threads) == (8, 2)  # enough to keep a GPU busy
    assert plan_per_device(NO_MLM, devices=8, cores=16, free_bytes=None).processes == 2
    assert plan_per_device(NO_MLM, devices=4, cores=2, free_bytes=None).processes == 1
    tight = plan_per_device(NO_MLM, devices=2, cores=64, free_bytes=10 * worker_bytes(NO_MLM))
    assert tight.processes == 4 and "memory for 8 workers" in tight.describe()
    assert tight.describe().startswith("workers per device auto: 4 processes x 8 threads")


def test_two_workers_sharing_the_cpu_write_the_bytes_of_one(tmp_path, sst2_input, reference):
    spec = make_spec(sst2_input, tmp_path / "out", workers_per_device=2)
    executor = make_executor(spec)
    assert isinstance(executor, ProcessExecutor) and executor.devices == ["cpu", "cpu"]
    build(spec, executor=executor)
    assert len(executor.worker_loads) == 2
    assert shard_bytes(tmp_path / "out") == shard_bytes(reference)  # built by one worker
    one = make_executor(make_spec(sst2_input, tmp_path, workers_per_device=1))
    assert isinstance(one, SerialExecutor)
    assert isinstance(
        make_executor(make_spec(sst2_input, tmp_path, workers_per_device="auto")), AutoExecutor
    )
    for bad in (0, "many"):
        with pytest.raises(KdaugError, match="--workers-per-device must be auto"):
            make_executor(make_spec(sst2_input, tmp_path, workers_per_device=bad))


def test_the_flag_parses(tmp_path):
    from kdaug.cli import build_parser

    args = build_parser().parse_args(
        ["augment", "in.tsv", "-o", "out", "--workers-per-device", "auto"]
    )
    assert args.workers_per_device == "auto"
    args = build_parser().parse_args(
        ["augment", "in.tsv", "-o", "out", "--workers-per-device", "3"]
    )
    assert args.workers_per_device == 3


def test_workers_get_absolute_model_paths(tmp_path, monkeypatch, tiny_mlm_dir):
    (tmp_path / "mlm").symlink_to(tiny_mlm_dir)
    (tmp_path / "vectors.txt").write_text("word 0.1 0.2\n")
    monkeypatch.chdir(tmp_path)
    config = AugmentConfig.build(mlm="mlm", vectors="vectors.txt", device="cpu")
    shipped = portable_config(config)
    assert shipped.mlm == str(tmp_path / "mlm")  # the link kept: the path every node knows
    assert shipped.vectors == str(tmp_path / "vectors.txt")
    assert shipped.tagger == config.tagger  # a package name
    for name in ("default", "minilm-packaged", "none"):
        (tmp_path / name).mkdir()  # a folder of that name does not turn a name into a path
        assert portable_config(AugmentConfig.build(mlm=name)).mlm == name


# --- calibration once ---------------------------------------------------------------------------
def _fast_mlm(path):
    from augment.candidates.mlm import MaskedLMCandidates

    return MaskedLMCandidates(str(path), device="cpu", top_k=8, mode="fast")


QUERY_TEXTS = [
    "She opened the door and walked into the quiet kitchen.",
    "The old captain painted boats near the bright harbour.",
]


def _predictions(mlm) -> list:
    import re

    from augment.candidates.masking import MaskQuery

    queries = [
        MaskQuery(t, m.start(), m.end()) for t in QUERY_TEXTS for m in re.finditer(r"\w{4,}", t)
    ]
    return [[w for w, _ in c] for c in mlm.predict(queries)]


def _scales(mlm) -> dict:
    return {
        n: (m.scale, m.zero_point)
        for n, m in mlm.model.named_modules()
        if isinstance(m, quant.StaticInt8Linear)
    }


def test_cached_ranges_give_the_outputs_of_calibrating_each_time(tiny_mlm_dir, calibration_cache):
    first = _fast_mlm(tiny_mlm_dir)
    assert first.calibration == "calibrated"
    again = _fast_mlm(tiny_mlm_dir)
    assert again.calibration == "memory"
    quant._memory.clear()  # as a new process would start
    from_disk = _fast_mlm(tiny_mlm_dir)
    assert from_disk.calibration == "disk"
    assert quant.counts == {"calibrated": 1, "memory": 1, "disk": 1}
    for path in calibration_cache.glob("*.json"):  # the calibrate-each-time path, once more
        path.unlink()
    quant._memory.clear()
    fresh = _fast_mlm(tiny_mlm_dir)
    assert fresh.calibration == "calibrated"
    assert _scales(first) == _scales(from_disk) == _scales(fresh) and _scales(first)
    assert _predictions(first) == _predictions(from_disk) == _predictions(fresh)


def test_a_second_process_reads_the_calibration_from_disk(tiny_mlm_dir, calibration_cache):
    here = _fast_mlm(tiny_mlm_dir)
    assert here.calibration == "calibrated"
    code = (
        "import json, sys\n"
        "from augment.candidates import quant\n"
        "from tests.augment.build.test_builder_workers import _fast_mlm, _predictions\n"
        "mlm = _fast_mlm(sys.argv[1])\n"
        "print(json.dumps({'source': mlm.calibration, 'counts': dict(quant.counts),"
        " 'predictions': _predictions(mlm)}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tiny_mlm_dir)],
        cwd=Path(__file__).resolve().parents[3],  # the repository root: `tests` imports from it
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["source"] == "disk" and report["counts"] == {"disk": 1}
    assert report["predictions"] == _predictions(here)


def test_a_damaged_or_foreign_cache_entry_is_recalibrated(tiny_mlm_dir, calibration_cache, caplog):
    _fast_mlm(tiny_mlm_dir)
    (entry,) = calibration_cache.glob("*.json")
    good = entry.read_text()
    for damage in ("{not json", json.dumps({"key": entry.stem, "ranges": {"x.dense": [0, 1]}})):
        entry.write_text(damage)
        quant._memory.clear()
        with caplog.at_level(logging.WARNING, logger="augment.candidates.quant"):
            assert _fast_mlm(tiny_mlm_dir).calibration == "calibrated"
        assert "ignoring the" in caplog.text
        assert json.loads(entry.read_text()) == json.loads(good)  # rewritten whole


def test_the_key_follows_the_model_files_and_the_settings(tmp_path, tiny_mlm_dir):
    from augment.candidates.mlm import calibration_settings

    settings = calibration_settings("fast", 0.2, 64, 128, "masked")
    key = quant.calibration_key(quant.files_fingerprint(tiny_mlm_dir), settings)
    assert key == quant.calibration_key(quant.files_fingerprint(tiny_mlm_dir), dict(settings))
    other = calibration_settings("fast", 0.3, 64, 128, "masked")
    assert quant.calibration_key(quant.files_fingerprint(tiny_mlm_dir), other) != key
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in tiny_mlm_dir.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    assert quant.files_fingerprint(copy) == quant.files_fingerprint(tiny_mlm_dir)
    (copy / "checkpoint.pt").write_bytes(b"optimizer state")  # not read by from_pretrained
    assert quant.files_fingerprint(copy) == quant.files_fingerprint(tiny_mlm_dir)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-6}))
    assert quant.files_fingerprint(copy) != quant.files_fingerprint(tiny_mlm_dir)


def test_concurrent_writers_leave_one_complete_file(calibration_cache):
    ranges = {f"layer.{i}": (-float(i), float(i) + 0.5) for i in range(200)}
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            start.wait()
            for _ in range(5):
                quant.save_ranges("k" * 32, ranges)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [p.name for p in calibration_cache.iterdir()] == ["k" * 32 + ".json"]  # no temp files
    quant._memory.clear()
    found, where = quant.find_ranges("k" * 32, set(ranges))
    assert where == "disk" and found == ranges


def test_an_unwritable_cache_is_a_warning(tmp_path, tiny_mlm_dir, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("KDAUG_CACHE", str(blocker))
    monkeypatch.setattr(quant, "_memory", {})
    with caplog.at_level(logging.WARNING, logger="augment.candidates.quant"):
        mlm = _fast_mlm(tiny_mlm_dir)
    assert mlm.quantized and mlm.calibration == "calibrated"
    assert "cannot cache the int8 calibration" in caplog.text
