"""The images' recipes (no Docker engine here): their install step, user, health check and
compose settings, and their entry command, which must start the app and answer /healthz."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from service.settings import ServiceSettings
from tests.service.support import REPO, free_port, spawn, wait_ready

DOCKER = REPO / "docker"
DOCKERFILE = DOCKER / "Dockerfile"  # one image; --build-arg TORCH=cuda for NVIDIA GPUs
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


def test_image_installs_with_the_shared_script_as_a_non_root_user():
    steps = instructions(DOCKERFILE)
    assert args_of(steps, "FROM") == ["python:3.11-slim"]
    runs = args_of(steps, "RUN")
    assert not [r for r in runs if "pip install" in r], "no install outside scripts/install.sh"
    installs = [r for r in runs if "scripts/install.sh" in r]
    assert len(installs) == 2, "the dependencies, then the package, with the Makefile's script"
    assert "--deps-only" in installs[0] and "--cpu" in installs[0]
    assert "--package-only" in installs[1]
    words = [w for w, _ in steps]
    users = args_of(steps, "USER")
    assert users and users[-1] not in ("root", "0")
    user_at = max(i for i, w in enumerate(words) if w == "USER")
    assert steps.index(("RUN", installs[1])) < user_at < words.index("CMD")
    assert any(a.startswith("BAKE_MLM=") for a in args_of(steps, "ARG"))
    assert any("BAKE_MLM" in r and "kdaug adapt-mlm --default" in r for r in runs)


def test_image_layers_keep_the_dependencies_when_the_source_changes():
    steps = instructions(DOCKERFILE)
    deps = next(i for i, (w, r) in enumerate(steps) if w == "RUN" and "--deps-only" in r)
    source = steps.index(("COPY", ". ."))
    # before the dependencies: only the files they are read from
    copied = [r.split()[0] for w, r in steps[:deps] if w == "COPY"]
    assert sorted(copied) == ["pyproject.toml", "scripts/install.sh"]
    assert deps < source < next(i for i, (w, r) in enumerate(steps) if "--package-only" in r)
    # torch's build follows TORCH (cpu by default), and the device the commands use with it
    args = dict(a.split("=", 1) for a in args_of(steps, "ARG") if "=" in a)
    assert args["TORCH"] == "cpu" and '[ "$TORCH" = cpu ]' in steps[deps][1]
    assert any("KDAUG_DEVICE=${TORCH}" in e for e in args_of(steps, "ENV"))


def test_image_health_check_and_command():
    steps = instructions(DOCKERFILE)
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
        for a in args_of(instructions(DOCKERFILE), "ENV")
        if "KDAUG_CACHE=" in a
    )
    for name, service in compose["services"].items():
        assert service["build"]["dockerfile"] == "docker/Dockerfile", name
        env = service["environment"]
        assert env and set(env) <= known, set(env) - known
        assert any(v.endswith(f":{cache}") for v in service["volumes"]), "cache on a volume"
        assert "8000:8000" in service["ports"]
    gpu = compose["services"]["kdaug-gpu"]
    assert gpu["build"]["args"]["TORCH"] == "cuda" and gpu["environment"]["KDAUG_DEVICE"] == "cuda"


def test_dockerignore_keeps_local_state_out():
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv"} <= set(ignored)


def test_entry_command_starts_the_app_and_the_health_check_passes(tiny_mlm_dir):
    steps = instructions(DOCKERFILE)
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


# (KDAUG_MLM, command): whether the entrypoint builds the default MLM before running it
ENTRY_CASES = [
    ("default", "kdaug serve --host 0.0.0.0 --port 8000", True),
    ("default", "kdaug -v serve", True),
    ("default", "kdaug serve --mlm none", False),
    ("default", "kdaug serve --mlm=/models/mine", False),
    ("default", "kdaug serve --help", False),
    ("/models/mine", "kdaug serve", False),
    ("/models/mine", "kdaug serve --mlm default", True),
    ("default", "kdaug augment in.tsv -o out --mlm default", True),
    ("default", "kdaug augment in.tsv -o out --mlm=default --n 3", True),
    ("default", "kdaug augment in.tsv -o out --mlm none", False),
    ("default", "kdaug augment in.tsv -o out", False),  # its --mlm default is a hub name
    ("default", "kdaug sample 'A calm sea.' --mlm default", True),
    ("default", "kdaug sample 'A calm sea.' --mlm default -h", False),
    ("default", "kdaug distill --help", False),
    ("default", "kdaug distill --task sst2 --teacher t --train out -o s", False),
    ("default", "kdaug export out -o train_aug.tsv", False),
    ("default", "kdaug adapt-mlm --default", False),  # it builds the MLM itself
    ("default", "kdaug --version", False),
    ("default", "sh -c true", False),
]


@pytest.mark.parametrize(("mlm", "command", "builds"), ENTRY_CASES)
def test_entrypoint_builds_the_default_mlm_only_for_commands_that_use_it(
    tmp_path, mlm, command, builds
):
    import shlex

    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    fake = bin_dir / "kdaug"  # records each call instead of running kdaug
    fake.write_text('#!/bin/sh\necho "kdaug $*" >> "$CALLS"\n', encoding="utf-8")
    fake.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "CALLS": str(calls),
        "KDAUG_MLM": mlm,
    }
    argv = shlex.split(command)
    done = subprocess.run([str(DOCKER / "entrypoint.sh"), *argv], env=env, timeout=30)
    assert done.returncode == 0
    lines = calls.read_text().splitlines() if calls.exists() else []
    build = ["kdaug adapt-mlm --default"] if builds else []
    assert lines == build + ([" ".join(argv)] if argv[0] == "kdaug" else [])


def test_entrypoint_stops_when_the_mlm_cannot_be_built(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "kdaug"
    fake.write_text(
        '#!/bin/sh\n[ "$1" = adapt-mlm ] && exit 3\necho ran > "$MARK"\n', encoding="utf-8"
    )
    fake.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "MARK": str(tmp_path / "ran"),
        "KDAUG_MLM": "default",
    }
    done = subprocess.run([str(DOCKER / "entrypoint.sh"), "kdaug", "serve"], env=env, timeout=30)
    assert done.returncode == 3 and not (tmp_path / "ran").exists()


def fake_python(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose `python -m pip` records its arguments (and a `-r` file's lines)
    instead of installing; other `python` calls run this interpreter."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "pip-calls"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = -m ] && [ "$2" = pip ]; then\n'
        "  shift 2\n"
        '  echo "pip $*" >> "$CALLS"\n'
        '  prev=""; for a in "$@"; do [ "$prev" = -r ] && cat "$a" >> "$CALLS"; prev="$a"; done\n'
        "  exit 0\n"
        "fi\n"
        # the closing import check (`python -` with no arguments): skipped, it takes seconds
        'if [ "$#" = 1 ] && [ "$1" = - ]; then cat > /dev/null; echo "python -" >> "$CALLS"; exit; fi\n'
        f'exec {sys.executable} "$@"\n',
        encoding="utf-8",
    )
    (bin_dir / "python").chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, "CALLS": str(calls)}
    for name in ("TORCH_SPEC", "PIP_ARGS", "TORCH_INDEX"):
        env.pop(name, None)
    return env, calls


def run_install(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    script = REPO / "scripts" / "install.sh"
    return subprocess.run(
        ["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def cpu_index(tmp_path):
    """A reachable stand-in for the PyTorch CPU wheel index."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    (tmp_path / "index" / "whl" / "cpu" / "torch").mkdir(parents=True)
    (tmp_path / "index" / "whl" / "cpu" / "torch" / "index.html").write_text("<html></html>")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "index"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/whl/cpu"
    server.shutdown()
    server.server_close()


