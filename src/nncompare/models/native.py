"""The LSTM's loops through time compiled from C (`lstm_loop.c`) on first use, for `LSTMSteps`.

A small recurrent layer's step on a CPU costs what calling its dozen tensor operations from Python
costs; the same loops in C take a few microseconds a step. The source ships with the package and is
built with the machine's C compiler ($CC, else cc, gcc or clang), for this CPU where the compiler takes
`-march=native`, into `~/.cache/nncompare/native/` ($NNCOMPARE_CACHE), once per source, compiler and
CPU (about a second); the library is loaded through ctypes, and its products W_h h go to the sgemm in
torch's own library where it exports one. Where there is no compiler, the build fails, or `NNCOMPARE_NATIVE=0` is set,
`lstm_library()` returns None and `LSTMSteps` runs the same loops in Python: same equations, results
equal to float32 rounding (tests/test_native.py), only slower. `native_status()` says which, and why.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..utils import cache_dir

SOURCE = Path(__file__).with_name("lstm_loop.c")
FLAGS = ("-O3", "-ffp-contract=off", "-fno-trapping-math", "-shared", "-fPIC")
BUILD_TIMEOUT_S = 120

_state: dict = {}  # "lib": the loaded library or None, "why": the reason for None, "path": its file


def _compiler() -> list[str] | None:
    """The compiler's command: $CC (which may carry words of its own, "ccache gcc"), else cc, gcc or clang."""
    words = shlex.split(os.environ.get("CC", ""))
    if words:
        path = shutil.which(words[0])
        return None if path is None else [path, *words[1:]]
    return next(([path] for name in ("cc", "gcc", "clang") if (path := shutil.which(name))), None)


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    i, p = ctypes.c_int, ctypes.c_void_p
    lib.lstm_forward.argtypes = [i, i, i] + [p] * 8
    lib.lstm_forward.restype = None
    lib.lstm_backward.argtypes = [i, i, i] + [p] * 10  # w, acts, cs, tanh_cs, dh, dc, da, dc_last, mask, tmp
    lib.lstm_backward.restype = None
    lib.use_sgemm.argtypes = [p]
    lib.use_sgemm.restype = None
    lib.product.argtypes = [i, i, i, p, p, p]
    lib.product.restype = None
    for name in ("sigmoid_values", "tanh_values"):
        getattr(lib, name).argtypes = [i, p, p]
        getattr(lib, name).restype = None
    return lib


def _native_arch(cc: list[str]) -> str | None:
    """What `-march=native` means to `cc` on this machine (the CPU and features it resolves to), or None
    where the compiler does not take it. Part of the library's cache key, so a cache folder shared by
    machines with different CPUs never hands one a library built for the other."""
    try:
        done = subprocess.run([*cc, "-march=native", "-###", "-x", "c", "-c", os.devnull, "-o", os.devnull], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return " ".join(sorted(set(re.findall(r'-march=\S+|-mtune=\S+|-m[a-z0-9.-]+|"-target-(?:cpu|feature)" "[^"]+"', done.stderr))))


def _compile(cc: list[str], flags: tuple[str, ...], target: Path) -> str | None:
    """Build the library into `target` (written whole or not at all); None, or why it failed."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".lstm_loop-", suffix=".so", dir=target.parent)
        os.close(fd)
    except OSError as e:
        return f"cannot write the compiled loops under {target.parent}: {e}"
    try:
        done = subprocess.run([*cc, *flags, "-o", tmp, str(SOURCE), "-lm"], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if done.returncode != 0:
            return f"{shlex.join(cc)} failed to build {SOURCE.name}: " + (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        os.replace(tmp, target)  # parallel workers may build at once; each replaces the file whole
        return None
    except (OSError, subprocess.SubprocessError) as e:
        return f"building {SOURCE.name} with {shlex.join(cc)} failed: {e}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _build() -> tuple[ctypes.CDLL | None, str, Path | None]:
    if os.environ.get("NNCOMPARE_NATIVE", "1").strip() == "0":
        return None, "turned off by NNCOMPARE_NATIVE=0", None
    if sys.platform == "win32":
        return None, "not built on Windows", None
    cc = _compiler()
    if cc is None:
        return None, "no C compiler found (set CC, or install cc, gcc or clang)", None
    source = SOURCE.read_bytes()
    try:
        version = subprocess.run([*cc, "--version"], capture_output=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"the C compiler {shlex.join(cc)} did not run: {e}", None
    arch = _native_arch(cc)
    # for this CPU where the compiler can (1.25x rather than 1.59x torch's fused LSTM's time per training
    # step at 64 units and 200 steps, measured), else for any CPU of this architecture
    attempts = ([(FLAGS + ("-march=native",), arch)] if arch is not None else []) + [(FLAGS, "")]
    why = ""
    for flags, resolved in attempts:
        key = hashlib.sha256(b"\0".join([source, " ".join(flags).encode(), resolved.encode(), shlex.join(cc).encode(), version, platform.machine().encode(), sys.platform.encode()])).hexdigest()[:16]
        target = cache_dir() / "native" / f"lstm_loop-{key}.so"
        why = None if target.exists() else _compile(cc, flags, target)
        if why is None:
            break
    else:
        return None, why, None
    try:
        lib = _declare(ctypes.CDLL(str(target)))
    except (OSError, AttributeError) as e:
        return None, f"cannot load {target}: {e}", None
    built = f"compiled with {shlex.join(cc)}" + (" -march=native" if "-march=native" in flags else "")
    return lib, f"{built}; {_connect_sgemm(lib)}", target


def _torch_sgemm() -> int | None:
    """The address of the BLAS sgemm_ that torch's own library exports (MKL in torch's x86 wheels), or None."""
    import torch

    for path in sorted((Path(torch.__file__).parent / "lib").glob("libtorch_cpu.*")):
        try:
            return ctypes.cast(ctypes.CDLL(str(path)).sgemm_, ctypes.c_void_p).value
        except (OSError, AttributeError):
            continue
    return None


def _connect_sgemm(lib: ctypes.CDLL) -> str:
    """Give the loops torch's sgemm for their products, once it has multiplied a test product right."""
    import torch

    address = _torch_sgemm()
    if address is None:
        return "products in C"
    gen = torch.Generator().manual_seed(0)
    w, x, a = (torch.randn(shape, generator=gen) for shape in ((40, 10), (10, 33), (40, 33)))
    out = a.clone()
    lib.use_sgemm(address)
    lib.product(40, 10, 33, w.data_ptr(), x.data_ptr(), out.data_ptr())
    if not torch.allclose(out, torch.addmm(a, w, x), atol=1e-4, rtol=1e-4):
        lib.use_sgemm(None)
        return "products in C (torch's sgemm failed a test product)"
    return "products by torch's sgemm"


def lstm_library() -> ctypes.CDLL | None:
    """The compiled LSTM loops, built on the first call of a process; None where they cannot be."""
    if "lib" not in _state:
        _state["lib"], _state["why"], _state["path"] = _build()
    return _state["lib"]


def native_status() -> str:
    """One line: whether the LSTM's compiled loops are in use, and why not."""
    lib = lstm_library()
    return f"compiled LSTM loops: in use ({_state['why']}; {_state['path']})" if lib is not None else f"compiled LSTM loops: not in use, {_state['why']}; the LSTM's equations path runs its loops in Python"


def reset() -> None:
    """Forget the loaded library, so the next call looks again (tests)."""
    _state.clear()
