"""kdaug's offline default MLM: the packaged MiniLM encoder adapted to a packaged corpus."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from augment.adapt.settings import AdaptSettings
from kdaug.resolve import PACKAGED_MINILM, default_mlm_path

DEFAULT_CORPUS = "enwiki-sample-sentences.txt.gz"
# A few CPU minutes: enough to turn the fresh head's noise into plausible words, short enough
# for `make demo`. Longer runs keep improving (see docs/adapt-mlm.md).
DEFAULT_MINUTES = 4.0
DEFAULT_MAX_EVAL = 500
# A created head learns from scratch: masking 30% of the tokens gives each encoder pass twice the
# supervised positions of BERT's 15% (measured: SST-2 dev top-10 0.354 -> 0.368 at 190 steps).
DEFAULT_MLM_PROBABILITY = 0.3


def default_corpus_path() -> Path:
    """The packaged Wikipedia sentence sample (CC BY-SA), readable on an offline machine."""
    return Path(str(resources.files("augment") / "data" / DEFAULT_CORPUS))


def default_settings(**overrides: object) -> AdaptSettings:
    """Settings of `kdaug adapt-mlm --default`; explicit options override single fields."""
    values: dict = {
        "base": PACKAGED_MINILM,
        "corpus": [default_corpus_path()],
        "corpus_names": [DEFAULT_CORPUS],
        "output": default_mlm_path(),
        "minutes": DEFAULT_MINUTES,
        "max_eval": DEFAULT_MAX_EVAL,
        "mlm_probability": DEFAULT_MLM_PROBABILITY,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "corpus" in overrides and overrides["corpus"]:
        values["corpus_names"] = []
    return AdaptSettings(**values)
