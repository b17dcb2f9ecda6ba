"""Where the benchmarks find the repository and the shared assets, and how they name paths in
what they write."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def shared_assets() -> Path:
    """$KDAUG_SHARED_ASSETS, else the `shared/assets` folder beside the repository."""
    env = os.environ.get("KDAUG_SHARED_ASSETS")
    return Path(env) if env else REPO.parent / "shared" / "assets"


def shown(value: Any) -> str:
    """Paths beside the repository relative to it, the interpreter as `python`: what is written
    into the results does not name this machine's directories."""
    text = str(value)
    if text == sys.executable:
        return "python"
    if os.path.isabs(text) and REPO.parent in Path(text).parents:
        return os.path.relpath(text, REPO)
    return text
