"""Shared pieces of the builder tests: small inputs, the fast settings, and byte comparisons."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from augment.build.build import build
from augment.build.executors import SerialExecutor
from augment.build.manifest import LOCK_NAME
from augment.build.spec import BuildSpec
from augment.config import AugmentConfig
from augment.io.readers import columns_for
from kdaug.manifest import RECORDS_DIR

SENTENCES = [
    "the film is a charming and often moving story about a family",
    "a dull script and tired acting make this movie hard to watch",
    "the director finds real beauty in quiet moments",
    "an ambitious , sprawling epic that never quite comes together",
    "the actors clearly enjoyed making this funny little picture",
    "slow , predictable and ultimately forgettable",
    "a gripping thriller with a clever twist at the end",
    "the music carries the weak plot for a while",
    "it is a bold experiment that rewards patient viewers",
    "nothing here feels fresh or surprising",
    "she gives a warm performance as the lonely teacher",
    "the story wanders and the jokes fall flat",
]
# Settings every test build uses: fast (no masked LM, lexicon POS filter, 3 variants).
SETTINGS = {"mlm": "none", "n": 3, "pos_filter": "lexicon", "device": "cpu"}
CLI_SETTINGS = ["--mlm", "none", "--n", "3", "--pos-filter", "lexicon", "--device", "cpu"]
SHARD_SIZE = 20


def write_sst2(path: Path, rows: int) -> Path:
    """A GLUE SST-2 style tsv of `rows` distinct sentences."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("sentence\tlabel\n")
        for i in range(rows):
            f.write(f"{SENTENCES[i % len(SENTENCES)]} ( take {i} )\t{i % 2}\n")
    return path


def make_spec(input: Path, output: Path, **kw) -> BuildSpec:
    config = AugmentConfig.build(**{**SETTINGS, **kw.pop("config", {})})
    kw.setdefault("columns", columns_for("sst2"))
    kw.setdefault("task", "sst2")
    kw.setdefault("shard_size", SHARD_SIZE)
    return BuildSpec(input=str(input), output=output, config=config, **kw)


def build_with(spec: BuildSpec, augmenter) -> dict:
    """Build in this process with an already loaded Augmenter."""
    return build(spec, executor=SerialExecutor(spec.config, augmenter))


class _StopAfter(SerialExecutor):
    def __init__(self, config, augmenter, shards: int) -> None:
        super().__init__(config, augmenter)
        self.shards = shards

    def map_unordered(self, tasks, progress):
        for k, result in enumerate(super().map_unordered(tasks, progress), start=1):
            yield result
            if k == self.shards:
                raise KeyboardInterrupt


def build_until(spec: BuildSpec, augmenter, shards: int) -> None:
    """A build stopped (as by Ctrl-C) once `shards` shards are recorded: unfinished."""
    try:
        build(spec, executor=_StopAfter(spec.config, augmenter, shards))
    except KeyboardInterrupt:
        return
    raise AssertionError(f"the build finished before {shards} shards")


def shard_bytes(out: Path) -> dict[str, bytes]:
    """Every shard and rejects file of an output, by relative path."""
    files = sorted((out / "data").glob("*.parquet")) + sorted((out / "rejects").glob("*.jsonl"))
    return {str(f.relative_to(out)): f.read_bytes() for f in files}


def kdaug_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kdaug.cli", *args]


def read_tsv(path: Path) -> list[list[str]]:
    """As the TinyBERT scripts read it: tab-delimited, no quote character."""
    with open(path, encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t", quotechar=None))


def start_build(
    input: Path, out: Path, log: Path, *extra: str, shard_size: int = SHARD_SIZE
) -> subprocess.Popen:
    """`kdaug augment` with the test settings in a child process; its output goes to `log` (a
    file, not a pipe that nobody reads and that could fill up and stall the build)."""
    cmd = kdaug_cmd("augment", str(input), "-o", str(out), "--task", "sst2", *CLI_SETTINGS)
    cmd += ["--shard-size", str(shard_size), *extra]
    with open(log, "ab") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, preexec_fn=_as_typed)


def _as_typed() -> None:
    """The child starts with SIGINT's default action, as a command typed at a terminal does: a
    test runner started in the background of a script inherits SIGINT ignored, and kdaug keeps an
    ignored SIGINT ignored (as the shell asked), which would make a Ctrl-C test deaf."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def lock_holder(out: Path) -> dict | None:
    """What the lock file of `out` says about its holder (None: no lock file, or not written)."""
    try:
        return json.loads((out / LOCK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def recorded(out: Path) -> int:
    """How many shards `out` records as finished: its manifest's entries and, while the build
    runs, its completion records (0 while there is no manifest)."""
    try:
        names = set(json.loads((out / "manifest.json").read_text())["shards"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    return len(names | {p.stem for p in (out / RECORDS_DIR).glob("part-*.json")})


def wait_until(ready, proc: subprocess.Popen, log: Path, what: str, timeout: float = 180.0):
    """Poll `ready()` (an event the build reports: a lock file, a manifest entry) while `proc`
    runs; the timeout is only a bound against hanging, never the expected moment."""
    deadline = time.monotonic() + timeout
    while not (value := ready()):
        assert proc.poll() is None, f"the build ended before {what}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"the build never got to {what}:\n{log.read_text()}"
        time.sleep(0.005)
    return value
