"""AugmentConfig: every augmentation setting and its default, in one place."""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kdaug.errors import KdaugError

POS_TAGS = ("NOUN", "VERB", "ADJ", "ADV", "PROPN", "NUM", "ADP", "PRON", "DET", "AUX", "INTJ")


class ConfigError(KdaugError, ValueError):
    """A setting is invalid; the message names it and says what to do."""


# What a strict type error expects, and how a YAML value of each Python type is called.
_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
    type(None): "null",
}
_NUMBER_TEXT = re.compile(r"^\s*[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _short(value: Any) -> str:
    """A value as YAML spells the scalars (true, null), cut to 60 characters."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _given(value: Any, kind: str) -> str:
    """How a value of the wrong type is shown: its YAML type, a short repr, and a hint."""
    name = _TYPE_NAMES.get(type(value), type(value).__name__)
    hint = ""
    if isinstance(value, str) and (_NUMBER_TEXT.match(value) or value.lower() in ("true", "false")):
        hint = " (write it without quotes)"
    elif kind == "string_type" and isinstance(value, (bool, int, float)):
        hint = " (put it in quotes)"
    return f"{name} {_short(value)}{hint}"


def _describe(err: dict[str, Any], model: type[BaseModel], origins: dict[str, str]) -> str:
    loc = ".".join(str(x) for x in err["loc"]) or "config"
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        names = list(model.model_fields) if len(err["loc"]) == 1 else []
        close = difflib.get_close_matches(str(err["loc"][0]), names, n=1) if names else []
        msg = "unknown setting" + (f" (did you mean {close[0]}?)" if close else "")
    elif kind.endswith("_type") and "input" in err:
        msg = f"{msg}, not {_given(err['input'], kind)}"
    elif kind not in ("missing", "value_error") and "input" in err:
        msg = f"{msg}, got {_short(err['input'])}"
    where = origins.get(str(err["loc"][0])) if err["loc"] else None
    return f"{loc}: {msg}" + (f" (in {where})" if where else "")


def validated(
    model: type[BaseModel],
    settings: dict[str, Any],
    what: str,
    origins: dict[str, str] | None = None,
) -> Any:
    """`settings` validated as `model` in pydantic's strict mode (a bool is not an int, "3" is not
    3, "0.4" is not a float; an int is a float), with the report turned into one ConfigError line.

    `origins` maps a setting to where it came from (a file name), for the message.
    """
    from pydantic import ValidationError

    try:
        return model.model_validate(settings, strict=True)
    except ValidationError as exc:
        parts = [_describe(err, model, origins or {}) for err in exc.errors()]
        message = f"invalid {what} setting: " + "; ".join(parts)
        raise ConfigError(" ".join(message.split())) from None


@functools.cache
def _settings_loader() -> type:
    """PyYAML's safe loader, plus: a setting given twice is an error (YAML keeps the last one
    silently), and `1e-5` is a number (YAML 1.2; PyYAML's YAML 1.1 reads it as a string)."""
    import yaml

    class SettingsLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: set[tuple[str, str]] = set()
                for key, _ in node.value:
                    if not isinstance(key, yaml.ScalarNode) or key.tag.endswith(":merge"):
                        continue
                    if (key.tag, key.value) in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"setting {key.value!r} is given twice", key.start_mark
                        )
                    seen.add((key.tag, key.value))
            return super().construct_mapping(node, deep=deep)

    SettingsLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    return SettingsLoader


def _yaml_problem(exc: Exception) -> str:
    """One line for a PyYAML error: the problem and where it is."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError):
        text = exc.problem or exc.context or "syntax error"
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            text += f" at line {mark.line + 1}, column {mark.column + 1}"
    else:
        text = str(exc)
    return " ".join(text.split())


def read_settings(path: str | Path) -> dict[str, Any]:
    """The mapping of settings in a YAML file (UTF-8), or a one-line ConfigError saying what is
    wrong: missing or unreadable file, bytes that are not UTF-8, invalid YAML, a setting given
    twice, a document that is not a mapping of names. An empty file is an empty mapping."""
    import yaml

    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {p} is not a file (a directory)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"config file {p} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line} "
            "(save it as UTF-8)"
        ) from None
    try:
        data = yaml.load(text, Loader=_settings_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"config file {p} is not valid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = _TYPE_NAMES.get(type(data), type(data).__name__)
        raise ConfigError(
            f"config file {p} must hold a mapping of settings (name: value), not {kind}"
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"config file {p}: setting names must be text, not {bad[0]!r}")
    return data


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
    sources: list[Literal["mlm", "vectors", "wordnet"]] = Field(
        default_factory=lambda: ["mlm", "vectors"],
        description="candidate sources; 'wordnet' adds WordNet synonyms for words left without any",
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
        "bert-base-uncased", description="masked-LM name or path, 'default', or 'none'"
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
    device: str = Field("auto", description="'auto', 'cpu', 'cuda' or 'cuda:N'")

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
            raise ValueError("sources must name at least one of mlm, vectors, wordnet")
        return list(dict.fromkeys(sources))

    @field_validator("device")
    @classmethod
    def _device(cls, device: str) -> str:
        d = device.strip().lower()
        if d in ("auto", "cpu", "cuda", "mps") or (d.startswith("cuda:") and d[5:].isdigit()):
            return d
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, not {device!r}")

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


class SampleParams(BaseModel):
    """Per-call sampling settings; `Augmenter.augment` takes one for all records or one per record.

    Candidate generation does not depend on them (except `sources`), so records with different
    parameters can share one batched masked-LM pass (the service's micro-batcher relies on this).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(20, ge=1, le=1000)
    p: float = Field(0.4, gt=0.0, le=1.0)
    seed: int = 0
    fields: Literal["a", "b", "both"] = "both"
    include_original: bool = True
    sources: tuple[Literal["mlm", "vectors", "wordnet"], ...] = ("mlm", "vectors")

    @classmethod
    def from_config(cls, cfg: AugmentConfig, **overrides: Any) -> SampleParams:
        base = {
            "n": cfg.n,
            "p": cfg.p,
            "seed": cfg.seed,
            "fields": cfg.fields,
            "include_original": cfg.include_original,
            "sources": tuple(cfg.sources),
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)
