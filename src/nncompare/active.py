"""Active learning: which unlabelled inputs should a person label next?

`label_next(run, pool)` scores every input of an unlabelled pool with a trained run's model and
writes the `k` highest-scoring ones to a CSV (one row each, with an empty `label` column) and an HTML
page that shows them (images as a grid, series as small plots) with a label field per input.
`add_labels(filled_csv, pool, out)` folds the labels a person filled in back into training data in a
form `compare` reads. `nncompare label-next` and `nncompare label-add` call these.

Acquisition scores, higher = label first:
- entropy: H[p(y|x)] = -sum_k p_k log p_k (nats) of the model's prediction (Shannon 1948; "max
  entropy" in Gal et al. 2017);
- margin: 1 - (p_1 - p_2), one minus the gap between the two most probable classes (Scheffer et al.
  2001): a small gap between the top two classes ranks first;
- bald: the mutual information between the prediction and the weights, estimated from T MC-dropout
  passes (Houlsby et al. 2011; Gal, Islam & Ghahramani 2017):
  I[y; w | x] = H[mean_t p_t] - mean_t H[p_t]: high where the passes disagree with each other
  confidently, not where every pass is unsure; needs a model with dropout;
- random: a seeded uniform draw, the baseline every strategy has to beat.

entropy and margin use the deterministic prediction (dropout off), the same probabilities
`nncompare predict` writes; bald alone samples dropout masks.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import UserError, did_you_mean

STRATEGIES = ("entropy", "margin", "bald", "random")
CSV_NAME = "label_next.csv"
HTML_NAME = "label_next.html"


# -- scores: pure functions of probabilities ------------------------------------------------------
def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """Predictive entropy (nats) of each row of (N, K) probabilities -> (N,)."""
    p = np.asarray(probs, dtype=np.float64)
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(-1)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """1 - (p_1 - p_2) per row of (N, K) probabilities, p_1 >= p_2 the two largest -> (N,) in [0, 1]."""
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[-1] < 2:
        return np.ones(len(p))
    top2 = np.sort(p, axis=-1)[:, -2:]  # (N, 2): second largest, largest
    return 1.0 - (top2[:, 1] - top2[:, 0])


def bald_scores(mc_probs: np.ndarray) -> np.ndarray:
    """BALD from (T, N, K) probabilities of T MC-dropout passes -> (N,) nats:
    H[mean over passes] - mean over passes of H[p_t] (Gal, Islam & Ghahramani 2017, eq. 3-4)."""
    p = np.asarray(mc_probs, dtype=np.float64)
    entropy_of_mean = entropy_scores(p.mean(0))  # H[E_w p(y|x,w)]
    mean_entropy = np.mean([entropy_scores(pt) for pt in p], axis=0)  # E_w H[p(y|x,w)]
    return np.clip(entropy_of_mean - mean_entropy, 0.0, None)  # >= 0 (Jensen); clip rounding below 0


def random_scores(n: int, seed: int = 0) -> np.ndarray:
    """A uniform draw in [0, 1) per input from a generator seeded by `seed` -> (N,)."""
    return np.random.default_rng(seed).random(n)


def ranking(scores: np.ndarray) -> np.ndarray:
    """Indices from the highest score to the lowest; equal scores keep the pool's order."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


# -- scores of a model on inputs ------------------------------------------------------------------
def check_strategy(strategy: str, passes: int = 20) -> None:
    if strategy not in STRATEGIES:
        raise UserError(f"unknown strategy '{strategy}'; {did_you_mean(str(strategy), STRATEGIES)}")
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 2:
        raise UserError(f"passes must be a whole number of at least 2 MC-dropout passes (BALD compares them), got {passes!r}")


