"""The columns of a build's shards and how `datasets` reads them.

A build's layout follows from its fingerprint (task, column mapping, input), so every shard of a
build, resumed or not, has the same schema. The `datasets` features go into the Parquet schema
metadata under the `huggingface` key, as `datasets` writes them ({"info": {"features": ...}}), so
`load_dataset("parquet", ...)` gives `label` as a ClassLabel with the task's names; the dataset
card at the build root carries the same features in YAML.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from kdaug.tables import class_names
from kdaug.tasks import GLUE_TASKS, NO_LABEL, class_index

SCHEMA_VERSION = 2  # 1: every column nullable, string labels, text_b always present
REPLACEMENT_FIELDS = (
    ("field", "string"),
    ("start", "int32"),
    ("end", "int32"),
    ("original", "string"),
    ("replacement", "string"),
    ("source", "string"),
    ("rank", "int32"),
)
REPLACEMENT_TYPE = pa.struct([(name, pa.type_for_alias(t)) for name, t in REPLACEMENT_FIELDS])


@dataclass(frozen=True)
class ShardLayout:
    """The shard columns of one build.

    `label`: "class" (int64 ClassLabel ids of `names`, -1 for no label), "score" (float32, -1.0
    for no label), "string" (the input's label text, for builds without a task) or "none" (no
    label column). `passthrough`: the input's other columns, carried as a struct of strings."""

    pair: bool = True
    label: str = "string"
    names: tuple[str, ...] = ()
    task: str | None = None
    passthrough: tuple[str, ...] = ()

    @classmethod
    def for_build(
        cls, task: str | None, pair: bool, has_label: bool, passthrough: tuple[str, ...] = ()
    ) -> ShardLayout:
        """The layout of a build with this GLUE preset (or none), text shape and columns."""
        if task in GLUE_TASKS:
            names = GLUE_TASKS[task].labels
            kind = "score" if names is None else "class"
            return cls(pair, kind, names or (), task, tuple(passthrough))
        return cls(pair, "string" if has_label else "none", (), None, tuple(passthrough))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "names": list(self.names), "passthrough": list(self.passthrough)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardLayout:
        return cls(
            bool(d["pair"]),
            str(d["label"]),
            tuple(d.get("names") or ()),
            d.get("task"),
            tuple(d.get("passthrough") or ()),
        )

    # the columns -------------------------------------------------------------------------
    def _columns(self) -> list[tuple[str, pa.DataType, bool, dict[str, Any]]]:
        """(name, Arrow type, nullable, `datasets` feature) of each column, in order."""

        def value(dtype: str) -> dict[str, Any]:
            return {"dtype": dtype, "_type": "Value"}

        cols = [
            ("id", pa.string(), False, value("string")),
            ("variant", pa.int32(), False, value("int32")),
            ("text_a", pa.string(), False, value("string")),
        ]
        if self.pair:
            cols.append(("text_b", pa.string(), False, value("string")))
        # A ClassLabel column stays nullable in the Arrow schema (it never holds a null):
        # `datasets` ignores the metadata feature of a field whose nullability differs from its
        # own, and would load the labels as plain int64.
        if self.label == "class":
            cols.append(
                ("label", pa.int64(), True, {"names": list(self.names), "_type": "ClassLabel"})
            )
        elif self.label == "score":
            cols.append(("label", pa.float32(), False, value("float32")))
        elif self.label == "string":
            cols.append(("label", pa.string(), True, value("string")))
        # A list in the metadata's older form ([feature]), which every `datasets` version reads as
        # a list of dicts; nullable for the same reason as above.
        reps = [{name: value(t) for name, t in REPLACEMENT_FIELDS}]
        cols.append(("replacements", pa.list_(REPLACEMENT_TYPE), True, reps))
        if self.passthrough:
            struct = pa.struct([(n, pa.string()) for n in self.passthrough])
            cols.append(
                ("passthrough", struct, False, {n: value("string") for n in self.passthrough})
            )
        return cols

    def features(self) -> dict[str, Any]:
        """The `datasets` features (`Features.to_dict()` form) of the shards."""
        return {name: feature for name, _, _, feature in self._columns()}

    def arrow_schema(self) -> pa.Schema:
        """The shards' schema, with the features under the `huggingface` metadata key."""
        fields = [pa.field(n, t, nullable=null) for n, t, null, _ in self._columns()]
        meta = {"info": {"features": self.features()}}
        return pa.schema(fields, metadata={"huggingface": json.dumps(meta)})

    def card_features(self) -> list[dict[str, Any]]:
        """The features as a dataset card's YAML `dataset_info.features` list."""

        def entry(name: str, feature: Any) -> dict[str, Any]:
            if isinstance(feature, list):
                return {"name": name, "list": [entry(k, v) for k, v in feature[0].items()]}
            if feature.get("_type") == "ClassLabel":
                names = {str(i): n for i, n in enumerate(feature["names"])}
                return {"name": name, "dtype": {"class_label": {"names": names}}}
            if feature.get("_type") == "Value":
                return {"name": name, "dtype": feature["dtype"]}
            return {"name": name, "struct": [entry(k, v) for k, v in feature.items()]}

        return [entry(name, feature) for name, feature in self.features().items()]

    # labels --------------------------------------------------------------------------------
    def encode_label(self, label: str | None) -> int | float | str | None:
        """The stored value of a record's label (the input's string, checked by the reader
        against the task's label set)."""
        if self.label in ("string", "none"):
            return label
        if label is None or label.strip() == str(NO_LABEL):
            return NO_LABEL if self.label == "class" else float(NO_LABEL)
        text = label.strip()
        if self.label == "score":
            return float(text)
        return class_index(text, self.names, _file_labels(self.task))


