"""`python -m nncompare ...`, and `torchrun ... -m nncompare train ...`: the same command as `nncompare`."""

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
