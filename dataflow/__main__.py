"""``python -m dataflow ...``: the CLI (see dataflow.cli)."""

from .cli import main

raise SystemExit(main())
