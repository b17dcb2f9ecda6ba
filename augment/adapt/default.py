"""kdaug's offline default MLM: the packaged MiniLM encoder adapted to a packaged corpus."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from augment.adapt.corpus import CorpusError
from augment.adapt.settings import AdaptSettings
from kdaug.resolve import PACKAGED_MINILM, cache_dir, default_mlm_path

DEFAULT_CORPUS = "enwiki-sample-sentences.txt.gz"
# A few CPU minutes: enough to turn the fresh head's noise into plausible words, short enough
# for `make demo`. Longer runs keep improving (see docs/adapt-mlm.md).
DEFAULT_MINUTES = 4.0
DEFAULT_MAX_EVAL = 500
# A created head learns from scratch: masking 30% of the tokens gives each encoder pass twice the
# supervised positions of BERT's 15% (measured: SST-2 dev top-10 0.354 -> 0.368 at 190 steps).
DEFAULT_MLM_PROBABILITY = 0.3
# Movie-review sentences beside the encyclopedia: 200 sentences of Pang & Lee's sentence polarity
# data, as gensim's test data ships them, seen 10 times an epoch (`benchmarks.demo_mlm`, 3 seeds:
# SST-2 dev top-10 0.368 -> 0.403 in the 4 minutes; 30 times was no better). Read from the
# installed gensim, not redistributed by kdaug.
REVIEWS_SOURCE = "pang_lee_polarity.cor"
REVIEWS_CORPUS = "pang-lee-polarity-sentences.txt"
REVIEWS_REPEAT = 10


def default_corpus_path() -> Path:
    """The packaged Wikipedia sentence sample (CC BY-SA), readable on an offline machine."""
    return Path(str(resources.files("augment") / "data" / DEFAULT_CORPUS))


def reviews_corpus_path() -> Path:
    """The review sentences as a plain text file in kdaug's cache, written from gensim's copy on
    first use: the fastText label prefix dropped, Windows-1252 decoded to UTF-8."""
    from gensim.test.utils import datapath

    from kdaug.files import write_text_atomic

    out = cache_dir() / "corpora" / REVIEWS_CORPUS
    if out.is_file():
        return out
    source = Path(datapath(REVIEWS_SOURCE))
    if not source.is_file():
        raise CorpusError(f"gensim's test data has no {REVIEWS_SOURCE}: reinstall gensim")
    lines = []
    for line in source.read_bytes().decode("cp1252").splitlines():
        tag, _, text = line.partition(" ")
        text = text.strip() if tag.startswith("__label__") else line.strip()
        if text:
            lines.append(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, "\n".join(lines) + "\n")
    return out


def default_settings(**overrides: object) -> AdaptSettings:
    """Settings of `kdaug adapt-mlm --default`; explicit options override single fields."""
    values: dict = {
        "base": PACKAGED_MINILM,
        "output": default_mlm_path(),
        "minutes": DEFAULT_MINUTES,
        "max_eval": DEFAULT_MAX_EVAL,
        "mlm_probability": DEFAULT_MLM_PROBABILITY,
    }
    if not overrides.get("corpus"):
        values["corpus"] = [default_corpus_path(), reviews_corpus_path()]
        values["corpus_names"] = [DEFAULT_CORPUS, f"{REVIEWS_SOURCE} (gensim test data)"]
        values["corpus_repeat"] = [1, REVIEWS_REPEAT]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return AdaptSettings(**values)
