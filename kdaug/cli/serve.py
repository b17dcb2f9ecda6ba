"""`kdaug serve`: run the augmentation service with uvicorn."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kdaug.errors import KdaugError, UsageError, one_line
from kdaug.machine import DEVICE_HELP, cap_thread_pools

# the BLAS libraries whose pools `kdaug serve` caps at the model threads (OpenMP is torch's)
BLAS_POOLS = ("openblas", "mkl")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the HTTP augmentation service (POST /augment)",
        description=(
            "Serve POST /augment with micro-batching. Every setting can also come from the "
            "environment with the prefix KDAUG_ (e.g. KDAUG_MLM, KDAUG_API_KEYS); flags win. "
            "See docs/service.md."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--mlm", help="masked-LM name or path, 'default' or 'none' (KDAUG_MLM)")
    p.add_argument("--vectors", help="word vectors, or 'none' (KDAUG_VECTORS)")
    p.add_argument("--tagger", help="spaCy pipeline (KDAUG_TAGGER)")
    p.add_argument("--device", help=f"{DEVICE_HELP} (KDAUG_DEVICE)")
    p.add_argument("--config", type=Path, dest="augment_config", help="YAML of augment settings")
    p.add_argument(
        "--no-micro-batching",
        dest="micro_batching",
        action="store_const",
        const=False,
        help="one request per model batch (for comparison)",
    )
    p.add_argument(
        "--mode", choices=["exact", "fast"], help="augmenter mode (KDAUG_MODE; default exact)"
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        help="intra-op threads of the model (KDAUG_TORCH_THREADS; default: the cores available)",
    )
    p.add_argument("--log-format", choices=["text", "json"], help="log lines as text or JSON")
    p.set_defaults(func=run)


def load_settings(args: argparse.Namespace) -> Any:
    """Environment settings, with the flags given on the command line on top."""
    from pydantic import ValidationError

    from service.settings import ServiceSettings

    names = ("mlm", "vectors", "tagger", "device", "mode", "augment_config", "micro_batching")
    flags = {k: getattr(args, k) for k in (*names, "torch_threads", "log_format")}
    try:
        return ServiceSettings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        parts = [f"KDAUG_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()]
        raise UsageError("invalid service setting: " + "; ".join(parts)) from None


def check_models(settings: Any) -> Any:
    """The augment config, after checking that its models can be found (one-line errors)."""
    from kdaug.resolve import resolve_model, resolve_spacy
    from service.state import augment_config

    cfg = augment_config(settings)
    if cfg.mlm_enabled:
        resolve_model(cfg.mlm)
    resolve_spacy(cfg.tagger)
    return cfg


def load_augmenter(settings: Any, cfg: Any) -> Any:
    """Load the models before serving: a model that cannot load stops `kdaug serve` with one
    line, rather than leaving a server that answers 503 to everything. This process is the
    server's own, so its thread pools get the model threads: torch's, and numpy's BLAS (the POS
    tagger's products), which would otherwise run a thread per core of the machine, a
    container's CPU quota ignored (unless the user set OPENBLAS_NUM_THREADS / MKL_NUM_THREADS)."""
    import torch

    from augment.augmenter import Augmenter

    threads = settings.model_threads()
    torch.set_num_threads(threads)
    cap_thread_pools(threads, apis=BLAS_POOLS)
    try:
        return Augmenter(cfg)
    except KdaugError as exc:
        error = KdaugError(one_line(exc))
        error.exit_code = exc.exit_code
        raise error from None
    except Exception as exc:  # a model file that its loader chokes on
        raise KdaugError(one_line(f"cannot load the models: {type(exc).__name__}: {exc}")) from None


def run(args: argparse.Namespace) -> int:
    import logging.config

    from service.app import create_app
    from service.logs import log_config
    from service.server import bind, serve

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, not {args.port}")
    settings = load_settings(args)
    cfg = check_models(settings)
    sock = bind(args.host, args.port)
    try:
        config = log_config(settings.log_format, settings.log_level)
        logging.config.dictConfig(config)
        augmenter = load_augmenter(settings, cfg)
        serve(create_app(settings, augmenter=augmenter), sock, log_config=config)
    finally:
        sock.close()
    return 0
