"""Reading word-vector files into words and a matrix: formats, the packaged GloVe, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from kdaug.errors import KdaugError
from kdaug.vectors import PACKAGED_GLOVE, WordVectors, read_vectors


def _write(path, words, vecs, header):
    with open(path, "w") as f:
        if header:
            f.write(f"{len(words)} {vecs.shape[1]}\n")
        for w, v in zip(words, vecs, strict=True):
            f.write(w + " " + " ".join(f"{x:.4f}" for x in v) + "\n")


@pytest.mark.parametrize("header", [False, True])
def test_glove_and_word2vec_text(tmp_path, header):
    words = ["cat", "dog", "car"]
    vecs = np.arange(12, dtype=np.float32).reshape(3, 4) / 4
    path = tmp_path / "vecs.txt"
    _write(path, words, vecs, header)
    table = read_vectors(str(path))
    assert table.name == str(path) and table.words == words
    assert table.key_to_index == {"cat": 0, "dog": 1, "car": 2}
    np.testing.assert_allclose(table.matrix, vecs, atol=1e-4)


def test_packaged_glove():
    table = read_vectors(PACKAGED_GLOVE)
    assert table.name == PACKAGED_GLOVE and table.matrix.shape == (len(table.words), 50)
    assert table.key_to_index["the"] < 10


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(KdaugError, match="not found"):
        read_vectors(str(tmp_path / "nope.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_text("cat 0.1 0.2\ndog x\n")
    with pytest.raises(KdaugError, match="cannot read word vectors"):
        read_vectors(str(bad))


def test_words_and_rows_must_agree():
    with pytest.raises(KdaugError, match="2 words but matrix"):
        WordVectors("t", ["a", "b"], np.zeros((3, 4), np.float32))
