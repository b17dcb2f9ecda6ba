"""`python -m benchmarks.augment_speed`: see benchmarks/augment_speed/cli.py."""

from benchmarks.augment_speed.cli import main

main()
