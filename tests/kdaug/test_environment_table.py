"""The README's one table of environment variables lists every variable the code reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("kdaug", "augment", "distill", "service", "benchmarks", "tests")
SCRIPTS = ("scripts/*.sh", "docker/entrypoint.sh", "Makefile")
READ = re.compile(r"""(?:environ\.get\(|getenv\(|environ\[)\s*["']([A-Z][A-Z0-9_]*)["']""")
SHELL_READ = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)")
# Read only as every program does: passed on to child processes, the system's temp folder, the
# shell's own.
GENERIC = {"PATH", "PYTHONPATH", "TMPDIR", "BASH_SOURCE"}
TABLE_START = "Every environment variable kdaug reads:"


def variables_read() -> set[str]:
    from kdaug.machine import THREAD_VARS
    from service.settings import ServiceSettings

    names = {"KDAUG_" + name.upper() for name in ServiceSettings.model_fields}
    names |= set(THREAD_VARS)
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(READ.findall(path.read_text(encoding="utf-8")))
    for pattern in SCRIPTS:
        for path in ROOT.glob(pattern):
            names |= set(SHELL_READ.findall(path.read_text(encoding="utf-8")))
    return names - GENERIC


def variables_in_the_readme_table() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(TABLE_START) == 1
    rows = text.split(TABLE_START, 1)[1].strip().split("\n\n", 1)[0].splitlines()
    assert rows[0].startswith("| Variable |")
    return {
        name for row in rows[2:] for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])
    }


def test_every_environment_variable_read_is_in_the_readme_table():
    read, listed = variables_read(), variables_in_the_readme_table()
    assert {"KDAUG_PROGRESS_INTERVAL", "KDAUG_CACHE", "NO_COLOR", "KDAUG_MLM"} <= read
    assert sorted(read - listed) == []
    assert sorted(listed - read) == []  # nor does it list one that nothing reads
