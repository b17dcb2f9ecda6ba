"""AugmentConfig: every augmentation setting and its default, in one place."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kdaug.settings import Device, read_settings, validated

POS_TAGS = ("NOUN", "VERB", "ADJ", "ADV", "PROPN", "NUM", "ADP", "PRON", "DET", "AUX", "INTJ")
Source = Literal["mlm", "vectors", "wordnet"]  # the built-in candidate sources
SOURCES: tuple[str, ...] = get_args(Source)
# The settings one call may set per record (SampleParams); AugmentConfig declares them, with
# their bounds, defaults and descriptions, for every place that takes them: SampleParams, the
# service's request (service.schemas) and the CLI flags (kdaug.cli.augment).
SAMPLE_PARAMS = ("n", "p", "seed", "fields", "include_original", "sources")


def known_sources(sources: Sequence[str]) -> tuple[str, ...]:
    """`sources` without repeats, each a built-in or registered candidate source (else a
    ValueError naming the choices)."""
    from augment.candidates.registry import source_names

    names = source_names()
    unknown = [s for s in sources if s not in names]
    if unknown:
        raise ValueError(f"unknown candidate source(s) {unknown}; choose from {list(names)}")
    return tuple(dict.fromkeys(sources))


class AugmentConfig(BaseModel):
    """Settings of the POS-guided word-replacement augmenter (defaults follow TinyBERT)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)

    # variants
    n: int = Field(20, ge=1, le=1000, description="variants per record (besides the original)")
    p: float = Field(0.4, gt=0.0, le=1.0, description="probability of replacing an eligible word")
    seed: int = Field(0, description="global seed; each record is seeded from (seed, record id)")
    max_attempts_factor: int = Field(
        4, ge=1, le=100, description="at most n * factor draws to find n distinct variants"
    )
    include_original: bool = Field(True, description="emit the original as variant 0")
    fields: Literal["a", "b", "both"] = Field("both", description="which text fields to augment")

    # words
    pos_tags: list[str] = Field(
        default_factory=lambda: ["NOUN", "VERB", "ADJ", "ADV"],
        description="universal POS tags of eligible words",
    )
    top_k: int = Field(15, ge=1, le=200, description="candidates kept per word")
    sources: list[str] = Field(
        default_factory=lambda: ["mlm", "vectors"],
        description="candidate sources (mlm, vectors, wordnet, or one registered in "
        "augment.candidates.registry); 'wordnet' adds WordNet synonyms for words left without any",
    )
    pos_filter: Literal["hybrid", "lexicon", "retag", "none"] = Field(
        "hybrid",
        description="how candidates must agree with the word's POS: 'lexicon' (inflection-aware "
        "WordNet lemma tables of the spaCy pipeline), 'retag' (re-tag each candidate in context), "
        "'hybrid' (lexicon, then re-tag the candidates it finds ambiguous), or 'none'",
    )

    # models
    tagger: str = Field("en_core_web_sm", description="spaCy pipeline name or path")
    mlm: str = Field(
        "bert-base-uncased",
        description="masked-LM name or path, 'default' (kdaug adapt-mlm --default) or 'none'",
    )
    mlm_context: Literal["masked", "with_original"] = Field(
        "masked",
        description="MLM input: the masked text alone, or paired with the original text "
        "as the official TinyBERT script does",
    )
    mlm_max_length: int = Field(
        128,
        ge=16,
        le=512,
        description="longest MLM input; longer texts get a window around the mask",
    )
    mode: Literal["exact", "fast"] = Field(
        "exact",
        description="'exact': one masked copy per word, as the paper; 'fast': several "
        "non-adjacent words masked per copy, a short window around the masks, int8 MLM on CPU "
        "(a different method, several times faster; quality cost in the README benchmarks)",
    )
    fast_mask_rate: float = Field(
        0.2, gt=0.0, le=0.5, description="fast mode: most tokens of a copy that are masks"
    )
    fast_max_length: int = Field(
        64, ge=16, le=512, description="fast mode: tokens of context window per masked copy"
    )
    mlm_quantize: Literal["auto", "off", "int8"] = Field(
        "auto",
        description="int8 linear layers in the MLM, with activation scales calibrated once per "
        "model and settings (cached): 'auto' = on CPU in fast mode",
    )
    mlm_cache_size: int = Field(
        20_000, ge=0, description="masked copies whose candidates are kept across batches"
    )
    mlm_batch_tokens: int = Field(
        8192, ge=256, description="padded tokens per masked-LM forward pass"
    )
    vectors: str = Field(
        "glove-6b-50d",
        description="word vectors: 'glove-6b-50d' (packaged), a GloVe .txt, word2vec .txt/.bin, "
        "a gensim KeyedVectors file, or 'none'",
    )
    vectors_limit: int = Field(100_000, ge=100, description="search the N most frequent words")

    # execution
    batch_size: int = Field(256, ge=1, le=100_000, description="records per augmenter batch")
    device: Device = "auto"

    @field_validator("pos_tags")
    @classmethod
    def _known_tags(cls, tags: list[str]) -> list[str]:
        tags = [t.upper() for t in tags]
        unknown = [t for t in tags if t not in POS_TAGS]
        if unknown:
            raise ValueError(f"unknown POS tag(s) {unknown}; choose from {list(POS_TAGS)}")
        if not tags:
            raise ValueError("pos_tags must name at least one tag")
        return tags

    @field_validator("sources")
    @classmethod
    def _some_source(cls, sources: list[str]) -> list[str]:
        if not sources:
            raise ValueError(f"sources must name at least one of {', '.join(SOURCES)}")
        return list(known_sources(sources))

    @property
    def mlm_enabled(self) -> bool:
        return self.mlm.lower() != "none" and "mlm" in self.sources

    @property
    def vectors_enabled(self) -> bool:
        return self.vectors.lower() != "none" and "vectors" in self.sources

    # loading -----------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> AugmentConfig:
        """Load a YAML mapping of settings; `overrides` (e.g. from flags) win over the file.
        Types are strict (see `validated`); errors name the file for settings it gave."""
        data = read_settings(path)
        given = {k: v for k, v in overrides.items() if v is not None}
        origins = {k: Path(path).name for k in data if k not in given}
        return validated(cls, {**data, **given}, "augment", origins)

    @classmethod
    def build(cls, **settings: Any) -> AugmentConfig:
        """Validate settings strictly, turning pydantic's report into a one-line ConfigError."""
        return validated(cls, settings, "augment")

    def fingerprint_dict(self) -> dict[str, Any]:
        """The settings that change output bytes (batch size and device excluded)."""
        d = self.model_dump()
        for k in ("batch_size", "device", "mlm_batch_tokens"):
            d.pop(k)
        return d