def test_install_cpu_takes_torchs_cpu_build_from_the_cpu_index(tmp_path, cpu_index):
    env, calls = fake_python(tmp_path)
    done = run_install({**env, "TORCH_INDEX": cpu_index}, "--cpu", "--deps-only", "--dev")
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    assert lines[1] == f"pip install --extra-index-url {cpu_index} torch==2.13.0+cpu"
    assert lines[2].startswith("pip install -r ")  # the dependencies, not the package
    assert "transformers>=4.40" in lines and any(x.startswith("pytest") for x in lines)
    assert not [x for x in lines if "--no-deps" in x or str(REPO) in x]


def test_install_cpu_with_the_index_unreachable_falls_back_at_once_and_says_so(tmp_path):
    env, calls = fake_python(tmp_path)
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        index = f"http://127.0.0.1:{s.getsockname()[1]}/whl/cpu"
    done = run_install({**env, "TORCH_INDEX": index}, "--cpu", "--deps-only")
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines()[1] == "pip install torch==2.13.0"
    assert f"{index}/torch/ cannot be reached" in done.stderr
    assert f"pip install torch==2.13.0 --index-url {index}" in done.stderr
    assert "CUDA build" in done.stderr


def test_install_without_cpu_and_the_package_alone(tmp_path):
    env, calls = fake_python(tmp_path)
    assert run_install(env, "--deps-only").returncode == 0
    assert calls.read_text().splitlines()[1] == "pip install torch==2.13.0"
    calls.unlink()
    done = run_install({**env, "TORCH_SPEC": "torch==2.13.0+cu126"}, "--cpu", "--deps-only")
    assert calls.read_text().splitlines()[1] == "pip install torch==2.13.0+cu126", done.stderr
    calls.unlink()
    done = run_install(env, "--package-only", "--dev")
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == [f"pip install --no-deps {REPO}[dev]", "python -"]


@pytest.mark.parametrize(("gpu", "flag"), [(True, False), (False, True)])
def test_make_setup_installs_the_cpu_build_unless_a_gpu_is_present(tmp_path, gpu, flag):
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\nexit {0 if gpu else 1}\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("TORCH", None)
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["make", "-n", "setup", f"VENV={venv}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    (install,) = [x for x in done.stdout.splitlines() if "scripts/install.sh" in x]
    assert ("--cpu" in install.split()) == flag, install
