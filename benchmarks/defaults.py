"""Candidate defaults for series, side by side on the bundled UCR/UEA sets: the evidence behind the CNN's
batch norm for series and the small-training-set protocol (train/protocol.py), beside MiniRocket.

    python benchmarks/defaults.py [--device cpu|cuda] [--workers N] [--seeds 2] [--first-seed 0] [--per-seed] [--configs a,b] [--sets A,B]
    python benchmarks/defaults.py --smoke   # seconds: ItalyPowerDemand, two configurations, 1 seed of 1 epoch

Every configuration pins what it compares (norm, validation; without a split, every step trained:
`fitted_loss=0`, benchmarks/fitted.py measures the stop), so the table keeps its meaning when the
defaults change. Runs go to worker processes (one thread each); nothing is stored.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from nncompare.errors import run_main

SETS = ["GunPoint", "ItalyPowerDemand", "ArrowHead", "JapaneseVowels", "OSULeaf", "PickupGestureWiimoteZ", "BasicMotions", "Covid3Month_disc"]
FCN = {"channels": [128, 256, 128], "kernel_size": [8, 5, 3], "norm": "batch"}  # Wang et al. 2017
# without a split every run trains all its steps, as before the fitted stop (2026-12-07), so the tables measured before it keep their meaning
SPLIT, NONE = {"validation": "split"}, {"validation": "none", "fitted_loss": 0}
STEP = {"segment": 1}  # recurrent models: one step at a time, as before segments (2026-12-07)
NO_HC = {"handcrafted": False}  # the CNN without the fixed filters it takes on whole series since 2026-12-07
CONFIGS = {  # name: (model, model arguments, training options)
    "cnn": ("cnn", {"norm": "none", **NO_HC}, SPLIT),
    "cnn-bn": ("cnn", {"norm": "batch", **NO_HC}, SPLIT),
    "cnn-bn-none": ("cnn", {"norm": "batch", **NO_HC}, NONE),
    "cnn-fcn": ("cnn", {**FCN, **NO_HC}, {"lr": 1e-3, **SPLIT}),
    "cnn-fcn-none": ("cnn", {**FCN, **NO_HC}, {"lr": 1e-3, **NONE}),
    "mlp": ("mlp", {}, SPLIT),
    "mlp-none": ("mlp", {}, NONE),
    "tcn": ("tcn", {}, SPLIT),
    "tcn-none": ("tcn", {}, NONE),
    "gru": ("gru", STEP, SPLIT),
    "gru-none": ("gru", STEP, NONE),
    "lstm": ("lstm", STEP, SPLIT),
    "lstm-none": ("lstm", STEP, NONE),
    # dl-4-tsc's batch size for small sets, min(training series / 10, 16) (Fawaz et al. 2019), at the
    # default step minimum (1000), and at 4000 steps
    "cnn-bn-none-b": ("cnn", {"norm": "batch", **NO_HC}, {**NONE, "batch": "dl4tsc"}),
    "cnn-bn-none-b4k": ("cnn", {"norm": "batch", **NO_HC}, {**NONE, "batch": "dl4tsc", "steps": 4000}),
    "cnn-fcn-none-b": ("cnn", {**FCN, **NO_HC}, {"lr": 1e-3, **NONE, "batch": "dl4tsc"}),
    "mlp-none-b": ("mlp", {}, {**NONE, "batch": "dl4tsc"}),
    "tcn-none-b": ("tcn", {}, {**NONE, "batch": "dl4tsc"}),
    "gru-none-b": ("gru", STEP, {**NONE, "batch": "dl4tsc"}),
    "lstm-none-b": ("lstm", STEP, {**NONE, "batch": "dl4tsc"}),
    # the series augmentation (train/augment.py) under the small-set protocol
    "cnn-bn-none-aug": ("cnn", {"norm": "batch", **NO_HC}, {**NONE, "augment": True}),
    "mlp-none-aug": ("mlp", {}, {**NONE, "augment": True}),
    # the learning rate and the width of the series CNN, one at a time
    "cnn-bn-none-lr3": ("cnn", {"norm": "batch", **NO_HC}, {**NONE, "lr": 1e-3}),
    "cnn-64bn-none": ("cnn", {"norm": "batch", "channels": 64, "multiscale": False, **NO_HC}, NONE),
    # batch norm in the TCN's blocks and the MLP's layers, now that the kept weights get their own statistics
    "tcn-bn-none": ("tcn", {"norm": "batch"}, NONE),
    "tcn-mean-none": ("tcn", {"readout": "mean"}, NONE),
    "tcn-bn-mean-none": ("tcn", {"norm": "batch", "readout": "mean"}, NONE),
    "gru-mean-none": ("gru", {"readout": "mean", **STEP}, NONE),
    "lstm-mean-none": ("lstm", {"readout": "mean", **STEP}, NONE),
    "rnn-none": ("rnn", STEP, NONE),
    "rnn-mean-none": ("rnn", {"readout": "mean", **STEP}, NONE),
    "mlp-bn-none": ("mlp", {"norm": "batch"}, NONE),
    # the LSTM's forget-gate bias at initialisation: torch's (random around 0) and 1 (Jozefowicz et al. 2015)
    "lstm-fb0-none": ("lstm", {"forget_bias": None, **STEP}, NONE),
    "lstm-fb1-none": ("lstm", {"forget_bias": 1.0, **STEP}, NONE),
    # the series CNN's first kernel at 1/25 and 1/10 of the series, with and without a longest of 40 steps
    # (cnn-bn-none builds the default: 1/100 until 2026-12-06, then 1/25 and at most 40, as cnn-k25c-none,
    # which gives its kernels by hand and so keeps one size per layer; since 2026-12-07 the default's first
    # layer puts its kernel sizes side by side, as cnn-ms-none's prototype)
    "cnn-k25-none": ("cnn", {"norm": "batch", "kernel_share": 25, **NO_HC}, NONE),
    "cnn-k10-none": ("cnn", {"norm": "batch", "kernel_share": 10, **NO_HC}, NONE),
    "cnn-k25c-none": ("cnn", {"norm": "batch", "kernel_share": 25, "kernel_longest": 40, **NO_HC}, NONE),
    "cnn-k10c-none": ("cnn", {"norm": "batch", "kernel_share": 10, "kernel_longest": 40, **NO_HC}, NONE),
    # an Inception-style first layer (Ismail Fawaz et al. 2020): the default's kernel sizes side by side
    # in the first layer (10 and 5 steps on ArrowHead), its 32 channels split between them: the prototype
    # built here (multiscale_cnn), measured before the CNN took it as its default (multiscale, 2026-12-07;
    # the same network, its first layer's weights drawn after the others', so other numbers per seed)
    "cnn-ms-none": ("cnn", {"prototype": True}, NONE),
    # on a tiny training set, ways of narrowing the seeds' spread (2026-12-07): dropout on the pooled
    # features in front of the head (the MLP's 0.5, Wang et al. 2017), and twice the optimizer steps
    # (2000, dl-4-tsc's epochs for FCN)
    "cnn-bn-none-drop": ("cnn", {"norm": "batch", "dropout": 0.5, **NO_HC}, NONE),
    "cnn-bn-none-2k": ("cnn", {"norm": "batch", **NO_HC}, {**NONE, "steps": 2000}),
    # fixed filters for rises, falls and peaks beside the first layer (Ismail-Fawaz et al. 2022; the
    # default on whole series since 2026-12-07: the same network as cnn-bn-none builds now)
    "cnn-hc-none": ("cnn", {"norm": "batch", "handcrafted": True}, NONE),
    # the default CNN (whatever its rules build for the set) at Adam's rate 0.003 instead of its 0.01
    "cnn-default-none": ("cnn", {}, NONE),
    "cnn-default-none-lr3e3": ("cnn", {}, {**NONE, "lr": 3e-3}),
    # half the optimizer steps (500 instead of the default's 1000 at least): what a shorter training costs
    "cnn-default-none-500": ("cnn", {}, {**NONE, "steps": 500}),
    # the TCN reading a long series in segments of consecutive steps side by side, as the recurrent models
    # do (at most 64 or 128 steps; the prototype segmented_tcn, tried and not taken, 2026-12-07)
    "tcn-whole-none": ("tcn", {"prototype_segments": math.inf}, NONE),  # the same TCN built the same way, p = 1
    "tcn-whole-none-500": ("tcn", {"prototype_segments": math.inf}, {**NONE, "steps": 500}),  # and at 500 steps
    "tcn-seg64-none": ("tcn", {"prototype_segments": 64}, NONE),
    "tcn-seg128-none": ("tcn", {"prototype_segments": 128}, NONE),
    # every family as a comparison trains it without a split (the fitted stop included), and the CNN and
    # the TCN with a long series read as it is instead of averaged down to at most 500 steps (taken 2026-12-07)
    **{f"{m}-auto": (m, {}, {"validation": "none"}) for m in ("mlp", "cnn", "tcn", "rnn", "lstm", "gru")},
    **{f"{m}-whole": (m, {"downsample": 1}, {"validation": "none"}) for m in ("cnn", "tcn")},
    # every family exactly as a comparison trains it, the protocol decided by the data too (a split on
    # MNIST-1D's 4000 series, none under 1000)
    **{f"{m}-compare": (m, {}, {}) for m in ("mlp", "cnn", "tcn", "rnn", "lstm", "gru")},
    # the same under one-cycle rates (up from rate/25 over the first 30% of the steps, then down): a
    # warm-up of Adam's first steps, where the LSTM stalls on some MNIST-1D seeds (2026-12-07)
    **{f"{m}-compare-onecycle": (m, {}, {"schedule": "onecycle"}) for m in ("rnn", "lstm", "gru")},
    # recurrent models reading a long series in segments, so that the recurrence runs at most N steps
    # (segment = ceil(length / N); models/rnn.py default_segment)
    **{f"{cell}-s{n}-none": (cell, {"recurrent_steps": n}, NONE) for cell in ("rnn", "lstm", "gru") for n in (128, 64, 32)},
}
HEADER = f"{'configuration':14} "  # the table's first line begins so; the sets follow


def source(set_name: str) -> str:
    """A bundled UCR/UEA set's name as `ucr:NAME`; a path (an archive file, a set nobody tuned for) or a
    built-in data set's name (mnist1d) as it is."""
    from nncompare.data.registry import list_sources

    return set_name if "/" in set_name or set_name in {s.name for s in list_sources()} else f"ucr:{set_name}"


