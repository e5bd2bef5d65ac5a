"""Checkpoints at epoch ends, so that a killed or interrupted run resumes from its last finished epoch
and ends with exactly the numbers an uninterrupted run gives (on CPU, bit for bit).

Exact resumption needs everything that decides the next step, not only the weights: the optimizer's
moments and step counts, the learning-rate schedule's position, every random generator a run draws
from (torch's global one for dropout and initialisation, the batch-shuffling and augmentation
generators, NumPy's and Python's), the early-stopping counters with the best weights so far, the
history, and for --refit the initial weights.

Two files in the run folder, neither of them a pickle:

    checkpoint-<epoch>.safetensors   every tensor: weights, best weights, Adam moments, RNG states (uint8)
    checkpoint.json                  everything else, and the name and SHA-256 of the tensor file

A checkpoint is written at the end of an epoch once CHECKPOINT_SECONDS have passed since the last
one (and always at the epoch the loop decides to stop): on a small data set an epoch takes a few
milliseconds and a checkpoint many times that (measured: an MLP on ucr:ArrowHead, 12.7 ms an epoch
without, 82.4 ms with one at every epoch), so a checkpoint at every epoch made such runs 6x slower.
A kill or a Ctrl-C loses at most that much training, which the resumed run trains again, to the same
numbers. NNCOMPARE_CHECKPOINT_SECONDS sets the interval (0: every epoch, as the tests use).

The tensor file is written first, then checkpoint.json (each atomically), then older tensor files are
removed. checkpoint.json is the commit point: a kill at any moment leaves the previous checkpoint or
the new one, never a mix, and a damaged file is noticed (hash, names, shapes) and ignored, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..utils import atomic_write_bytes, atomic_write_json, state_mismatch

CHECKPOINT_JSON = "checkpoint.json"
TENSOR_PREFIX = "checkpoint-"
CHECKPOINT_SECONDS = 10.0  # the least training time between two checkpoints of a run (see above)
INTERVAL_VARIABLE = "NNCOMPARE_CHECKPOINT_SECONDS"
FORMAT = 1  # bump when the layout changes: an older checkpoint is then ignored, not misread


# -- the first Ctrl-C --------------------------------------------------------------------------------------
class RunInterrupted(Exception):
    """Stop was requested (the first Ctrl-C): the run stopped after its current step. Its last
    epoch-end checkpoint is what a resume continues from."""


_stop_event = None  # set by compare for the duration of a comparison (a threading or multiprocessing Event)


def install_stop_event(event) -> None:
    """Make `raise_if_stopped` watch `event` (None: never stop). Called by the comparison, in the main
    process and in each worker, never at import."""
    global _stop_event
    _stop_event = event


def stop_requested() -> bool:
    return _stop_event is not None and _stop_event.is_set()


def raise_if_stopped() -> None:
    """Called after every optimizer step: the first Ctrl-C ends the run here, before the next step."""
    if stop_requested():
        raise RunInterrupted()


# -- what is saved ---------------------------------------------------------------------------------------
@dataclass
class Saved:
    """A checkpoint read back: the epoch it was taken at, its JSON part and its tensors."""

    epoch: int
    info: dict
    tensors: dict[str, torch.Tensor] = field(repr=False)


class CheckpointError(Exception):
    """A checkpoint that does not fit the run (tampered, truncated, another configuration)."""


def _state_tensors(prefix: str, state: dict) -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share memory, and the live ones keep changing
    return {f"{prefix}.{k}": v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def _rng_json() -> dict:
    """NumPy's and Python's global generator states as JSON (lists of whole numbers)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss_next],
    }


def _set_rng_json(state: dict) -> None:
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict, dict[str, torch.Tensor]]:
    """An optimizer's state_dict split into JSON (settings, step counts as numbers) and tensors."""
    sd = optimizer.state_dict()
    state_json, tensors = {}, {}
    for pid, entries in sd["state"].items():
        state_json[str(pid)] = {}
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                state_json[str(pid)][key] = value
    return {"state": state_json, "param_groups": sd["param_groups"]}, tensors


