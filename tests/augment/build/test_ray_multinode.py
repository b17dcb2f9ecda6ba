"""docs/ray.md's two-node recipe, run on one machine: a head and a second node started with
`ray start` (token authentication on, each node with its own temporary folder and one CPU),
then `kdaug augment --executor ray --address` against them, then both nodes stopped.

Slow (two Ray nodes start in 20-90 s on 2 cores): `pytest -m slow tests/augment/build/test_ray_multinode.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.augment.build.support import (
    CLI_SETTINGS,
    build_with,
    make_spec,
    shard_bytes,
    write_sst2,
)
from tests.service.support import free_port, lines_of, wait_line

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
START_TIMEOUT = 240  # seconds for a node to start on a busy 2-core machine


def start_node(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """`ray start ... --block` in its own process group (stopped by stop_node, never by `ray
    stop`, which would stop every Ray node of the machine)."""
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", *args, "--block"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = lines_of(proc)
    try:
        wait_line(lines, "Ray runtime started", START_TIMEOUT)
    except AssertionError:
        stop_node(proc)
        raise
    return proc


def stop_node(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # `ray start --block` stops its node's processes
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left


def test_two_nodes_with_token_authentication_build_and_export(tmp_path, augmenter):
    # Ray's socket paths must stay short: its temporary folders go under /tmp, not tmp_path
    root = Path(tempfile.mkdtemp(prefix="kdray-", dir="/tmp"))
    token = tmp_path / "ray_token"
    token.write_text(secrets.token_hex(32))
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1"]
    nodes: list[subprocess.Popen] = []
    try:
        head = ["--head", "--port", str(port), "--include-dashboard", "false"]
        nodes.append(start_node([*head, *common, "--temp-dir", str(root / "head")], env))
        second = ["--address", address, *common, "--temp-dir", str(root / "node2")]
        nodes.append(start_node(second, env))

        rows = 40
        data = write_sst2(tmp_path / "train.tsv", rows)
        out = tmp_path / "out"  # absolute: the nodes write there (shared storage)
        flags = ["--executor", "ray", "--address", address, "--workers", "2"]
        argv = [str(BIN / "kdaug"), "augment", str(data), "--task", "sst2", "-o", str(out)]
        argv += [*CLI_SETTINGS, "--shard-size", "10", *flags]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"{rows} rows in = {rows} records + 0 rejected" in done.stdout + done.stderr

        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["complete"] is True
        # one actor per node (each node has one CPU): both nodes ran shards
        for node in ("head", "node2"):
            logs = (root / node / "session_latest" / "logs").glob("worker-*.out")
            assert any("ShardActor" in p.read_text(errors="replace") for p in logs), node
        # the same bytes as one process
        build_with(make_spec(data, tmp_path / "local", shard_size=10), augmenter)
        assert shard_bytes(out) == shard_bytes(tmp_path / "local")
        exported = tmp_path / "train_aug.tsv"
        assert (
            subprocess.run(
                [str(BIN / "kdaug"), "export", str(out), "-o", str(exported)],
                capture_output=True,
                timeout=300,
            ).returncode
            == 0
        )
        assert len(exported.read_text().splitlines()) == 1 + rows * 4  # header + 1 + n=3
    finally:
        for proc in reversed(nodes):
            stop_node(proc)
        shutil.rmtree(root, ignore_errors=True)