def acquisition_scores(model: torch.nn.Module, x: torch.Tensor, strategy: str, probs: np.ndarray | None = None, passes: int = 20, seed: int = 0, model_name: str | None = None, lengths: torch.Tensor | None = None) -> np.ndarray:
    """The `strategy`'s score of each input in `x` (a batch in the model's layout) -> (N,).

    `probs`: the model's deterministic (N, K) probabilities when already computed (entropy, margin);
    `model_name`: the registry name, for the advice when bald finds no dropout; `lengths`: the real
    steps of zero-padded series of varying length."""
    from .analysis.predict import mc_dropout_proba, predict_proba

    check_strategy(strategy, passes)
    if strategy == "random":
        return random_scores(len(x), seed)
    if strategy == "bald":
        require_dropout(model, model_name)
        return bald_scores(mc_dropout_proba(model, x, lengths, passes=passes, seed=seed))
    if probs is None:
        probs = predict_proba(model, x, lengths)
    return entropy_scores(probs) if strategy == "entropy" else margin_scores(probs)


def require_dropout(model: torch.nn.Module, model_name: str | None = None) -> None:
    """A UserError naming the fix unless the model has a dropout layer for BALD to sample: dropout
    where the model (its registry name `model_name`) has that option, else the models that do."""
    from .analysis.predict import has_dropout
    from .models import list_models

    if has_dropout(model):
        return
    with_option = [m.name for m in list_models() if "dropout" in m.hyperparameters()]
    if model_name in with_option:
        fix = f"train it with `dropout` set ('nncompare train DATA --model {model_name} --dropout 0.2')"
    else:
        which = f"model '{model_name}' has no dropout option" if model_name else "train a model that has a dropout option"
        fix = f"{which}; train one that has ({', '.join(with_option)}) with `dropout` set, such as `dropout=0.2`"
    raise UserError(f"strategy 'bald' samples the model's dropout masks, and this model has no dropout; {fix}, or choose `strategy='entropy'` or `strategy='margin'`")


# -- label-next on a stored run ---------------------------------------------------------------------
@dataclass
class LabelNext:
    """What `label_next` chose and wrote: `rows` (the k inputs, best first), the files, the pool size."""

    strategy: str
    pool_size: int
    rows: list[dict] = field(default_factory=list)  # name, score, predicted, probabilities {class: p}
    csv_path: Path | None = None
    html_path: Path | None = None

    def table(self, limit: int = 10) -> str:
        """The first `limit` rows as text: rank, name, score, predicted class and its probability."""
        lines = [f"{'rank':>4}  {'input':24} {self.strategy + ' score':>14}  predicted"]
        for i, r in enumerate(self.rows[:limit], 1):
            p = r["probabilities"][r["predicted"]]
            lines.append(f"{i:>4}  {r['name'][:24]:24} {r['score']:>14.4f}  {r['predicted']} ({100 * p:.0f}%)")
        if len(self.rows) > limit:
            lines.append(f"   … {len(self.rows) - limit} more in {self.csv_path or 'the CSV'}")
        return "\n".join(lines)


