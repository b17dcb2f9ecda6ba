"""Request and response bodies of POST /augment.

The request model is built per app from the settings, so that its limits (items, characters, n)
are enforced by validation and documented in the OpenAPI schema.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, create_model
from pydantic import StringConstraints as Chars

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

    def cost(self, params: SampleParams) -> tuple[int, int]:
        """(work, estimated response bytes) of this request with `params`.

        Work is the words of each input times n, summed. The estimate errs high: every variant
        as long as its input plus its replacements, with a generous count of words replaced.
        """
        variants = params.n + int(params.include_original)
        work = size = 0
        for rec in self.records():
            words = WORD.findall(rec.text_a) + WORD.findall(rec.text_b or "")
            work += len(words) * params.n
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
        return work, size + 40

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


def request_model(settings: ServiceSettings) -> type[AugmentRequestBase]:
    """The AugmentRequest model with the limits of `settings`."""
    text = Annotated[StrictStr, Chars(max_length=settings.max_text_chars)]
    many = {"min_length": 1, "max_length": settings.max_items}
    fields: dict[str, Any] = {
        "texts": (
            list[text] | None,
            Field(None, **many, description="single texts", examples=[["a gripping film"]]),
        ),
        "pairs": (
            list[tuple[text, text]] | None,
            Field(None, **many, description="text pairs [a, b] (e.g. premise, hypothesis)"),
        ),
        "labels": (
            list[StrictStr | StrictInt | StrictFloat | None] | None,
            Field(None, **many, description="one label per input, copied to its variants"),
        ),
        "ids": (
            list[Annotated[StrictStr, Chars(min_length=1, max_length=200)] | StrictInt] | None,
            Field(None, **many, description="one id per input; default: the input's index"),
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
        "fields": (
            Literal["a", "b", "both"] | None,
            Field(None, description="which fields of a pair to augment"),
        ),
        "include_original": (
            bool | None,
            Field(None, strict=True, description="return the input as variant 0"),
        ),
        "sources": (
            Literal["mlm", "vectors", "both"] | None,
            Field(None, description="candidate sources: masked LM, word vectors, or both"),
        ),
    }
    return create_model("AugmentRequest", __base__=AugmentRequestBase, **fields)


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
