"""Run outputs: metrics.json and the training curves PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kdaug.files import write_json_atomic


def write_metrics(out_dir: Path, metrics: dict[str, Any]) -> Path:
    path = out_dir / "metrics.json"
    write_json_atomic(path, metrics, sort_keys=False, default=float)
    return path


def plot_curves(path: Path, histories: dict[str, list[dict[str, Any]]], primary: str) -> Path:
    """One row per stage: training loss by step (left) and the dev metric (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s, h in histories.items() if h]
    fig, axes = plt.subplots(
        max(1, len(stages)), 2, figsize=(10, 3.2 * max(1, len(stages))), squeeze=False
    )
    for row, stage in zip(axes, stages, strict=False):
        train = [h for h in histories[stage] if "loss" in h]
        dev = [h for h in histories[stage] if "dev" in h]
        row[0].plot([h["step"] for h in train], [h["loss"] for h in train], lw=1)
        row[0].set(title=f"{stage}: training loss", xlabel="step", ylabel="loss")
        if dev:
            for name in dev[0]["dev"]:
                row[1].plot(
                    [h["step"] for h in dev],
                    [h["dev"][name][primary] for h in dev],
                    marker="o",
                    label=name,
                )
            row[1].legend()
            row[1].set(title=f"{stage}: dev {primary}", xlabel="step")
        else:
            row[1].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