def label_next(run, pool, k: int = 50, strategy: str = "entropy", out="label-next", seed: int = 0, passes: int = 20) -> LabelNext:
    """Rank the inputs in `pool` (a CSV/NPZ of series, an image file or a folder of images, read as
    `nncompare predict` reads them) by how much labelling them should help the model of `run` (a run
    folder or a `load_run` result), and write the `k` best to `out`/label_next.csv and
    `out`/label_next.html (`out=None`: write nothing). Returns what was chosen.

    >>> chosen = nncompare.label_next("nncompare-runs/<comparison>/cnn-seed0", "pool/", k=20, strategy="margin")
    """
    from .data.inputs import read_named_inputs
    from .models.inference import padded_input, probabilities
    from .store import load_run

    check_strategy(strategy, passes)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UserError(f"k must be a whole number of at least 1 (how many inputs to label next), got {k!r}")
    run = load_run(run) if isinstance(run, (str, Path)) else run
    meta = run.meta
    if meta.task != "classify":
        raise UserError(f"label-next ranks inputs by class probabilities; this run's task is '{meta.task}' ({'values' if meta.task == 'regress' else 'a label per position'}), which it does not cover")
    if strategy == "bald":  # before the pool is read: a model without dropout cannot do it at all
        require_dropout(run.model, run.config.get("model"))
    x, names, _, _, lengths = read_named_inputs(str(pool), run)
    tensor, lengths = padded_input(x, meta, lengths)
    probs = probabilities(run.model, meta, tensor, lengths)  # (N, K), dropout off
    scores = acquisition_scores(run.model, tensor, strategy, probs=probs, passes=passes, seed=seed, model_name=run.config.get("model"), lengths=lengths)
    chosen = ranking(scores)[:k]
    classes = class_names(meta)
    result = LabelNext(strategy=strategy, pool_size=len(x))
    for i in chosen:
        result.rows.append({"name": names[i], "index": int(i), "score": float(scores[i]), "predicted": classes[int(probs[i].argmax())], "probabilities": dict(zip(classes, map(float, probs[i])))})
    if out is not None:
        from .utils import atomic_write_text

        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise UserError(f"'{out}' is a file; give `out` a folder (it gets {CSV_NAME} and {HTML_NAME})")
        folder.mkdir(parents=True, exist_ok=True)
        result.csv_path, result.html_path = folder / CSV_NAME, folder / HTML_NAME
        atomic_write_text(result.csv_path, to_csv(result.rows, classes))
        atomic_write_text(result.html_path, to_html(result, [x[i] for i in chosen], meta, classes, run_path=str(getattr(run, "path", "")), pool=str(pool)))
    return result


def class_names(meta) -> list[str]:
    return [str(c) for c in meta.class_names] if len(meta.class_names) == meta.n_classes else [str(c) for c in range(meta.n_classes)]


def to_csv(rows: list[dict], classes: list[str]) -> str:
    """name, score, predicted, p_<class> per class, label (empty, for a person to fill in)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "score", "predicted", *(f"p_{c}" for c in classes), "label"])
    for r in rows:
        w.writerow([r["name"], f"{r['score']:.6g}", r["predicted"], *(f"{r['probabilities'][c]:.6f}" for c in classes), ""])
    return buf.getvalue()


# -- the page -------------------------------------------------------------------------------------
CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:12px 16px;color:#1d1d1f}
h1{font-size:1.45em;margin:.3em 0}.note{color:#555;font-size:.9em}code{background:#f5f5f7;padding:0 .25em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(172px,1fr));gap:10px;margin:1em 0}
.item{border:1px solid #ddd;border-radius:6px;padding:6px 8px;background:#fff}
.item img,.item svg{display:block;width:100%;height:auto;image-rendering:pixelated;background:#fafafa}
.name{font-weight:600;font-size:.85em;overflow-wrap:anywhere}.meta{font-size:.78em;color:#555}
.item input{width:100%;box-sizing:border-box;margin-top:4px;font-size:1em;padding:3px 5px}
button{font-size:1em;padding:.35em .9em;margin:.2em 0}
"""

# The page saves what was typed as the CSV `label-add` reads: the rows of label_next.csv with the label
# column filled. A script is the only way a static page can hand typed text back as a file.
SCRIPT = """
const rows = JSON.parse(document.getElementById('rows').textContent);
function csvCell(v){v=String(v);return /[",\\n]/.test(v)?'"'+v.replace(/"/g,'""')+'"':v;}
function download(){
  const lines=[rows.header.map(csvCell).join(',')];
  rows.rows.forEach((r,i)=>{const v=document.getElementById('label'+i).value.trim();lines.push(r.concat([v]).map(csvCell).join(','));});
  const a=document.createElement('a');
  a.href=URL.createObjectURL(new Blob([lines.join('\\n')+'\\n'],{type:'text/csv'}));
  a.download='label_next.csv';a.click();
}
function count(){let n=0;rows.rows.forEach((r,i)=>{if(document.getElementById('label'+i).value.trim())n++;});
  document.getElementById('count').textContent=n+' of '+rows.rows.length+' labelled';}
"""


