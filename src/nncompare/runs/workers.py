"""Where runs execute: a pool of spawned worker processes (or this process), the order they start in,
progress from the workers, and stopping on Ctrl-C. The grid (runs/grid.py) decides what to run."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue as queue_module
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..errors import UserError
from ..models import get_model_info
from ..train.checkpoint import install_stop_event, stop_requested
from ..utils import available_cores
from .runner import RunSpec, execute

# Recurrent runs take longest (a sequential loop over time), so they start first: with a few workers
# the longest jobs first keeps the cores busy until the end (LPT scheduling). MNIST-1D, 1 thread: GRU
# 41 s, CNN 18 s, MLP 17 s a run.
FAMILY_COST = {"recurrent": 0, "convolutional": 1, "feed-forward": 2}


def _main_is_importable() -> bool:
    """Worker processes are spawned, and spawning re-imports the caller's main script by its path; a
    script read from standard input (`python - < script.py`) has none, so it cannot have workers."""
    import os
    import sys

    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


GUARD_HINT = 'a script that calls nncompare.compare must call it under `if __name__ == "__main__":` (worker processes import the script again)'


def refuse_while_a_worker_starts() -> None:
    """A spawned worker process imports the caller's main script again before it takes any work; a
    script that calls compare at its top level, outside `if __name__ == "__main__":`, would then start
    a comparison inside every worker. Say so there, in one line, and end that process (exit code 2)
    instead of multiprocessing's traceback; the parent then records its runs as failed, naming the same
    fix (`_inheriting` is the flag multiprocessing itself checks for this, set while a child starts)."""
    if getattr(mp.current_process(), "_inheriting", False):
        import sys

        print(f"nncompare: compare() was called while a worker process was starting: {GUARD_HINT}", file=sys.stderr, flush=True)
        raise SystemExit(2)


def plan_workers(n_runs: int, workers: int | None) -> tuple[int, int]:
    """(worker processes, torch threads per run).

    Threads per run depend only on the cores and the number of runs, never on `workers`: a float sum
    split over a different number of threads rounds differently, so tying threads to the worker count
    would make `--workers 1` give other numbers than the default. With at least as many runs as cores
    every run gets one thread and the cores go to parallel runs, which is faster for small models.
    """
    cores = available_cores()
    threads = max(1, cores // min(cores, n_runs))
    if workers is None:
        workers = min(cores, n_runs) if _main_is_importable() else 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UserError(f"workers must be a positive whole number, got {workers!r}")
    return min(workers, n_runs), threads


# -- worker side ------------------------------------------------------------------------------------
_progress_queue = None


def _init_worker(progress_queue, stop, parent_pid: int) -> None:
    global _progress_queue
    _progress_queue = progress_queue
    # Ctrl-C reaches the whole process group; the main process decides what stops: it sets `stop`,
    # which every run checks after each step (train/checkpoint.py)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    install_stop_event(stop)
    _exit_with_parent(parent_pid)


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker when the main process is gone (killed with SIGKILL, say): an orphan would keep
    training and writing into the run folder while a resume works there."""

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run_in_worker(spec: RunSpec) -> dict:
    if stop_requested():  # stopping: a run that has not started does not start
        return {"model": spec.model, "seed": spec.seed, "status": "interrupted"}

    def on_epoch(row):
        _progress_queue.put({"event": "epoch", "model": spec.label, "seed": spec.seed, **row})

    _progress_queue.put({"event": "start", "model": spec.label, "seed": spec.seed})
    return run_guarded(spec, on_epoch)


def run_guarded(spec: RunSpec, on_epoch) -> dict:
    """Run; a failure of this run is recorded with its reason instead of ending the comparison."""
    try:
        return execute(spec, on_epoch=on_epoch)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - crash isolation: the other runs go on
        return {"model": spec.model, "seed": spec.seed, "status": "failed", "error": f"{type(e).__name__}: {e}"}


def longest_first(specs: list[RunSpec], param_counts: dict) -> list[RunSpec]:
    """`specs` in the order a pool should start them: the runs expected to take longest first (recurrent,
    then convolutional, then feed-forward; the larger model first within a family), so that the runs
    left when the first workers fall idle are short ones. In the listed order (models as given, GRU
    last), the default MNIST-1D comparison ended with one GRU run alone on one of two workers. The sort
    is stable (seeds stay in order) and changes only the order, never a run's numbers."""
    return sorted(specs, key=lambda sp: (FAMILY_COST.get(get_model_info(sp.model).family, 1), -param_counts.get(sp.model, 0)))


