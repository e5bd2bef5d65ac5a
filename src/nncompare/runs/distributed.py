"""One run, in one process or spread over several with DistributedDataParallel (`nncompare train`).

    nncompare train mnist1d --model cnn                                  # one process
    torchrun --nproc-per-node 2 -m nncompare train mnist1d --model cnn   # two processes, one machine
    torchrun --nnodes 2 --node-rank K --nproc-per-node 4 \\
             --rdzv-endpoint HOST:29500 -m nncompare train ...         # across machines

Under torchrun (WORLD_SIZE > 1) every process loads the same data set and builds the same model from
the same seed; DistributedDataParallel (gloo on CPU, NCCL on GPUs) averages the gradients, so every
process holds the same weights after every step. Each epoch shuffles the training split with the
run's seed, exactly as the single-process loop does, and global batch k (the same examples as the
single-process batch k) is split across the processes: process r takes its positions r, r + N, ...
(DistributedSampler's interleaving). Each process scales its loss by its share of the batch, so the
averaged gradient is the gradient of the whole batch's mean loss: the same effective batch size gives
the same steps as one process, up to floating-point summation order. Only the examples differ per
process; dropout masks and batch-norm statistics are per process, so models with those follow the
single-process curve in distribution only (batch norm is not synchronised).

Validation, early stopping and the test are computed on every process from identical weights; process
0's decision is broadcast so all stop together, and process 0 alone writes the run (the same four
files as a comparison's runs; config.json records the world size).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from ..errors import UserError
from ..train.epochs import Supervised, run_epochs
from ..train.steps import batches, optimizer_step


def world_size() -> int:
    """Processes in this run: torchrun's WORLD_SIZE, 1 when started directly."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise UserError(f"WORLD_SIZE is '{os.environ.get('WORLD_SIZE')}', not a whole number; start several processes with torchrun") from None


def train_run(data: str, model: str, seed: int = 0, config=None, model_args: dict | None = None, data_options: dict | None = None, store=None, out=None, on_epoch=None) -> dict:
    """Train and store one run; under torchrun with DistributedDataParallel. Returns
    {"run_dir", "metrics", "rank", "world_size"} (process 0 holds the metrics; the others None).

    `out`: the run folder to write (nothing indexed); default: a new comparison of this one run in
    `store` (as `nncompare compare` makes), which `nncompare runs` and `nncompare report` read.
    """
    from ..models import get_model_info
    from ..train import TrainConfig

    config = (config or TrainConfig()).validate()
    for option in ("augment", "refit"):
        if getattr(config, option):
            raise UserError(f"one run (train_run, 'nncompare train') does not take `{option}=True`; a comparison does (compare, 'nncompare compare'), with `models='{model}'` and `{option}=True`")
    if config.labels is not None:
        raise UserError("one run (train_run, 'nncompare train') has no semi-supervised mode; a comparison has (compare, 'nncompare compare'), with `labels=N`")
    if config.validation == "none":
        raise UserError(f"one run (train_run, 'nncompare train') does not take `validation='none'`; a comparison does (compare, 'nncompare compare'), with `models='{model}'` and `validation='none'`")
    if config.validation == "auto":  # one process or several give the same run: the sharded loop early-stops on the split
        config = replace(config, validation="split")
    get_model_info(model)  # an unknown name fails before anything starts
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed must be a whole number >= 0, got {seed!r}")
    if world_size() > 1:
        return _train_distributed(data, model, seed, config, dict(model_args or {}), dict(data_options or {}), store, out, on_epoch)
    return _train_single(data, model, seed, config, dict(model_args or {}), dict(data_options or {}), store, out, on_epoch)


