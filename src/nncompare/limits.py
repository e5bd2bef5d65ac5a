"""Memory limits checked before the work starts: an input or a model that would not fit is refused with
a UserError that says how much it needs and what to change, instead of a MemoryError half-way through
or the system's out-of-memory killer ending the process without a word.

The estimates are deliberately rough upper bounds from what is known before loading (a file's size,
an array's header, an image's dimensions, a parameter count); the budget is the memory the system
reports available, or NNCOMPARE_MEMORY_LIMIT (bytes, or with a k/M/G suffix) where that is set.
"""

from __future__ import annotations

import os

from .errors import UserError

_SUFFIXES = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _parse_bytes(text: str) -> int:
    text = text.strip().lower().removesuffix("b")
    scale = _SUFFIXES.get(text[-1:], 1)
    number = text[:-1] if scale > 1 else text
    try:
        value = float(number) * scale
    except ValueError:
        raise UserError(f"NNCOMPARE_MEMORY_LIMIT '{text}' is not a size; write it as bytes or with k, M or G, such as 4G") from None
    if not value > 0:
        raise UserError(f"NNCOMPARE_MEMORY_LIMIT '{text}' must be a positive size, such as 4G")
    return int(value)


def available_memory() -> int | None:
    """Bytes this process may still use: NNCOMPARE_MEMORY_LIMIT, else the system's MemAvailable (Linux)
    or free physical pages; None where nothing is known (then nothing is refused)."""
    limit = os.environ.get("NNCOMPARE_MEMORY_LIMIT")
    if limit:
        return _parse_bytes(limit)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def check_fits(needed: float, what: str, fix: str) -> None:
    """UserError when `needed` bytes (an estimate) exceed the memory available."""
    budget = available_memory()
    if budget is not None and needed > budget:
        raise UserError(f"{what} would need about {human(needed)} of memory and {human(budget)} is available; {fix}")
