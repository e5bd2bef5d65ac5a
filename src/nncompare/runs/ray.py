"""Run a comparison's (model, seed) runs as Ray tasks: `nncompare compare ... --backend ray [--address ADDR]`.

Each run is one task asking Ray for the CPUs the local plan gives a run (one, unless there are fewer
runs than cores) or, with `--device cuda`, one GPU. The task trains with the same code as a local
worker (`runner.execute` behind `compare.run_guarded`), so the same seed gives the same numbers as
the local backend on the same kind of machine. It writes the run into a temporary folder on its own
node and returns the four files; this process writes them into the store (metrics.json last) and
indexes them, so a cluster needs no shared file system. Progress (start, each epoch) streams back
through a small actor.

What every node needs: nncompare installed (the same version) and the data: the built-in data sets
are generated or bundled on each node; a path to your own file must exist on every node.

`address`: None connects to a running cluster named by RAY_ADDRESS or started with `ray start` on
this machine, or else starts a local one for this comparison; "auto", "ray://HOST:10001" or
"HOST:6379" connect to that cluster. A Ray session the caller already opened (ray.init) is used as it is.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from ..errors import UserError

INSTALL_HINT = "pip install 'nncompare[ray]'"
RUN_FILES = ("model.safetensors", "history.csv", "config.json", "timing.json", "metrics.json")  # metrics.json last: it marks a finished run


def import_ray():
    """The ray module, or a UserError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"`backend='ray'` needs Ray, which is not installed; {INSTALL_HINT}") from None
    return ray


def _run_task(spec_fields: dict, progress) -> dict:
    """One run inside a Ray worker: train into a temporary folder, return its files' bytes."""
    from .runner import RunSpec
    from .workers import run_guarded

    spec = RunSpec(**spec_fields)
    scratch = Path(tempfile.mkdtemp(prefix="nncompare-ray-"))
    spec.run_dir = str(scratch / "run")
    progress.put.remote({"event": "start", "model": spec.label, "seed": spec.seed})

    def on_epoch(row):
        progress.put.remote({"event": "epoch", "model": spec.label, "seed": spec.seed, **row})

    try:
        metrics = run_guarded(spec, on_epoch)
        files = {name: (Path(spec.run_dir) / name).read_bytes() for name in RUN_FILES if (Path(spec.run_dir) / name).exists()}
        return {"metrics": metrics, "files": files}
    except UserError as e:  # the user's mistake: stop the comparison, as the local backend does
        return {"user_error": str(e)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Progress:
    """An actor collecting the tasks' progress events until this process drains them."""

    def __init__(self):
        self.events = []

    def put(self, event: dict) -> None:
        self.events.append(event)

    def drain(self) -> list:
        events, self.events = self.events, []
        return events


def _write_files(run_dir: Path, files: dict) -> None:
    from ..utils import atomic_write_bytes

    run_dir.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        if name in files:
            atomic_write_bytes(run_dir / name, files[name])


def run_on_ray(specs: list, emit, record, address: str | None = None, gpu: bool = False) -> None:
    """Run `specs` as Ray tasks; `emit` gets progress events, `record(spec, metrics)` each finished run."""
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="error", configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise UserError(f"cannot reach a Ray cluster at '{address}' ({type(e).__name__}: {e}); start one ('ray start --head') or leave `address` out for a local one") from None
    pending: dict = {}
    try:
        progress = ray.remote(num_cpus=0)(_Progress).remote()
        task = ray.remote(_run_task)
        for sp in specs:
            options = {"num_cpus": sp.threads or 1, "num_gpus": 1 if gpu else 0, "max_retries": 0}
            pending[task.options(**options).remote(dataclasses.asdict(sp), progress)] = sp
        while pending:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.2)
            for event in ray.get(progress.drain.remote()):
                emit(event)
            for ref in done:
                sp = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except ray.exceptions.RayError as e:  # the worker died (memory, a lost node): this run failed
                    out = {"metrics": {"model": sp.model, "seed": sp.seed, "status": "failed", "error": f"Ray: {type(e).__name__}: {str(e).splitlines()[0]}"}, "files": {}}
                if "user_error" in out:
                    raise UserError(out["user_error"])
                if out["files"]:
                    _write_files(Path(sp.run_dir), out["files"])
                record(sp, out["metrics"])
        for event in ray.get(progress.drain.remote()):
            emit(event)
    except BaseException:
        for ref in pending:  # interrupted, or a run's UserError: stop the others now
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
