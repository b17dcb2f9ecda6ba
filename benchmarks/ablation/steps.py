"""The ablation's bookkeeping: named steps that run once, are skipped while their settings are
unchanged, refuse (or with --redo, rerun) changed ones and resume interrupted ones; each step's
kdaug commands run in a subprocess logged to steps/<name>.log. steps/<name>.started.json and
steps/<name>.json are kdaug's completion markers (kdaug.files) of the step's settings."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.paths import REPO, shown
from kdaug.errors import KdaugError
from kdaug.files import marker_settings, read_marker, write_marker


class AblationError(KdaugError):
    """A one-line problem for the user (bad option, missing file, changed settings)."""


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: names the setting that changed."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


class Steps:
    """Runs named steps once: a finished step is skipped while its settings are unchanged."""

    def __init__(self, out: Path, env: dict[str, str], redo: bool) -> None:
        self.out, self.env, self.redo = out, env, redo
        self.dir = out / "steps"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.t0 = time.monotonic()
        self.records: dict[str, dict[str, Any]] = {}
        self._commands: list[str] = []
        self._name = ""

    def say(self, name: str, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:8.1f}s] {name}: {message}", flush=True)

    def run(
        self,
        name: str,
        settings: dict[str, Any],
        output: Path | None,
        body: Callable[[bool], dict[str, Any]],
        note: Callable[[dict[str, Any]], str] = lambda _: "",
    ) -> dict[str, Any]:
        """body(resume) -> result. `output` is the directory the step owns (cleared on redo);
        `note` says in a few words what the result was, on the step's progress line."""
        settings = json.loads(json.dumps(settings))
        done, started = self.dir / f"{name}.json", self.dir / f"{name}.started.json"
        if done.is_file() and output is not None and not output.exists():
            done.unlink()  # its output was deleted: run it again
        if (record := read_marker(done, settings)) is not None:
            self.records[name] = {**record, "skipped": True}
            self.say(name, f"done before in {record['seconds']:.1f} s, skipped")
            return record["result"]
        if (finished := marker_settings(done)) is not None:
            self._changed(name, finished, settings)
            done.unlink()
            self._clear(output)
        resume = False
        if (previous := marker_settings(started)) is not None:
            if previous == settings:
                resume = output is not None and output.exists()
            else:
                self._changed(name, previous, settings)
                self._clear(output)
        else:
            self._clear(output)  # left by something else: never mix it in
        write_marker(started, settings)
        self.say(name, "resuming" if resume else "running")
        self._commands, self._name = [], name
        t = time.monotonic()
        result = body(resume)
        seconds = time.monotonic() - t
        record = {
            "name": name,
            "settings": settings,
            "commands": self._commands,
            "resumed": resume,
            "seconds": round(seconds, 1),
            "result": result,
        }
        write_marker(done, settings, record, default=float)
        started.unlink()
        self.records[name] = record
        self.say(name, f"done in {seconds:.1f} s {note(result)}".rstrip())
        return result

    def kdaug(self, *args: Any) -> str:
        """Run one kdaug command; its stdout is returned, both streams go to steps/<name>.log."""
        cmd = [sys.executable, "-m", "kdaug.cli", *(str(a) for a in args)]
        self._commands.append(" ".join(shown(a) for a in cmd))
        log = self.dir / f"{self._name}.log"
        with log.open("a") as err:
            err.write(f"$ {self._commands[-1]}\n")
            err.flush()
            proc = subprocess.run(
                cmd, cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=err, text=True
            )
            err.write(proc.stdout)
        if proc.returncode != 0:
            tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
            raise AblationError(
                f"step {self._name} failed (exit {proc.returncode}); end of {shown(log)}:\n{tail}"
            )
        return proc.stdout

    def _changed(self, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        before, after = flatten(old), flatten(new)
        keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        diff = ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in keys)
        if not self.redo:
            raise AblationError(
                f"step {name} was run with other settings ({diff}); pass --redo to run it "
                "(and the steps that depend on it) again, or choose another --out"
            )
        self.say(name, f"settings changed ({', '.join(keys)}): redoing")

    def _clear(self, output: Path | None) -> None:
        if output is not None and output.exists() and self.out in output.parents:
            shutil.rmtree(output)
