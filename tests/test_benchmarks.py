"""Every script in benchmarks/ runs in its `--smoke` size from an empty cache and prints its table.

The benchmarks are run by hand and their figures quoted, not asserted here; this keeps them from
rotting unnoticed. Each `benchmarks/NAME.py --smoke` (found by glob, so a new script is covered
without a change here) runs as a fresh process whose HOME, caches, store, temporary folder and
working directory are an empty folder of its own, and must exit 0, print the line held by the
script's module-level `HEADER` (its table header, or the fixed part of it), and leave no failed run
(failure.json) in its stores. The scripts run two at a time, each pinned to a core of its own (so
each plans its threads and workers for one core, and neither waits on the other's threads); the file
takes about half the sum of their times and is marked slow (`pytest -m "not slow"` leaves it out).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import queue
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import distributions
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))
TIMEOUT_S = 300  # per script; a smoke run takes seconds
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
AT_ONCE = 2 if len(CPUS) >= 2 else 1
# sets the CPU affinity, then becomes `python SCRIPT --smoke` (the affinity survives exec), so the
# script runs exactly as typed: its own folder first on sys.path
PINNED = "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])}); os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"


def header_of(script: Path) -> str | None:
    """The script's module-level HEADER, read without importing it: a string, or an f-string whose
    fields are literals (f"{'model':6} {'params':>8}"), evaluated with nothing in scope."""
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "HEADER" for t in node.targets):
            return eval(compile(ast.Expression(node.value), str(script), "eval"), {"__builtins__": {}})
    return None


def run_smoke(script: Path, home: Path, cpus: queue.Queue) -> tuple[subprocess.CompletedProcess, Path]:
    """`python SCRIPT --smoke` with `home` as HOME, caches, store, TMPDIR and working directory, on
    a core taken from `cpus` (when there are several to share)."""
    tmp = home / "tmp"
    tmp.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNCOMPARE_")}  # conftest's cache included
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),  # nncompare's data cache (no NNCOMPARE_CACHE): empty
        XDG_CONFIG_HOME=str(home / ".config"),
        MPLCONFIGDIR=str(home / ".config" / "matplotlib"),
        MPLBACKEND="Agg",
        NNCOMPARE_STORE=str(home / "runs"),
        TMPDIR=str(tmp),  # the scripts' default stores are temporary folders
        PYTHONIOENCODING="utf-8",
    )
    command = [sys.executable, str(script), "--smoke"]
    cpu = cpus.get()
    try:
        if cpu is not None:
            command = [sys.executable, "-c", PINNED, str(cpu), *command[1:]]
        proc = subprocess.run(command, check=False, cwd=home, env=env, capture_output=True, text=True, encoding="utf-8", timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode("utf-8", "replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        proc = subprocess.CompletedProcess(e.cmd, -1, out, f"timed out after {TIMEOUT_S} s")
    finally:
        cpus.put(cpu)
    return proc, home


@pytest.fixture(scope="module")
def smoke_runs(request, tmp_path_factory):
    """Start the smoke run of every script this session selected, AT_ONCE at a time; script -> future."""
    chosen = {item.callspec.params["script"] for item in request.session.items if getattr(item, "originalname", None) == "test_benchmark_smoke"}
    cpus: queue.Queue = queue.Queue()
    for cpu in CPUS[:AT_ONCE] if AT_ONCE > 1 else [None]:
        cpus.put(cpu)
    pool = ThreadPoolExecutor(AT_ONCE)
    futures = {s: pool.submit(run_smoke, s, tmp_path_factory.mktemp(f"home-{s.stem}"), cpus) for s in SCRIPTS if s in chosen}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def test_benchmarks_are_found():
    names = {s.stem for s in SCRIPTS}
    assert "mnist1d_reference" in names and len(names) >= 10, sorted(names)


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_no_benchmark_shadows_a_module(script):
    """A script's folder comes first on sys.path, so a script named like a module (mnist1d.py once)
    hides it from every script there: no file may share a name with a standard or installed module,
    nor with an installed distribution (whose module may be named as it is)."""
    name = script.stem
    assert name not in sys.stdlib_module_names, f"benchmarks/{script.name} shadows the standard library's {name}"
    installed = {re.sub(r"[-_.]+", "_", d.metadata["Name"]).lower() for d in distributions() if d.metadata["Name"]}
    assert name.lower() not in installed, f"benchmarks/{script.name} has the name of the installed package {name}"
    spec = importlib.util.find_spec(name)
    assert spec is None or (spec.origin and Path(spec.origin).resolve().parent == BENCHMARKS), f"benchmarks/{script.name} shadows the installed module {name} ({spec.origin})"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_benchmark_smoke(script, smoke_runs):
    header = header_of(script)
    assert header, f"benchmarks/{script.name} has no module-level HEADER (the text of its table header the test looks for)"
    proc, home = smoke_runs[script].result()
    command = f"`python benchmarks/{script.name} --smoke`"
    output = f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"{command} exited {proc.returncode}\n{output}"
    assert header in proc.stdout, f"{command} did not print its header {header!r}\n{output}"
    # a run that raised is stored with its reason, and the tables print it as nan: a smoke run has none
    failures = {str(f.relative_to(home)): f.read_text(encoding="utf-8")[:500] for f in home.rglob("failure.json")}
    assert not failures, f"{command} had failed runs: {failures}\n{output}"
