"""Request and response bodies of POST /augment.

The request models are plain classes. What a server sets for itself (KDAUG_MAX_ITEMS,
KDAUG_MAX_TEXT_CHARS, KDAUG_MAX_N) and the candidate sources it has loaded reach validation as its
context (`RequestLimits`), so that one pass of pydantic reports every problem of a body, the
server's limits included; the schema states the bounds that hold on every server.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic import StringConstraints as Chars
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticKnownError

from augment.config import SOURCES, AugmentConfig, SampleParams, declared
from augment.records import Record
from service.batching import WORD

# `sources` of a request: one source, or "both" (the masked LM and the word vectors)
SOURCE_CHOICES = {**{s: (s,) for s in SOURCES}, "both": ("mlm", "vectors")}
PAIR_FIELDS: tuple[str, ...] = get_args(AugmentConfig.model_fields["fields"].annotation)
SEED_MAX = 2**63 - 1
# Upper-end JSON sizes for the response estimate: a variant row without its texts, one item's
# wrapper, one replacement without its two words (a candidate word is at most this long).
ROW_BYTES, ITEM_BYTES, REPLACEMENT_BYTES, CANDIDATE_CHARS = 110, 40, 110, 30


def blank(text: str) -> bool:
    """Empty, whitespace or NUL only: no word to augment (the CLI rejects such rows)."""
    return not text.replace("\x00", "").strip()


def json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


@dataclass(frozen=True)
class RequestLimits:
    """What one server takes, given to validation as its context: texts or pairs per request,
    characters per text, the largest n, and the candidate sources it has loaded (None until its
    models are ready)."""

    max_items: int
    max_text_chars: int
    max_n: int
    loaded_sources: tuple[str, ...] | None = None


def _limits(info: ValidationInfo) -> RequestLimits | None:
    return info.context if isinstance(info.context, RequestLimits) else None


def _within_chars(text: str, info: ValidationInfo) -> str:
    limits = _limits(info)
    if limits is not None and len(text) > limits.max_text_chars:
        raise PydanticKnownError("string_too_long", {"max_length": limits.max_text_chars})
    return text


def _about(name: str) -> str | None:
    """AugmentConfig's description of setting `name`."""
    return AugmentConfig.model_fields[name].description


def _enum(name: str, values: tuple[str, ...], doc: str) -> Any:
    """A str Enum of `values`: a named schema in the OpenAPI document, and so in clients."""
    made = Enum(name, {v: v for v in values}, type=str, module=__name__)  # type: ignore[misc]
    made.__doc__ = doc
    return made


Text = Annotated[StrictStr, AfterValidator(_within_chars)]
Id = Annotated[StrictStr, Chars(min_length=1, max_length=200)] | StrictInt
Label = StrictStr | StrictInt | StrictFloat | None
Texts = Annotated[
    list[Text],
    Field(min_length=1, description="single texts", examples=[["a gripping film"]]),
]
Pairs = Annotated[
    list[tuple[Text, Text]],
    Field(
        min_length=1,
        description="text pairs [a, b] (e.g. premise, hypothesis)",
        examples=[[["a man plays a guitar", "a person makes music"]]],
    ),
]
Sources = _enum(
    "Sources", tuple(SOURCE_CHOICES), "Candidate sources: one, or both (masked LM and vectors)."
)
PairFields = _enum("PairFields", PAIR_FIELDS, "Which fields of a pair to augment.")
TextFields = _enum(
    "TextFields",
    tuple(f for f in PAIR_FIELDS if f != "b"),
    "Which fields of a single text to augment (it has field a only; both means a).",
)
SOURCES_ABOUT = "candidate sources: " + ", ".join(SOURCES) + ", or both (mlm and vectors)"


