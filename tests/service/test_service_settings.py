"""Service settings from the environment, `kdaug serve` flags and errors, logging format."""

from __future__ import annotations

import json
import logging

import pytest

from kdaug.cli import build_parser, main
from kdaug.cli.serve import load_settings
from kdaug.errors import KdaugError
from service.logs import JsonFormatter
from service.settings import ServiceSettings
from service.state import augment_config


def test_environment_settings_with_prefix(monkeypatch):
    monkeypatch.setenv("KDAUG_API_KEYS", " key-one, key-two ,")
    monkeypatch.setenv("KDAUG_CORS_ORIGINS", "https://a.example")
    monkeypatch.setenv("KDAUG_MICRO_BATCHING", "false")
    monkeypatch.setenv("KDAUG_MAX_ITEMS", "5")
    monkeypatch.setenv("KDAUG_MLM", "none")
    s = ServiceSettings()
    assert s.api_keys == ["key-one", "key-two"]
    assert s.cors_origins == ["https://a.example"]
    assert (s.micro_batching, s.max_items, s.mlm) == (False, 5, "none")
    monkeypatch.setenv("KDAUG_API_KEYS", "")
    assert ServiceSettings().api_keys == []


def test_flags_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("KDAUG_DEVICE", "cuda")
    monkeypatch.setenv("KDAUG_MLM", "from-env")
    args = build_parser().parse_args(["serve", "--device", "cpu", "--no-micro-batching"])
    s = load_settings(args)
    assert (s.device, s.mlm, s.micro_batching) == ("cpu", "from-env", False)


def test_bad_environment_values_are_one_line_errors(monkeypatch):
    monkeypatch.setenv("KDAUG_MAX_ITEMS", "0")
    with pytest.raises(KdaugError, match="KDAUG_MAX_ITEMS"):
        load_settings(build_parser().parse_args(["serve"]))