def _class_names(task: str | None) -> tuple[str, ...]:
    """The task's ClassLabel names (those of `datasets`' GLUE configs); () for a score."""
    t = GLUE_TASKS.get(task or "")
    return (t.labels or ()) if t else ()


def _file_labels(task: str | None) -> tuple[str, ...]:
    """The label strings of the task's GLUE files, by class index (what TinyBERT's processors
    read); () for a score or a build without a task."""
    t = GLUE_TASKS.get(task or "")
    return t.file_labels if t else ()


def format_score(value: float) -> str:
    """A float32 score written as its shortest text (3.8, not 3.799999952316284)."""
    import numpy as np

    return str(np.float32(value))


@dataclass(frozen=True)
class LabelCodec:
    """How the labels of a build read and write: stored values (class ids, scores, or the
    label strings of shards from an older kdaug or of a build without a task) to the text of
    the task's GLUE files, to class ids, and from a teacher's logits."""

    kind: str  # "class", "score", "string" or "none", as ShardLayout.label
    names: tuple[str, ...] = ()
    task: str | None = None
    teacher_names: tuple[str, ...] = ()  # the teacher's id2label (builds without a task)

    @classmethod
    def for_shards(cls, schema: pa.Schema, task: str | None) -> LabelCodec:
        names = class_names(schema)
        if names is not None:
            return cls("class", names, task)
        if "label" not in schema.names:
            return cls("none", (), task)
        if pa.types.is_floating(schema.field("label").type):
            return cls("score", (), task)
        return cls("string", _class_names(task), task)

    @property
    def regression(self) -> bool:
        t = GLUE_TASKS.get(self.task or "")
        return self.kind == "score" or (t is not None and t.is_regression)

    def text(self, value: Any) -> str:
        """A stored label as the task's GLUE files write it ("" for no label)."""
        if value is None or (not isinstance(value, str) and value == NO_LABEL):
            return ""
        if isinstance(value, float):
            return format_score(value)
        if isinstance(value, int) and self.kind == "class":
            glue = _file_labels(self.task)
            return glue[value] if glue and value < len(glue) else self.names[value]
        return str(value)

    def index(self, value: Any) -> int | None:
        """The class id of a stored label (None: no label, or a label it cannot place)."""
        if value is None or (isinstance(value, int) and value == NO_LABEL):
            return None
        if isinstance(value, int):
            return value
        names = self.names or self.teacher_names
        try:
            return class_index(str(value).strip(), names, _file_labels(self.task))
        except ValueError:
            return None

    def score(self, value: Any) -> float | None:
        """A stored regression label as a number (None: no label)."""
        if value is None or value == "":
            return None
        x = float(value)
        return None if x == NO_LABEL else x

    def from_logits(self, logits: Any) -> int | float | str:
        """The teacher's label, in the form the shards store labels: the argmax's class id, the
        score (regression), or for string labels the GLUE text / the teacher's label name."""
        if self.regression:
            score = float(logits[0])
            return score if self.kind == "score" else format_score(score)
        best = int(max(range(len(logits)), key=lambda i: logits[i]))
        if self.kind == "class":
            return best
        glue = _file_labels(self.task)
        if glue:
            return glue[best]
        return self.teacher_names[best] if best < len(self.teacher_names) else str(best)
