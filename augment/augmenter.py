"""Augmenter: records -> variants. No I/O: the builder, the CLI and the service all call it."""

from __future__ import annotations

import gc
import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from augment.candidates.registry import load_sources, missing_hint, routing_order
from augment.candidates.source import CandidateSource, WordInContext
from augment.config import AugmentConfig, SampleParams
from augment.draws import draws
from augment.pos.filter import check_pipeline, keep_agreeing, synonym_rule
from augment.pos.tagger import TaggedText, Tagger, Word
from augment.records import MAX_TEXT_CHARS, Record, Replacement, Variant, text_problem
from augment.stats import AugmentStats
from kdaug import __version__
from kdaug.errors import InputError
from kdaug.settings import ConfigError

if TYPE_CHECKING:
    from augment.candidates.mlm import MaskedLMCandidates
    from augment.candidates.vectors import VectorIndex
    from augment.candidates.wordnet import WordNetCandidates

log = logging.getLogger(__name__)
TEXT_ID = "sample"  # the record id of `augment_text` and `kdaug sample`: it seeds their variants


@dataclass
class Slot:
    """An eligible word of one field and its POS-filtered candidates (word, source, rank)."""

    field: str
    word: Word
    source: str | None
    candidates: list[tuple[str, str, int]]


def check_record(rec: Record) -> None:
    """Raise a one-line InputError naming the record and field that cannot be augmented."""
    if isinstance(rec, str):
        raise TypeError(
            "Augmenter.augment takes Records; for plain text call "
            "Augmenter.augment_text(text, n=5) (or text_b=... for a pair)"
        )
    fields = [("id", str(rec.id)), ("text_a", rec.text_a)]
    if rec.text_b is not None:
        fields.append(("text_b", rec.text_b))
    for name, value in fields:
        why = text_problem(value, None if name == "id" else MAX_TEXT_CHARS)
        if why is not None:
            raise InputError(f"record {rec.id!r}: {name} {why}")


def record_seed(seed: int, record_id: str) -> int:
    """The seed of one record's generator: a function of (global seed, record id) only."""
    digest = hashlib.sha256(f"{seed}\x00{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def check_sources(sources: Sequence[str], loaded: Sequence[str]) -> None:
    """Refuse sources none of which can give a candidate: every record would silently come out
    as its original alone. One missing source among usable ones is fine (vectors-only runs)."""
    if any(s in loaded for s in sources):
        return
    missing = " and ".join(missing_hint(s) for s in sources)
    raise ConfigError(
        f"sources={list(sources)} but {missing}: choose a masked-LM (--mlm) or word vectors "
        "(--vectors), and list it in sources"
    )


def match_case(template: str, word: str) -> str:
    """Give `word` the casing of `template`: UPPER, Title or lower."""
    if len(template) > 1 and template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:].lower()
    return word.lower()