def _image_tag(x: np.ndarray, alt: str) -> str:
    """A (C, H, W) image in [0, 1] (values outside are stretched) as an inline PNG."""
    from PIL import Image

    img = np.asarray(x, dtype=np.float64)
    img = img[0] if img.shape[0] != 3 else np.moveaxis(img, 0, -1)  # (H, W) grey or (H, W, 3)
    lo, hi = float(img.min()), float(img.max())
    if lo < 0 or hi > 1:
        img = (img - lo) / max(hi - lo, 1e-8)
    pixels = Image.fromarray(np.round(255 * img).astype(np.uint8))
    scale = max(1, 128 // max(pixels.size))  # small images (8x8 digits) drawn large with sharp pixels
    pixels = pixels.resize((pixels.size[0] * scale, pixels.size[1] * scale), Image.NEAREST)
    buf = io.BytesIO()
    pixels.save(buf, format="PNG")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _series_tag(x: np.ndarray, alt: str, width: int = 160, height: int = 70) -> str:
    """A (L, C) series as an inline SVG line plot, one line per channel, scaled to fill the box."""
    v = np.asarray(x, dtype=np.float64).reshape(len(x), -1)  # (L, C)
    lo, hi = float(v.min()), float(v.max())
    span = (hi - lo) or 1.0
    xs = 2 + (width - 4) * np.arange(len(v)) / max(len(v) - 1, 1)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    lines = ""
    for j in range(v.shape[1]):
        ys = height - 3 - (height - 6) * (v[:, j] - lo) / span
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys))
        lines += f'<polyline fill="none" stroke="{colors[j % len(colors)]}" stroke-width="1.3" points="{points}"/>'
    return f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(alt)}"><rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none" stroke="#bbb"/>{lines}</svg>'


def shown_name(name: str, pool: str) -> str:
    """An input's name as a person finds it: `line 12` of a CSV, `X[3]` of a .npz, an image's file name."""
    suffix = Path(pool).suffix.lower()
    if suffix in (".csv", ".tsv") and name.isdigit():
        return f"line {name}"
    if suffix == ".npz" and name.isdigit():
        return f"X[{name}]"
    return name


def to_html(result: LabelNext, xs: list[np.ndarray], meta, classes: list[str], run_path: str = "", pool: str = "") -> str:
    """The page: the chosen inputs in ranked order, each drawn, with its score, the model's guess and a
    blank label field; a button saves the filled-in labels as label_next.csv."""
    header = ["name", "score", "predicted", *(f"p_{c}" for c in classes), "label"]
    data = {"header": header, "rows": [[r["name"], f"{r['score']:.6g}", r["predicted"], *(f"{r['probabilities'][c]:.6f}" for c in classes)] for r in result.rows]}
    items = []
    for i, (r, x) in enumerate(zip(result.rows, xs)):
        alt = f"input {shown_name(r['name'], pool)}"
        if meta.kind == "image":
            picture = _image_tag(x, alt)
        elif meta.kind == "series":
            picture = _series_tag(x, alt)
        else:
            picture = ""  # text: the name is all there is to show
        guess = r["probabilities"][r["predicted"]]
        items.append(
            f'<div class="item">{picture}<div class="name">#{i + 1} {html.escape(shown_name(r["name"], pool))}</div>'
            f'<div class="meta">score {r["score"]:.3f} · model says {html.escape(r["predicted"])} ({100 * guess:.0f}%)</div>'
            f'<input id="label{i}" list="classes" placeholder="label" aria-label="label for {html.escape(r["name"])}" oninput="count()"></div>'
        )
    options = "".join(f'<option value="{html.escape(c)}">' for c in classes)
    what = {"entropy": "predictive entropy", "margin": "1 − (p₁ − p₂), the smallest margin first", "bald": "BALD (mutual information over MC-dropout passes)", "random": "a seeded random draw"}[result.strategy]
    payload = json.dumps(data).replace("</", "<\\/")  # keeps a name holding "</script>" inside the JSON
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>nncompare: label next</title><style>{CSS}</style></head><body>
<h1>Label these {len(result.rows)} inputs next</h1>
<p class="note">The {len(result.rows)} of {result.pool_size} inputs in <code>{html.escape(pool)}</code> whose labels should help the model of
<code>{html.escape(run_path)}</code> most, ranked by {html.escape(what)}. Type each input's class (one of {html.escape(", ".join(classes))}),
then save the labels and fold them back in with <code>nncompare label-add label_next.csv {html.escape(pool)} --out DATA</code> (see docs/active.md).</p>
<p><button onclick="download()">Save labels as label_next.csv</button> <span id="count" class="note">0 of {len(result.rows)} labelled</span></p>
<datalist id="classes">{options}</datalist>
<div class="grid">{"".join(items)}</div>
<script id="rows" type="application/json">{payload}</script>
<script>{SCRIPT}</script>
</body></html>
"""


# -- folding the labels back in ---------------------------------------------------------------------
def read_labelled(path) -> dict[str, str]:
    """name -> label from a label_next.csv whose `label` column a person filled in (blank rows skipped)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"no such file '{path}'; give the label_next.csv that 'nncompare label-next' wrote, with its label column filled in")
    try:
        with p.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"'{path}' is not a readable CSV ({e}); give the label_next.csv that 'nncompare label-next' wrote") from None
    if not rows or "name" not in rows[0] or "label" not in rows[0]:
        raise UserError(f"'{path}' has no 'name' and 'label' columns; give the label_next.csv that 'nncompare label-next' wrote")
    labels = {r["name"]: (r["label"] or "").strip() for r in rows}
    labels = {name: label for name, label in labels.items() if label}
    if not labels:
        raise UserError(f"'{path}' has no labels yet; fill in the label column (or use the page's save button) first")
    return labels


