"""The registry of candidate sources: name -> loader, in routing order. The Augmenter loads the
sources its config asks for from here; the config accepts every registered name in `sources`.
`register` adds a source (see `source.py` for the interface it implements).

A loader is a function `(config, loaded) -> source or None`: the AugmentConfig, and the sources
loaded before it in registry order (the vectors go to the masked-LM's device); None when the
config does not ask for it (`mlm: none`). The built-in ones are named as "module:function", so
that checking a config's names imports neither torch nor the source modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from augment.candidates.source import CandidateSource

Loader = Callable[[Any, Mapping[str, CandidateSource]], "CandidateSource | None"]

_LOADERS: dict[str, Loader | str] = {}
_MISSING: dict[str, str] = {}


def register(name: str, loader: Loader | str, missing: str | None = None) -> None:
    """Make source `name` loadable and selectable in `sources`; `missing` completes the
    sentence "sources=[...] but ..." said when no listed source is loaded."""
    if name in _LOADERS:
        raise ValueError(f"candidate source {name!r} is already registered")
    if not name or name == "none":
        raise ValueError(f"{name!r} cannot name a candidate source")
    _LOADERS[name] = loader
    _MISSING[name] = missing or f"no {name} source is loaded"


def unregister(name: str) -> None:
    """Forget source `name` (tests that register a source of their own)."""
    _LOADERS.pop(name, None)
    _MISSING.pop(name, None)


def source_names() -> tuple[str, ...]:
    """Every registered source, in routing order."""
    return tuple(_LOADERS)


def missing_hint(name: str) -> str:
    return _MISSING.get(name, f"no {name} source is loaded")


def load_sources(
    cfg: Any, given: Mapping[str, CandidateSource | None] | None = None
) -> dict[str, CandidateSource]:
    """The sources AugmentConfig `cfg` asks for, in registry order; `given` ones are used as
    they are."""
    given = given or {}
    loaded: dict[str, CandidateSource] = {}
    for name, loader in _LOADERS.items():
        source = given.get(name)
        if source is None:
            source = _resolve(loader)(cfg, loaded)
        if source is not None:
            loaded[name] = source
    return loaded


def routing_order(sources: Mapping[str, CandidateSource]) -> list[str]:
    """Primary sources first, then fallback ones, each in registry order."""
    return [n for n in sources if not sources[n].fallback] + [
        n for n in sources if sources[n].fallback
    ]


def _resolve(loader: Loader | str) -> Loader:
    if not isinstance(loader, str):
        return loader
    module, _, function = loader.partition(":")
    return getattr(importlib.import_module(module), function)


register("mlm", "augment.candidates.mlm:load_source", "no masked-LM is loaded (mlm: none)")
register(
    "vectors",
    "augment.candidates.vectors:load_source",
    "no word vectors are loaded (vectors: none)",
)
register(
    "wordnet",
    "augment.candidates.wordnet:load_source",
    "no WordNet database is installed (apt-get install wordnet-base)",
)
