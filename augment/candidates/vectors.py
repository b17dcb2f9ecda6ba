"""Word-vector nearest neighbours: one normalised matrix product and `topk`, cached per word.

The table comes from `kdaug.vectors`, which reads the vectors files."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from augment.candidates.topk import BLOCK, product, top_k
from kdaug.vectors import WordVectors, read_vectors

if TYPE_CHECKING:
    from augment.candidates.source import WordInContext

_EXTRA = 30  # neighbours fetched beyond top_k, to survive the filters
# Query words scored per matrix product. The scores go to one buffer kept between calls: a
# fresh (words x 100,000) float32 matrix a call is fresh pages from the kernel each time, and
# faulting them in cost the CPU 7x the product itself on a 2-core VM. Each word's scores are the
# same bits whatever the chunk (tests/augment/candidates/test_vectors.py).
_QUERY_CHUNK_CPU = 64
_QUERY_CHUNK_ACCELERATOR = 4096  # few large products
# A product of fewer rows is padded with zero rows to this many: BLAS takes a matrix-vector path
# for one to three rows, whose sums round differently, so a word that came alone would get other
# scores (in the last bits) than in a batch of words.
_MIN_ROWS = 8


class VectorIndex:
    """Neighbours of a word among the `limit` most frequent words of a vector table.

    Query words are looked up in the whole table (rare words still get neighbours); the search
    space is its first `limit` rows, which in GloVe and word2vec files are the most frequent.
    The `vectors` candidate source (see `source.py`): it serves every word.
    """

    fallback = False
    labels = None

    def __init__(
        self,
        table: WordVectors,
        limit: int = 100_000,
        top_k: int = 15,
        device: str = "cpu",
        cache_size: int = 200_000,
    ) -> None:
        import torch

        self.name = table.name
        self.words = table.words
        self.key_to_index = table.key_to_index
        self._matrix = table.matrix  # may be a read-only memory map
        self.top_k = top_k
        self.device = device
        n = min(limit, len(self.words))
        search = torch.from_numpy(np.ascontiguousarray(self._matrix[:n], dtype=np.float32))
        self._search = torch.nn.functional.normalize(search, dim=1).to(device)
        self._cache: OrderedDict[str, list[tuple[str, float]]] = OrderedDict()
        self._cache_size = cache_size
        cpu = torch.device(device).type == "cpu"
        self._chunk = _QUERY_CHUNK_CPU if cpu else _QUERY_CHUNK_ACCELERATOR
        self._scores: torch.Tensor | None = None  # (chunk, search rows), made at first use
        self._maxima: torch.Tensor | None = None  # their blocks' maxima (see topk.py)

    @classmethod
    def load(cls, spec: str, **kwargs) -> VectorIndex:
        """The index over a vectors file or the packaged GloVe (see `kdaug.vectors.read_vectors`)."""
        return cls(read_vectors(spec), **kwargs)

    # queries -----------------------------------------------------------------------------
    @property
    def vectors(self) -> np.ndarray:
        """The whole table, one row per word of `words` (possibly a read-only memory map)."""
        return self._matrix

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.key_to_index

    def serves(self, words: Sequence[str]) -> list[bool]:
        return [True] * len(words)

    def candidates(self, queries: Sequence[WordInContext]) -> list[list[tuple[str, float]]]:
        return self.neighbours([q.word.text for q in queries])

    def neighbours(self, words: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Top-k alphabetic neighbours (cosine) of each word, the word itself excluded.
        Unknown words get an empty list."""
        import torch

        keys = [w.lower() for w in words]
        found = {k: self._cache[k] for k in keys if k in self._cache}
        todo = [k for k in dict.fromkeys(keys) if k not in found]
        known = [k for k in todo if k in self.key_to_index]
        for k in todo:
            if k not in self.key_to_index:
                found[k] = []
        if known:
            rows = np.stack([self._matrix[self.key_to_index[k]] for k in known]).astype(np.float32)
            q = torch.nn.functional.normalize(torch.from_numpy(rows), dim=1).to(self.device)
            scores, idx = self._top(q)
            for row, key in enumerate(known):
                found[key] = self._filter(key, idx[row], scores[row])
                self._remember(key, found[key])
        return [found[k] for k in keys]

    def _top(self, q) -> tuple[list[list[float]], list[list[int]]]:
        """The top (top_k + _EXTRA) cosine scores and rows of each normalised query, scored in
        chunks of queries (at least _MIN_ROWS rows each) into one reused buffer."""
        import torch

        n = self._search.shape[0]
        k_fetch = min(self.top_k + _EXTRA, n)
        rows = max(self._chunk, _MIN_ROWS)
        if self._scores is None or len(self._scores) != rows:
            self._scores = torch.empty((rows, n), device=self._search.device)
            if self._search.device.type == "cpu":  # only the CPU top-k reads them
                self._maxima = torch.empty((rows, n // BLOCK))
        scores, idx = [], []
        with torch.inference_mode():
            for start in range(0, len(q), self._chunk):
                part = q[start : start + self._chunk]
                m = len(part)
                if m < _MIN_ROWS:
                    part = torch.cat([part, part.new_zeros((_MIN_ROWS - m, part.shape[1]))])
                out = self._scores[: len(part)]
                maxima = None if self._maxima is None else self._maxima[: len(part)]
                product(part, self._search, out, maxima=maxima)
                s, i = top_k(out[:m], k_fetch, maxima=None if maxima is None else maxima[:m])
                # Python lists: the same numbers (float32 -> float, exactly), read without
                # numpy's per-element cost
                scores += s.cpu().tolist()
                idx += i.cpu().tolist()
        return scores, idx

    def _filter(self, key: str, idx: list[int], scores: list[float]) -> list[tuple[str, float]]:
        # Order by (score rounded to 1e-5, row): stable whatever the batch the word came in.
        order = sorted(zip(scores, idx, strict=True), key=lambda si: (-round(si[0], 5), si[1]))
        out = []
        words = self.words
        for score, i in order:
            cand = words[i]
            if cand != key and cand.isalpha() and cand.isascii():
                out.append((cand, score))
                if len(out) == self.top_k:
                    break
        return out

    def _remember(self, key: str, value: list[tuple[str, float]]) -> None:
        self._cache[key] = value
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def load_source(cfg, loaded: Mapping[str, object]) -> VectorIndex | None:
    """The `vectors` source's loader (see `registry.py`): the config's vectors, unless `none`,
    on the masked-LM's device."""
    if cfg.vectors.lower() == "none":
        return None
    device = getattr(loaded.get("mlm"), "device", "cpu")
    return VectorIndex.load(cfg.vectors, limit=cfg.vectors_limit, top_k=cfg.top_k, device=device)
