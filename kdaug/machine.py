"""How many CPU cores this process may use: its CPU affinity, capped by a cgroup CPU quota
(a container's `--cpus`), which `os.cpu_count()` and torch's default both ignore; and capping
the BLAS / OpenMP thread pools (numpy's and torch's) to a number of threads."""

from __future__ import annotations

import math
import os
from collections.abc import Collection
from pathlib import Path

# The device settings every command accepts (validated by kdaug.settings.device_name).
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"

CGROUP = Path("/sys/fs/cgroup")
# The variables that size the BLAS / OpenMP pools of a process that has yet to load them, and
# the threadpoolctl API of each, for a process that has.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
THREAD_POOLS = dict(zip(THREAD_VARS, ("openmp", "openblas", "mkl"), strict=True))


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


def cap_thread_pools(threads: int, apis: Collection[str] = tuple(THREAD_POOLS.values())):
    """Cap the libraries of `apis` (default: BLAS and OpenMP) loaded in this process at
    `threads` threads (OpenMP's count is the calling thread's, BLAS's the process's): what
    THREAD_VARS do for a process that has yet to load them. A library whose variable the user
    set is left as it is. Returns threadpoolctl's limiter: a context manager, and
    `restore_original_limits()` gives the counts back."""
    from threadpoolctl import ThreadpoolController

    unset = [api for var, api in THREAD_POOLS.items() if os.environ.get(var) is None]
    chosen = [api for api in unset if api in apis]
    return ThreadpoolController().select(internal_api=chosen).limit(limits=threads)
