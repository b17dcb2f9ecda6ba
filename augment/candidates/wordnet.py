"""WordNet synonyms through nltk: POS-aware by construction, an optional third source.

No nltk_data can be downloaded here; Debian's `wordnet-base` package installs the WordNet 3.0
database under /usr/share/wordnet, which is laid out as `nltk_data/corpora/wordnet/` in kdaug's
cache (nltk also finds a database that is already in one of its own search paths).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kdaug.resolve import cache_dir

if TYPE_CHECKING:
    from augment.candidates.source import WordInContext

log = logging.getLogger(__name__)

SYSTEM_WORDNET = Path("/usr/share/wordnet")
_UPOS_TO_WN = {"NOUN": "n", "VERB": "v", "ADJ": "a", "ADV": "r"}
# nltk's reader wants `lexnames`, which Debian's package does not ship: the 45 lexicographer
# files of WordNet 3.0 (number, name, syntactic category), as documented in lexnames(5WN).
_LEXNAMES = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
]
_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


def _layout_system_wordnet() -> Path | None:
    """Copy /usr/share/wordnet into an nltk-style tree in the cache (nltk refuses links that
    leave its root); return the `corpora/wordnet` folder, or None without the database."""
    if not (SYSTEM_WORDNET / "data.noun").is_file():
        return None
    target = cache_dir() / "nltk_data" / "corpora" / "wordnet"
    target.mkdir(parents=True, exist_ok=True)
    for src in SYSTEM_WORDNET.iterdir():
        if src.is_file() and not (target / src.name).exists():
            shutil.copyfile(src, target / src.name)
    sense_index = target / "index.sense"  # in Debian's wordnet-sense-index; only sense keys use it
    if not sense_index.exists():
        sense_index.touch()
    lexnames = target / "lexnames"
    if not lexnames.exists():
        lines = [
            f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}" for i, name in enumerate(_LEXNAMES)
        ]
        lexnames.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def find_wordnet():
    """nltk's own WordNet (NLTK_DATA and its search paths) first, then the system database."""
    import nltk

    for attempt in range(2):
        for name in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):
            try:
                return nltk.data.find(name)
            except LookupError:
                continue
        laid_out = _layout_system_wordnet() if attempt == 0 else None
        if laid_out is None:
            return None
        # nltk reads only below its search paths: add the cache's nltk_data root.
        nltk.data.path.append(str(laid_out.parent.parent))
    return None


class WordNetCandidates:
    """Synonyms of a word for its POS; `available` is False (with one log line) without WordNet.
    The `wordnet` candidate source (see `source.py`): a fallback, asked for the words the other
    sources left without a candidate."""

    fallback = True
    labels = None

    def __init__(self, top_k: int = 15) -> None:
        self.top_k = top_k
        self.wn = None
        root = find_wordnet()
        if root is not None:
            from nltk.corpus.reader.wordnet import WordNetCorpusReader

            try:
                self.wn = WordNetCorpusReader(root, None)
            except (OSError, LookupError, ValueError) as exc:
                log.warning("WordNet source disabled: cannot read %s (%s)", root, exc)
                return
        if self.wn is None:
            log.warning(
                "WordNet source disabled: no WordNet database found "
                "(apt-get install wordnet-base, or put nltk_data/corpora/wordnet in NLTK_DATA)"
            )

    @property
    def available(self) -> bool:
        return self.wn is not None

    def serves(self, words: Sequence[str]) -> list[bool]:
        return [True] * len(words)

    def candidates(self, queries: Sequence[WordInContext]) -> list[list[tuple[str, float]]]:
        return [self.synonyms(q.word.text, q.word.pos) for q in queries]

    def synonyms(self, word: str, pos: str) -> list[tuple[str, float]]:
        """Single-word alphabetic synonyms, most frequent sense first; empty if unavailable."""
        wn_pos = _UPOS_TO_WN.get(pos)
        if self.wn is None or wn_pos is None:
            return []
        key = word.lower()
        out: dict[str, float] = {}
        for synset in self.wn.synsets(key, pos=wn_pos):
            for lemma in synset.lemmas():
                name = lemma.name()
                if name.isalpha() and name.lower() != key and name not in out:
                    out[name] = float(lemma.count())
                if len(out) >= self.top_k:
                    return list(out.items())
        return list(out.items())


def load_source(cfg, loaded: Mapping[str, object]) -> WordNetCandidates | None:
    """The `wordnet` source's loader (see `registry.py`): when the config lists it and the
    database is installed."""
    if "wordnet" not in cfg.sources:
        return None
    wordnet = WordNetCandidates(cfg.top_k)
    return wordnet if wordnet.available else None
