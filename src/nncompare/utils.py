"""Small helpers shared across the package: seeding, thread counts, atomic writes."""

from __future__ import annotations

import json
import os
import random
import secrets
from pathlib import Path

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed every generator a run touches (Python, NumPy, torch); the only seeding entry point."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def available_cores() -> int:
    """Cores this process may use (respects CPU affinity / container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target.

    A reader (or a process resuming after a kill) sees the old file or the new one, never half of
    one; a kill leaves at most a stray `.NAME.*.tmp` file, which `nncompare runs --check` points out.
    The folder is fsynced too, so the rename itself survives a power cut."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_payload(f, path, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def _write_payload(f, path: Path, data: bytes) -> None:
    """Write `data`, bound for `path`, into its open temporary file `f`. A function of its own so that
    the kill tests (tests/hooks/killhooks.py) can stop a process halfway through a write."""
    f.write(data)


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new `.NAME.<random>.tmp` beside `path`, opened for writing. Created with mode 0666 less the
    umask, as open() creates files (tempfile.mkstemp's 0600 would keep a team sharing a store, or a
    web server serving report.html, from reading the runs)."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def cache_dir() -> Path:
    """Where generated data sets are cached: $NNCOMPARE_CACHE, else ~/.cache/nncompare."""
    root = os.environ.get("NNCOMPARE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nncompare"
    )
    return Path(root)


def state_mismatch(got: dict, want: dict) -> str | None:
    """Why the tensors `got` cannot be loaded where `want` (a state dict) is: missing or unexpected
    names, or a shape or dtype that differs; None when they fit. Shared by load_run and checkpoints."""
    if set(got) != set(want):
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        return f"missing {missing[:3]}, unexpected {extra[:3]}"
    for name, w in want.items():
        g = got[name]
        if g.shape != w.shape or g.dtype != w.dtype:
            return f"tensor {name} is {tuple(g.shape)} {g.dtype}, {tuple(w.shape)} {w.dtype} is needed"
    return None
