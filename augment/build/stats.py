"""stats.json of a build: the sum of its shards' counts (`augment.stats.AugmentStats`) and the
run's timings."""

from __future__ import annotations

from typing import Any

from augment.stats import AugmentStats


def build_stats(
    entries: list[dict[str, Any]], seconds: float, new_rows: int, load_s: float
) -> dict[str, Any]:
    """stats.json: the counts of the manifest's shard `entries`, and this run's timings."""
    total = sum((AugmentStats.from_entry(e) for e in entries), AugmentStats())
    return {
        "shards": len(entries),
        "rows_in": sum(e["rows_in"] for e in entries),
        "rows_rejected": sum(e["rows_rejected"] for e in entries),
        **total.to_dict(),
        "warnings": {"all_rows_rejected": int(bool(entries) and not total.records)},
        "seconds_shards": round(sum(e["seconds"] for e in entries), 2),
        "run": {
            "seconds_total": round(seconds, 2),
            "seconds_load": round(load_s, 2),
            "rows": new_rows,
            "rows_per_s": round(new_rows / max(seconds, 1e-9), 2),
        },
    }
