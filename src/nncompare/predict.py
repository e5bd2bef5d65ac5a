"""Predictions of a trained model on new inputs: arrays in a notebook, files on the command line.

`StoredRun.predict` / `predict_proba` (from `nncompare.load_run`) and `nncompare predict RUN INPUT`
call the functions here. Inputs are checked against the shape the model was trained on, and a
mismatch is a `UserError` that names both shapes.

What a file holds is read as the data loaders read it (`data/files.py`):
- `.npz` with an array `X` (and optionally `y`, the true labels): series (N, L) or (N, L, C), images
  (N, C, H, W) or (N, H, W) for one channel;
- `.csv` / `.tsv`: one series per row, L values, or a label and L values (`label_column`, default the
  first column when the row has one cell more than the series has steps); the identifier and dropped
  columns of the run's own CSV are set aside by name, and the identifier names the prediction;
  for a run on a CSV in long layout: one row per time step, grouped and ordered by the run's identifier
  and time columns (data/longform.py);
- for a run on a table: a `.csv` with the training file's feature columns (by header name, in any
  order; extra columns ignored), encoded as in training: missing cells and unseen categories are fine;
- a file of the UCR/UEA archive (`.ts`, `.arff`, the text format; data/archive.py), its labels when it has them;
- a folder of images (flat, or one subfolder per class, whose name is then the true label) or one
  image file: resized to the training size, grey or RGB as the run was trained, pixels scaled to [0, 1].

The values go through the same per-example preprocessing as the run's training data where the loader
applies one: series from the user's CSV/NPZ files and univariate UCR series are z-normalised per
series and channel unless the run was trained with `normalize=False`. Anything else is taken as given:
a `.npz` for a run on a built-in data set holds inputs as that data set's loader returns them.

Series have the run's number of steps. A run trained on series of varying length (UCR/UEA sets such
as JapaneseVowels, long-layout CSVs, the archive's files) also takes shorter ones from long-layout
CSVs and archive files: they are zero-padded at the end and their lengths passed to the model, as in
training (`StoredRun.predict(x, lengths)` for arrays)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .data.inputs import read_named_inputs
from .errors import UserError
from .models.inference import predictions, probabilities


def predictions_csv(run, x: np.ndarray, names: list[str], labels: list[str] | None, name_header: str = "input", lengths=None) -> tuple[str, float | None]:
    """CSV text (a row per input: its name, [its label,] the prediction and, for classification, the
    probability of each class) and the accuracy when the true labels are known (else None).
    `lengths`: the real steps of zero-padded series of varying length."""
    meta = run.meta
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    accuracy = None
    if meta.task == "regress":
        values = predictions(run.model, meta, x, lengths).reshape(len(x), -1)
        columns = ["predicted"] if values.shape[1] == 1 else [f"predicted_{j}" for j in range(values.shape[1])]
        writer.writerow([name_header, *(["label"] if labels else []), *columns])
        for i, name in enumerate(names):
            writer.writerow([name, *([labels[i]] if labels else []), *(f"{v:.6g}" for v in values[i])])
        return buf.getvalue(), None
    probs = probabilities(run.model, meta, x, lengths)  # (N, K)
    class_names = list(meta.class_names) if len(meta.class_names) == meta.n_classes else [str(k) for k in range(meta.n_classes)]
    predicted = [class_names[k] for k in probs.argmax(1)]
    writer.writerow([name_header, *(["label"] if labels else []), "predicted", *(f"p_{c}" for c in class_names)])
    for i, name in enumerate(names):
        writer.writerow([name, *([labels[i]] if labels else []), predicted[i], *(f"{p:.6f}" for p in probs[i])])
    if labels:
        accuracy = float(np.mean([a == b for a, b in zip(predicted, labels)]))
    return buf.getvalue(), accuracy


def predict_file(run_dir, input_path, out=None, label_column=None) -> dict:
    """`nncompare predict`: read `input_path`, predict with the run in `run_dir`, write the CSV to
    `out` (default: predictions.csv in the current folder). Returns where, how many and the accuracy."""
    from .store import load_run
    from .utils import atomic_write_text

    run = load_run(run_dir)
    x, names, labels, name_header, lengths = read_named_inputs(input_path, run, label_column)
    text, accuracy = predictions_csv(run, x, names, labels, name_header, lengths)
    out = Path(out) if out is not None else Path("predictions.csv")
    if out.is_dir():
        raise UserError(f"'{out}' is a folder; give `out` a file name such as {out / 'predictions.csv'}")
    atomic_write_text(out, text)
    return {"out": out, "n": len(x), "accuracy": accuracy, "task": run.meta.task}
