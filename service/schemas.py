"""Request and response bodies of POST /augment.

The request model is built per app from the settings, so that its limits (items, characters, n)
are enforced by validation and documented in the OpenAPI schema.
"""

from __future__ import annotations

import json
import math
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, create_model
from pydantic import StringConstraints as Chars
from pydantic.json_schema import models_json_schema

from augment.config import AugmentConfig, SampleParams
from augment.records import Record
from service.batching import WORD
from service.settings import ServiceSettings

SOURCES = {"mlm": ("mlm",), "vectors": ("vectors",), "both": ("mlm", "vectors")}
SEED_MAX = 2**63 - 1
# Upper-end JSON sizes for the response estimate: a variant row without its texts, one item's
# wrapper, one replacement without its two words (a candidate word is at most this long).
ROW_BYTES, ITEM_BYTES, REPLACEMENT_BYTES, CANDIDATE_CHARS = 110, 40, 110, 30


def blank(text: str) -> bool:
    """Empty, whitespace or NUL only: no word to augment (the CLI rejects such rows)."""
    return not text.replace("\x00", "").strip()


def json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


class AugmentRequestBase(BaseModel):
    """Texts or pairs to augment, with optional labels and ids, and sampling parameters."""

    model_config = ConfigDict(extra="forbid")

    def items(self) -> list[tuple[str, str | None]]:
        if self.texts is not None:
            return [(t, None) for t in self.texts]
        return [(a, b) for a, b in self.pairs or []]

    def problems(self) -> list[dict[str, Any]]:
        """Checks across fields, as validation errors (loc, msg, type)."""

        def err(field: str, msg: str) -> dict[str, Any]:
            return {"loc": ["body", field], "msg": msg, "type": "value_error"}

        if (self.texts is None) == (self.pairs is None):
            return [err("texts", "give exactly one of 'texts' or 'pairs'")]
        count = len(self.items())
        out = []
        for name in ("labels", "ids"):
            values = getattr(self, name)
            if values is not None and len(values) != count:
                out.append(err(name, f"has {len(values)} entries for {count} inputs"))
        if self.ids is not None and len({str(i) for i in self.ids}) != len(self.ids):
            out.append(err("ids", "ids must be unique within a request"))
        if self.texts is not None and self.fields == "b":
            out.append(err("fields", "'b' needs pairs; single texts only have field 'a'"))
        for i, (a, b) in enumerate(self.items()):
            where = [["texts", i]] if self.texts is not None else [["pairs", i, 0], ["pairs", i, 1]]
            for loc, text in zip(where, (a, b), strict=False):
                if text is not None and blank(text):
                    out.append(
                        {
                            "loc": ["body", *loc],
                            "msg": "blank text (empty, whitespace or NUL only): nothing to augment",
                            "type": "value_error",
                        }
                    )
        return out

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
            sources=SOURCES[self.sources] if self.sources else None,
        )


def _texts_and_pairs(settings: ServiceSettings, default: Any) -> tuple[Any, Any]:
    """(type, Field) of `texts` and of `pairs`, with the limits of `settings`."""
    text = Annotated[StrictStr, Chars(max_length=settings.max_text_chars)]
    many = {"default": default, "min_length": 1, "max_length": settings.max_items}
    texts = Field(description="single texts", examples=[["a gripping film"]], **many)
    pairs = Field(
        description="text pairs [a, b] (e.g. premise, hypothesis)",
        examples=[[["a man plays a guitar", "a person makes music"]]],
        **many,
    )
    return (list[text], texts), (list[tuple[text, text]], pairs)


class Sources(str, Enum):
    """Candidate sources: masked LM, word vectors, or both."""

    mlm = "mlm"
    vectors = "vectors"
    both = "both"


class PairFields(str, Enum):
    """Which fields of a pair to augment."""

    a = "a"
    b = "b"
    both = "both"


class TextFields(str, Enum):
    """Which fields of a single text to augment (it has field a only; both means a)."""

    a = "a"
    both = "both"


def _options(settings: ServiceSettings, fields: Any, sources: Any) -> dict[str, Any]:
    """The fields besides texts/pairs, with the limits of `settings`; `fields` and `sources`
    are the types of those two fields."""
    many = {"min_length": 1, "max_length": settings.max_items}
    return {
        "labels": (
            list[StrictStr | StrictInt | StrictFloat | None] | None,
            Field(None, **many, description="one label per input, copied to its variants"),
        ),
        "ids": (
            list[Annotated[StrictStr, Chars(min_length=1, max_length=200)] | StrictInt] | None,
            Field(None, **many, description="one id per input, unique; default: the input's index"),
        ),
        "n": (
            StrictInt | None,
            Field(None, ge=1, le=settings.max_n, description="variants per input"),
        ),
        "p": (
            StrictFloat | None,
            Field(None, gt=0.0, le=1.0, description="replacement probability"),
        ),
        "seed": (
            StrictInt | None,
            Field(None, ge=-SEED_MAX - 1, le=SEED_MAX, description="global seed"),
        ),
        "fields": (fields | None, Field(None, description="which fields to augment")),
        "include_original": (
            bool | None,
            Field(None, strict=True, description="return the input as variant 0"),
        ),
        "sources": (
            sources | None,
            Field(None, description="candidate sources: masked LM, word vectors, or both"),
        ),
    }


def request_model(settings: ServiceSettings) -> type[AugmentRequestBase]:
    """The model that validates POST /augment bodies, with the limits of `settings`.

    It takes `texts` and `pairs` both as optional and checks "exactly one" itself (`problems`),
    so that every error names the field at fault; the OpenAPI document describes the same
    bodies as `oneOf` the two shapes of `documented_request_models`.
    """
    (texts_type, texts), (pairs_type, pairs) = _texts_and_pairs(settings, None)
    return create_model(
        "AugmentRequest",
        __base__=AugmentRequestBase,
        texts=(texts_type | None, texts),
        pairs=(pairs_type | None, pairs),
        **_options(settings, Literal["a", "b", "both"], Literal["mlm", "vectors", "both"]),
    )


class _Documented(BaseModel):
    model_config = ConfigDict(extra="forbid")


def documented_request_models(settings: ServiceSettings) -> tuple[type[BaseModel], ...]:
    """TextsRequest and PairsRequest: the two shapes of a POST /augment body, for the OpenAPI
    document (and so for generated clients); `request_model` is what validates them."""
    (texts_type, texts), (pairs_type, pairs) = _texts_and_pairs(settings, ...)
    single = create_model(
        "TextsRequest",
        __base__=_Documented,
        __doc__="Single texts to augment, with optional labels, ids and sampling parameters.",
        texts=(texts_type, texts),
        **_options(settings, TextFields, Sources),
    )
    paired = create_model(
        "PairsRequest",
        __base__=_Documented,
        __doc__="Text pairs to augment, with optional labels, ids and sampling parameters.",
        pairs=(pairs_type, pairs),
        **_options(settings, PairFields, Sources),
    )
    return single, paired


def request_schemas(settings: ServiceSettings, ref: str) -> dict[str, Any]:
    """Component schemas of the request body: TextsRequest, PairsRequest and AugmentRequest
    (`oneOf` the two); `ref` is the template of a reference, e.g. "#/components/schemas/{model}"."""
    models = documented_request_models(settings)
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=ref)
    schemas = dict(top.get("$defs", {}))
    schemas["AugmentRequest"] = {
        "title": "AugmentRequest",
        "description": "Exactly one of `texts` (a TextsRequest) or `pairs` (a PairsRequest).",
        "oneOf": [{"$ref": ref.format(model=m.__name__)} for m in models],
    }
    return schemas


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
