"""The device check (`python -m benchmarks.device_check`, `make device-check`): see cli.py."""