def test_serve_fails_before_binding_when_a_model_is_unusable(tmp_path, capsys):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    code = main(["serve", "--mlm", str(folder), "--port", "9"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("kdaug: error:") and "not-a-model" in err and "\n" not in err


def test_yaml_augment_settings_under_explicit_service_settings(tmp_path):
    path = tmp_path / "augment.yaml"
    path.write_text("top_k: 7\nmlm: from-yaml\nvectors: none\n", encoding="utf-8")
    cfg = augment_config(ServiceSettings(augment_config=path, vectors="glove-6b-50d"))
    assert (cfg.top_k, cfg.mlm, cfg.vectors) == (7, "from-yaml", "glove-6b-50d")
    assert cfg.batch_size == ServiceSettings().batch_max_records


def test_json_log_lines():
    record = logging.LogRecord("kdaug", logging.INFO, __file__, 1, "ready in %d s", (3,), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "ready in 3 s" and line["level"] == "info"


@pytest.mark.parametrize("value", [" ", ",", " , ,"])
def test_api_keys_set_but_holding_no_key_stop_the_start(monkeypatch, capsys, value):
    monkeypatch.setenv("KDAUG_API_KEYS", value)
    with pytest.raises(KdaugError, match="KDAUG_API_KEYS"):
        load_settings(build_parser().parse_args(["serve"]))
    code = main(["serve", "--mlm", "none", "--port", "9"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("kdaug: error:") and "\n" not in err
    assert "KDAUG_API_KEYS" in err


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_serve_refuses_a_port_out_of_range_in_one_line(capsys, port):
    code = main(["serve", "--mlm", "none", "--port", port])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("kdaug: error:") and "\n" not in err, err
    assert "--port" in err and port in err


def test_serve_refuses_a_port_it_cannot_bind_in_one_line(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        code = main(["serve", "--mlm", "none", "--port", port])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("kdaug: error:") and "\n" not in err, err
    assert port in err


def test_serve_with_a_config_that_is_not_utf8_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "augment.yaml"
    path.write_bytes(b"top_k: 7\n# caf\xe9\n")
    code = main(["serve", "--mlm", "none", "--config", str(path), "--port", "9"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("kdaug: error:") and "\n" not in err, err
    assert "augment.yaml" in err


def test_serve_exits_in_one_line_when_the_vectors_cannot_load(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "vectors.txt"
    bad.write_bytes(b"\x00\x01 not vectors\nat all\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kdaug.cli", "serve", "--mlm", "none", "--vectors", str(bad),
         "--device", "cpu", "--port", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert lines[-1].startswith("kdaug: error:") and "vectors.txt" in lines[-1]
    assert "Traceback" not in proc.stderr and "Uvicorn running" not in proc.stderr


def test_settings_of_the_limits_come_from_the_environment(monkeypatch):
    for name, value in {
        "MAX_REQUEST_WORK": "5000", "MAX_RESPONSE_BYTES": "2000000", "BATCH_MAX_WORDS": "300",
        "HEADER_TIMEOUT_S": "3", "BODY_TIMEOUT_S": "4", "MAX_CONNECTIONS": "9",
        "DRAIN_TIMEOUT_S": "7", "KEEP_ALIVE_S": "2",
    }.items():  # fmt: skip
        monkeypatch.setenv(f"KDAUG_{name}", value)
    s = ServiceSettings()
    assert (s.max_request_work, s.max_response_bytes, s.batch_max_words) == (5000, 2_000_000, 300)
    assert (s.header_timeout_s, s.body_timeout_s, s.max_connections) == (3, 4, 9)
    assert (s.drain_timeout_s, s.keep_alive_s) == (7, 2)


class BrokenAugmenter:
    """Loads, but fails its warm-up batch."""

    def __init__(self, augmenter) -> None:
        self.config = augmenter.config

    def versions(self):
        return {"kdaug": "test"}

    def augment(self, records, params):
        raise RuntimeError("the model broke during warm-up")


@pytest.mark.parametrize("warmup", [False, True])
def test_the_ready_line_says_warmed_up_only_after_a_warm_up(serve, caplog, warmup):
    with caplog.at_level(logging.INFO, logger="service.state"), serve(warmup=warmup):
        pass
    ready = [r.getMessage() for r in caplog.records if "; ready (" in r.getMessage()]
    assert len(ready) == 1
    assert ready[0].startswith("models loaded and warmed up;" if warmup else "models loaded;")


def test_serve_stops_with_one_line_when_the_warm_up_fails(augmenter):
    from service.app import create_app
    from service.server import bind, serve

    app = create_app(ServiceSettings(warmup=True), augmenter=BrokenAugmenter(augmenter))
    sock = bind("127.0.0.1", 0)
    with pytest.raises(KdaugError, match="the model broke during warm-up") as info:
        serve(app, sock, log_level="warning")
    assert "\n" not in str(info.value)


def cgroup(tmp_path, **files: str):
    for name, text in files.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "400000 100000\n"}, 4.0),
        ({"cpu__cpu.cfs_quota_us": "-1\n", "cpu__cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu__cpu.cfs_quota_us": "200000\n", "cpu__cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu.max": "garbage"}, None),
        ({}, None),
    ],
)
def test_cgroup_cpu_quota_v2_and_v1(tmp_path, files, limit):
    from kdaug.machine import cgroup_cpu_limit

    assert cgroup_cpu_limit(cgroup(tmp_path, **files)) == limit


def test_available_cores_are_the_affinity_capped_by_the_quota(tmp_path, monkeypatch):
    import os

    from kdaug.machine import available_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2, 3, 4, 5}, raising=False)
    assert available_cores(cgroup(tmp_path / "none")) == 6
    assert available_cores(cgroup(tmp_path / "big", **{"cpu.max": "800000 100000"})) == 6
    assert available_cores(cgroup(tmp_path / "two", **{"cpu.max": "250000 100000"})) == 2
    assert available_cores(cgroup(tmp_path / "tiny", **{"cpu.max": "50000 100000"})) == 1


def test_model_threads_setting_then_omp_then_the_cores(monkeypatch):
    import service.settings

    monkeypatch.setattr(service.settings, "available_cores", lambda: 5)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert ServiceSettings().model_threads() == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert ServiceSettings().model_threads() == 3
    monkeypatch.setenv("KDAUG_TORCH_THREADS", "2")
    assert ServiceSettings().model_threads() == 2
    monkeypatch.delenv("KDAUG_TORCH_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "not-a-number")
    assert ServiceSettings().model_threads() == 5


def test_mode_and_threads_flags(monkeypatch):
    monkeypatch.setenv("KDAUG_MODE", "exact")
    args = build_parser().parse_args(["serve", "--mode", "fast", "--torch-threads", "3"])
    s = load_settings(args)
    assert (s.mode, s.model_threads()) == ("fast", 3)
    monkeypatch.delenv("KDAUG_MODE")
    assert ServiceSettings().mode == "exact"  # the default: the CLI's answers (docs/service.md)


BLAS = ("openblas", "mkl")


def _pools() -> dict[str, int]:
    """Threads of each BLAS library loaded in this process (several of one kind: the most)."""
    from threadpoolctl import threadpool_info

    out: dict[str, int] = {}
    for lib in threadpool_info():
        if lib["internal_api"] in BLAS:
            out[lib["internal_api"]] = max(out.get(lib["internal_api"], 0), lib["num_threads"])
    return out


def test_kdaug_serve_gives_the_blas_pools_the_model_threads(tiny_mlm_dir, monkeypatch):
    """numpy's BLAS (the POS tagger's matrix products) starts a thread per core, a container's
    CPU quota ignored as by torch's default: `kdaug serve` caps it at the model threads in its
    own process, unless the user set the pool's own variable."""
    import torch
    from threadpoolctl import threadpool_limits

    from kdaug.cli.serve import load_augmenter

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    cfg = augment_config(ServiceSettings(mlm=str(tiny_mlm_dir)))
    torch_threads = torch.get_num_threads()
    try:
        with threadpool_limits(limits=2, user_api="blas"):  # as on a machine of 2 cores or more
            assert set(_pools().values()) == {2}, "no BLAS loaded, or it would not take 2 threads"
            load_augmenter(ServiceSettings(torch_threads=1), cfg)
            assert set(_pools().values()) == {1}, _pools()
            monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
            with threadpool_limits(limits=2, user_api="blas"):
                load_augmenter(ServiceSettings(torch_threads=1), cfg)
                assert _pools().get("openblas", 2) == 2, _pools()
    finally:
        torch.set_num_threads(torch_threads)
