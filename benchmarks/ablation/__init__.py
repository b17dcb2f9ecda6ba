"""Does augmentation make better students? A multi-seed ablation on a GLUE task, run with kdaug's
own commands only: `python -m benchmarks.ablation --help`."""