class _Options(BaseModel):
    """Labels, ids and the sampling parameters (types and bounds as AugmentConfig declares
    them); each parameter left out takes the server's config value."""

    model_config = ConfigDict(extra="forbid")

    labels: list[Label] | None = Field(
        None, min_length=1, description="one label per input, copied to its variants"
    )
    ids: list[Id] | None = Field(
        None, min_length=1, description="one id per input, unique; default: its index"
    )
    n: Annotated[declared("n"), Strict()] | None = Field(None, description=_about("n"))
    p: Annotated[declared("p"), Strict()] | None = Field(None, description=_about("p"))
    seed: Annotated[declared("seed"), Strict(), Field(ge=-SEED_MAX - 1, le=SEED_MAX)] | None = (
        Field(None, description=_about("seed"))
    )
    fields: declared("fields") | None = Field(None, description=_about("fields"))
    include_original: Annotated[declared("include_original"), Strict()] | None = Field(
        None, description=_about("include_original")
    )
    sources: Literal[tuple(SOURCE_CHOICES)] | None = Field(None, description=SOURCES_ABOUT)

    @field_validator("texts", "pairs", "labels", "ids", mode="wrap", check_fields=False)
    @classmethod
    def _at_most_max_items(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        limits = _limits(info)
        if limits is not None and isinstance(value, list) and len(value) > limits.max_items:
            size = {"max_length": limits.max_items, "actual_length": len(value)}
            raise PydanticKnownError("too_long", {"field_type": "List", **size})
        return handler(value)

    @field_validator("n", mode="wrap")
    @classmethod
    def _at_most_max_n(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        limits = _limits(info)
        if limits is not None and type(value) is int and value > limits.max_n:
            raise PydanticKnownError("less_than_equal", {"le": limits.max_n})
        return handler(value)


class _Texts(BaseModel):
    texts: Texts


class _Pairs(BaseModel):
    pairs: Pairs


class _TextsOrPairs(BaseModel):
    texts: Texts | None = None
    pairs: Pairs | None = None


class TextsRequest(_Options, _Texts):
    """Single texts to augment, with optional labels, ids and sampling parameters."""

    fields: TextFields | None = Field(None, description=_about("fields"))
    sources: Sources | None = Field(None, description=SOURCES_ABOUT)


class PairsRequest(_Options, _Pairs):
    """Text pairs to augment, with optional labels, ids and sampling parameters."""

    fields: PairFields | None = Field(None, description=_about("fields"))
    sources: Sources | None = Field(None, description=SOURCES_ABOUT)


class AugmentRequest(_Options, _TextsOrPairs):
    """The body of POST /augment: exactly one of `texts` (a TextsRequest) or `pairs` (a
    PairsRequest). It takes both fields as optional and checks "exactly one" across fields, so
    that every error names the field at fault; its schema is `oneOf` the two shapes."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # the generator itself (not `handler`, which inlines) names each shape: {"$ref": ...}
        shape = handler.generate_json_schema.generate_inner
        return {
            "title": "AugmentRequest",
            "description": "Exactly one of `texts` (a TextsRequest) or `pairs` (a PairsRequest).",
            "oneOf": [shape(m.__pydantic_core_schema__) for m in (TextsRequest, PairsRequest)],
        }

    @model_validator(mode="after")
    def _across_fields(self, info: ValidationInfo) -> AugmentRequest:
        """Checks across fields, then (when all pass) that a requested source is loaded."""
        problems = self.problems() or self._unloaded_sources(_limits(info))
        if problems:
            details = [
                InitErrorDetails(type=PydanticCustomError("value_error", msg), loc=loc, input=None)
                for loc, msg in problems
            ]
            raise ValidationError.from_exception_data(type(self).__name__, details)
        return self

    def items(self) -> list[tuple[str, str | None]]:
        if self.texts is not None:
            return [(t, None) for t in self.texts]
        return [(a, b) for a, b in self.pairs or []]

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Checks across fields: (location, message) of each problem."""
        if (self.texts is None) == (self.pairs is None):
            return [(("texts",), "give exactly one of 'texts' or 'pairs'")]
        count = len(self.items())
        out = []
        for name in ("labels", "ids"):
            values = getattr(self, name)
            if values is not None and len(values) != count:
                out.append(((name,), f"has {len(values)} entries for {count} inputs"))
        if self.ids is not None and len({str(i) for i in self.ids}) != len(self.ids):
            out.append((("ids",), "ids must be unique within a request"))
        if self.texts is not None and self.fields == "b":
            out.append((("fields",), "'b' needs pairs; single texts only have field 'a'"))
        blank_text = "blank text (empty, whitespace or NUL only): nothing to augment"
        for i, (a, b) in enumerate(self.items()):
            where = [("texts", i)] if self.texts is not None else [("pairs", i, 0), ("pairs", i, 1)]
            for loc, text in zip(where, (a, b), strict=False):
                if text is not None and blank(text):
                    out.append((loc, blank_text))
        return out

    def _unloaded_sources(self, limits: RequestLimits | None) -> list[tuple[tuple[str], str]]:
        """A request for sources none of which this server has loaded: its answer would hold the
        originals only, which looks like success."""
        if self.sources is None or limits is None or limits.loaded_sources is None:
            return []
        wanted, loaded = SOURCE_CHOICES[self.sources], limits.loaded_sources
        if set(wanted) & set(loaded):
            return []
        msg = f"sources {list(wanted)} are not loaded in this service (loaded: "
        return [(("sources",), msg + f"{', '.join(loaded) or 'none'})")]

    def response_bytes(self, params: SampleParams) -> int:
        """Estimated JSON size of the answer to this request with `params`, erring high: every
        variant as long as its input plus its replacements, with a generous count of words
        replaced. (Its model work is estimated by service.work.)"""
        variants = params.n + int(params.include_original)
        size = 0
        for rec in self.records():
            words = WORD.findall(rec.text_a) + WORD.findall(rec.text_b or "")
            longest = max((len(w) for w in words), default=0)
            # replacements per variant: the mean, two standard deviations and one more, since
            # variants without a replacement or seen before are drawn again
            mean = params.p * len(words)
            spread = 2 * math.sqrt(mean * (1 - params.p))
            replaced = min(len(words), math.ceil(mean + spread) + 1)
            id_bytes = json_bytes(rec.id)
            row = (
                ROW_BYTES
                + id_bytes
                + json_bytes(rec.label)
                + json_bytes(rec.text_a)
                + json_bytes(rec.text_b)
                + replaced * (REPLACEMENT_BYTES + longest + 2 * CANDIDATE_CHARS)
            )
            size += ITEM_BYTES + id_bytes + variants * row
        return size + 40

    def records(self) -> list[Record]:
        """One Record per input; ids default to the input's index ("0", "1", ...)."""
        ids = [str(i) for i in self.ids] if self.ids is not None else None
        labels = self.labels or [None] * len(self.items())
        return [
            Record(
                id=ids[i] if ids else str(i),
                text_a=a,
                text_b=b,
                label=None if labels[i] is None else str(labels[i]),
            )
            for i, (a, b) in enumerate(self.items())
        ]

    def params(self, cfg: AugmentConfig) -> SampleParams:
        """Sampling parameters: the request's, else the augment config's defaults."""
        return SampleParams.from_config(
            cfg,
            n=self.n,
            p=self.p,
            seed=self.seed,
            fields=self.fields,
            include_original=self.include_original,
            sources=SOURCE_CHOICES[self.sources] if self.sources else None,
        )


def request_body(limits: Callable[[], RequestLimits]) -> Any:
    """The type of a POST /augment body as a route takes it: an AugmentRequest validated from the
    raw JSON bytes by pydantic's own parser (it refuses invalid UTF-8 and lone surrogates as
    json_invalid), with the server's `limits()` as context; documented as AugmentRequest."""

    def from_json(raw: Any) -> AugmentRequest:
        try:
            return AugmentRequest.model_validate_json(raw, context=limits())
        except ValidationError as exc:  # passed on as worded for JSON (not reworded for Python)
            raise ValidationError.from_exception_data(
                exc.title,
                [
                    InitErrorDetails(
                        type=PydanticCustomError(e["type"], e["msg"]), loc=e["loc"], input=None
                    )
                    for e in exc.errors(include_url=False, include_context=False)
                ],
            ) from None

    return Annotated[
        AugmentRequest, PlainValidator(from_json, json_schema_input_type=AugmentRequest)
    ]


class ValidationIssue(BaseModel):
    """One problem with a request body."""

    loc: list[str | int] = Field(description='where: e.g. ["body", "texts", 3]')
    msg: str = Field(description="what is wrong, in a sentence")
    type: str = Field(description="the kind of problem, e.g. missing, json_invalid, value_error")


class ErrorResponse(BaseModel):
    """The body of every error answer of the service."""

    detail: str | list[ValidationIssue] = Field(
        description="422: one entry per problem found; any other status: a sentence saying what "
        "was wrong and what to do"
    )


class ServiceStatus(BaseModel):
    """Liveness or readiness: the status, and once ready the models and how they are served."""

    status: Literal["alive", "loading", "ready", "failed"]
    detail: str | None = Field(None, description="why, when loading failed")
    models: dict[str, str | None] | None = Field(
        None, description="names of the code and models (a local path shows its last part only)"
    )
    fingerprints: dict[str, str] | None = Field(
        None, description="short sha256 of the MLM's weights, config and vocabulary"
    )
    mode: str | None = Field(None, description="the augmenter's mode: exact or fast")
    torch_threads: int | None = Field(None, description="intra-op threads of the model")


class ReplacementOut(BaseModel):
    field: Literal["a", "b"]
    start: int = Field(description="character offset of the new word in the variant")
    end: int
    original: str
    replacement: str
    source: str = Field(description="mlm, vectors or wordnet")
    rank: int = Field(description="1-based rank among the word's candidates")


class VariantOut(BaseModel):
    """One variant, shaped like a row of the augmented shards (variant 0 = the original)."""

    id: str
    variant: int
    text_a: str
    text_b: str | None
    label: str | None
    replacements: list[ReplacementOut]


class ItemOut(BaseModel):
    id: str
    variants: list[VariantOut]


class AugmentResponse(BaseModel):
    results: list[ItemOut] = Field(description="one entry per input, in input order")
    variants: int = Field(description="variants returned in all (originals included)")