def _optimizer_state(parts: dict, tensors: dict[str, torch.Tensor]) -> dict:
    state = {}
    for pid, entries in parts["state"].items():
        state[int(pid)] = dict(entries)
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": parts["param_groups"]}


@dataclass
class LoopState:
    """The live objects of a training loop that a checkpoint saves and a resume puts back.

    `generators`: the loop's own random generators by name (shuffling, augmentation, ...);
    `modules`: further state dicts by name (the initial weights for --refit, a mean teacher's
    `state_dict()`), restored in place; `extra`: small JSON values the loop keeps (a step count)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    stopper: object
    generators: dict[str, torch.Generator] = field(default_factory=dict)
    modules: dict[str, dict] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def capture(loop: LoopState, epoch: int, history: list[dict], stop_reason: str | None) -> tuple[dict, dict[str, torch.Tensor]]:
    """(JSON part, tensors) of the loop's state after `epoch` epochs. `stop_reason` is set when the
    loop has decided to stop after this epoch, so that a resume goes on to what follows the loop."""
    tensors = _state_tensors("model", loop.model.state_dict())
    tensors.update(_state_tensors("best", loop.stopper.best_state))
    for name, state in loop.modules.items():
        tensors.update(_state_tensors(name, state))
    optimizer_json, optimizer_tensors = _optimizer_parts(loop.optimizer)
    tensors.update(optimizer_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    for name, gen in loop.generators.items():
        tensors[f"rng.gen.{name}"] = gen.get_state()
    stopper = loop.stopper
    info = {
        "epoch": epoch,
        "history": [list(row.items()) for row in history],  # [key, value] pairs: JSON files sort keys, history.csv keeps this order
        "stop_reason": stop_reason,
        "stopper": {"best_loss": stopper.best_loss, "best_epoch": stopper.best_epoch, "elapsed": time.perf_counter() - stopper.start},
        "optimizer": optimizer_json,
        "scheduler": None if loop.scheduler is None else loop.scheduler.state_dict(),
        "rng": _rng_json(),
        "generators": sorted(loop.generators),
        "modules": sorted(loop.modules),
        "extra": dict(loop.extra),
    }
    return info, tensors


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _check_matches(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], what: str) -> None:
    problem = state_mismatch(got, want)
    if problem:
        raise CheckpointError(f"{what} do not match the model ({problem})")


def restore(loop: LoopState, saved: Saved) -> None:
    """Put the loop's state back as `capture` took it. Every tensor is checked against the live model
    and optimizer first (names, shapes, dtypes), so a checkpoint that does not fit raises
    CheckpointError before anything is changed."""
    t, info = saved.tensors, saved.info
    if sorted(loop.generators) != info["generators"] or sorted(loop.modules) != info["modules"]:
        raise CheckpointError("it was taken by a different training loop")
    live = loop.model.state_dict()
    model_state, best_state = _prefixed(t, "model"), _prefixed(t, "best")
    _check_matches(model_state, live, "its weights")
    _check_matches(best_state, live, "its best weights")
    module_states = {name: _prefixed(t, name) for name in loop.modules}
    for name, state in loop.modules.items():
        _check_matches(module_states[name], state, f"its {name} weights")
    params = [p for group in loop.optimizer.param_groups for p in group["params"]]
    optimizer_state = _optimizer_state(info["optimizer"], t)
    for pid, entries in optimizer_state["state"].items():
        if not 0 <= pid < len(params):
            raise CheckpointError(f"its optimizer state names parameter {pid}, the model has {len(params)}")
        for key in ("exp_avg", "exp_avg_sq"):
            if key in entries and entries[key].shape != params[pid].shape:
                raise CheckpointError(f"its optimizer {key} for parameter {pid} has the wrong shape")
    for name in loop.generators:
        if f"rng.gen.{name}" not in t:
            raise CheckpointError(f"it has no state for the {name} generator")

    loop.model.load_state_dict(model_state)
    loop.stopper.best_state = best_state
    loop.stopper.best_loss, loop.stopper.best_epoch = info["stopper"]["best_loss"], info["stopper"]["best_epoch"]
    loop.stopper.start = time.perf_counter() - info["stopper"]["elapsed"]  # train_seconds counts every session
    with torch.no_grad():
        for name, state in loop.modules.items():
            for k, v in module_states[name].items():
                state[k].copy_(v)  # in place: a module's state_dict() entries are its live tensors
    loop.optimizer.load_state_dict(optimizer_state)
    if loop.scheduler is not None:
        loop.scheduler.load_state_dict(info["scheduler"])
    torch.set_rng_state(t["rng.torch"])
    cuda = [t[f"rng.cuda.{i}"] for i in range(len(t)) if f"rng.cuda.{i}" in t]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    for name, gen in loop.generators.items():
        gen.set_state(t[f"rng.gen.{name}"])
    _set_rng_json(info["rng"])
    loop.extra.update(info.get("extra", {}))


@dataclass
class Resumed:
    """Where a loop starts: the first epoch to train, the history so far, and the stop reason when the
    checkpoint was taken after the loop had decided to stop (then no epoch is trained)."""

    first_epoch: int = 1
    history: list[dict] = field(default_factory=list)
    stop_reason: str | None = None


# -- files -------------------------------------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(config: dict) -> str:
    """A checkpoint belongs to one run configuration (config.json's content); another one ignores it."""
    return _sha256(json.dumps(config, sort_keys=True, default=str).encode("utf-8"))


def stray_files(run_dir: Path) -> list[Path]:
    """Debris of an interrupted write in a run folder: temporary files, tensor files no checkpoint.json names."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    named = None
    try:
        named = json.loads((run_dir / CHECKPOINT_JSON).read_text(encoding="utf-8")).get("tensors")
    except (OSError, ValueError, AttributeError):
        pass
    out = []
    for f in sorted(run_dir.iterdir()):
        if f.name.startswith(".") and f.name.endswith(".tmp"):
            out.append(f)
        elif f.name.startswith(TENSOR_PREFIX) and f.name.endswith(".safetensors") and f.name != named:
            out.append(f)
    return out


def checkpoint_interval() -> float:
    """Seconds of training between two checkpoints: NNCOMPARE_CHECKPOINT_SECONDS, else CHECKPOINT_SECONDS."""
    text = os.environ.get(INTERVAL_VARIABLE)
    if text is None or text.strip() == "":
        return CHECKPOINT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value != float("inf")):
        from ..errors import UserError

        raise UserError(f"{INTERVAL_VARIABLE}={text!r} is not a number of seconds; set it to 0 (a checkpoint every epoch) or more, or unset it (default {CHECKPOINT_SECONDS:g})")
    return value


class Checkpointer:
    """Saves and loads one run's checkpoint in its folder.

    `notes` collects what a user should hear about (a checkpoint that could not be used, so the run
    started over); `resumed_at` is the epoch a run was resumed from, None for a fresh start."""

    def __init__(self, run_dir: str | os.PathLike, fingerprint: str, label: tuple[str, int] | None = None):
        self.run_dir, self.fingerprint, self.label = Path(run_dir), fingerprint, label
        self.notes: list[str] = []
        self.resumed_at: int | None = None
        self.interval = checkpoint_interval()
        self.last_save = time.monotonic()  # the run starts now: its first checkpoint comes an interval later

    @property
    def json_path(self) -> Path:
        return self.run_dir / CHECKPOINT_JSON

    def load(self) -> Saved | None:
        """The run's checkpoint, or None (there is none, or it cannot be used: then a note says why)."""
        self.tidy()
        if not self.json_path.exists():
            return None
        try:
            saved = self._read()
        except CheckpointError as e:
            self.notes.append(f"checkpoint in '{self.run_dir}' not used ({e}); the run started over")
            return None
        return saved

    def _read(self) -> Saved:
        from safetensors import SafetensorError
        from safetensors.torch import load as load_safetensors

        try:
            info = json.loads(self.json_path.read_text(encoding="utf-8"))
            name, digest, epoch = info["tensors"], info["sha256"], int(info["epoch"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{CHECKPOINT_JSON} is unreadable: {e}") from None
        if info.get("format") != FORMAT:
            raise CheckpointError(f"written in format {info.get('format')}, this version reads {FORMAT}")
        if info.get("fingerprint") != self.fingerprint:
            raise CheckpointError("it was made with another configuration")
        if Path(name).name != name or not name.startswith(TENSOR_PREFIX):
            raise CheckpointError(f"it names an unexpected tensor file '{name}'")
        try:
            data = (self.run_dir / name).read_bytes()
        except OSError as e:
            raise CheckpointError(f"its tensor file cannot be read ({e.strerror or e})") from None
        if _sha256(data) != digest:
            raise CheckpointError(f"{name} does not match its recorded SHA-256 (truncated or changed)")
        try:
            tensors = load_safetensors(data)
        except (SafetensorError, ValueError) as e:
            raise CheckpointError(f"{name} is not a readable safetensors file ({e})") from None
        return Saved(epoch=epoch, info=info["state"], tensors=tensors)

    def resume(self, loop: LoopState) -> Resumed:
        """Restore `loop` from this run's checkpoint, if there is a usable one."""
        saved = self.load()
        if saved is None:
            return Resumed()
        try:
            restore(loop, saved)
        except (CheckpointError, KeyError, TypeError, ValueError) as e:
            self.notes.append(f"checkpoint in '{self.run_dir}' not used ({e}); the run started over")
            return Resumed()
        self.resumed_at = saved.epoch
        history = [dict(pairs) for pairs in saved.info["history"]]
        return Resumed(first_epoch=saved.epoch + 1, history=history, stop_reason=saved.info["stop_reason"])

    def save_epoch(self, loop: LoopState, epoch: int, history: list[dict], stop_reason: str | None) -> None:
        """Checkpoint the loop after `epoch` (called at every epoch end) when an interval has passed
        since the last checkpoint, or when the loop stops after this epoch."""
        if stop_reason is None and time.monotonic() - self.last_save < self.interval:
            return
        info, tensors = capture(loop, epoch, history, stop_reason)
        self.save(epoch, info, tensors)

    def save(self, epoch: int, info: dict, tensors: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save

        data = save(tensors, metadata={"epoch": str(epoch)})
        name = f"{TENSOR_PREFIX}{epoch:06d}.safetensors"
        atomic_write_bytes(self.run_dir / name, data)
        record = {"format": FORMAT, "epoch": epoch, "tensors": name, "sha256": _sha256(data), "fingerprint": self.fingerprint, "state": info}
        atomic_write_json(self.json_path, record)  # the commit point; a NaN loss is written as NaN, which json reads back
        self.last_save = time.monotonic()
        for f in self.run_dir.glob(f"{TENSOR_PREFIX}*.safetensors"):
            if f.name != name:
                f.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove the checkpoint once the run's final files are written (metrics.json last)."""
        self.json_path.unlink(missing_ok=True)
        for f in self.run_dir.glob(f"{TENSOR_PREFIX}*.safetensors"):
            f.unlink(missing_ok=True)
        self.tidy()

    def tidy(self) -> None:
        """Remove the debris a kill leaves in this run's folder (see `stray_files`); the folder is
        this process's alone while it holds the comparison's lock."""
        for f in stray_files(self.run_dir):
            f.unlink(missing_ok=True)

