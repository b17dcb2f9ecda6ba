"""The one task registry: every fact about a GLUE task (and the shape of a custom one) that a
reader, a writer, a trainer or a benchmark needs: its columns, labels, metrics, export layout,
GLUE directory and dev files."""

from __future__ import annotations

from dataclasses import dataclass

NO_LABEL = -1  # `datasets`' label of an unlabelled row (GLUE test splits), a ClassLabel value

# A GLUE export layout: (header or None, column keys), as the TinyBERT task processors index the
# GLUE tsv files. Keys: a / b (texts), label, id (record id), index (running row number), ""
# (empty), "=NAME|KEY" (the pass-through column NAME of the input, else KEY, else empty) and
# "~NAME" (the pass-through column NAME on originals only: MNLI's parses describe the original
# sentences).
Layout = tuple[tuple[str, ...] | None, tuple[str, ...]]
_PAIR4: Layout = (("index", "sentence1", "sentence2", "label"), ("index", "a", "b", "label"))


@dataclass(frozen=True)
class Task:
    """One task: where its fields live in a file, how its labels and metrics work, and how its
    GLUE files are laid out.

    Column settings are tuples of accepted names: the GLUE tsv name first (the one a GLUE preset
    reads), then the names that Hugging Face `datasets` uses, so a GLUE tsv, a `datasets` export
    and kdaug shards all read."""

    name: str
    text_a: tuple[str, ...]
    text_b: tuple[str, ...] = ()
    label: tuple[str, ...] = ("label",)
    id: str | None = None  # the GLUE file's id column
    header: tuple[str, ...] | None = None  # column names of a headerless file (CoLA)
    labels: tuple[str, ...] | None = None  # ClassLabel order of `datasets`; None: a score
    file_labels: tuple[str, ...] = ()  # the GLUE files' label strings, by class index
    score_range: tuple[float, float] | None = None  # the scores of a regression task
    metrics: tuple[str, ...] = ("accuracy",)
    primary: str = "accuracy"
    glue_dir: str | None = None  # the task's directory in the GLUE download
    dev_files: tuple[str, ...] = ("dev.tsv",)
    export: Layout | None = None  # the GLUE tsv layout (see Layout)

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_pair(self) -> bool:
        return bool(self.text_b)

    @property
    def hub_columns(self) -> tuple[str, str | None]:
        """The text columns (text_a, text_b or None) of the task's GLUE config on the Hugging
        Face hub: the last name of each column setting."""
        return self.text_a[-1], self.text_b[-1] if self.text_b else None

    @property
    def accepted_labels(self) -> tuple[str, ...] | None:
        """The label values a reader accepts: the GLUE files' strings, the label names and the
        class indices of `datasets` (None: a regression score in `score_range`)."""
        if self.labels is None:
            return None
        indices = tuple(str(i) for i in range(len(self.labels)))
        return tuple(dict.fromkeys(self.file_labels + self.labels + indices))


def _binary(neg: str, pos: str) -> dict[str, tuple[str, ...]]:
    return {"labels": (neg, pos), "file_labels": ("0", "1")}


