"""`python -m benchmarks.ablation`: see benchmarks/ablation/cli.py."""

import sys

from benchmarks.ablation.cli import main

sys.exit(main())
