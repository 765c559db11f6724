"""``python -m visionloop.edge``: the edge runtime without the main command line's dependencies."""

from __future__ import annotations

import sys

from visionloop.edge.cli import main

if __name__ == "__main__":
    sys.exit(main())