def declared(name: str) -> Any:
    """The type of setting `name` with its bounds (e.g. 1 <= n <= 1000) as AugmentConfig declares
    it, to take the same parameter elsewhere without restating it."""
    field = AugmentConfig.model_fields[name]
    return Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation


def default(name: str) -> Any:
    """AugmentConfig's default for setting `name`."""
    return AugmentConfig.model_fields[name].get_default(call_default_factory=True)


class SampleParams(BaseModel):
    """Per-call sampling settings; `Augmenter.augment` takes one for all records or one per record.
    Their types, bounds and defaults are AugmentConfig's (see SAMPLE_PARAMS).

    Candidate generation does not depend on them (except `sources`), so records with different
    parameters can share one batched masked-LM pass (the service's micro-batcher relies on this).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: declared("n") = default("n")
    p: declared("p") = default("p")
    seed: declared("seed") = default("seed")
    fields: declared("fields") = default("fields")
    include_original: declared("include_original") = default("include_original")
    sources: tuple[str, ...] = tuple(default("sources"))

    @classmethod
    def from_config(cls, cfg: AugmentConfig, **overrides: Any) -> SampleParams:
        base = {name: getattr(cfg, name) for name in SAMPLE_PARAMS}
        base["sources"] = tuple(cfg.sources)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, sources: tuple[str, ...]) -> tuple[str, ...]:
        return known_sources(sources)