def run_here(specs: list[RunSpec], emit, record, stop) -> None:
    """Run one after another in this process; the caller's torch thread count is restored afterwards."""
    import torch

    caller_threads = torch.get_num_threads()
    install_stop_event(stop)
    try:
        for sp in specs:
            if stop.is_set():
                break
            emit({"event": "start", "model": sp.label, "seed": sp.seed})
            record(sp, run_guarded(sp, lambda row, sp=sp: emit({"event": "epoch", "model": sp.label, "seed": sp.seed, **row})))
    finally:
        install_stop_event(None)
        torch.set_num_threads(caller_threads)


def run_pool(specs: list[RunSpec], n_workers: int, emit, record, stop) -> None:
    """Run in worker processes. A worker that dies (the out-of-memory killer, a crash in native code)
    breaks the whole pool, and which run it was training is not known: the runs that were in flight
    then go one at a time, each in a pool of its own, resuming from their checkpoints. A run whose own
    worker dies then is recorded as failed; every other run goes on."""
    remaining, suspects, idle_breaks = list(specs), [], 0
    while (remaining or suspects) and not stop.is_set():
        if suspects:
            sp = suspects.pop(0)
            if _pool_round([sp], 1, emit, record, stop)[0]:  # its own worker died: this run did it
                error = "its worker process died twice, the second time running alone (killed by the system? out of memory?)"
                record(sp, {"model": sp.model, "seed": sp.seed, "status": "failed", "error": error})
            continue
        lost, started = _pool_round(remaining, n_workers, emit, record, stop)
        suspects = [sp for sp in lost if (sp.label, sp.seed) in started]
        remaining = [sp for sp in lost if (sp.label, sp.seed) not in started]
        if suspects:
            emit({"event": "note", "text": f"a worker process died; the {len(suspects)} run(s) in flight go on from their checkpoints, one at a time"})
        elif lost:
            idle_breaks += 1  # workers that die before starting any run would otherwise be restarted forever
            if idle_breaks >= 2:
                for sp in remaining:
                    record(sp, {"model": sp.model, "seed": sp.seed, "status": "failed", "error": f"worker processes die before they start a run ({GUARD_HINT}, and nncompare must import in a fresh Python)"})
                emit({"event": "note", "text": f"{len(remaining)} run(s) failed: worker processes die before they start one; {GUARD_HINT}"})
                return


def _pool_round(specs: list[RunSpec], n_workers: int, emit, record, stop) -> tuple[list[RunSpec], set]:
    """One pool over `specs`: (the runs a dead worker took down with the pool, the runs that had started)."""
    ctx = mp.get_context("spawn")  # no fork: torch's thread pools do not survive a fork safely
    progress_queue = ctx.Queue()
    started: set[tuple] = set()

    def relay(event):
        if event.get("event") == "start":
            started.add((event["model"], event["seed"]))
        emit(event)

    with sigint_ignored():  # workers start with Ctrl-C ignored, even before their initializer runs
        pool = ProcessPoolExecutor(min(n_workers, len(specs)), mp_context=ctx, initializer=_init_worker, initargs=(progress_queue, stop, os.getpid()))
        pending = {pool.submit(_run_in_worker, sp): sp for sp in specs}
    lost: list[RunSpec] = []
    try:
        while pending:
            finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(progress_queue, relay)
            if stop.is_set():
                for fut in pending:
                    fut.cancel()  # runs not started yet never start; the running ones stop after a step
            for fut in finished:
                sp = pending.pop(fut)
                if fut.cancelled():
                    continue
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    lost.append(sp)
                    continue
                record(sp, result)
        _drain(progress_queue, relay)
    except BaseException:
        # a second Ctrl-C or a run that raised a UserError: stop now rather than wait for the runs in
        # flight (their folders have no metrics.json, the file written last, so they never pass as finished)
        stop_now(pool)
        raise
    pool.shutdown()
    return lost, started


def stop_now(pool) -> None:
    """End a process pool without waiting for the work in flight: cancel the queue, end the workers."""
    workers = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in workers:
        proc.terminate()


@contextlib.contextmanager
def first_interrupt_stops(stop, emit):
    """While the grid runs, the first Ctrl-C sets `stop` (every run ends after its current step, its
    last checkpoint kept, and no new run starts); a second one raises KeyboardInterrupt as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        emit({"event": "stopping"})

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def sigint_ignored():
    """Ignore SIGINT while worker processes are launched: an ignored signal stays ignored in a spawned
    child, and Python then installs no KeyboardInterrupt handler, so a Ctrl-C while a worker is still
    importing torch cannot print a traceback from it. The main thread gets its handler back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _drain(progress_queue, emit) -> None:
    while True:
        try:
            emit(progress_queue.get_nowait())
        except queue_module.Empty:
            return
