"""Entry point: ``python -m benchmarks [--quick] [--only SUBSTR] [--json F] [--png F] [--peers]``."""

import sys

from .runner import main

sys.exit(main())
