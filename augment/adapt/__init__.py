"""Masked-LM adaptation (`kdaug adapt-mlm`): domain-adaptive and label-conditional MLMs, and
kdaug's offline default MLM."""