def _comparison_spec(data, data_options, dataset, model, seed, config, model_args, world: int, threads) -> dict:
    from .runner import config_for_model, resolved_model_args

    train_fields = {k: v for k, v in config.to_dict().items() if k != "seed"}
    return {
        "dataset": data,
        "data_options": data_options,
        "dataset_meta": dataset.meta.to_dict(),
        "sizes": dataset.sizes(),
        "models": [model],
        "seeds": [seed],
        "train": train_fields,
        "learning_rates": {model: config_for_model(config, model).lr},
        "model_args": {model: resolved_model_args(model, model_args)},
        "params_target": None,
        "tuning": {},
        "workers": 1,
        "threads_per_worker": threads,
        "distributed": {"world_size": world},
    }


def _check_out(out) -> None:
    """`out` must name a new (or empty) folder: a run is never written over another."""
    if out is not None:
        run_dir = Path(out)
        if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise UserError(f"'{out}' exists and is not an empty folder; give `out` a new folder")


def _run_folder(store, out, data, data_options, dataset, model, seed, config, model_args, world, threads):
    """(the run folder, the Store and comparison folder to index it in, or None with --out)."""
    from ..store import Store

    if out is not None:
        _check_out(out)
        return Path(out), None, None
    st = Store(store)
    folder = st.new_comparison(data, [model], 1, _comparison_spec(data, data_options, dataset, model, seed, config, model_args, world, threads))
    return folder / f"{model}-seed{seed}", st, folder


def _finish(st, folder, run_dir: Path, model: str, seed: int, metrics: dict, lr: float) -> None:
    from ..results import aggregate

    if st is None:
        return
    st.index_run(folder, run_dir, model, seed, metrics, metrics.get("status", "done"))
    rows = aggregate([metrics], [model], {model: lr})
    st.finish_comparison(folder, {"rows": rows, "best": model, "separation": None, "wall_seconds": metrics.get("train_seconds"), "status": "done"})


def _train_single(data, model, seed, config, model_args, data_options, store, out, on_epoch) -> dict:
    from ..data import load_dataset
    from .runner import RunSpec, config_for_model, execute

    dataset = load_dataset(data, **data_options)
    from ..models import check_takes

    check_takes(model, dataset.meta)  # a model that cannot read this kind of data fails before anything is stored
    run_dir, st, folder = _run_folder(store, out, data, data_options, dataset, model, seed, config, model_args, 1, None)
    spec = RunSpec(dataset=data, model=model, seed=seed, train={k: v for k, v in config.to_dict().items() if k != "seed"}, model_args=model_args, data_options=data_options, run_dir=str(run_dir))
    metrics = execute(spec, on_epoch=on_epoch)
    _finish(st, folder, run_dir, model, seed, metrics, config_for_model(config, model).lr)
    return {"run_dir": run_dir, "metrics": metrics, "rank": 0, "world_size": 1}


