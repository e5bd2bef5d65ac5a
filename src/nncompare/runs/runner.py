"""One run: load data, seed, build, train, store. Runs in the main process or in a worker process."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from .._version import __version__
from ..data import load_dataset
from ..models import count_parameters, create_model, get_model_info
from ..store import write_run
from ..train import TrainConfig, fit
from ..train.checkpoint import Checkpointer, RunInterrupted, fingerprint
from ..utils import set_seed


@dataclass
class RunSpec:
    """Everything a worker needs to repeat a run exactly; plain data so it crosses process bounds."""

    dataset: str
    model: str
    seed: int
    train: dict  # TrainConfig fields
    model_args: dict = field(default_factory=dict)
    data_options: dict = field(default_factory=dict)  # loader keywords, e.g. {"normalize": False}
    run_dir: str | None = None  # where to store it (None: not stored)
    threads: int | None = None  # torch intra-op threads for this run (None: leave as is)
    variant: str = ""  # "permuted": an order-sensitivity run (input positions shuffled, see --order)

    @property
    def label(self) -> str:
        """The model's name in progress lines and the index: "cnn", or "cnn-permuted" for a variant."""
        return f"{self.model}-{self.variant}" if self.variant else self.model


def resolved_model_args(model: str, overrides: dict) -> dict:
    """The model's hyperparameters with the user's overrides applied (what config.json records)."""
    args = get_model_info(model).hyperparameters()
    args.update(overrides)
    return args


def config_for_model(config: TrainConfig, model: str) -> TrainConfig:
    """`config` with the learning rate filled in: the user's, or the model's recommended one."""
    return replace(config, lr=config.lr if config.lr is not None else get_model_info(model).default_lr)


def run_config(spec: RunSpec, meta, config: TrainConfig, model=None) -> dict:
    """What config.json records; `model`'s `stored_args` (hyperparameters a rule resolved from the
    data, such as the CNN's kernel sizes) replace the rule's name, so the run rebuilds the same way
    after the rule changes."""
    model_args = resolved_model_args(spec.model, spec.model_args)
    model_args.update(getattr(model, "stored_args", {}))
    return {
        "dataset": spec.dataset,
        "data_options": spec.data_options,
        "dataset_meta": meta.to_dict(),
        "model": spec.model,
        "family": get_model_info(spec.model).family,
        "model_args": model_args,
        "seed": spec.seed,
        "train": config.to_dict(),  # as trained: the learning rate filled in, the seed set
        "threads": spec.threads,
        "versions": {"nncompare": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }


def execute(spec: RunSpec, on_epoch=None) -> dict:
    """Train one (model, seed) pair; store it when `spec.run_dir` is set; return its metrics.

    A stored run is checkpointed at every epoch end and, when its folder holds a checkpoint of the
    same configuration (a comparison resumed after a kill or Ctrl-C), goes on from it. A stop request
    (the first Ctrl-C) ends it after the current step with status "interrupted"; nothing final is
    written then, and the checkpoint stays for the resume."""
    if spec.threads:
        torch.set_num_threads(spec.threads)
    dataset = load_dataset(spec.dataset, **spec.data_options)
    config = config_for_model(TrainConfig(**{**spec.train, "seed": spec.seed}), spec.model).validate()
    set_seed(spec.seed)  # initial weights depend on the seed alone
    model = create_model(spec.model, dataset.meta, **spec.model_args)
    stored_config = run_config(spec, dataset.meta, config, model)
    checkpoint = None
    if spec.run_dir is not None:
        run_dir = Path(spec.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "failure.json").unlink(missing_ok=True)  # an earlier attempt's; this one decides anew
        checkpoint = Checkpointer(run_dir, fingerprint(stored_config), label=(spec.model, spec.seed))
    try:
        result = fit(model, dataset, config, on_epoch=on_epoch, checkpoint=checkpoint)
    except RunInterrupted:
        return {"model": spec.model, "seed": spec.seed, "status": "interrupted", "notes": checkpoint.notes if checkpoint else []}
    diverged = result.metrics["stop_reason"] == "diverged"
    metrics = {
        **result.metrics,
        "model": spec.model,
        "seed": spec.seed,
        "params": count_parameters(model),
        "status": "diverged" if diverged else "done",
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if diverged:
        metrics["error"] = "diverged: " + result.metrics.get("diverged", "loss not finite")
    if checkpoint is not None:
        timing = {"resumed_from_epoch": checkpoint.resumed_at}
        write_run(Path(spec.run_dir), stored_config, metrics, result.history, model, timing)
        checkpoint.clear()  # after metrics.json: a kill in between leaves a finished run plus debris
        metrics["notes"] = checkpoint.notes
    return metrics
