"""The images' recipes (no Docker engine here): their install step, user, health check and
compose settings, and their entry command, which must start the app and answer /healthz."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from service.settings import ServiceSettings
from tests.service.support import REPO, free_port, spawn, wait_ready

DOCKER = REPO / "docker"
IMAGES = {"Dockerfile": "python:3.11-slim", "Dockerfile.gpu": "nvidia/cuda:"}
SERVE = ["kdaug", "serve", "--host", "0.0.0.0", "--port", "8000"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile; continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def args_of(steps: list[tuple[str, str]], word: str) -> list[str]:
    return [rest for w, rest in steps if w == word]


@pytest.mark.parametrize("name", IMAGES)
def test_image_installs_with_the_shared_script_as_a_non_root_user(name):
    steps = instructions(DOCKER / name)
    base = args_of(steps, "FROM")[-1]
    if base.startswith("${"):  # FROM ${CUDA_IMAGE}: its ARG default
        var = base.strip("${}")
        base = next(a.split("=", 1)[1] for a in args_of(steps, "ARG") if a.startswith(var + "="))
    assert base.startswith(IMAGES[name])
    runs = args_of(steps, "RUN")
    installs = [r for r in runs if "scripts/install.sh" in r]
    assert len(installs) == 1, "one install step, the same script as the Makefile's"
    assert not [r for r in runs if "pip install" in r], "no install outside scripts/install.sh"
    words = [w for w, _ in steps]
    users = args_of(steps, "USER")
    assert users and users[-1] not in ("root", "0")
    user_at = max(i for i, w in enumerate(words) if w == "USER")
    assert steps.index(("RUN", installs[0])) < user_at < words.index("CMD")
    assert any(a.startswith("BAKE_MLM=") for a in args_of(steps, "ARG"))
    assert any("BAKE_MLM" in r and "kdaug adapt-mlm --default" in r for r in runs)


@pytest.mark.parametrize("name", IMAGES)
def test_image_health_check_and_command(name):
    steps = instructions(DOCKER / name)
    (check,) = args_of(steps, "HEALTHCHECK")
    assert "/healthz" in check and "--start-period" in check
    assert json.loads(args_of(steps, "CMD")[-1]) == SERVE
    assert args_of(steps, "EXPOSE") == ["8000"]
    (entry,) = args_of(steps, "ENTRYPOINT")
    script = DOCKER / Path(json.loads(entry)[0]).name
    assert script.is_file() and os.access(script, os.X_OK)


def test_install_script_is_the_makefiles_too():
    makefile = REPO / "Makefile"
    if not makefile.is_file():
        pytest.skip("no Makefile in this checkout")
    assert "scripts/install.sh" in makefile.read_text(encoding="utf-8")


def test_compose_settings_are_service_settings():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    known = {f"KDAUG_{name.upper()}" for name in ServiceSettings.model_fields}
    cache = next(
        a.split("KDAUG_CACHE=")[1].split()[0]
        for a in args_of(instructions(DOCKER / "Dockerfile"), "ENV")
        if "KDAUG_CACHE=" in a
    )
    for name, service in compose["services"].items():
        assert service["build"]["dockerfile"].removeprefix("docker/") in IMAGES, name
        env = service["environment"]
        assert env and set(env) <= known, set(env) - known
        assert any(v.endswith(f":{cache}") for v in service["volumes"]), "cache on a volume"
        assert "8000:8000" in service["ports"]


def test_dockerignore_keeps_local_state_out():
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv"} <= set(ignored)


def test_entry_command_starts_the_app_and_the_health_check_passes(tiny_mlm_dir):
    steps = instructions(DOCKER / "Dockerfile")
    port = str(free_port())
    command = [port if a == "8000" else "127.0.0.1" if a == "0.0.0.0" else a for a in SERVE]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "KDAUG_MLM": str(tiny_mlm_dir),
        "KDAUG_DEVICE": "cpu",
        "KDAUG_LOG_FORMAT": "json",
    }
    proc = spawn([str(DOCKER / "entrypoint.sh"), *command], env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url)
        assert httpx.get(f"{url}/healthz").json() == {"status": "alive"}
        check = json.loads(args_of(steps, "HEALTHCHECK")[0].split("CMD", 1)[1])
        check = [c.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for c in check]
        check[0] = sys.executable
        assert subprocess.run(check, timeout=30).returncode == 0
        r = httpx.post(f"{url}/augment", json={"texts": ["A calm sea."], "n": 1}, timeout=30)
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    # uvicorn shuts down cleanly, then re-raises the signal for the parent to see
    assert proc.returncode in (0, -signal.SIGTERM), out
    messages = [json.loads(x)["message"] for x in out.splitlines() if x.startswith("{")]
    assert any(m.startswith("models loaded") for m in messages)  # JSON log lines
    assert "Application shutdown complete." in messages