def _train_distributed(data, model_name, seed, config, model_args, data_options, store, out, on_epoch) -> dict:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from ..data import load_dataset
    from ..models import count_parameters, create_model
    from ..store import write_run
    from ..train.steps import resolve_device
    from ..utils import set_seed
    from .runner import RunSpec, config_for_model, run_config

    _check_out(out)  # in every process, before process 0 writes anything
    cuda = config.device.startswith("cuda")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(f"cuda:{local_rank}" if cuda else config.device)
    if cuda:
        torch.cuda.set_device(device)
    started_here = not dist.is_initialized()
    if started_here:
        dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    # a 1-channel Conv2d's weight gradient has other strides than DDP's bucket: harmless, said every step
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    try:
        dataset = load_dataset(data, **data_options)  # every process: the same data, the same split
        config = replace(config_for_model(replace(config, seed=seed), model_name), device=str(device)).validate()
        set_seed(seed)  # the same initial weights in every process (DDP also broadcasts process 0's)
        net = create_model(model_name, dataset.meta, **model_args).to(device)
        ddp = DistributedDataParallel(net, device_ids=[device.index] if cuda else None)

        # process 0 chooses the folder and tells the others, so a --store comparison is made once
        chosen = [None]
        if rank == 0:
            run_dir, st, folder = _run_folder(store, out, data, data_options, dataset, model_name, seed, config, model_args, world, torch.get_num_threads())
            chosen = [str(run_dir)]
        dist.broadcast_object_list(chosen, src=0)
        run_dir = Path(chosen[0])

        trained = run_epochs(Sharded(ddp, net, dataset, config, rank, world), on_epoch if rank == 0 else None)
        history, metrics = trained.history, trained.metrics  # metrics: None off process 0
        result_metrics = None
        if rank == 0:
            metrics.update(model=model_name, seed=seed, params=count_parameters(net), status="diverged" if metrics["stop_reason"] == "diverged" else "done", finished=time.strftime("%Y-%m-%d %H:%M:%S"), world_size=world)
            spec = RunSpec(dataset=data, model=model_name, seed=seed, train={}, model_args=model_args, data_options=data_options, run_dir=str(run_dir), threads=torch.get_num_threads())
            run_cfg = run_config(spec, dataset.meta, replace(config, device="cuda" if cuda else config.device), net)
            run_cfg["distributed"] = {"world_size": world, "backend": dist.get_backend(), "per_process_batch": math.ceil(config.batch_size / world)}
            write_run(run_dir, run_cfg, metrics, history, net)
            _finish(st, folder, run_dir, model_name, seed, metrics, config.lr)
            result_metrics = metrics
        dist.barrier()
        return {"run_dir": run_dir, "metrics": result_metrics, "rank": rank, "world_size": world}
    finally:
        if started_here:
            dist.destroy_process_group()


STOP_CODES = {0: None, 1: "early_stopping", 2: "max_seconds", 3: "diverged", 4: "stalled"}


class Sharded(Supervised):
    """`fit`'s supervised strategy (train/epochs.py: the same budget, schedule, clipping, early stopping,
    divergence check) with every global batch shared out over the processes: the training totals are
    summed over them, and process 0 decides when to stop and tests the model."""

    def __init__(self, ddp, net, dataset, config, rank: int, world: int):
        super().__init__(net, dataset, config)
        self.ddp, self.rank, self.world = ddp, rank, world
        self.measures = rank == 0

    def train_epoch(self, epoch, deadline) -> dict:
        import torch.distributed as dist

        n, x, y, lengths, device = self.n, self.x, self.y, self.lengths, self.x.device
        self.ddp.train()
        order = torch.randperm(n, generator=self.shuffle).to(device)  # the same order in every process, as in fit()
        totals = torch.zeros(2, dtype=torch.float64, device=device)  # summed loss, right predictions (this process)
        skipped = 0  # every process sees the same all-reduced gradient, so all skip the same steps
        for batch in batches(order, self.batch_size):  # global batches: the single-process loop's
            mine = batch[self.rank :: self.world]  # this process's share
            if len(mine) == 0:  # a short last batch: take part in the gradient exchange with weight 0
                idx, weight = batch[:1], 0.0
            else:
                idx, weight = mine, len(mine) / len(batch) * self.world  # DDP averages over processes: this makes it the batch mean
            xb, lb = x[idx], None if lengths is None else lengths[idx]
            out = self.ddp(xb) if lb is None else self.ddp(xb, lb)
            loss = self.objective.loss(out, y[idx])
            skipped += not optimizer_step(self.model, self.optimizer, self.scheduler, self.config, loss * weight)  # clips the averaged gradients: as in one process
            if weight:
                totals[0] += loss.detach().double() * len(mine)
                totals[1] += self.objective.correct(out.detach(), y[idx]).double()
        dist.all_reduce(totals)
        return self.training_columns(totals[0].item() / n, totals[1].item(), n, skipped)

    def agree(self, reason):
        import torch.distributed as dist

        code = torch.tensor([next(k for k, v in STOP_CODES.items() if v == reason)], device=self.x.device)
        dist.broadcast(code, src=0)  # process 0 decides (its clock decides max_seconds), everyone follows
        return STOP_CODES[int(code.item())]
