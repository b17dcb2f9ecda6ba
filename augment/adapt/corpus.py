"""Read an adaptation corpus (text, csv/tsv, jsonl, parquet) into sentences with optional labels."""

from __future__ import annotations

import gzip
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from kdaug import tables
from kdaug.errors import InputError

TEXT_SUFFIXES = {".txt", ".text"}
TABLE_SUFFIXES = {".csv", ".tsv", ".jsonl", ".json", ".parquet"}


class CorpusError(InputError):
    """The adaptation corpus cannot be used (missing file or column, empty, one class only)."""


@dataclass(frozen=True)
class Corpus:
    """Sentences, and their labels (strings) when the corpus has a label column."""

    texts: list[str]
    labels: list[str] | None = None
    sources: list[int] | None = None  # the corpus file (index) of each sentence

    def __len__(self) -> int:
        return len(self.texts)

    def label_set(self) -> list[str]:
        """The distinct labels in a stable order (sorted), or [] for an unlabelled corpus."""
        return sorted(set(self.labels)) if self.labels is not None else []

    def fingerprint(self) -> str:
        """A content hash of texts and labels: the same sentences give the same fingerprint."""
        h = hashlib.sha256()
        for i, text in enumerate(self.texts):
            h.update(text.encode("utf-8"))
            h.update(b"\t" + (self.labels[i].encode("utf-8") if self.labels else b"") + b"\n")
        return h.hexdigest()[:16]

    def split(self, heldout: float, seed: int, max_heldout: int = 2000) -> tuple[Corpus, Corpus]:
        """Seeded split into (train, held-out); the held-out part is capped at `max_heldout`."""
        order = list(range(len(self.texts)))
        random.Random(seed).shuffle(order)
        n_held = min(max_heldout, int(len(order) * heldout))
        if n_held < 1 or n_held >= len(order):
            raise CorpusError(
                f"the corpus has {len(order)} sentences: too few to hold out {heldout:.0%} "
                "for evaluation; add sentences or pass --eval-file"
            )
        held, train = sorted(order[:n_held]), sorted(order[n_held:])
        return self._take(train), self._take(held)

    def repeated(self, repeats: list[int]) -> Corpus:
        """Each sentence of file k `repeats[k]` times: a mix of corpora with weights. Applied to
        the training part after the split, so no held-out sentence is trained on."""
        if self.sources is None:
            raise CorpusError("the corpus does not record which file each sentence came from")
        idx = [i for i, k in enumerate(self.sources) for _ in range(repeats[k])]
        return self._take(idx)

    def _take(self, idx: list[int]) -> Corpus:
        labels = [self.labels[i] for i in idx] if self.labels is not None else None
        sources = [self.sources[i] for i in idx] if self.sources is not None else None
        return Corpus([self.texts[i] for i in idx], labels, sources)


def _read_text(path: Path) -> list[dict[str, str]]:
    """One row per line (a UTF-8 BOM skipped); a line that is not UTF-8 is a one-line error
    naming the file, line and byte, as the table readers' are."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rb") as f:
        for ln, skipped, line in tables.numbered_lines(f):
            try:
                rows.append({"text": line.decode("utf-8").strip()})
            except UnicodeDecodeError as exc:
                raise CorpusError(
                    f"{path}:{ln}: {tables.not_utf8(line, exc, ln, skipped)}"
                ) from None
    return rows


def _read_table(path: Path) -> list[dict]:
    """The rows of a csv / tsv / jsonl / Parquet file (kdaug.tables; GLUE tsv files hold bare
    quote characters, so tsv has no quoting); blank lines are skipped, and any other row that
    cannot be read is a one-line error naming the file, line and reason."""
    return [row.values for row in tables.read_rows(path, error=CorpusError, skip_blank=True)]


def read_rows(path: Path) -> tuple[list[dict], bool]:
    """Rows of one file as dicts, and whether it is a plain text file (one sentence a line)."""
    if not path.is_file():
        raise CorpusError(f"corpus file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES or "".join(path.suffixes[-2:]).lower() == ".txt.gz":
        return _read_text(path), True
    if suffix in TABLE_SUFFIXES:
        return _read_table(path), False
    raise CorpusError(
        f"{path}: unknown corpus format {suffix or '(no suffix)'}; use one of "
        + ", ".join(sorted(TEXT_SUFFIXES | TABLE_SUFFIXES | {".txt.gz"}))
    )


def _column(rows: list[dict], column: str, path: Path, option: str) -> list:
    if rows and column not in rows[0]:
        found = ", ".join(map(str, rows[0].keys()))
        raise CorpusError(f"{path}: no column {column!r} (found: {found}); pass {option} NAME")
    return [row.get(column) for row in rows]


def read_corpus(
    paths: list[Path], text_column: str = "sentence", label_column: str | None = None
) -> Corpus:
    """Read and concatenate corpus files; blank texts are dropped, labels are kept as strings."""
    texts: list[str] = []
    labels: list[str] | None = [] if label_column else None
    sources: list[int] = []
    for k, path in enumerate(map(Path, paths)):
        rows, plain = read_rows(path)
        if plain and label_column:
            raise CorpusError(
                f"{path}: a plain text file has no label column; use csv/tsv/jsonl/parquet "
                "for --label-column"
            )
        col_texts = (
            [r["text"] for r in rows]
            if plain
            else _column(rows, text_column, path, "--text-column")
        )
        col_labels = _column(rows, label_column, path, "--label-column") if label_column else None
        for i, text in enumerate(col_texts):
            text = str(text).strip() if text is not None else ""
            if not text:
                continue
            if labels is not None:
                label = col_labels[i]
                if label is None or str(label).strip() == "":
                    raise CorpusError(
                        f"{path}: row {i + 1} has no value in label column {label_column!r}"
                    )
                labels.append(str(label).strip())
            texts.append(text)
            sources.append(k)
    if not texts:
        raise CorpusError(
            "the corpus is empty: no non-blank sentence in " + ", ".join(map(str, paths))
        )
    corpus = Corpus(texts, labels, sources)
    if labels is not None and len(corpus.label_set()) < 2:
        raise CorpusError(
            f"label column {label_column!r} has a single class ({corpus.label_set()[0]!r}): "
            "label-conditional training needs at least two"
        )
    return corpus
