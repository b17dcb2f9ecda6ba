"""Corpus reading: every format, GLUE tsv quirks, and one-line errors for unusable input."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from augment.adapt.corpus import CorpusError, read_corpus
from augment.adapt.default import (
    REVIEWS_REPEAT,
    default_corpus_path,
    default_settings,
    reviews_corpus_path,
)
from augment.adapt.settings import SettingsError
from kdaug.errors import KdaugError


def test_text_file_drops_blank_lines(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("first line .\n\n  second line  \n", encoding="utf-8")
    corpus = read_corpus([f])
    assert corpus.texts == ["first line .", "second line"]
    assert corpus.labels is None


def test_glue_tsv_with_bom_and_bare_quotes(tmp_path):
    f = tmp_path / "train.tsv"
    f.write_bytes('\ufeffsentence\tlabel\nit \'s a "gem" .\t1\nflat , dull\t0\n'.encode())
    corpus = read_corpus([f], label_column="label")
    assert corpus.texts == ['it \'s a "gem" .', "flat , dull"]
    assert corpus.labels == ["1", "0"]
    assert corpus.label_set() == ["0", "1"]


def test_jsonl_parquet_csv_and_gz_concatenate(tmp_path):
    j = tmp_path / "a.jsonl"
    j.write_text(json.dumps({"text": "from json", "y": 1}) + "\n", encoding="utf-8")
    p = tmp_path / "b.parquet"
    pq.write_table(pa.table({"text": ["from parquet"], "y": [0]}), p)
    c = tmp_path / "c.csv"
    c.write_text('text,y\n"with, comma",1\n', encoding="utf-8")
    corpus = read_corpus([j, p, c], text_column="text", label_column="y")
    assert corpus.texts == ["from json", "from parquet", "with, comma"]
    assert corpus.labels == ["1", "0", "1"]
    g = tmp_path / "d.txt.gz"
    with gzip.open(g, "wt", encoding="utf-8") as fh:
        fh.write("zipped sentence\n")
    assert read_corpus([g]).texts == ["zipped sentence"]


def test_fingerprint_follows_content(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one\ntwo\n")
    b.write_text("one\ntwo\n")
    assert read_corpus([a]).fingerprint() == read_corpus([b]).fingerprint()
    b.write_text("one\nthree\n")
    assert read_corpus([a]).fingerprint() != read_corpus([b]).fingerprint()


def test_split_is_seeded_and_disjoint(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("\n".join(f"sentence {i}" for i in range(100)))
    corpus = read_corpus([f])
    train, held = corpus.split(0.15, seed=3)
    assert len(held) == 15 and len(train) == 85
    assert not set(train.texts) & set(held.texts)
    assert corpus.split(0.15, seed=3)[1].texts == held.texts


def test_repeats_weight_files_after_the_split(tmp_path):
    big, small = tmp_path / "big.txt", tmp_path / "small.txt"
    big.write_text("\n".join(f"wiki sentence {i}" for i in range(80)))
    small.write_text("\n".join(f"review sentence {i}" for i in range(20)))
    train, held = read_corpus([big, small]).split(0.2, seed=1)
    weighted = train.repeated([1, 3])
    counts = {t: weighted.texts.count(t) for t in set(weighted.texts)}
    assert {counts[t] for t in train.texts if t.startswith("wiki")} == {1}
    assert {counts[t] for t in train.texts if t.startswith("review")} == {3}
    assert len(weighted) == len(train) + 2 * sum(t.startswith("review") for t in train.texts)
    assert not set(weighted.texts) & set(held.texts)  # nothing held out is trained on
    assert weighted.fingerprint() != train.fingerprint()


def test_one_repeat_per_corpus_file(tmp_path):
    s = default_settings(corpus=[tmp_path / "a.txt"], corpus_repeat=[1, 2], output=tmp_path)
    with pytest.raises(SettingsError, match="one whole number >= 1 per --corpus file"):
        s.validate()
    s = default_settings(corpus=[tmp_path / "a.txt"], output=tmp_path)
    assert s.corpus_repeat is None  # your corpus is not weighted like the default's


def test_default_mixes_wikipedia_and_reviews(tmp_path, monkeypatch):
    monkeypatch.setenv("KDAUG_CACHE", str(tmp_path))
    s = default_settings()
    assert s.corpus == [default_corpus_path(), reviews_corpus_path()]
    assert s.corpus_repeat == [1, REVIEWS_REPEAT]
    reviews = read_corpus([reviews_corpus_path()]).texts
    assert len(reviews) == 200 and not any(t.startswith("__label__") for t in reviews)
    assert "the action clichés just pile up ." in reviews  # Windows-1252 read as such
    assert reviews_corpus_path().parent == tmp_path / "corpora"


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        (None, {}, "corpus file not found"),
        ("sentence\tlabel\nx\t1\n", {"text_column": "text"}, "no column 'text'"),
        ("sentence\tlabel\nx\t1\n", {"label_column": "y"}, "no column 'y'"),
        ("sentence\tlabel\n\t1\n  \t0\n", {}, "the corpus is empty"),
        ("sentence\tlabel\na\t1\nb\t1\n", {"label_column": "label"}, "single class"),
        ("sentence\tlabel\na\t1\nb\t\n", {"label_column": "label"}, "no value in label column"),
        ("sentence\tlabel\na\t1\tx\n", {}, r"c.tsv:2: row has 3 fields, the header has 2"),
        ("sentence\tlabel\n\n\xff\t1\n", {}, r"c.tsv:3: not valid UTF-8 at byte offset 0"),
    ],
)
def test_bad_corpus_is_a_one_line_error(tmp_path, content, kwargs, message):
    f = tmp_path / "c.tsv"
    if content is not None:
        # "\xff" in `content` stands for the byte 0xff (not UTF-8)
        f.write_bytes(content.encode("utf-8").replace(b"\xc3\xbf", b"\xff"))
    with pytest.raises(CorpusError, match=message) as err:
        read_corpus([f], **kwargs)
    assert isinstance(err.value, KdaugError) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["c.txt", "c.txt.gz"])
def test_plain_text_with_a_bad_byte_is_a_one_line_error(tmp_path, name):
    data = "I can't say it's \"bad\" 😀\nthe café\n".encode() + b"\xfe broken\n"
    f = tmp_path / name
    f.write_bytes(gzip.compress(data) if name.endswith(".gz") else b"\xef\xbb\xbf" + data)
    with pytest.raises(CorpusError, match=rf"{name}:3: not valid UTF-8 at byte offset 0 ") as err:
        read_corpus([f])
    assert "\n" not in str(err.value) and "0xfe" in str(err.value)
    f.write_bytes(gzip.compress(data[:-9]) if name.endswith(".gz") else data[:-9])
    assert read_corpus([f]).texts == ["I can't say it's \"bad\" 😀", "the café"]


def test_unreadable_json_line_names_file_line_and_reason(tmp_path):
    j = tmp_path / "c.jsonl"
    j.write_text('{"sentence": "fine"}\n\n{"sentence": \n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"c.jsonl:3: invalid JSON: Expecting value"):
        read_corpus([j])


def test_unknown_format_and_plain_text_with_labels(tmp_path):
    f = tmp_path / "c.xml"
    f.write_text("<x/>")
    with pytest.raises(CorpusError, match="unknown corpus format"):
        read_corpus([f])
    t = tmp_path / "c.txt"
    t.write_text("a\n")
    with pytest.raises(CorpusError, match="no label column"):
        read_corpus([t], label_column="label")


def test_packaged_default_corpus_is_readable():
    corpus = read_corpus([default_corpus_path()])
    assert len(corpus) > 10_000
    assert all(t[0].isupper() and t[-1] in ".!?" for t in corpus.texts[:200])
