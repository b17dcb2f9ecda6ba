"""Masked-LM adaptation (`kdaug adapt-mlm`): domain-adaptive and label-conditional MLMs, and
kdaug's offline default MLM. The augmenter uses `load_conditioning` and `token_type_for`."""

from augment.adapt.conditional import load_conditioning, token_type_for

__all__ = ["load_conditioning", "token_type_for"]
