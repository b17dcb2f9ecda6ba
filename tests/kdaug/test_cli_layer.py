"""The command line stays on top: flags are parsed in `kdaug.cli` and typed values go down, so no
module of the packages below it imports `argparse` (a Namespace passed down would need it to be
built in a test or by a Python caller)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports_argparse(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "argparse":
            return True
    return False


def test_no_module_below_the_cli_imports_argparse():
    below = [
        path
        for package in ("kdaug", "augment", "distill", "service")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (ROOT / "kdaug" / "cli") not in path.parents
    ]
    assert len(below) > 50
    offenders = [str(p.relative_to(ROOT)) for p in below if _imports_argparse(p)]
    assert offenders == []
