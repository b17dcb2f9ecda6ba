"""int8 linear layers for the masked-LM on CPU, with fixed (calibrated) activation scales.

PyTorch's dynamic quantisation picks each activation scale from the whole input tensor, so a
copy's candidates would depend on which other copies share its forward pass, and kdaug promises
the same output whatever the batch size. Here every linear layer quantises its input with a scale
calibrated once, on a fixed text sample, when the model loads: int8 weights (per output channel),
uint8 activations, int32 accumulation, float output. Each row of the output then depends on its
own row of the input only.

Calibration (about ten seconds of forward passes on CPU) is paid once per model and settings:
the ranges are kept in memory, shipped by a coordinator to its worker processes, and cached on
disk (kdaug's cache directory, `int8-calibration/`) under a key made of the model files' sha256,
the settings that shape the calibration inputs, and the torch version. `counts` says how each
load got its ranges ("calibrated", "memory", "shipped", "disk"), so that callers and tests can
tell.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import threading
import warnings
from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from kdaug.files import hash_file, write_text_atomic

log = logging.getLogger(__name__)

_CALIBRATION_SENTENCES = 64
CALIBRATION_FORMAT = 1
CALIBRATION_DIR = "int8-calibration"
# Files of a model folder that `from_pretrained` reads (a training checkpoint beside them is not).
_MODEL_SUFFIXES = (".json", ".txt", ".safetensors", ".bin", ".model")
Ranges = dict[str, tuple[float, float]]

counts: Counter[str] = Counter()  # how loads got their ranges: calibrated/memory/shipped/disk
_memory: dict[str, Ranges] = {}
_received: set[str] = set()  # keys whose ranges a coordinator shipped
_fingerprints: dict[str, str] = {}  # model folder state -> sha256 of its files
_lock = threading.Lock()


class StaticInt8Linear(torch.nn.Module):
    """A linear layer computed in int8 with a fixed input scale and zero point."""

    def __init__(self, linear: torch.nn.Linear, lo: float, hi: float) -> None:
        super().__init__()
        w = linear.weight.detach().float().cpu()
        w_scale = (w.abs().amax(dim=1) / 127).clamp_min(1e-12).double()
        zeros = torch.zeros(w.shape[0], dtype=torch.long)
        with warnings.catch_warnings():  # quantized tensor creation: deprecated, not removed
            warnings.simplefilter("ignore", UserWarning)
            wq = torch.quantize_per_channel(w, w_scale, zeros, 0, torch.qint8)
        bias = None if linear.bias is None else linear.bias.detach().float().cpu()
        self._packed = torch.ops.quantized.linear_prepack(wq, bias)
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        self.scale = max((hi - lo) / 255.0, 1e-8)
        self.zero_point = int(min(255, max(0, round(-lo / self.scale))))
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).float().contiguous()
        y = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(
            flat, self.scale, self.zero_point, self._packed
        )
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, input scale={self.scale:.4g}"


def supported() -> bool:
    """Can this PyTorch build run the int8 linear kernels?"""
    engines = torch.backends.quantized.supported_engines
    return any(e in engines for e in ("x86", "fbgemm"))


def observe_ranges(model: torch.nn.Module, calibrate: Callable[[], None]) -> Ranges:
    """The input range (min, max, 0 included) of every nn.Linear of `model` over the forward
    passes that `calibrate()` runs."""
    ranges: dict[str, list[float]] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):

            def hook(_mod, args, name=name):
                x = args[0].detach()
                r = ranges.setdefault(name, [0.0, 0.0])
                r[0] = min(r[0], float(x.min()))
                r[1] = max(r[1], float(x.max()))

            hooks.append(module.register_forward_pre_hook(hook))
    try:
        calibrate()
    finally:
        for h in hooks:
            h.remove()
    return {name: (lo, hi) for name, (lo, hi) in ranges.items()}


def linear_names(model: torch.nn.Module) -> set[str]:
    return {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def apply_ranges(model: torch.nn.Module, ranges: Ranges) -> int:
    """Replace the nn.Linear layers named in `ranges` by StaticInt8Linear layers with those input
    ranges. Returns the number of layers replaced."""
    if torch.backends.quantized.engine not in ("x86", "fbgemm"):
        engines = torch.backends.quantized.supported_engines
        torch.backends.quantized.engine = "x86" if "x86" in engines else "fbgemm"
    for name, (lo, hi) in ranges.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, StaticInt8Linear(getattr(parent, child), lo, hi))
    return len(ranges)


def quantize_int8(model: torch.nn.Module, calibrate: Callable[[], None]) -> int:
    """Replace every nn.Linear of `model` by a StaticInt8Linear whose input range is what
    `calibrate()` (a few forward passes) shows it. Returns the number of layers replaced."""
    return apply_ranges(model, observe_ranges(model, calibrate))


# --- calibration once: memory, worker processes, disk ---------------------------------------------
def files_fingerprint(directory: str | Path) -> str:
    """sha256 of a model folder's files that `from_pretrained` reads (names and bytes); memoised
    on their size, mtime and inode, so that a process hashes a folder once."""
    root = Path(directory).resolve()
    files = sorted(f for f in root.iterdir() if f.is_file() and f.suffix.lower() in _MODEL_SUFFIXES)
    state = [str(root)]
    for f in files:
        st = f.stat()
        state.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
    memo = hashlib.sha256("\0".join(state).encode()).hexdigest()
    with _lock:
        known = _fingerprints.get(memo)
    if known:
        return known
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with f.open("rb") as fh:
            hash_file(digest, fh)
    with _lock:
        _fingerprints[memo] = digest.hexdigest()
    return digest.hexdigest()


def tensors_fingerprint(model: torch.nn.Module, vocab: dict[str, int]) -> str:
    """sha256 of a loaded model's parameters and buffers and its vocabulary (for a model that is
    not a local folder)."""
    digest = hashlib.sha256(json.dumps(sorted(vocab.items())).encode())
    for name, t in sorted(model.state_dict().items()):
        digest.update(name.encode() + str(tuple(t.shape)).encode() + str(t.dtype).encode())
        digest.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def calibration_key(model_fingerprint: str, settings: dict[str, Any]) -> str:
    """The cache key of one calibration: the model, the settings that shape the calibration
    inputs, the calibration sample, the torch version and this format."""
    what = {
        "model": model_fingerprint,
        "settings": settings,
        "sentences": _CALIBRATION_SENTENCES,
        "torch": torch.__version__,
        "format": CALIBRATION_FORMAT,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def store_dir() -> Path:
    from kdaug.resolve import cache_dir

    return cache_dir() / CALIBRATION_DIR


def find_ranges(key: str, expected: set[str] | None = None) -> tuple[Ranges | None, str]:
    """Ranges stored under `key` and where they were found ("memory": this process calibrated
    or read them before; "shipped": a coordinator sent them; "disk"), or (None, ""). A disk
    entry that is unreadable or names other layers than `expected` is ignored."""
    with _lock:
        hit = _memory.get(key)
        shipped_here = key in _received
    if hit is not None:
        return hit, "shipped" if shipped_here else "memory"
    path = store_dir() / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ranges = {str(k): (float(v[0]), float(v[1])) for k, v in data["ranges"].items()}
        ok = data.get("key") == key and (expected is None or set(ranges) == expected)
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        log.warning("ignoring the unreadable int8 calibration %s (%s)", path, exc)
        return None, ""
    if not ok:
        log.warning("ignoring the int8 calibration %s: it does not fit this model", path)
        return None, ""
    with _lock:
        _memory[key] = ranges
    return ranges, "disk"


def save_ranges(key: str, ranges: Ranges, about: dict[str, Any] | None = None) -> None:
    """Keep `ranges` in memory and on disk. The file is published atomically (kdaug.files), so
    that concurrent writers (threads, worker processes, service replicas) never leave a torn file:
    a reader sees no file or a complete one. A cache that cannot be written is a warning."""
    with _lock:
        _memory[key] = dict(ranges)
    d = store_dir()
    record = {"key": key, "format": CALIBRATION_FORMAT, **(about or {}), "ranges": ranges}
    try:
        d.mkdir(parents=True, exist_ok=True)
        write_text_atomic(d / f"{key}.json", json.dumps(record, indent=1, sort_keys=True))
    except OSError as exc:
        log.warning("cannot cache the int8 calibration in %s (%s)", d, exc.strerror or exc)


def shipped(keys: list[str] | None = None) -> dict[str, Any]:
    """What this process knows (ranges by key, folder fingerprints), for worker processes."""
    with _lock:
        ranges = {k: v for k, v in _memory.items() if keys is None or k in keys}
        return {"ranges": ranges, "fingerprints": dict(_fingerprints)}


def receive(state: dict[str, Any] | None) -> None:
    """Take what a coordinator shipped (see `shipped`): its loads then need neither hashing nor
    calibration."""
    if not state:
        return
    ranges = {k: {n: tuple(r) for n, r in v.items()} for k, v in state.get("ranges", {}).items()}
    with _lock:
        _memory.update(ranges)
        _received.update(ranges)
        _fingerprints.update(state.get("fingerprints", {}))


def calibration_sentences(n: int = _CALIBRATION_SENTENCES) -> list[str]:
    """The first `n` sentences of the packaged English sample (fixed: same scales every load)."""
    path = resources.files("augment") / "data" / "enwiki-sample-sentences.txt.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        out = []
        for line in fh:
            line = line.strip()
            if line:
                out.append(line)
            if len(out) == n:
                break
    return out