class Augmenter:
    """POS-guided word replacement: masked-LM candidates for single-WordPiece words, word-vector
    neighbours for the others, candidates kept only when they agree with the word's POS. The
    candidate sources are those of `augment.candidates.registry` that the config asks
    for; `mlm`, `vectors` and `sources` (by name) give loaded ones instead."""

    def __init__(
        self,
        config: AugmentConfig | None = None,
        *,
        tagger: Tagger | None = None,
        mlm: MaskedLMCandidates | None = None,
        vectors: VectorIndex | None = None,
        sources: Mapping[str, CandidateSource] | None = None,
    ) -> None:
        self.config = cfg = config or AugmentConfig()
        self.tagger = tagger or Tagger(cfg.tagger, cfg.pos_tags)
        self.sources = load_sources(cfg, {"mlm": mlm, "vectors": vectors, **(sources or {})})
        self._order = routing_order(self.sources)
        check_sources(cfg.sources, self.loaded_sources)
        check_pipeline(self.tagger, cfg.pos_filter)
        self.stats = AugmentStats()
        # What is loaded by now (the imported modules, the models, the tagger's tables: about
        # 500,000 objects) lives as long as the process. Out of the cyclic collector's reach, the
        # full collections that the caches' growth sets off no longer walk all of it: they took
        # about a sixth of the augmenter's own CPU time. (Cyclic garbage among these objects is
        # never collected; reference counting still frees them.)
        gc.freeze()

    # public ------------------------------------------------------------------------------
    @property
    def mlm(self) -> MaskedLMCandidates | None:
        return self.sources.get("mlm")

    @property
    def vectors(self) -> VectorIndex | None:
        return self.sources.get("vectors")

    @property
    def wordnet(self) -> WordNetCandidates | None:
        return self.sources.get("wordnet")

    @property
    def loaded_sources(self) -> tuple[str, ...]:
        """The candidate sources that can give candidates: their model or database is loaded."""
        return tuple(self.sources)

    def versions(self) -> dict[str, str | None]:
        """Identities of the code and models, for manifests and responses."""
        return {
            "kdaug": __version__,
            "tagger": self.tagger.version,
            "mlm": self.mlm.name if self.mlm else None,
            "vectors": self.vectors.name if self.vectors else None,
        }

    def augment(
        self,
        records: Sequence[Record],
        params: SampleParams | Sequence[SampleParams] | None = None,
    ) -> list[list[Variant]]:
        """Variants of each record (variant 0 = the original when asked for). Records that are
        not valid Unicode text are refused (InputError) before any work."""
        for rec in records:
            check_record(rec)
        if params is None or isinstance(params, SampleParams):
            plist = [params or SampleParams.from_config(self.config)] * len(records)
        else:
            plist = list(params)
            if len(plist) != len(records):
                raise ValueError(f"{len(records)} records but {len(plist)} params")
        slots = self.plan(records, plist)
        out = [self._sample(r, s, p) for r, s, p in zip(records, slots, plist, strict=True)]
        self.stats.records += len(records)
        self.stats.variants += sum(len(v) for v in out)
        return out

    def augment_text(
        self,
        text: str,
        n: int | None = None,
        *,
        text_b: str | None = None,
        label: str | None = None,
        seed: int | None = None,
    ) -> list[str] | list[tuple[str, str]]:
        """Up to `n` variants of `text` (default: the config's n), the original not among them:
        strings, or (text_a, text_b) tuples when `text_b` is given. Fewer come back when the text
        has too few replaceable words. The same text, n and seed give the same variants, those
        `kdaug sample` prints; for many texts, `augment` batches Records."""
        rec = Record(TEXT_ID, text, text_b, label)
        params = SampleParams.from_config(self.config, n=n, seed=seed, include_original=False)
        (variants,) = self.augment([rec], params)
        if text_b is None:
            return [v.text_a for v in variants]
        return [(v.text_a, v.text_b) for v in variants]

    def augment_stream(
        self, records: Iterable[Record], batch_size: int | None = None
    ) -> Iterator[tuple[Record, list[Variant]]]:
        """Augment an iterable in batches of `batch_size` records (default: the config's)."""
        size = batch_size or self.config.batch_size
        batch: list[Record] = []
        for rec in records:
            batch.append(rec)
            if len(batch) == size:
                yield from zip(batch, self.augment(batch), strict=True)
                batch = []
        if batch:
            yield from zip(batch, self.augment(batch), strict=True)

    # candidates --------------------------------------------------------------------------
    def plan(self, records: Sequence[Record], plist: Sequence[SampleParams]) -> list[list[Slot]]:
        """Tag the texts, pick eligible words, route each to a candidate source, get and filter
        their candidates, all batched: one call per source."""
        jobs: list[tuple[int, str, str]] = []  # (record index, field, text)
        for i, (rec, p) in enumerate(zip(records, plist, strict=True)):
            if p.fields in ("a", "both") and rec.text_a:
                jobs.append((i, "a", rec.text_a))
            if p.fields in ("b", "both") and rec.text_b:
                jobs.append((i, "b", rec.text_b))
        texts = list(dict.fromkeys(t for _, _, t in jobs))
        tagged = dict(zip(texts, self.tagger.tag(texts), strict=True))

        serves = self._serves(jobs, plist, tagged)
        slots: list[list[Slot]] = [[] for _ in records]
        queued: dict[str, list[tuple[Slot, WordInContext]]] = {n: [] for n in self.sources}
        for i, fld, text in jobs:
            rec, p = records[i], plist[i]
            labels = {n: self._label(rec, n) for n in p.sources if self._conditional(n)}
            for word in tagged[text].eligible:
                source = next(
                    (n for n in self._order if n in p.sources and serves[n][word.text]), None
                )
                slot = Slot(fld, word, source, [])
                slots[i].append(slot)
                self.stats.words[source or "none"] += 1
                if source is not None:
                    queued[source].append((slot, WordInContext(text, word, labels.get(source))))

        raw: list[tuple[Slot, TaggedText, list[tuple[str, float]]]] = []
        for name in self._order:
            asked = queued[name]
            if asked and not self.sources[name].fallback:
                found = self.sources[name].candidates([q for _, q in asked])
                raw += [(s, tagged[q.text], c) for (s, q), c in zip(asked, found, strict=True)]
        queries = [(t, s.word, [c for c, _ in cands]) for s, t, cands in raw]
        kept, rejected = keep_agreeing(self.tagger, self.config.pos_filter, queries)
        for (slot, _, _), cands in zip(raw, kept, strict=True):
            slot.candidates += [(cand, slot.source, rank) for cand, rank in cands]
        if rejected:
            self.stats.candidates_pos_rejected += rejected
        for name in self._order:
            if self.sources[name].fallback:
                self._fallback(name, records, slots, plist)
        return slots

    def _serves(self, jobs, plist, tagged) -> dict[str, dict[str, bool]]:
        """Which eligible words each source that a record lists can be routed, one call each."""
        wanted = {n for p in plist for n in p.sources}
        words = list(dict.fromkeys(w.text for _, _, t in jobs for w in tagged[t].eligible))
        return {
            n: dict(zip(words, self.sources[n].serves(words), strict=True)) if n in wanted else {}
            for n in self.sources
        }

    def _conditional(self, name: str) -> bool:
        return name in self.sources and self.sources[name].labels is not None

    def _label(self, rec: Record, name: str) -> str | None:
        """The record's label for a label-conditional source; None (counted) when it does not
        know the label."""
        source = self.sources[name]
        if rec.label is None or rec.label not in source.labels:
            if self.stats.label_fallbacks == 0:
                log.warning(
                    "record %r: label %r unknown to the label-conditional %s source %s; using "
                    "the unconditional path (further cases are counted in stats)",
                    rec.id,
                    rec.label,
                    name,
                    getattr(source, "name", name),
                )
            self.stats.label_fallbacks += 1
            return None
        return rec.label

    def _fallback(self, name: str, records, slots, plist) -> None:
        """Ask fallback source `name` for the words still without a candidate, in the records
        that list it; its candidates (chosen for the word's POS) pass the lexicon rule."""
        agrees = synonym_rule(self.tagger, self.config.pos_filter)
        source = self.sources[name]
        asked: list[tuple[Slot, WordInContext]] = []
        for rec, rec_slots, p in zip(records, slots, plist, strict=True):
            if name not in p.sources:
                continue
            label = rec.label if source.labels and rec.label in source.labels else None
            for slot in rec_slots:
                if not slot.candidates:
                    text = rec.text_a if slot.field == "a" else rec.text_b
                    asked.append((slot, WordInContext(text, slot.word, label)))
        found = source.candidates([q for _, q in asked]) if asked else []
        for (slot, _), cands in zip(asked, found, strict=True):
            for rank, (cand, _) in enumerate(cands, start=1):
                if agrees(cand, slot.word):
                    slot.candidates.append((cand, name, rank))
            if slot.candidates:
                slot.source = name

    # sampling ----------------------------------------------------------------------------
    def _sample(self, rec: Record, slots: list[Slot], p: SampleParams) -> list[Variant]:
        out: list[Variant] = []
        if p.include_original:
            out.append(Variant(rec.id, 0, rec.text_a, rec.text_b, rec.label, []))
        usable = [s for s in slots if s.candidates]
        self.stats.words_without_candidates += len(slots) - len(usable)
        if not usable:
            return out
        # one draw per word and one candidate index per word, every attempt, whatever is
        # picked: the generator's stream (and so every variant) depends on the record only
        highs = [len(s.candidates) for s in usable]
        attempts = draws(record_seed(p.seed, rec.id), highs, p.p)
        cased: dict[tuple[int, int], str] = {}  # (slot, candidate) -> the word as written
        seen = {(rec.text_a, rec.text_b)}
        made = 0
        sources: list[str] = []  # of the replacements made, counted at the end
        for _ in range(p.n * self.config.max_attempts_factor):
            if made == p.n:
                break
            hit, picked = next(attempts)
            if not hit:
                continue
            chosen = []
            for j in hit:
                k = picked[j]
                word = cased.get((j, k))
                if word is None:
                    word = cased[j, k] = match_case(usable[j].word.text, usable[j].candidates[k][0])
                chosen.append((usable[j], k, word))
            if rec.text_b is None:  # every slot is field a's
                text_a, text_b = _apply(rec.text_a, chosen), None
            else:
                text_a = _apply(rec.text_a, [c for c in chosen if c[0].field == "a"])
                text_b = _apply(rec.text_b, [c for c in chosen if c[0].field == "b"])
            if (text_a, text_b) in seen:
                continue
            seen.add((text_a, text_b))
            made += 1
            reps = _replacements(chosen)
            out.append(Variant(rec.id, made, text_a, text_b, rec.label, reps))
            sources += [r.source for r in reps]
        self.stats.replacements.update(sources)
        return out


# A slot, the index of its candidate, the candidate as written. The sampler lists them in the
# order of `plan`'s slots, which is field a's words and then field b's, each in text order.
Chosen = tuple[Slot, int, str]


def _apply(text: str | None, chosen: list[Chosen]) -> str | None:
    """`text` with the chosen words (of this field, in text order) replaced, every other
    character kept as it was."""
    if text is None or not chosen:
        return text
    parts: list[str] = []
    pos = 0
    for slot, _, new in chosen:
        parts.append(text[pos : slot.word.start])
        parts.append(new)
        pos = slot.word.end
    parts.append(text[pos:])
    return "".join(parts)


def _replacements(chosen: list[Chosen]) -> list[Replacement]:
    """The Replacements of the chosen words (field a's, then b's, each in text order), with
    their offsets in the variant."""
    reps: list[Replacement] = []
    field, shift = "", 0  # how much longer the variant's field is than the original so far
    for slot, k, new in chosen:
        w = slot.word
        if slot.field != field:
            field, shift = slot.field, 0
        cand, source, rank = slot.candidates[k]
        start = w.start + shift
        reps.append(Replacement(field, start, start + len(new), w.text, new, source, rank))
        shift += len(new) - (w.end - w.start)
    return reps
