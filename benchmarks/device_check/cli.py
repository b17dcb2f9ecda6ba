"""The device check: one command that measures kdaug on a GPU machine and writes what it saw.

    python -m benchmarks.device_check [--out DIR] [--dry-run] [--parts a,b]   (make device-check)

Parts, each in its own process with its own time cap (a part that fails, hangs or runs out of
memory is recorded as failed and the others still run; the check exits 1 if any failed):
  gpu_tests        pytest -m gpu: the CUDA and bf16 paths of augment, adapt-mlm and distill
  augment          kdaug exact and fast mode against the official per-word TinyBERT algorithm,
                   BERT-base-shaped masked LM, same device, GPU utilisation from nvidia-smi
  augment_workers  `kdaug augment` with K = 1, 2, 4, 8 workers per device
  distill          steps/s of a TinyBERT4 student from a BERT-base teacher, fp32 and bf16
                   autocast, and CPU-vs-device fp32 loss parity on a fixed batch
Writes device_check.json, device_check.md and a log per part to --out (default $OUT, else
bench-out/device-check). --dry-run runs every part at toy sizes on the CPU, in this process.

On a GPU machine with no network and only torch/transformers installed: first, where PyPI is
reachable, `python -m benchmarks.device_check.bundle` (bench-out/device-bundle, about 40 MB);
copy the repository with that folder to the GPU machine; there, in the repository,
`python3 -m benchmarks.device_check --out DIR` (or `make device-check`) unpacks the bundle into
$TMPDIR and runs. Commit DIR's device_check.json under benchmarks/results/device/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.device_check import environment
from benchmarks.device_check.bundle import BUNDLE
from benchmarks.device_check.part import in_process
from benchmarks.device_check.sizes import sizes
from benchmarks.paths import REPO, shared_assets

PARTS = ("gpu_tests", "augment", "augment_workers", "distill")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.device_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    default_out = os.environ.get("OUT") or str(REPO / "bench-out" / "device-check")
    ap.add_argument("--out", type=Path, default=Path(default_out), help="default $OUT")
    ap.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated among {PARTS}")
    ap.add_argument("--bundle", type=Path, default=BUNDLE, help="the device bundle's folder")
    ap.add_argument("--assets", type=Path, default=None, help="default: bundle's, else shared")
    ap.add_argument(
        "--isolate",
        choices=["auto", "yes", "no"],
        default="auto",
        help="each part in its own process (auto: yes, except with --dry-run)",
    )
    args = ap.parse_args(argv)
    args.in_process = args.isolate == "no" or (args.isolate == "auto" and args.dry_run)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        ap.error(f"unknown part(s) {unknown}; choose among {list(PARTS)}")
    return args


def assets_dir(args: argparse.Namespace) -> Path:
    if args.assets is not None:
        return args.assets
    bundled = args.bundle / "assets"
    return bundled if bundled.is_dir() else shared_assets()


def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "cuda": torch.version.cuda,
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
    }
    if info["gpus"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run_part(name: str, args: argparse.Namespace, work: Path, assets: Path, cap: float) -> dict:
    """The part in its own process, killed at `cap` seconds (in this process with --dry-run,
    which then imports torch once); its result, whatever happened, with status ok / failed and
    the reason."""
    result = work / f"{name}.json"
    log = args.out / f"{name}.log"
    t0 = time.monotonic()
    if args.in_process:
        code = in_process(name, result, work, assets, cap, args.dry_run)
        log.write_text("(run in the check's own process: see its output)\n")
    else:
        cmd = [sys.executable, "-m", "benchmarks.device_check.part", name, "--result", str(result)]
        cmd += ["--work", str(work), "--assets", str(assets), "--cap", str(cap)]
        cmd += ["--dry-run"] if args.dry_run else []
        with open(log, "w") as f:
            try:
                proc = subprocess.run(
                    cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, timeout=cap
                )
                code = proc.returncode
            except subprocess.TimeoutExpired:
                code = None
    seconds = round(time.monotonic() - t0, 1)
    part: dict[str, Any] = {"steps": {}}
    if result.is_file():
        part = json.loads(result.read_text())
    for step in part["steps"].values():
        if step.get("status") == "running":
            step.update(status="failed", error=f"stopped at the part's {cap:.0f} s cap")
    failed = [k for k, v in part["steps"].items() if v.get("status") == "failed"]
    if code is None:
        part["error"] = f"stopped at its {cap:.0f} s cap"
    elif code != 0 and not failed and "error" not in part:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        part["error"] = f"exited {code}: {' | '.join(tail)}"
    part["status"] = "failed" if failed or "error" in part else "ok"
    part.update(seconds=seconds, cap_s=cap)
    return part


def main(argv: list[str] | None = None) -> int:
    from benchmarks.device_check.report import markdown

    args = parse_args(argv)
    t0 = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    note = environment.ensure(args.bundle)
    print(note, flush=True)
    size = sizes(args.dry_run)
    assets = assets_dir(args)
    info = machine()
    if not args.dry_run and not info["gpus"]:
        print("device check: no CUDA GPU is visible; --dry-run runs every part on the CPU")
        return 2
    report: dict[str, Any] = {
        "check": "kdaug device check",
        "dry_run": args.dry_run,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": note,
        "machine": info,
        "parts": {},
    }
    with tempfile.TemporaryDirectory(prefix="kdaug-device-check-") as tmp:
        for name in args.parts:
            print(f"{name} (at most {size.caps[name]:.0f} s) ...", flush=True)
            part = run_part(name, args, Path(tmp), assets, size.caps[name])
            report["parts"][name] = part
            print(f"  {part['status']} in {part['seconds']} s", flush=True)
            report["seconds"] = round(time.monotonic() - t0, 1)
            write(args.out, report, markdown(report))
    report["ok"] = all(p["status"] == "ok" for p in report["parts"].values())
    report["seconds"] = round(time.monotonic() - t0, 1)
    table = markdown(report)
    write(args.out, report, table)
    print(table)
    return 0 if report["ok"] else 1


def write(out: Path, report: dict[str, Any], table: str) -> None:
    from kdaug.files import write_json_atomic, write_text_atomic

    write_json_atomic(out / "device_check.json", report, sort_keys=False)
    write_text_atomic(out / "device_check.md", table)
