"""How many worker processes are worth starting, and how many torch threads each: on CPU from the
cores, the memory left (under a cgroup limit too) and the rows left to do; on GPUs, how many
processes share each device (`workers_per_device`, for local processes and Ray actors alike) and
which device each local process gets (`local_devices`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from augment.config import AugmentConfig
from kdaug.errors import KdaugError
from kdaug.machine import CGROUP, available_cores

log = logging.getLogger(__name__)
MIB, GIB = 1 << 20, 1 << 30


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return None if text == "max" else int(text)
    except (OSError, ValueError):
        return None


def available_memory(root: Path = CGROUP, meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by the room left under a
    cgroup memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`); None when unknown."""
    known = []
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                known.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (
        (root / "memory.max", root / "memory.current"),
        (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes"),
    ):
        limit, used = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and used is not None and limit < 1 << 60:
            known.append(max(0, limit - used))
            break
    return min(known) if known else None


# One worker's resident memory, measured: libraries, spaCy tagger and word vectors about 600 MiB;
# the MLM's weights twice over as float32, about 4.5 times over with their int8 copies.
_WORKER_BASE_BYTES = 700 * MIB
_HUB_MODEL_BYTES = 440 * 1_000_000  # a hub model not on disk yet: assume bert-base
_MEMORY_SHARE = 0.8  # of what is available, the rest left to the coordinator and the system
# Fewest rows a worker process must get for a pool to beat one process. Measured on 2 idle
# cores with the shared MiniLM: a 2-process pool starts 2.5-3 s later than one process (each
# worker imports and loads its own models), and since one process already runs torch on every
# core, the pool adds 1.4x on MLM rows (about 1.9x on word-vector rows): it breaks even near
# 260 rows a process in exact mode, 780 in fast mode and 600 with word vectors only.
MIN_ROWS_PER_PROCESS = {"vectors": 1000, "fast": 1000, "exact": 400}
# Most worker processes worth sharing one GPU. A worker's CPU side (tagging, candidates, POS
# filter, sampling, writing) costs about 10 ms a sentence, measured with a nearly free masked LM,
# so one process feeds a GPU about 100 sentences/s, while a BERT-base forward serves over 1,000:
# about 8-10 processes keep it busy.
MAX_WORKERS_PER_DEVICE = 8


def worker_bytes(config: AugmentConfig) -> int:
    """An estimate of one worker's resident memory with `config`'s models."""
    if config.mlm.lower() == "none":
        return _WORKER_BASE_BYTES
    from augment.candidates.mlm import int8_wanted
    from kdaug.resolve import resolve_model

    try:
        path = Path(resolve_model(config.mlm))
        weights = [f for f in path.glob("*") if f.suffix in (".safetensors", ".bin")]
        model = sum(f.stat().st_size for f in weights) if path.is_dir() else _HUB_MODEL_BYTES
    except (KdaugError, OSError):
        model = _HUB_MODEL_BYTES
    factor = 4.5 if int8_wanted(config.mlm_quantize, config.mode, "cpu") else 2.0
    return _WORKER_BASE_BYTES + int(model * factor)


def min_rows_per_process(config: AugmentConfig) -> int:
    if config.mlm.lower() == "none":
        return MIN_ROWS_PER_PROCESS["vectors"]
    return MIN_ROWS_PER_PROCESS[config.mode]


@dataclass(frozen=True)
class WorkerPlan:
    """How many CPU worker processes, and torch threads in each, and why."""

    processes: int
    threads: int
    cores: int
    free_bytes: int | None
    limit: str = ""  # what kept the pool smaller than the cores, if anything
    what: str = "workers"  # "workers per device": `processes` share each device

    def describe(self) -> str:
        procs = f"{self.processes} process{'es' if self.processes > 1 else ''}"
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        free = (
            "memory unknown" if self.free_bytes is None else f"{self.free_bytes / GIB:.0f} GiB free"
        )
        why = f"; {self.limit}" if self.limit else ""
        return f"{self.what} auto: {procs} x {threads} ({self.cores} cores, {free}{why})"


def plan_workers(
    config: AugmentConfig,
    cores: int,
    free_bytes: int | None,
    rows: int | None = None,
    shards: int | None = None,
    min_rows: int | None = None,
) -> WorkerPlan:
    """Processes = the cores, fewer when `free_bytes` cannot hold that many workers' models, or
    when the work left (`rows` in `shards`, when known) is too small to share: a process must
    get `min_rows` rows. Threads: the cores shared between the processes."""
    cap, limit = cores, ""
    if free_bytes is not None:
        fits = max(1, int(free_bytes * _MEMORY_SHARE // worker_bytes(config)))
        if fits < cap:
            cap, limit = fits, f"memory for {fits} worker{'s' if fits > 1 else ''}"
    if shards is not None and shards < cap:
        cap, limit = max(1, shards), f"{shards} shard{'s' if shards != 1 else ''} to do"
    if rows is not None:
        need = min_rows or min_rows_per_process(config)
        by_rows = max(1, rows // need)
        if by_rows < cap:
            cap, limit = (
                by_rows,
                f"{rows} rows to do: a process needs {need} to pay for its start-up",
            )
    processes = max(1, cap)
    return WorkerPlan(processes, max(1, cores // processes), cores, free_bytes, limit)


def plan_per_device(
    config: AugmentConfig, devices: int, cores: int, free_bytes: int | None
) -> WorkerPlan:
    """`--workers-per-device auto`: processes per GPU = the cores shared between the `devices`
    (each process needs a core for its CPU side), at most MAX_WORKERS_PER_DEVICE, fewer when the
    memory cannot hold that many workers. `processes` of the plan counts them per device."""
    devices = max(1, devices)
    cap = MAX_WORKERS_PER_DEVICE
    limit = f"{cap} per device keep a GPU busy"
    if cores // devices < cap:
        cap, limit = max(1, cores // devices), f"{cores} cores for {devices} devices"
    if free_bytes is not None:
        fits = int(free_bytes * _MEMORY_SHARE // worker_bytes(config)) // devices
        if fits < cap:
            cap, limit = max(1, fits), f"memory for {max(1, fits) * devices} workers"
    threads = max(1, cores // (cap * devices))
    return WorkerPlan(cap, threads, cores, free_bytes, limit, what="workers per device")


def workers_per_device(
    config: AugmentConfig,
    per_device: int | str | None,
    devices: int,
    cores: int,
    free_bytes: int | None,
    where: str = "",
) -> int:
    """`--workers-per-device` as a count: as given (default 1), or for "auto" the plan of
    `plan_per_device` for `devices` devices, `cores` cores and `free_bytes` (logged, followed by
    `where`)."""
    if per_device != "auto":
        return per_device or 1
    plan = plan_per_device(config, devices, cores, free_bytes)
    log.info("%s%s", plan.describe(), where)
    return plan.processes


def local_devices(
    config: AugmentConfig, workers: int | None, per_device: int | str | None = None
) -> list[str] | None:
    """One device per local worker process. Device auto/cuda with a GPU: `per_device` processes
    on each visible GPU (default 1; "auto": `plan_per_device`), `workers` of them when given
    (filling the GPUs `per_device` at a time, round-robin beyond them). On CPU the one device is
    shared by `workers` (else `per_device`) processes; None when both are left to `--workers
    auto` (AutoExecutor)."""
    device = config.device
    if device in ("auto", "cuda"):
        import torch

        from kdaug.resolve import resolve_device

        if resolve_device(device) == "cuda":
            count = torch.cuda.device_count()
            k = workers_per_device(config, per_device, count, available_cores(), available_memory())
            return gpu_slots(count, k, workers)
        device = "cpu"
    if device == "cpu" and workers is None and per_device in (None, "auto"):
        return None
    if workers:
        return [device] * workers
    return [device] * workers_per_device(
        config, per_device, 1, available_cores(), available_memory()
    )


def gpu_slots(gpus: int, per_device: int, workers: int | None = None) -> list[str]:
    """The device of each worker process: `per_device` on each of `gpus` GPUs in turn, `workers`
    in all (default: every GPU filled)."""
    return [f"cuda:{(i // per_device) % gpus}" for i in range(workers or gpus * per_device)]
