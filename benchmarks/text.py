"""Text: bits per character of every model after the same wall-time budget, beside the unigram and
bigram baselines of the training block.

    python benchmarks/text.py [--seconds 60] [--data text|text:FILE|FILE.txt] [--models mlp,cnn,...]
    python benchmarks/text.py --lstm-5min            # char-rnn's 2-layer LSTM of 128 units, 5 minutes
    python benchmarks/text.py --smoke                # seconds: the MLP and the GRU, 1 s each

The built-in corpus (`text`) is the Python standard library's own source, read in a fixed order, so
the figures repeat on any machine with the same Python version. Each model learns to predict the next
character as `nncompare compare` trains it (train/streams.py): the recurrent models carry their state
across chunks of 128 characters (truncated BPTT), the CNN, TCN and MLP see a fixed context (receptive
field, window). Every run gets the same wall-clock budget (`--seconds`) and nothing else stops it;
the weights with the best validation loss are tested. Held-out text is the last 5% of the corpus,
read as one stream.

Baselines, both from the training block only: the unigram (character frequencies, add-one) and the
bigram (the previous character; counts smoothed towards the unigram with a prior chosen on the
validation block). A model below the bigram uses more than one character of context.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import nncompare
from nncompare.data import load_dataset
from nncompare.data.text import bigram_bits_per_char
from nncompare.errors import UserError, run_main
from nncompare.models import shared_overrides
from nncompare.train import TrainConfig
from nncompare.train.streams import flat

MODELS = ["mlp", "cnn", "tcn", "rnn", "lstm", "gru"]
UNLIMITED = 1_000_000  # epochs and patience: the time budget is the only thing that ends a run
# for orientation only (another corpus): nanoGPT's README, shakespeare_char on a laptop CPU
ORIENTATION = "nanoGPT's small char model: 1.88 nats = 2.71 bits/char (val, tiny-shakespeare) after ~3 min on a laptop CPU"
HEADER = f"{'model':6} {'params':>9} {'context':>22} {'test bits/char':>15} {'vs bigram':>10} {'epochs':>7} {'train s':>8}"


def baselines(dataset) -> dict:
    """Unigram and bigram bits per character on the test block, both from the training block."""
    x, y = (t.numpy() for t in flat(dataset.train))
    train_ids = np.concatenate([x, y[-1:]])  # the training block's text
    v = dataset.meta.n_classes
    val, test = (tuple(t.numpy() for t in flat(s)) for s in (dataset.val, dataset.test))
    bigram, prior = bigram_bits_per_char(train_ids, val, test, v)
    return {"unigram": dataset.meta.baseline["expected"], "bigram": bigram, "bigram_prior": prior}


def target_lines(rows: dict, bigram: float) -> list[str]:
    """The issue's targets, each met or missed, with the numbers it was judged on."""
    lines = []
    gated, plain = [m for m in ("lstm", "gru") if m in rows], [m for m in ("rnn", "mlp") if m in rows]
    if gated and plain:
        met = all(rows[g] < rows[p] for g in gated for p in plain)
        nums = ", ".join(f"{m} {rows[m]:.3f}" for m in gated + plain)
        lines.append(f"target: LSTM and GRU below the vanilla RNN and the MLP window: {'met' if met else 'missed'} ({nums})")
    below = [m for m in rows if rows[m] < bigram]
    lines.append(f"target: every model below the bigram ({bigram:.3f}): {'met' if len(below) == len(rows) else 'missed'} ({len(below)}/{len(rows)})")
    return lines


