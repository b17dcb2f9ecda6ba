"""kdaug.files: a published file is the old one or the complete new one, never a mix or a leftover
temporary file; completion markers match only the settings they were made under; and a checkpoint
killed while it is written leaves the previous checkpoint loadable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kdaug import files
from kdaug.files import (
    atomic_dir,
    atomic_path,
    is_temp_name,
    marker_settings,
    read_marker,
    write_bytes_atomic,
    write_json_atomic,
    write_marker,
    write_text_atomic,
)

REPO = Path(__file__).resolve().parents[2]


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ---- publish: old or new ------------------------------------------------------------------------
def test_a_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_json_atomic(path, {"b": 1, "a": 2})
    assert path.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    write_json_atomic(path, {"b": 1, "a": 2}, sort_keys=False, default=float)
    assert path.read_text() == '{\n  "b": 1,\n  "a": 2\n}\n'
    write_text_atomic(path, "new")
    assert path.read_text() == "new"
    assert _listing(tmp_path) == ["out.json"]


def test_a_failure_during_the_write_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.pt"
    write_bytes_atomic(path, b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(path) as tmp:
        tmp.write_bytes(b"half of the ne")
        assert is_temp_name(tmp.name) and tmp.parent == tmp_path
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert _listing(tmp_path) == ["state.pt"]


def test_a_failing_rename_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metrics.json"
    write_text_atomic(path, "old")

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        write_text_atomic(path, "new")
    assert path.read_text() == "old"
    assert _listing(tmp_path) == ["metrics.json"]


def test_a_folder_is_replaced_whole_and_a_failed_save_leaves_the_old_one(tmp_path: Path) -> None:
    out = tmp_path / "best"
    with atomic_dir(out) as tmp:
        (tmp / "model.safetensors").write_text("weights 1")
        (tmp / "config.json").write_text("config 1")
    with atomic_dir(out) as tmp:
        assert is_temp_name(tmp.name) and tmp.parent == tmp_path and not list(tmp.iterdir())
        (tmp / "model.safetensors").write_text("weights 2")
    assert _listing(out) == ["model.safetensors"]  # the new save only: no config of the old one
    assert (out / "model.safetensors").read_text() == "weights 2"

    with pytest.raises(RuntimeError, match="disk full"), atomic_dir(out) as tmp:
        (tmp / "model.safetensors").write_text("weights 3, half writ")
        raise RuntimeError("disk full")
    assert (out / "model.safetensors").read_text() == "weights 2"
    assert _listing(tmp_path) == ["best"]


def test_threads_writing_one_file_leave_one_complete_version(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    versions = [json.dumps({"writer": i, "pad": "x" * 50_000}) for i in range(8)]
    start, errors = threading.Barrier(len(versions)), []

    def write(text: str) -> None:
        try:
            start.wait()
            for _ in range(10):
                write_text_atomic(path, text)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert path.read_text() in versions
    assert _listing(tmp_path) == ["cache.json"]


# ---- completion markers -------------------------------------------------------------------------
def test_a_marker_matches_only_the_settings_it_was_made_under(tmp_path: Path) -> None:
    path = tmp_path / "steps" / "train.json"
    path.parent.mkdir()
    settings = {"steps": 10, "sizes": (100, 200)}
    assert read_marker(path, settings) is None and marker_settings(path) is None
    write_marker(path, settings, {"name": "train", "settings": None, "seconds": 1.5})
    record = json.loads(path.read_text())
    assert list(record) == ["name", "settings", "seconds"]  # the record's order, settings in place
    assert read_marker(path, settings) == record  # a tuple is the list JSON read back
    assert read_marker(path, {**settings, "steps": 20}) is None
    assert read_marker(path, settings, key="other") is None
    assert marker_settings(path) == {"steps": 10, "sizes": [100, 200]}


def test_a_marker_under_its_own_key_and_unreadable_markers(tmp_path: Path) -> None:
    path = tmp_path / "kdaug_mlm.json"
    write_marker(
        path,
        "abc123",
        {"base": "m", "inputs_fingerprint": None, "steps": 3},
        key="inputs_fingerprint",
    )
    assert read_marker(path, "abc123", key="inputs_fingerprint")["steps"] == 3
    assert read_marker(path, "abc124", key="inputs_fingerprint") is None
    for text in ("{half a rec", "[1, 2]", "\ufffe\x00"):
        path.write_text(text)
        assert read_marker(path, "abc123", key="inputs_fingerprint") is None
        assert marker_settings(path, key="inputs_fingerprint") is None


def test_a_file_is_hashed_in_chunks_the_same_as_whole(tmp_path: Path) -> None:
    """sha256_file and hash_file (a digest fed names and files, as model fingerprints do) give
    the hashes of the bytes read whole, across several CHUNK-sized reads."""
    import hashlib

    data = bytes(range(256)) * (2 * files.CHUNK // 256 + 1)
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    assert len(data) > 2 * files.CHUNK
    assert files.sha256_file(path) == hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256(b"weights.bin\0")
    with open(path, "rb") as f:
        assert files.hash_file(digest, f) is digest
    assert digest.hexdigest() == hashlib.sha256(b"weights.bin\0" + data).hexdigest()


# ---- a checkpoint killed while it is written ------------------------------------------------------
# Saves checkpoint 1, then checkpoint 2 with an object whose pickling (inside torch.save, the
# state file's temporary copy open) says "writing" on stdout and blocks until the process is killed.
CHILD = r"""
import sys
import threading
from pathlib import Path

import torch

from distill import checkpoint as ckpt


class InsideTheWrite:
    def __reduce__(self):
        print("writing", flush=True)
        threading.Event().wait()


root = Path(sys.argv[1])
ckpt.seed_everything(0)
for step in (1, 2):
    directory = ckpt.step_dir(root, step)
    ckpt.save_rank_rng(directory, 0)
    state = {"step": step, "weights": torch.arange(1000.0) * step}
    if step == 2:
        state["hook"] = InsideTheWrite()
    ckpt.save_state(directory, state, keep=1)
    print(f"saved {step}", flush=True)
"""


def test_a_killed_checkpoint_write_leaves_the_previous_checkpoint_loadable(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from distill import checkpoint as ckpt

    root = tmp_path / "checkpoints"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(300, proc.kill)  # only if the child never reports: fails below
    watchdog.start()
    try:
        said = [proc.stdout.readline(), proc.stdout.readline()]  # waits on the child's events
        assert said == ["saved 1\n", "writing\n"], proc.stderr.read() if proc.poll() else said
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    first, second = ckpt.step_dir(root, 1), ckpt.step_dir(root, 2)
    assert not (second / ckpt.STATE).exists()
    assert any(is_temp_name(p.name) for p in second.iterdir())  # killed inside the write
    assert ckpt.latest(root) == first

    saved_rng = ckpt.rng_state()
    try:
        state = ckpt.load_state(first, 0)
        assert state["step"] == 1 and torch.equal(state["weights"], torch.arange(1000.0))
        expected = torch.rand(3, generator=torch.Generator().manual_seed(0))
        assert torch.equal(torch.rand(3), expected)  # the RNG of the first checkpoint is back

        # Resuming, the run saves checkpoint 2 again: it is published and the first one pruned.
        ckpt.save_rank_rng(second, 0)
        ckpt.save_state(second, {"step": 2}, keep=1)
        assert ckpt.latest(root) == second and ckpt.load_state(second, 0)["step"] == 2
        assert not first.exists()
    finally:
        ckpt.set_rng_state(saved_rng)
