"""Sampling builds replacements only for new variants and cases each candidate once: the
variants are those of the plain algorithm, bit for bit."""

import numpy as np
import pytest

from augment import Record
from augment.augmenter import match_case, record_seed
from augment.config import SampleParams
from augment.records import Replacement, Variant

RECORDS = [
    Record("r1", "The movie was really great, and the actors delivered brilliant performances."),
    Record("r2", "She  opened the DOOR and walked in;  nobody noticed.", label="1"),
    Record("r3", "Cats chase mice.", "Dogs bark loudly at strangers.", label="0"),
    Record("r4", "Extraordinarily unbelievable circumstances surrounded the investigation."),
    Record("r5", "A GRIPPING, Funny film about Old friends", "Friends watched it twice ."),
]


def _plain_sample(rec, slots, p, factor):
    """The sampler as written before: every attempt builds its text and replacements."""
    out = [Variant(rec.id, 0, rec.text_a, rec.text_b, rec.label, [])] if p.include_original else []
    usable = [s for s in slots if s.candidates]
    if not usable:
        return out
    rng = np.random.Generator(np.random.PCG64(record_seed(p.seed, rec.id)))
    seen = {(rec.text_a, rec.text_b)}
    made = 0
    for _ in range(p.n * factor):
        if made == p.n:
            break
        draws = rng.random(len(usable))
        picks = rng.integers(0, [len(s.candidates) for s in usable])
        chosen = [
            (s, s.candidates[k]) for s, d, k in zip(usable, draws, picks, strict=True) if d < p.p
        ]
        if not chosen:
            continue
        text_a, reps_a = _plain_apply(rec.text_a, "a", [c for c in chosen if c[0].field == "a"])
        text_b, reps_b = _plain_apply(rec.text_b, "b", [c for c in chosen if c[0].field == "b"])
        if (text_a, text_b) in seen:
            continue
        seen.add((text_a, text_b))
        made += 1
        out.append(Variant(rec.id, made, text_a, text_b, rec.label, reps_a + reps_b))
    return out


def _plain_apply(text, field, chosen):
    if text is None or not chosen:
        return text, []
    parts, reps, pos, length = [], [], 0, 0
    for slot, (cand, source, rank) in sorted(chosen, key=lambda c: c[0].word.start):
        w = slot.word
        keep = text[pos : w.start]
        parts.append(keep)
        length += len(keep)
        new = match_case(w.text, cand)
        parts.append(new)
        reps.append(Replacement(field, length, length + len(new), w.text, new, source, rank))
        length += len(new)
        pos = w.end
    parts.append(text[pos:])
    return "".join(parts), reps


@pytest.mark.parametrize("n, p, seed", [(20, 0.4, 0), (6, 0.9, 1), (50, 0.1, 7), (3, 1.0, 2)])
def test_sampling_gives_the_plain_algorithms_variants(augmenter, n, p, seed):
    params = SampleParams(n=n, p=p, seed=seed)
    slots = augmenter.plan(RECORDS, [params] * len(RECORDS))
    factor = augmenter.config.max_attempts_factor
    made = 0
    for rec, rec_slots in zip(RECORDS, slots, strict=True):
        got = augmenter._sample(rec, rec_slots, params)
        assert got == _plain_sample(rec, rec_slots, params, factor)
        made += len(got) - 1
    assert made > 0


def test_replacement_is_still_a_frozen_dataclass():
    import dataclasses
    import pickle

    r = Replacement("a", 4, 9, "movie", "films", "mlm", 2)
    same = Replacement(
        field="a", start=4, end=9, original="movie", replacement="films", source="mlm", rank=2
    )
    assert r == same and hash(r) == hash(same) and r != dataclasses.replace(r, rank=3)
    assert Replacement(**dataclasses.asdict(r)) == r == pickle.loads(pickle.dumps(r))
    assert [f.name for f in dataclasses.fields(r)] == list(dataclasses.asdict(r))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.start = 5
    with pytest.raises(TypeError):
        Replacement("a", 4, 9, "movie", "films", "mlm")
