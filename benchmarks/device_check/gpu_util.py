"""GPU utilisation sampled by `nvidia-smi` in a background process while a part runs; each
measured run reads the samples of its own time window."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import threading
import time
from typing import Any

COMMAND = [
    "nvidia-smi",
    "--query-gpu=utilization.gpu",
    "--format=csv,noheader,nounits",
    "-lms",
    "200",
]


class GpuSampler:
    """`with GpuSampler() as gpu: t0 = time.monotonic(); ...; gpu.window(t0, time.monotonic())`.
    Without nvidia-smi (CPU machines) every window says why it has no samples."""

    def __init__(self, command: list[str] | None = None) -> None:
        self.command = command or COMMAND
        self.samples: list[tuple[float, float]] = []  # (monotonic time, percent)
        self.unavailable: str | None = None
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        if shutil.which(self.command[0]) is None:
            self.unavailable = f"{self.command[0]} not found"
            return self
        self._proc = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            # one line per GPU and sample: with several GPUs the samples mix them (the check
            # runs on one)
            try:
                self.samples.append((time.monotonic(), float(line.split(",")[0])))
            except ValueError:
                continue

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Utilisation (percent) between two time.monotonic() readings: the mean over the whole
        window, and `steady`, the mean over its middle 60% (start-up and drain left out)."""
        if self.unavailable:
            return {"samples": 0, "unavailable": self.unavailable}
        values = [v for t, v in self.samples if start <= t <= end]
        if not values:
            return {"samples": 0, "unavailable": "no samples in the window"}
        cut = len(values) // 5
        middle = values[cut : len(values) - cut] or values
        return {
            "samples": len(values),
            "mean": round(statistics.fmean(values), 1),
            "steady": round(statistics.fmean(middle), 1),
            "max": max(values),
        }
