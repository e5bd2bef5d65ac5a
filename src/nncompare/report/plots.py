"""Plots as pure functions of result data: each returns PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io

import numpy as np

COLORS = {"mlp": "#7f7f7f", "cnn": "#1f77b4", "tcn": "#17becf", "rnn": "#d62728", "lstm": "#ff7f0e", "gru": "#2ca02c"}
DPI = 96


def color(model: str) -> str:
    return COLORS.get(model, "#9467bd")


def _figure(width=6.4, height=3.6, ncols=1, nrows=1, **kw):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kw)
    return fig, axes


def _png(fig, tight: bool = True) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    if tight:  # a mosaic places everything itself
        fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def learning_curves(histories: dict[str, list[list[dict]]], metric: str, label: str) -> bytes:
    """All models on one axis: the mean over seeds per epoch as a line, the seeds' range as a band.
    `histories`: model -> one history (list of epoch rows) per seed."""
    fig, axes = _figure()
    ax = axes[0, 0]
    for model, runs in histories.items():
        curves = [[row[metric] for row in h if row.get(metric) is not None and row.get("phase") in (None, "", "train")] for h in runs]
        curves = [c for c in curves if c]
        if not curves:
            continue
        n = max(len(c) for c in curves)
        grid = np.full((len(curves), n), np.nan)
        for k, c in enumerate(curves):
            grid[k, : len(c)] = c
        epochs = np.arange(1, n + 1)
        with np.errstate(all="ignore"):
            ax.plot(epochs, np.nanmean(grid, 0), color=color(model), label=model, lw=1.8)
            if len(curves) > 1:
                ax.fill_between(epochs, np.nanmin(grid, 0), np.nanmax(grid, 0), color=color(model), alpha=0.2, lw=0)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    if metric.endswith("loss"):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, ncol=3, fontsize=8)
    return _png(fig)


def confusion_matrices(matrices: dict[str, np.ndarray], class_names: list[str]) -> bytes:
    """Row-normalised confusion matrices side by side (rows: true class, columns: predicted)."""
    n = len(matrices)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    k = next(iter(matrices.values())).shape[0]
    fig, axes = _figure(3.2 * cols, 3.0 * rows, ncols=cols, nrows=rows)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    names = [str(c) for c in class_names] if class_names and len(class_names) == k and k <= 12 else None
    for ax, (model, m) in zip(axes.ravel(), matrices.items()):
        ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
        ax.set_title(model, fontsize=10)
        if k <= 12:
            for i in range(k):
                for j in range(k):
                    if m[i, j] >= 0.005:
                        ax.text(j, i, f"{100 * m[i, j]:.0f}", ha="center", va="center", fontsize=6, color="white" if m[i, j] > 0.5 else "black")
        ticks = np.arange(k) if k <= 12 else []
        ax.set_xticks(ticks, names if names else [str(t) for t in ticks], fontsize=6, rotation=90 if names else 0)
        ax.set_yticks(ticks, names if names else [str(t) for t in ticks], fontsize=6)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
    return _png(fig)


def reliability(calibrations: dict[str, dict]) -> bytes:
    """Reliability diagram: accuracy against confidence per bin, all models; the diagonal is perfect."""
    fig, axes = _figure(4.8, 4.0)
    ax = axes[0, 0]
    ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--", label="perfectly calibrated")
    for model, cal in calibrations.items():
        ok = cal["count"] > 0
        ax.plot(np.asarray(cal["confidence"])[ok], np.asarray(cal["accuracy"])[ok], marker="o", ms=3, color=color(model), label=f"{model} (ECE {cal['ece']:.3f})")
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=7)
    return _png(fig)


def predicted_against_true(points: dict[str, tuple[np.ndarray, np.ndarray]], unit: str) -> bytes:
    """Regression: each model's predictions (y axis) against the true values (x axis) of the test
    split, one panel per model, the diagonal where they agree. `points`: model -> (true, predicted)."""
    n = len(points)
    fig, axes = _figure(min(3.0 * n, 12.0), 3.2, ncols=n, sharex=True, sharey=True)
    every = np.concatenate([np.concatenate(tp) for tp in points.values()])
    lo, hi = float(every.min()), float(every.max())
    for ax, (model, (true, pred)) in zip(axes[0], points.items()):
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--")
        ax.scatter(true, pred, s=6, alpha=0.6, color=color(model))
        ax.set_title(model, fontsize=9)
        ax.set_xlabel(f"true {unit}", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"predicted {unit}", fontsize=8)
    return _png(fig)


def _mosaic(n: int, cols: int, cell_w: float, cell_h: float, title_h: float, top: float = 0.0):
    """A figure for a grid of n small panels drawn in ONE axes whose units are inches, y pointing down
    (matplotlib spends some 35 ms creating each Axes and as long laying it out: a gallery of 8 panels
    took 0.3-1.8 s as subplots). Returns (fig, ax, boxes): each box (x, y, w, h) is a panel's area
    below a title strip of `title_h` inches; `top` inches are left above the grid for a heading."""
    rows = (n + cols - 1) // cols
    fig, axes = _figure(cols * cell_w, rows * cell_h + top)
    fig.subplots_adjust(0, 0, 1, 1)
    ax = axes[0, 0]
    ax.set_axis_off()
    ax.set_autoscale_on(False)
    ax.set_xlim(0, cols * cell_w)
    ax.set_ylim(rows * cell_h + top, 0)
    pad = 0.1
    boxes = [(c * cell_w + pad, top + r * cell_h + title_h, cell_w - 2 * pad, cell_h - title_h - pad) for k in range(n) for r, c in [divmod(k, cols)]]
    return fig, ax, boxes


def _panel_title(ax, box, title: str, fontsize: float) -> None:
    x, y, w, _ = box
    ax.text(x + w / 2, y - 0.03, title, ha="center", va="bottom", fontsize=fontsize)


def _panel_image(ax, box, img: np.ndarray, keep_aspect: bool = True, **kw) -> None:
    """An image in a panel: centred at its own aspect ratio, or filling the panel."""
    x, y, w, h = box
    if keep_aspect:
        scale = min(w / img.shape[1], h / img.shape[0])
        iw, ih = img.shape[1] * scale, img.shape[0] * scale
        x, y, w, h = x + (w - iw) / 2, y + (h - ih) / 2, iw, ih
    ax.imshow(img, extent=(x, x + w, y + h, y), aspect="auto", interpolation="nearest", **kw)


def _panel_lines(ax, box, values: np.ndarray, lw: float) -> None:
    """Lines in a framed panel, scaled to fill it: one per column of a (L, C) array (or a (L,) one),
    coloured as matplotlib's default cycle colours successive lines."""
    from matplotlib.patches import Rectangle

    x, y, w, h = box
    v = np.asarray(values, dtype=float).reshape(len(values), -1)
    lo, hi = np.nanmin(v), np.nanmax(v)
    span = (hi - lo) or 1.0
    xs = x + w * (0.03 + 0.94 * np.arange(len(v)) / max(len(v) - 1, 1))
    for j in range(v.shape[1]):
        ax.plot(xs, y + h - 0.05 * h - 0.9 * h * (v[:, j] - lo) / span, lw=lw, color=f"C{j % 10}")
    ax.add_patch(Rectangle((x, y), w, h, fill=False, lw=0.8, edgecolor="black"))


