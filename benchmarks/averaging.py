"""Averaged weights against the kept ones under the small-set protocol. Each family's default model
trains as the default comparison trains it (no validation split, the fitted stop); beside the weights
it keeps (the lowest training loss), a running average of its weights after every epoch is tested at
the run's end, with batch-norm statistics recomputed as for the kept weights. The average is
polynomial-decay averaging (Shamir and Zhang 2013): epoch t's weights enter with the share
(eta + 1) / (t + eta), so the average covers roughly the last 1/(eta + 1) of the epochs so far, however
long the run turns out to be (torch.optim.swa_utils.AveragedModel with that avg_fn).

    python benchmarks/averaging.py [--sets A,PATH_TRAIN.txt] [--models cnn,mlp] [--seeds 3] [--workers 2]
    python benchmarks/averaging.py --smoke   # seconds: ItalyPowerDemand, the MLP, 1 seed of 2 epochs

Prints per model and set the mean test accuracy % of the kept weights and of each average, then per
model the mean change over the sets, the worst set's and the best set's. Runs go to worker processes
(one thread each); nothing is stored. Measured and not taken (docs/benchmarks.md, "Averaged weights").
"""

from __future__ import annotations

import copy
import statistics
import sys

from defaults import label, source  # bundled names and archive paths, as defaults.py reads them
from fitted import run_all  # the command line and the runs in worker processes, as fitted.py
from nncompare.errors import run_main

MODELS = ["cnn", "mlp", "tcn", "gru"]  # the families' best models on the eight sets
ETAS = [4, 9, 19]
COLUMNS = ["kept"] + [f"eta {eta}" for eta in ETAS]
HEADER = f"{'model':5} {'set':22} "  # the table's first line begins so; the columns follow


def one_run(set_name: str, model_name: str, seed: int, max_epochs: int | None) -> tuple[str, str, dict]:
    """{column: test accuracy} for one default run."""

    import torch
    from torch.optim.swa_utils import AveragedModel

    from nncompare.data import load_dataset
    from nncompare.models import create_model
    from nncompare.runs.runner import config_for_model
    from nncompare.train import TrainConfig, fit
    from nncompare.train.steps import all_labelled, batch_norm_statistics, evaluate
    from nncompare.utils import set_seed

    torch.set_num_threads(1)
    dataset = load_dataset(source(set_name))
    x, _, lengths = all_labelled(dataset, "cpu")
    config = config_for_model(TrainConfig(validation="none", max_epochs=max_epochs, seed=seed), model_name).validate()
    set_seed(seed)  # as nncompare.train builds and trains a model
    model = create_model(model_name, dataset.meta)

    def polynomial(eta):
        return lambda average, current, n: average + (current - average) * (eta + 1) / (n + eta + 1)

    averages = {f"eta {eta}": AveragedModel(model, avg_fn=polynomial(eta), use_buffers=False) for eta in ETAS}
    result = fit(model, dataset, config, on_epoch=lambda row: [a.update_parameters(model) for a in averages.values()])
    found = {"kept": result.metrics["score"]}
    for column, average in averages.items():
        tested = copy.deepcopy(average.module)
        batch_norm_statistics(tested, x, lengths, min(config.batch_size, len(x)))
        found[column] = evaluate(tested, dataset.test.x, dataset.test.y, dataset.test.lengths)[1]
    return set_name, model_name, found


def main() -> int:
    args, sets, models, found, seconds = run_all(__doc__.splitlines()[0], one_run, MODELS)
    print(f"test accuracy %, mean over {args.seeds} seed(s); {seconds:.0f} s")
    print(HEADER + " ".join(f"{c:>7}" for c in COLUMNS))
    changes: dict[tuple[str, str], list[float]] = {}
    for m in models:
        for s in sets:
            mean = {c: statistics.fmean(100 * r[c] for r in found[(m, s)]) for c in COLUMNS}
            for c in COLUMNS[1:]:
                changes.setdefault((m, c), []).append(mean[c] - mean["kept"])
            print(f"{m:5} {label(s):22} " + " ".join(f"{mean[c]:7.1f}" for c in COLUMNS))
    print("per model over the sets, against the kept weights: the mean change, the worst set's, the best set's")
    for m in models:
        print(f"{m:5} " + "   ".join(f"{c}: {statistics.fmean(changes[(m, c)]):+.2f} {min(changes[(m, c)]):+.1f} {max(changes[(m, c)]):+.1f}" for c in COLUMNS[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
