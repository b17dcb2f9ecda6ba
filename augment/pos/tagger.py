"""spaCy tagging: the words of a text with their character offsets, POS and eligibility.

`Tagger` also answers the `retag` question (what POS does a candidate get in the word's place?)
over a window of +-4 words, the receptive field of the small pipelines' CNN (depth 4, window 1).
Both run on `CenterTagger` (window_tagger.py) when it reproduces spaCy's own tags, else on spaCy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from augment.pos.lexicon import InflectionLexicon
from augment.pos.window_tagger import CenterTagger, UnsupportedPipeline
from kdaug.errors import KdaugError
from kdaug.resolve import resolve_spacy

log = logging.getLogger(__name__)

# spaCy components the tagger needs; the others are disabled for speed.
_DISABLED = ("parser", "ner", "lemmatizer", "senter")
RETAG_WINDOW = 4  # words each side of the candidate that `retag_agrees` re-tags
_VERIFY_WINDOWS = 256
_VERIFY_TEXTS = 64


@dataclass(frozen=True)
class Word:
    """A word of a tagged text: its position, surface form, POS and eligibility."""

    index: int  # token index in the text
    text: str
    start: int
    end: int
    pos: str
    tag: str
    eligible: bool


@dataclass(frozen=True)
class TaggedText:
    text: str
    words: tuple[Word, ...]

    @property
    def eligible(self) -> list[Word]:
        return [w for w in self.words if w.eligible]


class Tagger:
    """A spaCy pipeline reduced to tokenizer + tagger, with kdaug's eligibility rule."""

    def __init__(self, name: str, pos_tags: Iterable[str]) -> None:
        import spacy

        resolved = resolve_spacy(name)
        try:
            self.nlp = spacy.load(resolved, disable=[c for c in _DISABLED])
        except OSError as exc:
            raise KdaugError(f"cannot load spaCy pipeline {resolved!r}: {exc}") from None
        if "tagger" not in self.nlp.pipe_names:
            raise KdaugError(f"spaCy pipeline {resolved!r} has no tagger; choose one that tags POS")
        self.name = resolved
        self.version = f"{self.nlp.meta.get('name', '?')}-{self.nlp.meta.get('version', '?')}"
        self.pos_tags = frozenset(pos_tags)
        self.stop_words = self.nlp.Defaults.stop_words
        self._lexicon: InflectionLexicon | None = None
        self._center: CenterTagger | bool | None = None  # None: not built yet
        self._fast_tags: bool | None = None  # None: not verified yet
        self._fast_retag: bool | None = None

    def tag(self, texts: Sequence[str], batch_size: int = 256) -> list[TaggedText]:
        """Words, POS and eligibility of each text. The numpy tagger (CenterTagger) is used
        once it has given spaCy's own tags on the first texts; spaCy otherwise."""
        if self._fast_tags is None and texts:
            center = self._center_tagger()
            agrees = False
            if center is not None:
                sample = list(texts[:_VERIFY_TEXTS])
                want = [[(t.tag_, t.pos_) for t in d] for d in self.nlp.pipe(sample)]
                agrees = want == center.tag_docs(list(self.nlp.tokenizer.pipe(sample)))
                if not agrees:
                    log.warning("numpy tagger disagrees with spaCy; tagging with spaCy")
            # set only once the check has run: a check that raised is not a verdict
            self._fast_tags = agrees
        if self._fast_tags:
            # each doc's tokens made once (iterating a doc makes new Token objects every time)
            docs = [list(d) for d in self.nlp.tokenizer.pipe(texts, batch_size=batch_size)]
            tags = self._center.tag_docs(docs)
        else:
            docs = list(self.nlp.pipe(texts, batch_size=batch_size))
            tags = [[(t.tag_, t.pos_) for t in d] for d in docs]
        out = []
        for text, doc, dtags in zip(texts, docs, tags, strict=True):
            words = []
            for t, (tag, pos) in zip(doc, dtags, strict=True):
                word, start = t.text, t.idx
                ok = self._eligible(word, pos, t.is_stop)
                words.append(Word(t.i, word, start, start + len(word), pos, tag, ok))
            out.append(TaggedText(text, tuple(words)))
        return out

    def _eligible(self, text: str, pos: str, is_stop: bool) -> bool:
        return (
            text.isalpha()
            and text.isascii()
            and not is_stop
            and text.lower() not in self.stop_words
            and pos in self.pos_tags
        )

    # agreement ---------------------------------------------------------------------------
    @property
    def lexicon(self) -> InflectionLexicon:
        if self._lexicon is None:
            self._lexicon = InflectionLexicon.from_pipeline(self.nlp)
        return self._lexicon

    def retag_agrees(
        self, queries: Sequence[tuple[TaggedText, Word, str]], batch_size: int = 1024
    ) -> list[bool]:
        """For each (text, word, candidate): does the candidate, put in the word's place, get the
        same coarse POS from the tagger? Identical windows are tagged once."""
        keys: dict[tuple[tuple[str, ...], int], int] = {}
        spans = []
        around: dict[tuple[int, int], tuple[tuple[str, ...], tuple[str, ...]]] = {}
        for tagged, word, cand in queries:
            lo = max(0, word.index - RETAG_WINDOW)
            context = around.get((id(tagged), word.index))
            if context is None:  # the words left and right of the candidate, once per word
                hi = min(len(tagged.words), word.index + RETAG_WINDOW + 1)
                texts = [w.text for w in tagged.words[lo:hi]]
                at = word.index - lo
                context = around[id(tagged), word.index] = (
                    tuple(texts[:at]),
                    tuple(texts[at + 1 :]),
                )
            words = context[0] + (cand,) + context[1]
            spans.append(keys.setdefault((words, word.index - lo), len(keys)))
        pos = self._retag(list(keys), batch_size)
        return [pos[k] == word.pos for k, (_, word, _) in zip(spans, queries, strict=True)]

    def _center_tagger(self) -> CenterTagger | None:
        """The pipeline's numpy twin, built once; None when the pipeline is not the CNN one."""
        if self._center is None:
            try:
                self._center = CenterTagger(self.nlp)
            except UnsupportedPipeline as exc:
                log.info("tagging with spaCy only: %s", exc)
                self._center = False
        return self._center or None

    def _retag(self, windows: list[tuple[tuple[str, ...], int]], batch_size: int) -> list[str]:
        """Coarse POS of each window's centre word: CenterTagger when it reproduces spaCy on the
        first windows it sees, else spaCy itself."""
        from spacy.tokens import Doc

        if self._fast_retag is None and windows:
            center = self._center_tagger()
            self._fast_retag = bool(center and center.verify(windows[:_VERIFY_WINDOWS]))
            if center and not self._fast_retag:
                log.warning("centre-only re-tagger disagrees with spaCy; using spaCy")
        if self._fast_retag:
            return self._center.pos(windows)
        docs = self.nlp.pipe(
            (Doc(self.nlp.vocab, words=list(words)) for words, _ in windows), batch_size=batch_size
        )
        return [doc[c].pos_ for (_, c), doc in zip(windows, docs, strict=True)]