def run_one_by_one(data: str, models: list[str], config: TrainConfig, model_args: dict, store: str, threads: int) -> tuple[list[dict], Path]:
    """Each model's seed-0 run in this process with `threads` torch threads, stored under `store`;
    rows shaped as compare's. (compare gives a lone run every core: on a loaded machine the threads of
    one small recurrent step then wait on each other, see README.)"""
    from nncompare.models import get_model_info
    from nncompare.runs.runner import RunSpec, execute

    folder = Path(store) / time.strftime("%Y%m%d-%H%M%S-bench")
    rows = []
    for m in models:
        spec = RunSpec(dataset=data, model=m, seed=0, train=config.to_dict(), model_args=model_args.get(m, {}), run_dir=str(folder / f"{m}-seed0"), threads=threads)
        metrics = execute(spec)
        done = metrics["status"] == "done"
        rows.append({"model": m, "family": get_model_info(m).family, "params": metrics["params"], "context": metrics.get("context"), "n_done": int(done),
                     "score_mean": metrics["score"], "epochs": metrics["epochs"], "train_seconds": metrics["train_seconds"]})
    return rows, folder


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="text", help="text (built in), text:FILE or a .txt path")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--seconds", type=float, default=60.0, help="wall-clock training budget per model (default: 60)")
    p.add_argument("--width", type=int, default=None, help="hidden units / channels for every model (default: each model's own)")
    p.add_argument("--layers", type=int, default=None, help="layers for every model (default: each model's own)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate for every model (default: each model's own)")
    p.add_argument("--lstm-5min", action="store_true", help="only the LSTM, char-rnn's default size (2 layers of 128), for 300 s")
    p.add_argument("--workers", type=int, default=None, help="parallel runs (default: one per core)")
    p.add_argument("--threads", type=int, default=None, help="run the models one after another in this process, each with this many torch threads (default: compare's plan, see README)")
    p.add_argument("--prompt", default="", help="prompt of the sample written by the best model")
    p.add_argument("--store", default=None, help="store folder (default: a temporary one)")
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: the MLP and the GRU, 1 s each, one after another in this process, 60-character samples")
    args = p.parse_args()
    sample_chars = 300
    if args.smoke:
        args.models, args.seconds, args.lstm_5min, args.workers, sample_chars = "mlp,gru", 1.0, False, 1, 60
    if args.lstm_5min:
        args.models, args.seconds = "lstm", 300.0
        args.width, args.layers = args.width or 128, args.layers or 2
    if not args.seconds > 0:
        raise UserError(f"--seconds must be a positive number of seconds, got {args.seconds}")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    store = args.store or tempfile.mkdtemp(prefix="nncompare-bench-")

    dataset = load_dataset(args.data)
    meta, base = dataset.meta, baselines(dataset)
    model_args = {m: shared_overrides(m, width=args.width, layers=args.layers)[0] for m in models}
    config = TrainConfig(lr=args.lr, max_seconds=args.seconds, max_epochs=UNLIMITED, patience=UNLIMITED)
    start = time.perf_counter()
    if args.threads:
        rows, folder = run_one_by_one(args.data, models, config, model_args, store, args.threads)
        plan = f"1 run at a time x {args.threads} thread(s)"
    else:
        result = nncompare.compare(args.data, models=models, seeds=1, config=config, model_args={m: a for m, a in model_args.items() if a}, store=store, workers=args.workers)
        rows, folder = result.rows, result.folder
        plan = f"{result.config['workers']} run(s) at a time x {result.config['threads_per_worker']} thread(s)"
    wall = time.perf_counter() - start

    print(f"{meta.name}: {meta.description}")
    print(f"budget {args.seconds:g} s per model, seed 0, {plan}; wall {wall:.0f} s")
    print(HEADER)
    scores = {}
    for r in rows:
        if r["n_done"] == 0:
            print(f"{r['model']:6} failed")
            continue
        scores[r["model"]] = r["score_mean"]
        print(
            f"{r['model']:6} {r['params']:>9,} {str(r['context']):>22} {r['score_mean']:>15.3f} {r['score_mean'] - base['bigram']:>+10.3f} "
            f"{r['epochs']:>7.0f} {r['train_seconds']:>8.0f}"
        )
    print(f"{'unigram':6} {'':>9} {0:>22} {base['unigram']:>15.3f} {base['unigram'] - base['bigram']:>+10.3f}   (training block's character frequencies)")
    print(f"{'bigram':6} {'':>9} {1:>22} {base['bigram']:>15.3f} {0:>+10.3f}   (training block's pairs, prior {base['bigram_prior']:g} chosen on validation)")
    for line in target_lines(scores, base["bigram"]):
        print(line)
    print(f"orientation (other corpus): {ORIENTATION}")
    if scores:
        best = min(scores, key=scores.get)
        run = nncompare.load_run(folder / f"{best}-seed0")
        for temperature in (0.5, 1.0):
            sample = nncompare.generate(run, prompt=args.prompt, chars=sample_chars, temperature=temperature, seed=0)
            print(f"--- sample from {best}, temperature {temperature:g}, seed 0, prompt {args.prompt!r} ---")
            print(args.prompt + sample)
    print(f"--- stored in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
