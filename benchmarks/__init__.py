"""kdaug's benchmarks: each one a command, `python -m benchmarks.NAME --help` from the repository
root; results they keep go to benchmarks/results/."""
