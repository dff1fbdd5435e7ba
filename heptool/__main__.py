"""``python -m heptool``: the same entry point as the ``heptool`` script."""

import sys

from heptool.cli import main

if __name__ == "__main__":
    sys.exit(main())
