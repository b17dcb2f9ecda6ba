"""kdaug's core, shared by `augment`, `distill` and `service`: errors, settings, model resolution,
atomic files, the task registry, the table reader, progress, machine facts, and the one CLI.

Nothing here imports the three product packages, except `kdaug.cli`, the entry point on top of
them all (see docs/architecture.md)."""

__version__ = "0.1.0"
