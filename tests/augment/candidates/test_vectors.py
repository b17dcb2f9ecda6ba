import numpy as np
import pytest

from augment.candidates.vectors import VectorIndex
from kdaug.vectors import WordVectors


@pytest.fixture(scope="module")
def glove():
    return VectorIndex.load("glove-6b-50d", limit=100_000, top_k=15)


def test_packaged_glove_neighbours(glove):
    (king,) = glove.neighbours(["King"])
    words = [w for w, _ in king]
    assert len(words) == 15 and "king" not in words
    assert {"queen", "prince", "monarch", "throne"} & set(words)
    assert all(w.isalpha() for w in words)
    scores = [s for _, s in king]
    assert scores == sorted(scores, reverse=True)


def test_unknown_word_and_cache(glove):
    assert glove.neighbours(["qxzvbnmw"]) == [[]]
    first = glove.neighbours(["movie"])
    assert glove.neighbours(["movie", "movie"]) == first * 2


def test_search_limited_to_frequent_words():
    small = VectorIndex.load("glove-6b-50d", limit=1000, top_k=5)
    (n,) = small.neighbours(["movie"])
    assert all(small.key_to_index[w] < 1000 for w, _ in n)


def test_nearest_neighbour_in_a_small_table():
    rng = np.random.default_rng(0)
    words = ["cat", "dog", "car", "truck", "apple"]
    vecs = rng.normal(size=(5, 8)).astype(np.float32)
    vecs[1] = vecs[0] + 0.01  # dog ~ cat
    idx = VectorIndex(WordVectors("small", words, vecs), top_k=2)
    assert idx.neighbours(["cat"])[0][0][0] == "dog"
