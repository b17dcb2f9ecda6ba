"""`pytest -m gpu` over the GPU tests (tests/**/*_gpu.py): the CUDA and bf16 paths of augment,
adapt-mlm and distill. Without CUDA they skip, and the step says so."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

from benchmarks.device_check.part import Context
from benchmarks.paths import REPO


def gpu_test_files() -> list[str]:
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*_gpu.py"))


def run(ctx: Context) -> None:
    with ctx.step("pytest -m gpu") as rec:
        files = gpu_test_files()
        if not files:
            rec.update(status="skipped", reason="no tests/**/test_*_gpu.py files")
            return
        junit = ctx.work / "gpu-tests.xml"
        cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]
        cmd += ["-o", "addopts=-ra", f"--junitxml={junit}", *files]
        proc = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, timeout=max(5.0, ctx.left() - 3)
        )
        (ctx.work / "gpu-tests.log").write_text(proc.stdout + proc.stderr)
        counts = junit_counts(junit) if junit.is_file() else {}
        rec.update(files=files, exit_code=proc.returncode, **counts)
        rec["summary"] = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
        if proc.returncode != 0:
            failed = counts.get("failures", [])
            raise AssertionError(f"pytest exited {proc.returncode}: {rec['summary']}; {failed}")
        if counts.get("tests", 0) and counts.get("skipped", 0) == counts.get("tests"):
            rec["note"] = "every GPU test skipped (no CUDA here)"


def junit_counts(path) -> dict:
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    failures = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return {
        "tests": int(suite.get("tests", 0)),
        "failed": int(suite.get("failures", 0)) + int(suite.get("errors", 0)),
        "skipped": int(suite.get("skipped", 0)),
        "failures": failures,
    }
