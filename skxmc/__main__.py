"""``python -m skxmc``: the command line (see :mod:`skxmc._cli`)."""

import sys

from skxmc._cli import main

if __name__ == "__main__":
    sys.exit(main())