def add_labels(labelled_csv, pool, out) -> dict:
    """Add the inputs of `pool` that `labelled_csv` (a filled-in label_next.csv) labels to the training
    data at `out`, in the form `compare` reads:
    - a folder of images: each image copied to `out`/<label>/ (the one-subfolder-per-class layout; `out`
      may be the training folder itself; an existing file is never overwritten);
    - a .csv of series: the pool's rows with the label put first (`out` new: written with the pool's
      header, if it has one; `out` an existing CSV with the label first: the rows appended);
    - a .npz: arrays X and y (`out` an existing .npz: appended to its X and y).
    Returns {"added": n, "out": path, "kind": ...}."""
    from .data.files import IMAGE_EXTENSIONS, _expand

    labels = read_labelled(labelled_csv)
    p = _expand(str(pool))
    if not p.exists():
        raise UserError(f"no such file or folder '{pool}'; give the pool that 'nncompare label-next' ranked")
    if p.is_dir() or p.suffix.lower() in IMAGE_EXTENSIONS:
        return _add_images(labels, p, Path(out))
    if p.suffix.lower() == ".npz":
        return _add_npz(labels, p, pool, Path(out))
    if p.suffix.lower() in (".csv", ".tsv"):
        return _add_csv_rows(labels, p, pool, Path(out))
    raise UserError(f"'{pool}' is not a pool 'label-next' reads; give the .csv, .npz, image or folder of images it ranked")


def _missing(labels: dict, known, pool) -> None:
    unknown = sorted(set(labels) - set(known))
    if unknown:
        raise UserError(f"{len(unknown)} labelled name(s) are not inputs of '{pool}' (first: '{unknown[0]}'); give the pool that label-next ranked")


def _add_images(labels: dict, p: Path, out: Path) -> dict:
    base = p if p.is_dir() else p.parent
    _missing(labels, [n for n in labels if (base / n).is_file()], p)
    if out.exists() and not out.is_dir():
        raise UserError(f"'{out}' is a file; for images give `out` a folder (the labelled images go into one subfolder per class)")
    targets = {name: out / label / Path(name).name for name, label in labels.items()}
    taken = [str(t) for t in targets.values() if t.exists()]
    if taken:
        raise UserError(f"'{taken[0]}' exists already; nothing was copied (give another `out`, or rename the file)")
    if len(set(targets.values())) < len(targets):
        raise UserError("two labelled images of one class have the same file name; rename one of them in the pool")
    for name, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(base / name, target)
    return {"added": len(targets), "out": out, "kind": "image folder (one subfolder per class)"}


