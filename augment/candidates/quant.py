"""int8 linear layers for the masked-LM on CPU, with fixed (calibrated) activation scales.

PyTorch's dynamic quantisation picks each activation scale from the whole input tensor, so a
copy's candidates would depend on which other copies share its forward pass, and kdaug promises
the same output whatever the batch size. Here every linear layer quantises its input with a scale
calibrated once, on a fixed text sample, when the model loads: int8 weights (per output channel),
uint8 activations, int32 accumulation, float output. Each row of the output then depends on its
own row of the input only.
"""

from __future__ import annotations

import gzip
import warnings
from collections.abc import Callable
from importlib import resources

import torch

_CALIBRATION_SENTENCES = 64


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


def quantize_int8(model: torch.nn.Module, calibrate: Callable[[], None]) -> int:
    """Replace every nn.Linear of `model` by a StaticInt8Linear whose input range is what
    `calibrate()` (a few forward passes) shows it. Returns the number of layers replaced."""
    if torch.backends.quantized.engine not in ("x86", "fbgemm"):
        engines = torch.backends.quantized.supported_engines
        torch.backends.quantized.engine = "x86" if "x86" in engines else "fbgemm"
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
    replaced = 0
    for name, (lo, hi) in ranges.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, StaticInt8Linear(getattr(parent, child), lo, hi))
        replaced += 1
    return replaced


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
