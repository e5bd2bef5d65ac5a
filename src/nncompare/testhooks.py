"""Fault injection for the reliability tests (tests/test_reliability.py). Does nothing unless one of
the NNCOMPARE_TEST_* environment variables below is set, which no user does.

The kill tests must stop a comparison at moments a random SIGKILL would hit only by luck (halfway
through writing a checkpoint file, say), and a worker process must die the way the system's
out-of-memory killer ends one. Both need a hook inside the code that does the work; they live here,
in one place, so the rest of the package reads as if they were not there.

- NNCOMPARE_TEST_PAUSE_WRITE="FRAGMENT:N:MARKER": the N-th atomic write (1-based, counted in this
  process) of a file whose name contains FRAGMENT writes half its bytes to the temporary file, creates
  the file MARKER, and sleeps, so that the test can kill the process in the middle of the write.
- NNCOMPARE_TEST_KILL_RUN="MODEL:SEED:EPOCH" (or "...:EPOCH+"): the run of MODEL with SEED kills its
  own process with SIGKILL once its checkpoint of EPOCH (or of every epoch from EPOCH on) is written:
  a worker dying, as under the out-of-memory killer.
"""

from __future__ import annotations

import os
import signal
import time

_write_counts: dict[str, int] = {}


def pause_in_write(path: os.PathLike, half_written_file) -> None:
    """Called by `utils.atomic_write_bytes` after half the bytes went to the temporary file."""
    spec = os.environ.get("NNCOMPARE_TEST_PAUSE_WRITE")
    if not spec:
        return
    fragment, nth, marker = spec.split(":", 2)
    if fragment not in os.path.basename(path):
        return
    _write_counts[fragment] = _write_counts.get(fragment, 0) + 1
    if _write_counts[fragment] != int(nth):
        return
    half_written_file.flush()
    with open(marker, "w") as f:  # test signalling only, outside the store
        f.write(str(os.getpid()))
    time.sleep(600)  # the test kills this process long before this ends


def maybe_kill_run(model: str, seed: int, epoch: int) -> None:
    """Called at each epoch end of a stored run: die without cleaning up, like a killed worker."""
    spec = os.environ.get("NNCOMPARE_TEST_KILL_RUN")
    if not spec:
        return
    m, s, e = spec.split(":")
    every = e.endswith("+")
    first = int(e.rstrip("+"))
    if (m, int(s)) == (model, seed) and (epoch == first or (every and epoch >= first)):
        os.kill(os.getpid(), signal.SIGKILL)
