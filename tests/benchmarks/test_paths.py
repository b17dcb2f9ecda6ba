"""How the benchmarks write paths: relative only inside the checkout and its shared assets, so
that nothing they record depends on where the checkout lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import paths


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout whose parent also holds unrelated folders (as /tmp holds pytest's)."""
    repo = tmp_path / "kdaug"
    monkeypatch.setattr(paths, "REPO", repo)
    monkeypatch.delenv("KDAUG_SHARED_ASSETS", raising=False)
    return repo


def test_paths_in_the_checkout_and_the_shared_assets_are_relative(checkout: Path) -> None:
    assert paths.shown(checkout / "benchmarks" / "results") == "benchmarks/results"
    glue = checkout.parent / "shared" / "assets" / "glue" / "SST-2"
    assert paths.shown(glue) == "../shared/assets/glue/SST-2"


def test_other_paths_beside_the_checkout_are_kept_as_they_are(checkout: Path) -> None:
    other = checkout.parent / "pytest-of-user" / "pytest-1" / "train.tsv"
    assert paths.shown(other) == str(other)
    assert paths.shown(checkout.parent / "kdaug-old" / "x") == str(
        checkout.parent / "kdaug-old" / "x"
    )
