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
    """Paths inside the repository or its `../shared` folder relative to the repository, the
    interpreter as `python`: what is written into the results does not name this machine's
    directories. Other paths stay as they are, wherever the checkout lives (its parent may hold
    unrelated folders, as /tmp holds pytest's)."""
    text = str(value)
    if text == sys.executable:
        return "python"
    if os.path.isabs(text):
        path = Path(text)
        for root in (REPO, REPO.parent / "shared"):
            if path == root or root in path.parents:
                return os.path.relpath(text, REPO)
    return text