def _add_npz(labels: dict, p: Path, pool, out: Path) -> dict:
    with np.load(p, allow_pickle=False) as f:
        x = f["X"] if "X" in f.files else None
    if x is None:
        raise UserError(f"'{pool}' has no array X")
    _missing(labels, [str(i) for i in range(len(x))], pool)
    order = sorted(labels, key=int)
    new_x, new_y = x[[int(n) for n in order]], np.array([labels[n] for n in order])
    if out.exists():
        with np.load(out, allow_pickle=False) as f:
            if "X" not in f.files or "y" not in f.files:
                raise UserError(f"'{out}' has no arrays X and y to append to; give a new file or your training .npz")
            old_x, old_y = f["X"], f["y"]
        if old_x.shape[1:] != new_x.shape[1:]:
            raise UserError(f"'{out}' holds inputs of shape {old_x.shape[1:]}, the pool {new_x.shape[1:]}; give a new `out` file")
        new_y = np.concatenate([old_y.astype(str), new_y]) if old_y.dtype.kind in "US" else _append_numeric(old_y, new_y, out)
        new_x = np.concatenate([old_x, new_x])
    from .utils import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, X=new_x, y=new_y)
    atomic_write_bytes(out, buf.getvalue())
    return {"added": len(order), "out": out, "kind": "npz (X, y)"}


def _append_numeric(old_y: np.ndarray, new_labels: np.ndarray, out: Path) -> np.ndarray:
    try:
        new_y = new_labels.astype(old_y.dtype) if old_y.dtype.kind in "iu" else new_labels.astype(np.float64)
    except ValueError:
        raise UserError(f"'{out}' holds numeric labels but the new ones are names ({', '.join(sorted(set(new_labels))[:3])}); label with the class ids, or give a new file") from None
    return np.concatenate([old_y, new_y])


def _add_csv_rows(labels: dict, p: Path, pool, out: Path) -> dict:
    from .data.files import _drop_trailing_delimiter, _is_number, _read_rows

    rows = _drop_trailing_delimiter(_read_rows(p, str(pool)))
    has_header = any(c and not _is_number(c) for c in rows[0][1])
    header = rows[0][1] if has_header else None
    data = rows[1:] if has_header else rows
    by_name = {str(line): cells for line, cells in data}
    if header is not None and not set(labels) <= set(by_name):  # label-next named the inputs by an identifier column
        for j, name in enumerate(header):
            column = [cells[j] if len(cells) > j else "" for _, cells in data]
            if set(labels) <= set(column):
                if len(set(column)) < len(column):
                    raise UserError(
                        f"'{pool}' has several rows per input in column '{name}' (one row per time step, the long layout); label-add "
                        "appends one row per series, so put the labels into your training file's rows yourself"
                    )
                by_name = dict(zip(column, (cells for _, cells in data)))
                break
    _missing(labels, by_name, pool)
    new = [[labels[n], *by_name[n]] for n in sorted(labels, key=lambda n: int(n) if n.isdigit() else 0)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if out.exists():
        old = _drop_trailing_delimiter(_read_rows(out, str(out)))
        width = len(old[0][1])
        if width != len(new[0]):
            raise UserError(f"'{out}' rows have {width} cells, the labelled rows {len(new[0])} (a label and {len(new[0]) - 1} values); give a new `out` file")
        text = out.read_text(encoding="utf-8-sig")
        w.writerows(new)
        from .utils import atomic_write_text

        atomic_write_text(out, text + ("" if text.endswith("\n") else "\n") + buf.getvalue())
        return {"added": len(new), "out": out, "kind": "CSV rows appended (label first)"}
    if header is not None:
        w.writerow(["label", *header])
    w.writerows(new)
    from .utils import atomic_write_text

    atomic_write_text(out, buf.getvalue())
    return {"added": len(new), "out": out, "kind": "CSV (label first, then the values)"}
