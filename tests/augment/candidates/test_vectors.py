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


def test_neighbours_are_the_same_bits_whatever_the_chunk_of_queries(glove):
    """Scores are computed a chunk of query words at a time into one reused buffer: every
    chunk size gives each word the neighbours and scores of one product over all the words, and
    so does a word that comes alone (it was a matrix-vector product, other bits)."""
    import torch

    words = [w for w in glove.words[500:3000] if w.isalpha()][:300]
    rows = np.stack([glove.vectors[glove.key_to_index[w]] for w in words]).astype(np.float32)
    q = torch.nn.functional.normalize(torch.from_numpy(rows), dim=1)
    k = glove.top_k + 30
    scores, idx = torch.topk(q @ glove._search.T, k, dim=1)
    want = [
        glove._filter(w, i, s) for w, i, s in zip(words, idx.tolist(), scores.tolist(), strict=True)
    ]
    for chunk in (1, 7, 64, 1000):
        fresh = VectorIndex.load("glove-6b-50d", limit=100_000, top_k=15)
        fresh._chunk = chunk
        assert fresh.neighbours(words) == want, chunk
        assert len(fresh._scores) == max(chunk, 8)  # one buffer, reused
    for size in (1, 2, 3, 37):
        alone = VectorIndex.load("glove-6b-50d", limit=100_000, top_k=15)
        got = [n for at in range(0, 300, size) for n in alone.neighbours(words[at : at + size])]
        assert got == want, size
