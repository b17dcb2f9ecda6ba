"""Where training runs: device, autocast precision, and torchrun's process group (DDP)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from kdaug.resolve import resolve_device


@dataclass
class Runtime:
    """One process's view: its device, rank and world size, and how to autocast."""

    device: torch.device
    rank: int = 0
    world: int = 1
    dtype: torch.dtype | None = None  # autocast dtype; None = full precision

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """Sum of a tensor over all processes (itself when alone)."""
        if self.distributed:
            value = value.clone()
            dist.all_reduce(value)
        return value


def _autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def setup_runtime(device: str, precision: str) -> Runtime:
    """Join torchrun's process group when launched by it (NCCL on GPUs, gloo on CPUs), and pick
    this process's device (cuda:LOCAL_RANK under torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    dev = torch.device(resolve_device(device))
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        dev = torch.device("cuda", local if dev.index is None else dev.index)
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            "nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world
        )
    return Runtime(dev, rank, world, _autocast_dtype(dev, precision))


def teardown_runtime(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()
