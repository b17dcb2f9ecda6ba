import sys

from kdaug.cli import main

sys.exit(main())
