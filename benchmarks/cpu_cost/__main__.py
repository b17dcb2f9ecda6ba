"""`python -m benchmarks.cpu_cost`: see benchmarks/cpu_cost/cli.py."""

from benchmarks.cpu_cost.cli import main

main()
