"""Fault injection for the kill tests (tests/test_reliability.py), kept on the test side: the product
only has two plain seams, which this module replaces in a process that the kill tests start. Nothing
happens unless one of the variables below is set.

- NNCOMPARE_TEST_PAUSE_WRITE="FRAGMENT:N:MARKER": the N-th atomic write (1-based, counted in this
  process) of a file whose name contains FRAGMENT writes half its bytes to the temporary file, creates
  the file MARKER, and sleeps, so that the test can kill the process in the middle of the write.
  Seam: `nncompare.utils._write_payload`, which `atomic_write_bytes` writes through.
- NNCOMPARE_TEST_KILL_RUN="MODEL:SEED:EPOCH" (or "...:EPOCH+"): the run of MODEL with SEED kills its
  own process with SIGKILL once its checkpoint of EPOCH (or of every epoch from EPOCH on) is written:
  a worker dying, as under the out-of-memory killer. Seam: `Checkpointer.save`, wrapped.

A kill test's child process is forked from pytest and calls `install()` itself; the worker processes
it spawns are fresh interpreters, which run `sitecustomize.py` beside this file at start-up because
`environment()` puts this folder on their PYTHONPATH.
"""

from __future__ import annotations

import functools
import os
import signal
import time

HOOKS = os.path.dirname(os.path.abspath(__file__))
PAUSE_WRITE, KILL_RUN = "NNCOMPARE_TEST_PAUSE_WRITE", "NNCOMPARE_TEST_KILL_RUN"

_write_counts: dict[str, int] = {}
_installed = False


def environment(env: dict | None = None) -> dict:
    """`env` plus this folder at the front of PYTHONPATH, so that spawned workers install the hooks too."""
    env = dict(env or {})
    path = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join([HOOKS] + ([path] if path else []))
    return env


def install() -> bool:
    """Replace the product's seams if this process was asked for a fault (once); whether it was."""
    global _installed
    if _installed or not (os.environ.get(PAUSE_WRITE) or os.environ.get(KILL_RUN)):
        return _installed
    from nncompare import utils
    from nncompare.train.checkpoint import Checkpointer

    write_payload = utils._write_payload

    def paused_write_payload(f, path, data):
        view = memoryview(data)
        half = len(view) // 2
        write_payload(f, path, view[:half])
        pause_in_write(path, f)
        write_payload(f, path, view[half:])

    real_save = Checkpointer.save

    @functools.wraps(real_save)
    def save_then_maybe_die(self, epoch, *args, **kwargs):
        real_save(self, epoch, *args, **kwargs)
        if self.label is not None:
            maybe_kill_run(*self.label, epoch)

    utils._write_payload = paused_write_payload
    Checkpointer.save = save_then_maybe_die
    _installed = True
    return True


def pause_in_write(path: os.PathLike, half_written_file) -> None:
    """Called after half the bytes of a write to `path` went to its temporary file."""
    spec = os.environ.get(PAUSE_WRITE)
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
    """Called after each checkpoint of a stored run: die without cleaning up, like a killed worker."""
    spec = os.environ.get(KILL_RUN)
    if not spec:
        return
    m, s, e = spec.split(":")
    every = e.endswith("+")
    first = int(e.rstrip("+"))
    if (m, int(s)) == (model, seed) and (epoch == first or (every and epoch >= first)):
        os.kill(os.getpid(), signal.SIGKILL)
