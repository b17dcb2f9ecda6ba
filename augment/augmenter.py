"""Augmenter: records -> variants. No I/O: the builder, the CLI and the service all call it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from augment.build.stats import AugmentStats
from augment.candidates.masking import MaskQuery
from augment.candidates.mlm import MaskedLMCandidates
from augment.candidates.vectors import VectorIndex
from augment.candidates.wordnet import WordNetCandidates
from augment.config import AugmentConfig, SampleParams
from augment.pos.filter import check_pipeline, keep_agreeing, synonym_rule
from augment.pos.tagger import TaggedText, Tagger, Word
from augment.records import MAX_TEXT_CHARS, Record, Replacement, Variant, text_problem
from kdaug import __version__
from kdaug.errors import InputError
from kdaug.settings import ConfigError

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


_MISSING = {
    "mlm": "no masked-LM is loaded (mlm: none)",
    "vectors": "no word vectors are loaded (vectors: none)",
    "wordnet": "no WordNet database is installed (apt-get install wordnet-base)",
}


def check_sources(sources: Sequence[str], loaded: Sequence[str]) -> None:
    """Refuse sources none of which can give a candidate: every record would silently come out
    as its original alone. One missing source among usable ones is fine (vectors-only runs)."""
    if any(s in loaded for s in sources):
        return
    missing = " and ".join(_MISSING[s] for s in sources)
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
    neighbours for the others, candidates kept only when they agree with the word's POS."""

    def __init__(
        self,
        config: AugmentConfig | None = None,
        *,
        tagger: Tagger | None = None,
        mlm: MaskedLMCandidates | None = None,
        vectors: VectorIndex | None = None,
    ) -> None:
        self.config = cfg = config or AugmentConfig()
        self.tagger = tagger or Tagger(cfg.tagger, cfg.pos_tags)
        if mlm is None and cfg.mlm.lower() != "none":
            mlm = MaskedLMCandidates.from_config(cfg)
        self.mlm = mlm
        if vectors is None and cfg.vectors.lower() != "none":
            device = mlm.device if mlm is not None else "cpu"
            vectors = VectorIndex.load(
                cfg.vectors, limit=cfg.vectors_limit, top_k=cfg.top_k, device=device
            )
        self.vectors = vectors
        self.wordnet = WordNetCandidates(cfg.top_k) if "wordnet" in cfg.sources else None
        check_sources(cfg.sources, self.loaded_sources)
        check_pipeline(self.tagger, cfg.pos_filter)
        self.stats = AugmentStats()

    # public ------------------------------------------------------------------------------
    @property
    def loaded_sources(self) -> tuple[str, ...]:
        """The candidate sources that can give candidates: their model or database is loaded."""
        have = {
            "mlm": self.mlm is not None,
            "vectors": self.vectors is not None,
            "wordnet": self.wordnet is not None and self.wordnet.available,
        }
        return tuple(s for s, ok in have.items() if ok)

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
        """Tag the texts, pick eligible words, get and filter their candidates, all batched."""
        jobs: list[tuple[int, str, str]] = []  # (record index, field, text)
        for i, (rec, p) in enumerate(zip(records, plist, strict=True)):
            if p.fields in ("a", "both") and rec.text_a:
                jobs.append((i, "a", rec.text_a))
            if p.fields in ("b", "both") and rec.text_b:
                jobs.append((i, "b", rec.text_b))
        texts = list(dict.fromkeys(t for _, _, t in jobs))
        tagged = dict(zip(texts, self.tagger.tag(texts), strict=True))

        if self.mlm is not None:
            self.mlm.learn_pieces(w.text for _, _, t in jobs for w in tagged[t].eligible)
        slots: list[list[Slot]] = [[] for _ in records]
        mlm_q: list[tuple[Slot, MaskQuery]] = []
        vec_q: list[tuple[Slot, str]] = []
        for i, fld, text in jobs:
            rec, p = records[i], plist[i]
            label = self._mlm_label(rec) if self.mlm and "mlm" in p.sources else None
            for word in tagged[text].eligible:
                slot = Slot(fld, word, self._route(word.text, p.sources), [])
                slots[i].append(slot)
                self.stats.words[slot.source or "none"] += 1
                if slot.source == "mlm":
                    mlm_q.append((slot, MaskQuery(text, word.start, word.end, label)))
                elif slot.source == "vectors":
                    vec_q.append((slot, text))

        raw: list[tuple[Slot, TaggedText, list[tuple[str, float]]]] = []
        if mlm_q:
            preds = self.mlm.predict([q for _, q in mlm_q])
            raw += [(s, tagged[q.text], c) for (s, q), c in zip(mlm_q, preds, strict=True)]
        if vec_q:
            neigh = self.vectors.neighbours([s.word.text for s, _ in vec_q])
            raw += [(s, tagged[t], c) for (s, t), c in zip(vec_q, neigh, strict=True)]
        queries = [(t, s.word, [c for c, _ in cands]) for s, t, cands in raw]
        kept, rejected = keep_agreeing(self.tagger, self.config.pos_filter, queries)
        for (slot, _, _), cands in zip(raw, kept, strict=True):
            slot.candidates += [(cand, slot.source, rank) for cand, rank in cands]
        if rejected:
            self.stats.candidates_pos_rejected += rejected
        if self.wordnet is not None and self.wordnet.available:
            self._wordnet_fallback(records, slots, plist, tagged)
        return slots

    def _route(self, word: str, sources: Sequence[str]) -> str | None:
        if "mlm" in sources and self.mlm is not None and self.mlm.is_single_piece(word):
            return "mlm"
        if "vectors" in sources and self.vectors is not None:
            return "vectors"
        if "wordnet" in sources and self.wordnet is not None:
            return "wordnet"
        return None

    def _mlm_label(self, rec: Record) -> str | None:
        if not self.mlm.conditioning:
            return None
        if rec.label is None or rec.label not in self.mlm.labels:
            if self.stats.label_fallbacks == 0:
                log.warning(
                    "record %r: label %r unknown to the conditional MLM %s; using the "
                    "unconditional path (further cases are counted in stats)",
                    rec.id,
                    rec.label,
                    self.mlm.name,
                )
            self.stats.label_fallbacks += 1
            return None
        return rec.label

    def _wordnet_fallback(self, records, slots, plist, tagged) -> None:
        agrees = synonym_rule(self.tagger, self.config.pos_filter)
        for rec_slots, p in zip(slots, plist, strict=True):
            if "wordnet" not in p.sources:
                continue
            for slot in rec_slots:
                if slot.candidates:
                    continue
                syn = self.wordnet.synonyms(slot.word.text, slot.word.pos)
                for rank, (cand, _) in enumerate(syn, start=1):
                    if agrees(cand, slot.word):
                        slot.candidates.append((cand, "wordnet", rank))
                if slot.candidates:
                    slot.source = "wordnet"

    # sampling ----------------------------------------------------------------------------
    def _sample(self, rec: Record, slots: list[Slot], p: SampleParams) -> list[Variant]:
        out: list[Variant] = []
        if p.include_original:
            out.append(Variant(rec.id, 0, rec.text_a, rec.text_b, rec.label, []))
        usable = [s for s in slots if s.candidates]
        self.stats.words_without_candidates += len(slots) - len(usable)
        if not usable:
            return out
        rng = np.random.Generator(np.random.PCG64(record_seed(p.seed, rec.id)))
        highs = np.array([len(s.candidates) for s in usable], dtype=np.int64)
        cased: dict[tuple[int, int], str] = {}  # (slot, candidate) -> the word as written
        seen = {(rec.text_a, rec.text_b)}
        made = 0
        for _ in range(p.n * self.config.max_attempts_factor):
            if made == p.n:
                break
            # one draw per word and one candidate index per word, every attempt, whatever is
            # picked: the generator's stream (and so every variant) depends on the record only
            draws = rng.random(len(usable))
            picks = rng.integers(0, highs)
            hit = [j for j, d in enumerate(draws.tolist()) if d < p.p]
            if not hit:
                continue
            picked = picks.tolist()
            chosen = []
            for j in hit:
                k = picked[j]
                word = cased.get((j, k))
                if word is None:
                    word = cased[j, k] = match_case(usable[j].word.text, usable[j].candidates[k][0])
                chosen.append((usable[j], k, word))
            text_a = _apply(rec.text_a, [c for c in chosen if c[0].field == "a"])
            text_b = _apply(rec.text_b, [c for c in chosen if c[0].field == "b"])
            if (text_a, text_b) in seen:
                continue
            seen.add((text_a, text_b))
            made += 1
            reps = _replacements(chosen)
            out.append(Variant(rec.id, made, text_a, text_b, rec.label, reps))
            for r in reps:
                self.stats.replacements[r.source] += 1
        return out


Chosen = tuple[Slot, int, str]  # a slot, the index of its candidate, the candidate as written


def _apply(text: str | None, chosen: list[Chosen]) -> str | None:
    """`text` with the chosen words replaced, every other character kept as it was."""
    if text is None or not chosen:
        return text
    parts: list[str] = []
    pos = 0
    for slot, _, new in sorted(chosen, key=lambda c: c[0].word.start):
        parts.append(text[pos : slot.word.start])
        parts.append(new)
        pos = slot.word.end
    parts.append(text[pos:])
    return "".join(parts)


def _replacements(chosen: list[Chosen]) -> list[Replacement]:
    """The Replacements of the chosen words (field a's, then b's), with their offsets in the
    variant."""
    reps: list[Replacement] = []
    field, shift = "", 0  # how much longer the variant's field is than the original so far
    for slot, k, new in sorted(chosen, key=lambda c: (c[0].field, c[0].word.start)):
        w = slot.word
        if slot.field != field:
            field, shift = slot.field, 0
        cand, source, rank = slot.candidates[k]
        start = w.start + shift
        reps.append(Replacement(field, start, start + len(new), w.text, new, source, rank))
        shift += len(new) - (w.end - w.start)
    return reps
