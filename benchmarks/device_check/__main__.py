from benchmarks.device_check.cli import main

raise SystemExit(main())
