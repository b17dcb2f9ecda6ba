"""Re-tagging the centre word of many short windows, with the spaCy pipeline's own weights.

`retag` and `hybrid` POS filtering ask one question many times: put a candidate in the word's
place, what tag does the tagger give it? spaCy's CNN tagger (tok2vec: per-token hash embeddings,
then `depth` residual maxout layers over a +-`window` neighbourhood; tagger: softmax) sees only
+-(depth * window) words, so the answer depends on that window alone. Running spaCy on each window
computes every layer at every position. `CenterTagger` computes the same numbers for the centre
only: embeddings once per distinct word, then at layer k only the positions the centre still
depends on, for all windows at once with numpy. It checks itself against spaCy on load and is
used only when the two agree exactly; otherwise the caller falls back to spaCy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

Window = tuple[tuple[str, ...], int]  # (words, index of the centre word)
_MAX_WORDS = 500_000


class UnsupportedPipeline(Exception):
    """The pipeline's tagger is not the CNN architecture CenterTagger reproduces."""


class CenterTagger:
    """Coarse POS of the centre word of each window, equal to spaCy's tag of that window."""

    def __init__(self, nlp) -> None:
        names = nlp.pipe_names
        if "tok2vec" not in names or "tagger" not in names:
            raise UnsupportedPipeline("needs a shared tok2vec and a tagger")
        self.nlp = nlp
        t2v = nlp.get_pipe("tok2vec").model
        self.embed = t2v.get_ref("embed")
        encode = t2v.get_ref("encode")
        self.layers: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # W b G b
        window = None
        for layer in encode.walk():
            if layer.name == "expand_window":
                w = layer.attrs["window_size"]
                if window not in (None, w):
                    raise UnsupportedPipeline("layers with different windows")
                window = w
            elif layer.name == "maxout":
                maxout = layer
            elif layer.name == "layernorm":
                W = np.asarray(maxout.get_param("W"))  # (out, pieces, in)
                b = np.asarray(maxout.get_param("b"))  # (out, pieces)
                n_o, n_p, n_i = W.shape
                # pieces first, so that the max over pieces runs over contiguous blocks
                Wp = np.ascontiguousarray(W.transpose(1, 0, 2).reshape(n_p * n_o, n_i).T)
                bp = np.ascontiguousarray(b.T.reshape(n_p * n_o))
                G, gb = np.asarray(layer.get_param("G")), np.asarray(layer.get_param("b"))
                self.layers.append((Wp, bp, G, gb))
        residuals = [
            x for x in encode.walk() if x.name.startswith("residual(") and len(x.layers) == 1
        ]
        if window is None or not self.layers or len(residuals) != len(self.layers):
            raise UnsupportedPipeline(f"encoder {encode.name} is not residual maxout windows")
        self.window = window
        self.reach = window * len(self.layers)
        softmax = [x for x in nlp.get_pipe("tagger").model.walk() if x.name == "softmax"]
        if len(softmax) != 1:
            raise UnsupportedPipeline("tagger without one softmax output layer")
        self.out_W = np.asarray(softmax[0].get_param("W"))
        self.out_b = np.asarray(softmax[0].get_param("b"))
        self.tags = list(nlp.get_pipe("tagger").labels)
        self._rest = [(n, p) for n, p in nlp.pipeline if n not in ("tok2vec", "tagger")]
        self.dim = self.layers[0][2].shape[0]
        self._rows: dict[str, int] = {}
        self._table: np.ndarray | None = None
        self._pos: dict[tuple[str, str], str] = {}

    # public ------------------------------------------------------------------------------
    def pos(self, windows: Sequence[Window]) -> list[str]:
        """Coarse POS of each window's centre word."""
        if not windows:
            return []
        r = self.reach
        width = 2 * r + 1
        table = self._embed_words({w for words, _ in windows for w in words})
        rows = self._rows
        zero = len(table) - 1  # the last table row is all zeros: positions outside the text
        idx = np.full((len(windows), width), zero, dtype=np.int64)
        for i, (words, centre) in enumerate(windows):
            lo = max(0, centre - r)
            hi = min(len(words), centre + r + 1)
            off = r - (centre - lo)
            idx[i, off : off + hi - lo] = [rows[w] for w in words[lo:hi]]
        x = table[idx]
        w = self.window
        for k, (W, b, G, lb) in enumerate(self.layers, start=1):
            # Positions k*w .. width-1-k*w still matter for the centre after layer k. Positions
            # outside the text start as zeros and then go through the layers like any other:
            # spaCy pads each text with as many zero rows as the receptive field.
            n_out = width - 2 * k * w
            cols = np.concatenate([x[:, j : j + n_out] for j in range(2 * w + 1)], axis=2)
            n_o = G.shape[0]
            flat = cols.reshape(-1, W.shape[0]) @ W + b
            h = flat[:, :n_o]
            for piece in range(1, flat.shape[1] // n_o):
                h = np.maximum(h, flat[:, piece * n_o : (piece + 1) * n_o])
            h = h.reshape(len(x), n_out, n_o)
            mu = h.mean(axis=2, keepdims=True)
            var = h.var(axis=2, keepdims=True)
            h = (h - mu) / np.sqrt(var + 1e-08) * G + lb
            x = x[:, w : w + n_out] + h
        scores = x[:, 0] @ self.out_W.T + self.out_b
        tags = [self.tags[j] for j in scores.argmax(axis=1)]
        return [
            self._coarse(words[centre], tag)
            for (words, centre), tag in zip(windows, tags, strict=True)
        ]

    def verify(self, windows: Sequence[Window]) -> bool:
        """Does this give spaCy's POS on these windows?"""
        from spacy.tokens import Doc

        docs = [Doc(self.nlp.vocab, words=list(words)) for words, _ in windows]
        want = [d[c].pos_ for d, (_, c) in zip(self.nlp.pipe(docs), windows, strict=True)]
        return want == self.pos(windows)

    # internals ---------------------------------------------------------------------------
    def _embed_words(self, words: set[str]) -> np.ndarray:
        """The embedding table with a row for each of `words` (and a zero row last)."""
        from spacy.tokens import Doc

        if len(self._rows) > _MAX_WORDS:  # bound memory on endless streams
            self._rows, self._table = {}, None
        new = sorted(w for w in words if w not in self._rows)
        if new or self._table is None:
            # The embedding reads per-token features only (norm, prefix, suffix, shape, trailing
            # space), so one doc of all new words, each followed by a space as in the windows,
            # gives each word its vector.
            vecs = np.zeros((0, self.dim), dtype=np.float32)
            if new:
                vecs = np.asarray(self.embed.predict([Doc(self.nlp.vocab, words=new)])[0], "f")
            if len(vecs) != len(new):
                raise UnsupportedPipeline("the embedding does not give one vector per word")
            for w in new:
                self._rows[w] = len(self._rows)
            old = self._table[:-1] if self._table is not None else np.zeros((0, self.dim), "f")
            zero = np.zeros((1, self.dim), dtype=np.float32)
            self._table = np.concatenate([old, vecs, zero])
        return self._table

    def _coarse(self, word: str, tag: str) -> str:
        """The pipeline's coarse POS for a word with this fine tag (attribute ruler et al.)."""
        key = (word.lower(), tag)
        pos = self._pos.get(key)
        if pos is None:
            from spacy.tokens import Doc

            doc = Doc(self.nlp.vocab, words=[word])
            doc[0].tag_ = tag
            for _, proc in self._rest:
                doc = proc(doc)
            pos = self._pos[key] = doc[0].pos_
        return pos