def example_gallery(kind: str, xs: list[np.ndarray], titles: list[str], lengths: list[int | None] | None = None) -> bytes:
    """Inputs with their labels: images as a grid, series as small line plots."""
    fig, ax, boxes = _mosaic(len(xs), min(len(xs), 4), 2.2, 2.0 if kind == "image" else 1.5, title_h=0.32)
    for k, (box, x, title) in enumerate(zip(boxes, xs, titles)):
        _draw_input(ax, box, kind, x, None if lengths is None else lengths[k])
        _panel_title(ax, box, title, 7)
    return _png(fig, tight=False)


def _draw_input(ax, box, kind: str, x: np.ndarray, length: int | None = None) -> None:
    if kind == "image":
        c = x.shape[0]
        img = x[0] if c != 3 else np.moveaxis(x, 0, -1)
        if c == 3:
            img = (img - img.min()) / max(float(img.max() - img.min()), 1e-8)
        _panel_image(ax, box, img, cmap="gray" if c != 3 else None)
    else:
        _panel_lines(ax, box, x if length is None else x[:length], lw=0.9)


def heatmap(values: np.ndarray, xlabel: str, ylabel: str, title: str = "", cmap: str = "RdBu_r", width: float = 6.4, height: float = 2.6) -> bytes:
    """A (rows, columns) array as an image, symmetric colour scale around zero."""
    fig, axes = _figure(width, height)
    ax = axes[0, 0]
    lim = float(np.abs(values).max()) or 1.0
    im = ax.imshow(values, aspect="auto", cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    return _png(fig)


def filters(weights: np.ndarray, kind: str, title: str, limit: int = 16) -> bytes:
    """First-layer weights: conv filters (C_out, C_in, k[, k]) or MLP units in input space (units, *input)."""
    w = weights[:limit]
    fig, ax, boxes = _mosaic(len(w), min(len(w), 8), 1.1, 1.0, title_h=0.16, top=0.4)
    lim = float(np.abs(w).max()) or 1.0
    for k, (box, f) in enumerate(zip(boxes, w)):
        if f.ndim == 3 and kind == "image":  # (C, h, w): the first channel
            _panel_image(ax, box, f[0], cmap="RdBu_r", vmin=-lim, vmax=lim)
        elif f.ndim == 2 and kind != "image":  # (L, C) MLP unit or (C_in, k) conv filter: one line per channel
            _panel_lines(ax, box, f.T if f.shape[0] < f.shape[1] and f.shape[0] <= 8 else f, lw=0.8)
        else:
            _panel_image(ax, box, np.atleast_2d(f.reshape(f.shape[0], -1) if f.ndim > 1 else f), keep_aspect=False, cmap="RdBu_r", vmin=-lim, vmax=lim)
        _panel_title(ax, box, f"{k}", 6)
    fig.text(0.5, 1 - 0.12 / fig.get_figheight(), title, ha="center", va="top", fontsize=9)
    return _png(fig, tight=False)


def span_profiles(profiles: dict[str, np.ndarray], per_step: bool) -> bytes:
    """Share of the input gradient per position (sequences), all models on one axis."""
    fig, axes = _figure()
    ax = axes[0, 0]
    for model, p in profiles.items():
        x = np.arange(len(p))
        ax.plot(x, p, color=color(model), label=model, lw=1.4)
    ax.set_xlabel("steps back from the predicted position" if per_step else "input position (the output comes after the last)")
    ax.set_ylabel("share of |d output / d input|")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, ncol=3, fontsize=8)
    return _png(fig)


def span_maps(profiles: dict[str, np.ndarray]) -> bytes:
    """Share of the input gradient per pixel (images), one map per model."""
    n = len(profiles)
    cols = min(n, 6)
    rows = (n + cols - 1) // cols
    fig, axes = _figure(1.9 * cols, 2.0 * rows, ncols=cols, nrows=rows)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (model, p) in zip(axes.ravel(), profiles.items()):
        ax.imshow(p, cmap="magma")
        ax.set_title(model, fontsize=9)
    return _png(fig)


def order_bars(normal: dict[str, float], permuted: dict[str, float], label: str) -> bytes:
    """Accuracy with the positions in order and shuffled, per model."""
    models = list(normal)
    fig, axes = _figure(5.6, 3.2)
    ax = axes[0, 0]
    x = np.arange(len(models))
    ax.bar(x - 0.2, [normal[m] for m in models], 0.4, label="in order", color=[color(m) for m in models])
    ax.bar(x + 0.2, [permuted.get(m, np.nan) for m in models], 0.4, label="positions shuffled", color=[color(m) for m in models], alpha=0.45, hatch="//")
    ax.set_xticks(x, models)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)
