"""Run at start-up by every Python process with tests/hooks on its PYTHONPATH (only the kill tests'
children and the workers they spawn): installs the kill tests' fault injection (killhooks.py) when the
process was asked for a fault, and does nothing otherwise (nncompare is not even imported)."""

import os

if os.environ.get("NNCOMPARE_TEST_PAUSE_WRITE") or os.environ.get("NNCOMPARE_TEST_KILL_RUN"):
    import killhooks

    killhooks.install()
