"""The short markdown table of a device check: one row per measured figure."""

from __future__ import annotations

from typing import Any


def _util(step: dict[str, Any]) -> str:
    u = step.get("gpu_util") or {}
    if not u.get("samples"):
        return ""
    return f"GPU {u['mean']:.0f}% mean, {u['steady']:.0f}% steady"


def _rows(name: str, part: dict[str, Any]) -> list[tuple[str, str, str]]:
    steps = part.get("steps", {})
    rows: list[tuple[str, str, str]] = []
    for step_name, step in steps.items():
        status = step.get("status")
        if status != "ok":
            why = step.get("error") or step.get("reason") or ""
            rows.append((f"{name}: {step_name}", status or "?", why))
            continue
        if name == "gpu_tests":
            value = (
                f"{step.get('tests', 0) - step.get('failed', 0) - step.get('skipped', 0)} passed"
            )
            rows.append((name, value, f"{step.get('skipped', 0)} skipped; {step.get('note', '')}"))
        elif "sentences_per_s" in step:
            value = f"{step['sentences_per_s']:.3g} sentences/s"
            rows.append((f"{name}: {step_name}", value, _util(step)))
        elif "rows_per_s" in step:
            value = f"{step['rows_per_s']:.3g} rows/s"
            note = f"{step['wall_s']} s wall, {step['seconds_load']} s loading; {_util(step)}"
            rows.append((f"{name}: {step_name}", value, note))
        elif "steps_per_s" in step:
            value = f"{step['steps_per_s']:.3g} steps/s"
            rows.append((f"{name}: {step_name}", value, f"{step['examples_per_s']} examples/s"))
        elif "max_relative_difference" in step:
            value = f"{step['max_relative_difference']:.1e}"
            rows.append((f"{name}: {step_name}", value, f"relative, tolerance {step['tolerance']}"))
    for key, label in (("speedup_over_official", "x official"), ("bf16_speedup", "x fp32")):
        for what, ratio in part.get(key, {}).items():
            rows.append((f"{name}: {what}", f"{ratio}{label.split()[0]}", label))
    if part.get("error"):
        rows.append((name, "failed", part["error"]))
    return rows


def markdown(report: dict[str, Any]) -> str:
    m = report.get("machine", {})
    where = m.get("gpu") or f"CPU only ({m.get('cpus')} cores)"
    kind = "dry run (toy sizes, CPU)" if report.get("dry_run") else "full sizes"
    lines = [
        f"# kdaug device check: {where}, {kind}",
        "",
        f"torch {m.get('torch')}, CUDA {m.get('cuda')}, {report.get('seconds', 0)} s in all",
        "",
        "| part | result | note |",
        "| --- | --- | --- |",
    ]
    for name, part in report.get("parts", {}).items():
        lines += [f"| {a} | {b} | {c} |" for a, b, c in _rows(name, part)]
        lines.append(
            f"| {name} | {part['status']} | {part['seconds']} s of {part['cap_s']:.0f} s |"
        )
    if "ok" in report:
        lines += ["", "every part ok" if report["ok"] else "SOME PART FAILED"]
    return "\n".join(lines) + "\n"