_NLI = ("entailment", "not_entailment")
GLUE_TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "sst2",
            ("sentence",),
            **_binary("negative", "positive"),
            glue_dir="SST-2",
            export=(("sentence", "label"), ("a", "label")),
        ),
        Task(
            "cola",
            ("sentence",),
            header=("source", "label", "original_label", "sentence"),
            **_binary("unacceptable", "acceptable"),
            metrics=("mcc",),
            primary="mcc",
            glue_dir="CoLA",
            export=(None, ("=0|id", "label", "=2", "a")),
        ),
        Task(
            "mrpc",
            ("#1 String", "sentence1"),
            ("#2 String", "sentence2"),
            ("Quality", "label"),
            **_binary("not_equivalent", "equivalent"),
            metrics=("accuracy", "f1"),
            primary="f1",
            glue_dir="MRPC",
            export=(
                ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                ("label", "=#1 ID|id", "=#2 ID|id", "a", "b"),
            ),
        ),
        Task(
            "stsb",
            ("sentence1",),
            ("sentence2",),
            ("score", "label"),
            id="index",
            score_range=(0.0, 5.0),
            metrics=("pearson", "spearman"),
            primary="spearman",
            glue_dir="STS-B",
            export=(
                ("index", "genre", "filename", "year", "old_index", "source1", "source2")
                + ("sentence1", "sentence2", "score"),
                ("index", "=genre", "=filename", "=year", "=old_index", "=source1", "=source2")
                + ("a", "b", "label"),
            ),
        ),
        Task(
            "qqp",
            ("question1",),
            ("question2",),
            ("is_duplicate", "label"),
            id="id",
            **_binary("not_duplicate", "duplicate"),
            metrics=("accuracy", "f1"),
            primary="f1",
            glue_dir="QQP",
            export=(
                ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                ("id", "=qid1", "=qid2", "a", "b", "label"),
            ),
        ),
        Task(
            "mnli",
            ("sentence1", "premise"),
            ("sentence2", "hypothesis"),
            ("gold_label", "label"),
            id="pairID",
            labels=("entailment", "neutral", "contradiction"),
            file_labels=("entailment", "neutral", "contradiction"),
            glue_dir="MNLI",
            dev_files=("dev_matched.tsv", "dev_mismatched.tsv"),
            export=(
                ("index", "promptID", "pairID", "genre", "sentence1_binary_parse")
                + ("sentence2_binary_parse", "sentence1_parse", "sentence2_parse")
                + ("sentence1", "sentence2", "label1", "gold_label"),
                ("index", "=promptID", "id", "=genre")
                + ("~sentence1_binary_parse", "~sentence2_binary_parse")
                + ("~sentence1_parse", "~sentence2_parse", "a", "b", "label", "label"),
            ),
        ),
        Task(
            "qnli",
            ("question",),
            ("sentence",),
            id="index",
            labels=_NLI,
            file_labels=_NLI,
            glue_dir="QNLI",
            export=(("index", "question", "sentence", "label"), ("index", "a", "b", "label")),
        ),
        Task(
            "rte",
            ("sentence1",),
            ("sentence2",),
            id="index",
            labels=_NLI,
            file_labels=_NLI,
            glue_dir="RTE",
            export=_PAIR4,
        ),
        Task(
            "wnli",
            ("sentence1",),
            ("sentence2",),
            id="index",
            **_binary("not_entailment", "entailment"),
            glue_dir="WNLI",
            export=_PAIR4,
        ),
    )
}
# Other spellings of the task names: the GLUE directories, and MNLI's two dev sets.
_SPELLINGS = {
    **{t.glue_dir.lower(): t.name for t in GLUE_TASKS.values() if t.glue_dir},
    "mnli-m": "mnli",
    "mnli-mm": "mnli",
}


def task_key(name: str) -> str:
    """The registry key of a task name written in any of its spellings (case-insensitive;
    GLUE folder spellings such as SST-2 work); unknown names come back normalised."""
    key = name.strip().lower()
    return _SPELLINGS.get(key, key.replace("-", ""))


def find_task(name: str | None) -> Task | None:
    """The GLUE task of that name (in any spelling), or None."""
    return GLUE_TASKS.get(task_key(name)) if name else None


def custom_task(text_a: str, text_b: str | None, label: str, labels: list[str] | None) -> Task:
    """A task from column names; `labels` None means regression (one output, Pearson/Spearman)."""
    if labels is None:
        metrics, primary = ("pearson", "spearman"), "spearman"
    elif len(labels) == 2:
        metrics, primary = ("accuracy", "f1"), "accuracy"
    else:
        metrics, primary = ("accuracy",), "accuracy"
    return Task(
        "custom",
        (text_a,),
        (text_b,) if text_b else (),
        (label,),
        labels=tuple(labels) if labels else None,
        metrics=metrics,
        primary=primary,
    )


def class_index(text: str, names: tuple[str, ...], glue: tuple[str, ...] = ()) -> int:
    """The class id of a label written as a name, a GLUE file string or an index."""
    if text in names:
        return names.index(text)
    if text in glue:
        return glue.index(text)
    if text.isdigit() and int(text) < len(names):
        return int(text)
    raise ValueError(f"label {text!r} is not one of {list(names)}")