def label(set_name: str) -> str:
    """The column title: a bundled set's name, or an archive file's set name."""
    return set_name.rsplit("/", 1)[-1].split("_TRAIN")[0].split("_TEST")[0]


def multiscale_cnn(meta, **model_args):
    """The default series CNN whose first layer is several convolutions side by side, one per distinct
    kernel size of the default (`default_kernels`), with the layer's channels split between them and
    their outputs concatenated; the later layers as the default: the prototype of the CNN's
    `multiscale` first layer, measured in docs/benchmarks.md ("A multi-scale first layer")."""
    from torch import nn

    from nncompare.models import create_model
    from nncompare.models.cnn import SideBySide

    net = create_model("cnn", meta, multiscale=False, handcrafted=False, **model_args)
    first = net.features[0]
    net.features[0] = nn.Sequential(SideBySide(first[0].in_channels, first[0].out_channels, sorted(set(net.kernel_sizes), reverse=True)), *list(first)[1:])
    net.paddings[0] = (0, 0)  # each branch pads its own input
    return net


def segmented_tcn(meta, steps: int):
    """The default TCN reading a whole series of L steps in segments of p = ceil(L / steps) consecutive
    steps, their values side by side (p x C inputs a step), as the recurrent models read long series
    (models/rnn.py default_segment); its levels cover the ceil(L / p) segments. The prototype measured
    in docs/benchmarks.md ("The TCN in segments"), not the product's TCN."""
    import copy

    import torch
    import torch.nn.functional as F
    from torch import nn

    from nncompare.models import create_model

    length, channels = meta.input_shape
    p = max(1, math.ceil(length / steps))
    shorter = copy.copy(meta)
    shorter.input_shape = (math.ceil(length / p), p * channels)

    class Segmented(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = create_model("tcn", shorter)

        def forward(self, x, lengths=None):
            b, t, c = x.shape
            x = F.pad(x, (0, 0, 0, (-t) % p)).reshape(b, -1, p * c)
            if lengths is None:
                return self.inner(x)
            return self.inner(x, torch.div(lengths + p - 1, p, rounding_mode="floor"))

    return Segmented() if p > 1 else create_model("tcn", meta)


def one_run(set_name: str, config_name: str, seed: int, device: str, max_epochs) -> tuple[str, str, float]:
    import math
    from dataclasses import replace

    import torch

    from nncompare.api import train
    from nncompare.data import load_dataset
    from nncompare.models.cnn import default_kernels
    from nncompare.runs.runner import config_for_model
    from nncompare.train import TrainConfig, fit
    from nncompare.utils import set_seed

    torch.set_num_threads(1)
    model, model_args, options = CONFIGS[config_name]
    model_args, options = dict(model_args), dict(options)
    dataset = load_dataset(source(set_name))
    meta, sizes = dataset.meta, dataset.sizes()
    n = sizes["train"] + sizes["val"]  # the training series under the small-set protocol
    if options.pop("batch", None) == "dl4tsc":
        options["batch_size"] = max(1, min(n // 10, 16))
    steps = options.pop("steps", None)
    if steps is not None and max_epochs is None:  # epochs for this many optimizer steps at the run's batch size
        max_epochs = math.ceil(steps / math.ceil(n / options.get("batch_size", TrainConfig().batch_size)))
    if "kernel_share" in model_args:
        model_args["kernel_size"] = default_kernels(meta, 3, share=model_args.pop("kernel_share"), longest=model_args.pop("kernel_longest", None))
    if "recurrent_steps" in model_args:
        model_args["segment"] = max(1, math.ceil(meta.input_shape[0] / model_args.pop("recurrent_steps")))
    start = time.perf_counter()
    config = TrainConfig(device=device, max_epochs=max_epochs, **options)
    segments = model_args.pop("prototype_segments", None)
    if not model_args.pop("prototype", False) and segments is None:
        _, result = train(source(set_name), model, seed=seed, config=config, **model_args)
    else:  # as nncompare.train, with the network built here
        config = config_for_model(replace(config, seed=seed), model).validate()
        set_seed(seed)
        result = fit(segmented_tcn(meta, segments) if segments else multiscale_cnn(meta, **model_args), dataset, config)
    return set_name, config_name, result.metrics["score"], time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(SETS), help="bundled UCR/UEA names or paths of archive files (NAME_TRAIN.ts beside NAME_TEST.ts), comma-separated")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=0, help="the seeds run are FIRST_SEED .. FIRST_SEED + SEEDS - 1 (default 0)")
    p.add_argument("--per-seed", action="store_true", help="also print every seed's score, with the mean and standard deviation")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: ItalyPowerDemand, cnn and cnn-bn-none, 1 seed of 1 epoch")
    args = p.parse_args()
    max_epochs = None
    if args.smoke:
        args.sets, args.configs, args.seeds, args.workers, max_epochs = "ItalyPowerDemand", "cnn,cnn-bn-none", 1, 1, 1
    sets, configs = args.sets.split(","), args.configs.split(",")
    for c in configs:
        if c not in CONFIGS:
            p.error(f"unknown configuration '{c}'; valid: {', '.join(CONFIGS)}")
    from nncompare.data import load_dataset
    from nncompare.reference import fit_reference

    start = time.perf_counter()
    scores: dict[tuple[str, str], list[float]] = {}
    times: dict[tuple[str, str], list[float]] = {}
    jobs = [(s, c, seed, args.device, max_epochs) for seed in range(args.first_seed, args.first_seed + args.seeds) for c in configs for s in sets]
    with ProcessPoolExecutor(args.workers) as pool:
        for s, c, score, seconds in pool.map(one_run, *zip(*jobs)):
            scores.setdefault((c, s), []).append(score)
            times.setdefault((c, s), []).append(seconds)
    reference = {s: fit_reference(load_dataset(source(s)))["score_mean"] for s in sets}
    print(f"test accuracy %, mean over {args.seeds} seed(s), device {args.device}; {time.perf_counter() - start:.0f} s")
    print(HEADER + " ".join(f"{label(s)[:8]:>8}" for s in sets) + f" {'mean':>6}")
    print(f"{'minirocket':14} " + " ".join(f"{100 * reference[s]:>8.1f}" for s in sets) + f" {100 * statistics.fmean(reference.values()):>6.1f}")
    for c in configs:
        means = [statistics.fmean(scores[(c, s)]) for s in sets]
        print(f"{c:14} " + " ".join(f"{100 * m:>8.1f}" for m in means) + f" {100 * statistics.fmean(means):>6.1f}")
    if args.per_seed:
        print(f"test accuracy % per seed ({args.first_seed}..{args.first_seed + args.seeds - 1})")
        for c in configs:
            for s in sets:
                runs = [100 * x for x in scores[(c, s)]]
                spread = f" ± {statistics.stdev(runs):.1f}" if len(runs) > 1 else ""
                print(f"{c:14} {label(s):22} " + " ".join(f"{x:5.1f}" for x in runs) + f"   mean {statistics.fmean(runs):.1f}{spread}")
    print("seconds per run, mean over seeds")
    for c in configs:
        print(f"{c:14} " + " ".join(f"{statistics.fmean(times[(c, s)]):>8.1f}" for s in sets))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
