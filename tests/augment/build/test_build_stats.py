"""AugmentStats: summable counts, the manifest entry's flat form and stats.json's form."""

from __future__ import annotations

from collections import Counter

from augment.build.stats import AugmentStats, build_stats


def _stats(**kw) -> AugmentStats:
    return AugmentStats(
        records=kw.get("records", 2),
        variants=kw.get("variants", 7),
        words=Counter(kw.get("words", {"vectors": 3, "none": 1})),
        replacements=Counter(kw.get("replacements", {"vectors": 5})),
        candidates_pos_rejected=kw.get("rejected", 11),
    )


def test_sum_and_difference_are_per_count():
    a, b = _stats(), _stats(records=1, words={"mlm": 2}, replacements={"mlm": 4}, rejected=1)
    total = a + b
    assert (total.records, total.variants, total.candidates_pos_rejected) == (3, 14, 12)
    assert total.words == Counter({"vectors": 3, "mlm": 2, "none": 1})
    assert total.replacements == Counter({"vectors": 5, "mlm": 4})
    assert total - b == a and total - a == b
    assert sum([a, b], AugmentStats()) == total


def test_manifest_entry_holds_the_counts_that_are_not_zero():
    s = _stats()
    assert s.to_entry() == {
        "words_vectors": 3,
        "words_none": 1,
        "replacements_vectors": 5,
        "candidates_pos_rejected": 11,
    }
    entry = {"records": s.records, "variants": s.variants, "stats": s.to_entry()}
    assert AugmentStats.from_entry(entry) == s
    assert s["words_vectors"] == 3 and s["words_mlm"] == 0


def test_stats_json_form_names_every_source_and_reads_back():
    s = _stats()
    d = s.to_dict()
    assert d["records"] == 2 and d["variants_out"] == 7
    assert d["words"] == {"mlm": 0, "vectors": 3, "wordnet": 0, "none": 1}
    assert d["replacements"] == {"mlm": 0, "vectors": 5, "wordnet": 0}
    assert (d["words_without_candidates"], d["label_fallbacks"]) == (0, 0)
    assert AugmentStats.from_dict(d).to_dict() == d


def test_build_stats_sums_the_shard_entries():
    a, b = _stats(), _stats(records=0, variants=0, words={}, replacements={}, rejected=0)
    entries = [
        {"rows_in": 3, "rows_rejected": 1, "records": a.records, "variants": a.variants,
         "seconds": 0.5, "stats": a.to_entry()},
        {"rows_in": 2, "rows_rejected": 2, "records": 0, "variants": 0, "seconds": 0.25,
         "stats": b.to_entry()},
    ]  # fmt: skip
    stats = build_stats(entries, seconds=2.0, new_rows=5, load_s=1.0)
    assert stats == {
        "shards": 2,
        "rows_in": 5,
        "rows_rejected": 3,
        **(a + b).to_dict(),
        "warnings": {"all_rows_rejected": 0},
        "seconds_shards": 0.75,
        "run": {"seconds_total": 2.0, "seconds_load": 1.0, "rows": 5, "rows_per_s": 2.5},
    }
    assert build_stats(entries[1:], 1.0, 2, 0.0)["warnings"] == {"all_rows_rejected": 1}
