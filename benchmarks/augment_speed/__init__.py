"""Augmentation throughput side by side: kdaug, the official TinyBERT algorithm, nlpaug and
TextAttack, and the masked-LM floor: `python -m benchmarks.augment_speed --help`."""
