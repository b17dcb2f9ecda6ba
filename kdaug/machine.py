"""How many CPU cores this process may use: its CPU affinity, capped by a cgroup CPU quota
(a container's `--cpus`), which `os.cpu_count()` and torch's default both ignore."""

from __future__ import annotations

import math
import os
from pathlib import Path

# The device settings every command accepts (validated by kdaug.settings.device_name).
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"

CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP) -> float | None:
    """Cores allowed by the cgroup's CPU quota (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), or
    None when there is no quota or no cgroup file to read."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def available_cores(root: Path = CGROUP) -> int:
    """Cores this process can run on: the affinity mask, capped by the cgroup quota (rounded
    down: threads beyond a fractional quota are throttled), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cores = min(cores, math.floor(limit))
    return max(1, cores)
