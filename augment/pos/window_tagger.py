"""Re-tagging the centre word of many short windows, with the spaCy pipeline's own weights.

`retag` and `hybrid` POS filtering ask one question many times: put a candidate in the word's
place, what tag does the tagger give it? spaCy's CNN tagger (tok2vec: per-token hash embeddings,
then `depth` residual maxout layers over a +-`window` neighbourhood; tagger: softmax) sees only
+-(depth * window) words, so the answer depends on that window alone. Running spaCy on each window
computes every layer at every position. `CenterTagger` computes the same function for the
centre only: embeddings once per distinct word, the first layer's weight products once per
distinct word too, then at layer k only the positions the centre still depends on, for all
windows at once with numpy. Its sums run in another order than spaCy's (as two BLAS libraries'
would), so the last bits of a score may differ; the tags are what it must give. It checks itself
against spaCy on load and is used only when the two give the same tags; otherwise the caller
falls back to spaCy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from augment.pos.ruler import PosRules, Unsupported

log = logging.getLogger(__name__)

Window = tuple[tuple[str, ...], int]  # (words, index of the centre word)
# What a token's embedding depends on: text, followed by a space, and its norm when the
# tokenizer set one apart from the word's own (special cases such as "'ve" -> "have").
Key = tuple[str, bool, str | None]
_MAX_WORDS = 500_000
# Positions (rows x width) tagged per pass of the network. A pass over thousands of windows at
# once made temporaries of tens of MB, fresh pages from the kernel each time, whose faults cost
# more CPU than the arithmetic on a 2-core VM; each row's tags do not depend on the chunk.
_CHUNK_POSITIONS = 1024


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
        self._rows: dict[Key, int] = {}
        self._table: np.ndarray | None = None
        self._pos: dict[tuple[str, str], str] = {}
        self._pos_rules: PosRules | bool | None = None  # None: not read yet

    # public ------------------------------------------------------------------------------
    def pos(self, windows: Sequence[Window]) -> list[str]:
        """Coarse POS of each window's centre word (every word followed by a space)."""
        if not windows:
            return []
        r = self.reach
        table = self._embed({(w, True, None) for words, _ in windows for w in words})
        rows = self._rows
        idx = np.full((len(windows), 2 * r + 1), len(table) - 1, dtype=np.int64)
        for i, (words, centre) in enumerate(windows):
            lo = max(0, centre - r)
            hi = min(len(words), centre + r + 1)
            off = r - (centre - lo)
            idx[i, off : off + hi - lo] = [rows[(w, True, None)] for w in words[lo:hi]]
        tags = self._tags(table, idx)[:, 0]
        return self._coarse(
            [(words[c], self.tags[t]) for (words, c), t in zip(windows, tags, strict=True)]
        )

    def tag_docs(self, docs: Sequence) -> list[list[tuple[str, str]]]:
        """(fine tag, coarse POS) of every token of tokenised spaCy docs (or lists of their
        tokens), as the pipeline's tok2vec + tagger + attribute ruler would give them."""
        r = self.reach
        out: list[list[tuple[str, str]]] = [[] for _ in docs]
        order = sorted(range(len(docs)), key=lambda i: len(docs[i]))
        for start in range(0, len(order), 64):  # texts of similar length together
            group = [i for i in order[start : start + 64] if len(docs[i])]
            if not group:
                continue
            keys = [[_key(t) for t in docs[i]] for i in group]
            table = self._embed({k for ks in keys for k in ks})
            rows = self._rows
            longest = max(len(ks) for ks in keys)
            idx = np.full((len(group), longest + 2 * r), len(table) - 1, dtype=np.int64)
            for j, ks in enumerate(keys):
                idx[j, r : r + len(ks)] = [rows[k] for k in ks]
            tags = self._tags(table, idx)
            fine = [[self.tags[t] for t in tags[j, : len(docs[i])]] for j, i in enumerate(group)]
            pairs = [
                (t.text, f)
                for j, i in enumerate(group)
                for t, f in zip(docs[i], fine[j], strict=True)
            ]
            coarse = iter(self._coarse(pairs))
            for j, i in enumerate(group):
                out[i] = [(f, next(coarse)) for f in fine[j]]
        return out

    def verify(self, windows: Sequence[Window]) -> bool:
        """Does this give spaCy's POS on these windows?"""
        from spacy.tokens import Doc

        docs = [Doc(self.nlp.vocab, words=list(words)) for words, _ in windows]
        want = [d[c].pos_ for d, (_, c) in zip(self.nlp.pipe(docs), windows, strict=True)]
        return want == self.pos(windows)

    # internals ---------------------------------------------------------------------------
    def _tags(self, table: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Tag ids at positions reach .. width-1-reach of each row of embedding-table indices,
        computed a few rows at a time (see _CHUNK_POSITIONS).

        The first layer's input at a position is the 2*window+1 embeddings around it, so its
        product with the weights is a sum of one product per embedding: those are computed once
        per distinct word here (windows that re-tag candidates in one context share all but
        one word), then summed at each position."""
        used, local = np.unique(idx, return_inverse=True)
        local = local.reshape(idx.shape)
        W = self.layers[0][0]
        d = table.shape[1]
        first = [table[used] @ W[j * d : (j + 1) * d] for j in range(2 * self.window + 1)]
        rows = max(1, _CHUNK_POSITIONS // max(1, idx.shape[1]))
        return np.concatenate(
            [
                self._tags_of(table, idx[i : i + rows], first, local[i : i + rows])
                for i in range(0, len(idx), rows)
            ]
        )

    def _tags_of(
        self, table: np.ndarray, idx: np.ndarray, first: list[np.ndarray], local: np.ndarray
    ) -> np.ndarray:
        """Positions outside the text hold the zero row and then go through the layers like any
        other: spaCy pads each text with as many zero rows as the receptive field. `first`: the
        first layer's weight products, one per window offset, of the words `local` indexes."""
        x = table[idx]
        w = self.window
        width = idx.shape[1]
        for k, (W, b, G, lb) in enumerate(self.layers, start=1):
            n_out = width - 2 * k * w  # positions that still matter after layer k
            n_o = G.shape[0]
            if k == 1:
                flat = first[0][local[:, :n_out]]
                for j in range(1, 2 * w + 1):
                    flat += first[j][local[:, j : j + n_out]]
                flat += b
                flat = flat.reshape(-1, W.shape[1])
            else:
                cols = np.concatenate([x[:, j : j + n_out] for j in range(2 * w + 1)], axis=2)
                flat = cols.reshape(-1, W.shape[0]) @ W + b
            h = flat[:, :n_o].copy()  # maxout: the largest of the pieces, into a new array
            for piece in range(1, flat.shape[1] // n_o):
                np.maximum(h, flat[:, piece * n_o : (piece + 1) * n_o], out=h)
            h = h.reshape(len(x), n_out, n_o)
            # layer norm, each step as h.var and the plain formula take it (the same numbers)
            # with fewer passes: h.var would take the mean again and subtract it again
            h -= h.mean(axis=2, keepdims=True)
            var = np.square(h).sum(axis=2, keepdims=True)
            var /= n_o
            var += 1e-08
            h /= np.sqrt(var)
            h *= G
            h += lb
            x = x[:, w : w + n_out] + h
        return (x @ self.out_W.T + self.out_b).argmax(axis=2)

    def _embed(self, keys: set[Key]) -> np.ndarray:
        """The embedding table with a row for each key and a zero row last."""
        from spacy.tokens import Doc

        if len(self._rows) > _MAX_WORDS:  # bound memory on endless streams
            self._rows, self._table = {}, None
        # A fixed order (not the set's) keeps row numbers reproducible; the norm is None for
        # most keys and a string for some, so it is ordered through `_order`, never compared raw.
        new = sorted((k for k in keys if k not in self._rows), key=_order)
        if new or self._table is None:
            # The embedding reads per-token features only (norm, prefix, suffix, shape,
            # trailing space), so one doc of all new tokens gives each its vector.
            vecs = np.zeros((0, self.dim), dtype=np.float32)
            if new:
                doc = Doc(self.nlp.vocab, words=[k[0] for k in new], spaces=[k[1] for k in new])
                for token, (_, _, norm) in zip(doc, new, strict=True):
                    if norm is not None:
                        token.norm_ = norm
                vecs = np.asarray(self.embed.predict([doc])[0], "f")
            if len(vecs) != len(new):
                raise UnsupportedPipeline("the embedding does not give one vector per word")
            for k in new:
                self._rows[k] = len(self._rows)
            old = self._table[:-1] if self._table is not None else np.zeros((0, self.dim), "f")
            zero = np.zeros((1, self.dim), dtype=np.float32)
            self._table = np.concatenate([old, vecs, zero])
        return self._table

    def _coarse(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """The pipeline's coarse POS for each (word, fine tag), as its attribute ruler sets it:
        by `PosRules` when they reproduce the ruler, else by the ruler on a doc."""
        if len(self._pos) > _MAX_WORDS:
            self._pos = {}
        new = list(dict.fromkeys(k for w, t in pairs if (k := (w.lower(), t)) not in self._pos))
        if new:
            rules = self._rules()
            found = [rules.pos(w, t) for w, t in new] if rules else self._ruler_pos(new)
            self._pos.update(zip(new, found, strict=True))
        return [self._pos[(w.lower(), t)] for w, t in pairs]

    def _ruler_pos(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """The POS of each (word, fine tag) from the pipeline's components after the tagger.
        Only single-token patterns set POS (the others need a parser or set lemmas), so the
        words are mapped together in one doc."""
        from spacy.tokens import Doc

        doc = Doc(self.nlp.vocab, words=[w for w, _ in pairs])
        for token, (_, tag) in zip(doc, pairs, strict=True):
            token.tag_ = tag
        for _, proc in self._rest:
            doc = proc(doc)
        return [token.pos_ for token in doc]

    def _rules(self) -> PosRules | None:
        """The attribute ruler's POS rules, read once; None where they do not reproduce it
        (other components after the tagger, patterns they cannot read, a disagreement)."""
        if self._pos_rules is None:
            self._pos_rules = False
            if [name for name, _ in self._rest] == ["attribute_ruler"]:
                try:
                    rules = PosRules.from_ruler(self._rest[0][1])
                except Unsupported as exc:
                    log.info("coarse POS by the attribute ruler: %s", exc)
                else:
                    if rules.agrees_with(self._ruler_pos, self.tags):
                        self._pos_rules = rules
                    else:
                        log.warning("POS rules disagree with the attribute ruler; using the ruler")
        return self._pos_rules or None


def _key(token) -> Key:
    """The embedding cache key of a spaCy token (its norm only when it is not the lexeme's)."""
    norm = token.norm_
    return (token.text, bool(token.whitespace_), None if norm == token.lex.norm_ else norm)


def _order(key: Key) -> tuple[str, bool, bool, str]:
    """A total order on keys: one token text can come with no norm of its own ("'s" in "it's")
    and with one ("'s" in "Let's" is "us"), and None does not compare with a string."""
    text, space, norm = key
    return (text, space, norm is not None, norm or "")
