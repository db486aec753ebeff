"""Figures of a run: a summary, learning curves per dataset and confusion matrices per model × dataset.

matplotlib is imported inside the functions and figures are drawn on an Agg canvas without
pyplot, so importing this module is cheap and plotting needs no display. The ``*_figure``
functions return the :class:`~matplotlib.figure.Figure`; the ``write_*`` functions save them
under ``<run_dir>/plots/`` as PNG, SVG or PDF (:data:`PLOT_FORMATS`).

Every figure of a run gives a model the same colour; reference models (:func:`is_reference`)
are drawn with hollow squares and dashed lines, and a quick run says so in every title.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from seqbench.fileio import atomic_write_bytes
from seqbench.reporting.query import (
    Stat,
    dataset_info_of,
    group_note,
    group_pairs,
    group_status,
    mean_std,
    metrics_of,
    ok_pairs,
    pair_accuracy,
    pairs_of,
    seconds_per_epoch,
    stat,
)
from seqbench.reporting.tables import QUICK_TITLE, quick_note
from seqbench.results import name_part, pair_stem
from seqbench.schema.types import Epoch, PairRecord, RunResults

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOTS_DIR = "plots"
PLOT_FORMATS = ("png", "svg", "pdf")
DPI = 150
ANNOTATE_MAX_CLASSES = 30  # beyond this, cells are too small to hold their counts
LABEL_WIDTH = 40  # model names longer than this are shortened in the middle on axes and legends
LABEL_ROTATION = 45  # class names on the confusion matrix's x axis, whole
REFERENCE_PLUGINS = frozenset({"torch"})  # seqbench-torch: the PyTorch reference models
NO_VAL_LOSS = "Validation loss is not recorded by the protocol (only validation accuracy)."
CI_LEVEL = 0.95
ACCURACY_BOUNDS = (0.0, 100.0)
LOG_SPREAD = 5.0  # time axes turn logarithmic when the slowest model is this many times the fastest
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)  # df 1..10


class RunFigure(NamedTuple):
    """A run-level figure: ``name`` is its file name without suffix, ``caption`` says what it shows;
    ``figure`` is None when it could not be drawn, and ``undrawable`` says why."""

    name: str
    caption: str
    figure: Figure | None
    undrawable: str | None = None


def drawn(name: str, caption: str, draw: Callable[[], Figure]) -> RunFigure:
    """``draw()`` as a :class:`RunFigure`; one that says why, when its values are beyond what
    matplotlib can lay out (times near 1e308 overflow the axis limits), so the rest go on."""
    try:
        return RunFigure(name, caption, draw())
    except (ValueError, OverflowError) as exc:
        return RunFigure(name, caption, None, f"{type(exc).__name__}: {exc}")


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def dataset_namer(results: RunResults | None) -> Any:
    """``dataset`` → ``dataset (CIFAR-10 dev split)`` where the run's copy declares a label."""
    from seqbench.reporting.disclosure import dataset_title

    return (lambda dataset: dataset_title(dataset, [results])) if results else str


def is_reference(pair: PairRecord) -> bool:
    """Whether a pair's model is a reference implementation (from :data:`REFERENCE_PLUGINS`)."""
    return pair.get("model_plugin") in REFERENCE_PLUGINS


def pair_title(pair: PairRecord) -> str:
    return f"{pair['model']} on {pair['dataset']} · seed {pair['seed']}"


def _title(results: RunResults | None, text: str) -> str:
    """``text``, after a one-line quick-run warning where the run is quick (the full note is in
    the page and summary.md; a title stays at most two lines)."""
    note = quick_note(results) if results else None
    return f"{_short_quick(note)}\n{text}" if note else text


def _short_quick(note: str) -> str:
    """``QUICK RUN (smoke test: 2 epochs, …)``: the quick note's limits in one line."""
    limits = note[note.find("(") + 1:note.find(")")] if "(" in note else ""
    return f"{QUICK_TITLE} (smoke test{': ' + limits if limits else ''})"


def _suptitle(fig: Figure, results: RunResults | None, text: str) -> None:
    quick = bool(results and quick_note(results))
    fig.suptitle(_title(results, text), color="tab:red" if quick else "black", fontsize=11)


def model_colours(results: RunResults) -> dict[str, Any]:
    """A colour per model of the run (tab10, then tab20), by the models' names in sorted order:
    the same models get the same colours whatever the order of their runs."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    models = sorted({p["model"] for p in pairs_of(results)})
    cmap = colormaps["tab10" if len(models) <= 10 else "tab20"]
    assert isinstance(cmap, ListedColormap), "tab10 and tab20 list their colours"
    palette = cast("Sequence[tuple[float, float, float]]", cmap.colors)
    return {model: palette[i % len(palette)] for i, model in enumerate(models)}


def _label(pairs: list[PairRecord]) -> str:
    model = short_name(pairs[0]["model"])
    return f"{model} (reference)" if is_reference(pairs[0]) else model


def short_name(name: str, width: int = LABEL_WIDTH) -> str:
    """``name`` as a label: a longer one keeps its start and end around an ellipsis."""
    if len(name) <= width:
        return name
    head = (width - 1) // 2
    return f"{name[:head]}…{name[len(name) - (width - 1 - head):]}"


def _style(pairs: list[PairRecord]) -> dict[str, Any]:
    return {"marker": "s", "mfc": "white", "linestyle": "--"} if is_reference(pairs[0]) else {"marker": "o"}


def t95(n: int) -> float:
    """The two-sided 95 % quantile of Student's t with ``n - 1`` degrees of freedom (n ≥ 2)."""
    df = n - 1
    if df <= len(_T95):
        return _T95[df - 1]
    z = 1.959964  # Cornish-Fisher expansion: within 0.002 of the exact value from df 11
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def interval(s: Stat) -> tuple[float, float]:
    """The 95 % t-interval of a mean over seeds; the mean itself for one seed."""
    half = 0.0 if s.std is None else t95(s.n) * s.std / math.sqrt(s.n)
    return s.mean - half, s.mean + half


def _plain(minor: bool = False) -> Any:
    """Tick labels of a log axis as plain numbers (``20``, ``0.5``); minor ticks labelled at 2, 3
    and 5 on an axis of at most one decade, at 2 and 5 up to two, and not at all beyond, so that
    labels never run into each other."""
    from matplotlib.ticker import FuncFormatter

    formatter: Any = None

    def text(value: float, _: Any) -> str:
        mantissa = round(value / 10 ** math.floor(math.log10(value)), 6) if value > 0 else 0
        if not minor:
            return f"{value:g}"
        low, high = sorted(formatter.axis.get_view_interval()) if formatter.axis is not None else (1, 10)
        decades = math.log10(high / low) if low > 0 else math.inf
        shown = (2, 3, 5) if decades <= 1.0 else (2, 5) if decades <= 2.0 else ()
        return f"{value:g}" if mantissa in shown else ""

    formatter = FuncFormatter(text)
    return formatter


def _percent(minor: bool = False) -> Any:
    """Tick labels of a log axis of fractions as percentages (``0.1 %``)."""
    from matplotlib.ticker import FuncFormatter

    plain = _plain(minor)
    return FuncFormatter(lambda value, pos: (t + " %") if (t := plain(100 * value, pos)) else "")


# --- summary ---------------------------------------------------------------------------------


def _left_out(groups: dict[tuple[str, str], list[PairRecord]]) -> list[str]:
    """One line per model × dataset without an ok seed: ``model · dataset: status (reason)``."""
    lines = []
    for (model, dataset), pairs in groups.items():
        if not ok_pairs(pairs):
            note = group_note(pairs)
            lines.append(f"{model} · {dataset}: {group_status(pairs)}" + (f" ({note})" if note else ""))
    return lines


Bounds = tuple[float, float] | None


def _bar(s: Stat, bounds: Bounds) -> tuple[float, float]:
    """The 95 % interval of a mean, cut to ``bounds`` (accuracy cannot pass 100 %); no bar without bounds."""
    if bounds is None:
        return s.mean, s.mean
    low, high = interval(s)
    return max(low, bounds[0]), min(high, bounds[1])


def _dots(ax: Axes, rows: list[tuple[list[PairRecord], Stat, list[float]]], colours: dict[str, Any],
          fmt: str, bounds: Bounds) -> None:
    """One row per model: the seeds as faint circles, the mean as a dot with its 95 % interval
    (where ``bounds`` are given)."""
    for y, (pairs, s, seeds) in enumerate(rows):
        colour = colours[pairs[0]["model"]]
        low, high = _bar(s, bounds)
        ax.plot(seeds, [y + 0.25] * len(seeds), linestyle="none", marker="o", markersize=3.5, mfc="none",
                color=colour, alpha=0.8)
        ax.errorbar([s.mean], [y], xerr=[[s.mean - low], [high - s.mean]], capsize=4, color=colour,
                    markersize=7, linestyle="none", **{k: v for k, v in _style(pairs).items() if k != "linestyle"})
        ax.annotate(s.format(lambda x: format(x, fmt)) + f"  (n={s.n})", (s.mean, y), xytext=(0, 7),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_yticks(range(len(rows)), [_label(pairs) for pairs, _, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)


def _zoom(ax: Axes, rows: list[tuple[list[PairRecord], Stat, list[float]]], bounds: Bounds,
          log: bool = False) -> None:
    """An x range around the intervals and seeds, with room on the right for the labels."""
    values = [v for _, s, seeds in rows for v in (*_bar(s, bounds), *seeds)]
    if log:
        values = [math.log10(max(v, 1e-9)) for v in values]
    low, high = min(values), max(values)
    span = (high - low) or max(abs(high) * 0.01, 0.05)
    low, high = low - 0.25 * span, high + 0.25 * span  # room for the mean ± std label above each dot
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    ax.set_xlim(*((10**low, 10**high) if log else (low, high)))


def _spread(rows: list[tuple[list[PairRecord], Stat, list[float]]]) -> float:
    """The ratio of the largest seed value to the smallest (1 when there is none)."""
    values = [v for _, _, seeds in rows for v in seeds if v > 0]
    return max(values) / min(values) if values else 1.0


def _log_x(ax: Axes) -> None:
    """A log x scale with plain-number tick labels."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(_plain())
    ax.xaxis.set_minor_formatter(_plain(minor=True))


def _rows(pairs_by_model: list[list[PairRecord]],
          value: Callable[[PairRecord], float | None]) -> list[tuple[list[PairRecord], Stat, list[float]]]:
    rows = []
    for pairs in pairs_by_model:
        seeds = [v for v in (value(p) for p in ok_pairs(pairs)) if v is not None]
        s = stat(seeds)
        if s is not None:
            rows.append((pairs, s, seeds))
    return rows


def summary_figure(results: RunResults) -> Figure:
    """Test accuracy and seconds per epoch per model, one column of panels per dataset.

    Dots are means over seeds with 95 % t-intervals, ticks the seeds, on axes zoomed to the data;
    model × dataset pairs without an ok seed are left out and listed below the figure.
    """
    groups = group_pairs(pairs_of(results))
    if not groups:
        raise ValueError("no pairs in the results")
    colours = model_colours(results)
    shown_name = dataset_namer(results)
    datasets = list(dict.fromkeys(d for _, d in groups))
    shown = [d for d in datasets if any(ok_pairs(p) for (_, ds), p in groups.items() if ds == d)]
    height = 1.6 + 0.38 * max([sum(1 for (_, ds) in groups if ds == d) for d in shown] or [1])
    fig = _new_figure(max(7.0, 5.2 * len(shown)), 2 * height + 0.6)
    for col, dataset in enumerate(shown):
        by_model = [p for (_, ds), p in groups.items() if ds == dataset]
        acc_ax = fig.add_subplot(2, len(shown), col + 1)
        time_ax = fig.add_subplot(2, len(shown), len(shown) + col + 1)
        acc = _rows(by_model, lambda p: None if (a := pair_accuracy(p)) is None else 100 * a)
        secs = _rows(by_model, seconds_per_epoch)
        _dots(acc_ax, acc, colours, ".2f", ACCURACY_BOUNDS)
        _zoom(acc_ax, acc, ACCURACY_BOUNDS)
        acc_ax.set(title=f"{shown_name(dataset)}: test accuracy", xlabel="Test accuracy (%), zoomed")
        log = _spread(secs) > LOG_SPREAD
        if secs:
            _dots(time_ax, secs, colours, ".3g", None)
            if log:
                _log_x(time_ax)
            _zoom(time_ax, secs, None, log=log)
        time_ax.set(title=f"{shown_name(dataset)}: training time (dot: mean)",
                    xlabel="Seconds per epoch (each seed's median)" + ", log scale" * log)
    _suptitle(fig, results, f"Mean over seeds with its {CI_LEVEL:.0%} t-interval · circles: seeds")
    left_out = _left_out(groups)
    if left_out:
        fig.supxlabel("Not shown (no finished seed):\n" + "\n".join(left_out), x=0.01, ha="left", fontsize=8)
    return fig


# --- learning curves -------------------------------------------------------------------------


def _mean_band(curves: list[list[float]]) -> tuple[list[float], list[float], list[float]]:
    """Per index, the mean and mean ± std over the curves long enough to reach it (NaNs skipped),
    as long as at least half the curves do: one long seed alone does not make the mean."""
    means, lows, highs = [], [], []
    for i in range(sorted(map(len, curves), reverse=True)[(len(curves) - 1) // 2]):
        xs = [c[i] for c in curves if i < len(c) and not math.isnan(c[i])]
        mean, std = mean_std(xs) if xs else (math.nan, None)
        std = std or 0.0
        means.append(mean)
        lows.append(mean - std)
        highs.append(mean + std)
    return means, lows, highs


def _value(entry: Mapping[str, Any], key: str, scale: float = 1.0) -> float:
    value = entry.get(key)
    return math.nan if not isinstance(value, (int, float)) or isinstance(value, bool) else float(value) * scale


def _clock(history: list[Epoch]) -> list[float]:
    """Cumulative training seconds at the end of each epoch."""
    total, out = 0.0, []
    for entry in history:
        seconds = _value(entry, "epoch_seconds")
        total += 0.0 if math.isnan(seconds) else seconds
        out.append(total)
    return out


def _overlay(ax: Axes, xs: list[list[float]], ys: list[list[float]], colour: Any, label: str,
             style: dict[str, Any]) -> None:
    x, _, _ = _mean_band(xs)
    mean, low, high = _mean_band(ys)
    ax.plot(x, mean, color=colour, label=label, markersize=3, **style)
    if len(ys) > 1:
        ax.fill_between(x, low, high, color=colour, alpha=0.2, linewidth=0)


def _zoom_accuracy(ax: Axes, curves: list[list[float]]) -> None:
    """Validation accuracy from just below the worst model's last epochs to the top: the first
    epochs' climb is cut so that differences of a tenth of a point stay visible."""
    ends = [v for c in curves for v in c[len(c) // 2:] if not math.isnan(v)]
    values = [v for c in curves for v in c if not math.isnan(v)]
    if not ends:
        return
    top = max(values)
    bottom = max(min(values), min(ends) - 2.5 * (top - min(ends)) - 0.05)
    ax.set_ylim(bottom, top + 0.08 * (top - bottom) + 1e-3)


def curves_figure_for(results: RunResults, dataset: str) -> Figure:
    """Learning curves of every model on ``dataset``: validation accuracy and training loss (log
    scale) against epoch and against cumulative training time, mean ± std over seeds."""
    groups = {m: p for (m, d), p in group_pairs(pairs_of(results)).items() if d == dataset}
    drawn = {m: [p for p in pairs if p.get("history")] for m, pairs in groups.items()}
    drawn = {m: pairs for m, pairs in drawn.items() if pairs}
    if not drawn:
        raise ValueError(f"{dataset}: no training history in the results")
    from matplotlib.ticker import MaxNLocator

    colours = model_colours(results)
    fig = _new_figure(11.0, 7.4)
    axes = fig.subplots(2, 2, sharex="col")
    acc_curves = []
    for model, pairs in drawn.items():
        histories = [p.get("history") or [] for p in pairs]
        epochs = [[_value(h, "epoch") for h in hist] for hist in histories]
        clock = [_clock(hist) for hist in histories]
        accuracy = [[_value(h, "val_accuracy", 100.0) for h in hist] for hist in histories]
        loss = [[_value(h, "train_loss") for h in hist] for hist in histories]
        acc_curves.append(_mean_band(accuracy)[0])
        label = f"{_label(pairs)}, {len(pairs)} seed{'s' if len(pairs) > 1 else ''}"
        style = _style(pairs)
        for col, xs in enumerate((epochs, clock)):
            _overlay(axes[0, col], xs, accuracy, colours[model], label, style)
            _overlay(axes[1, col], xs, loss, colours[model], label, style)
    for col in range(2):
        _zoom_accuracy(axes[0, col], acc_curves)
        axes[1, col].set_yscale("log")
        axes[0, col].set_ylabel("Validation accuracy (%), zoomed")
        axes[1, col].set_ylabel("Training loss (mean over the epoch), log")
    axes[1, 0].set_xlabel("Epoch")
    axes[1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1, 1].set_xlabel("Training time (s, cumulative epoch time)")
    axes[0, 0].set_title("against epoch")
    axes[0, 1].set_title("against training time")
    _log_time_axis(axes[1, 1], [_clock(p.get("history") or []) for pairs in drawn.values() for p in pairs])
    for ax in axes.flat:
        ax.grid(alpha=0.3, which="both" if ax.get_yscale() == "log" else "major")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    _suptitle(fig, results, f"Learning curves on {dataset_namer(results)(dataset)} (mean ± std over seeds)")
    fig.supxlabel(NO_VAL_LOSS, fontsize=8, x=0.01, ha="left")
    return fig


def _log_time_axis(ax: Axes, clocks: list[list[float]]) -> None:
    """A log time axis when the models' total times differ by more than :data:`LOG_SPREAD`."""
    totals = [c[-1] for c in clocks if c and c[-1] > 0]
    if totals and max(totals) > LOG_SPREAD * min(totals):
        _log_x(ax)


# --- confusion matrices ----------------------------------------------------------------------


def _confusion(pair: PairRecord) -> tuple[list[list[int]], list[str]] | None:
    confusion = metrics_of(pair).get("confusion", {})
    matrix = confusion.get("matrix")
    if not matrix:
        return None
    labels = confusion.get("labels") or dataset_info_of(pair).get("class_names")
    return matrix, [str(label) for label in labels or range(len(matrix))]


def summed_confusion(pairs: list[PairRecord]) -> tuple[list[list[int]], list[str], int] | None:
    """The confusion matrices of the pairs that have one, summed, with the labels and how many were summed."""
    found = [c for c in (_confusion(p) for p in pairs) if c is not None]
    if not found:
        return None
    labels = found[0][1]
    same = [m for m, lab in found if lab == labels and len(m) == len(labels)]
    total = [[sum(m[i][j] for m in same) for j in range(len(labels))] for i in range(len(labels))]
    return total, labels, len(same)


def _cell_colours(matrix: list[list[int]]) -> tuple[list[list[tuple[float, float, float, float]]], Any, Any]:
    """RGBA per cell: the diagonal in one light tone, errors on a log red scale of their share of
    the true class, zeros white. Returns the cells, and the colour map and norm of the errors."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap, LogNorm, to_rgba

    shares = [[count / (sum(row) or 1) for count in row] for row in matrix]
    errors = [s for i, row in enumerate(shares) for j, s in enumerate(row) if i != j and s > 0]
    norm = LogNorm(vmin=min(errors, default=1e-4), vmax=max(max(errors, default=1e-3), min(errors, default=1e-4) * 10))
    cmap = ListedColormap(colormaps["Reds"](np.linspace(0.15, 1.0, 256)))  # the palest reds look like zeros
    diagonal, zero = to_rgba("#d9e6f2"), to_rgba("white")
    cells = [[diagonal if i == j else (cmap(norm(s)) if s > 0 else zero) for j, s in enumerate(row)]
             for i, row in enumerate(shares)]
    return cells, cmap, norm


def _annotate(ax: Axes, matrix: list[list[int]], cells: list[list[tuple[float, float, float, float]]]) -> None:
    """Recall and count on the diagonal; the count of every non-zero error."""
    n = len(matrix)
    size = 9 if n <= 12 else 6
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            if i == j:
                ax.text(j, i, f"{100 * count / total:.1f}%\n{count}", ha="center", va="center", fontsize=size - 1)
            elif count:
                dark = sum(cells[i][j][:3]) < 1.6
                ax.text(j, i, str(count), ha="center", va="center", fontsize=size, color="white" if dark else "black")


def confusion_figure(pairs: list[PairRecord] | PairRecord, results: RunResults | None = None) -> Figure:
    """The test confusion matrix of a model × dataset summed over its seeds (or of one pair).

    True class per row, predicted per column; the diagonal holds each class's recall and count,
    the errors are coloured by their share of the true class on a log scale so that single
    errors stay visible.
    """
    from matplotlib.cm import ScalarMappable

    pairs = [pairs] if isinstance(pairs, dict) else pairs
    summed = summed_confusion(pairs)
    if summed is None:
        raise ValueError(f"{pairs[0]['model']} on {pairs[0]['dataset']}: no confusion matrix in the results")
    matrix, labels, seeds = summed
    n = len(labels)
    side = min(max(4.6, 1.6 + 0.5 * n), 24.0)
    fig = _new_figure(side + 1.9, side + 0.9)
    ax = fig.add_subplot()
    cells, cmap, norm = _cell_colours(matrix)
    ax.imshow(cells, interpolation="nearest")
    colourbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.75)
    colourbar.set_label("errors: share of the true class (log scale)")
    colourbar.ax.yaxis.set_major_formatter(_percent())
    colourbar.ax.yaxis.set_minor_formatter(_percent(minor=True))
    rotation = 0 if max(map(len, labels)) <= 3 else LABEL_ROTATION if n <= 12 else 90
    ax.set_xticks(range(n), labels, rotation=rotation, ha="right" if rotation == LABEL_ROTATION else "center",
                  rotation_mode="anchor" if rotation == LABEL_ROTATION else "default")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.tick_params(length=0)
    if n <= ANNOTATE_MAX_CLASSES:
        _annotate(ax, matrix, cells)
    total = sum(map(sum, matrix))
    correct = sum(matrix[i][i] for i in range(n))
    over = f"summed over {seeds} seeds" if seeds > 1 else f"seed {pairs[0]['seed']}"
    ax.set_title(
        _title(
            results,
            f"{_label(pairs)} on {dataset_namer(results)(pairs[0]['dataset'])}, {over}:"
            f" {correct:,} of {total:,} right ({100 * correct / (total or 1):.2f} %)",
        ),
        fontsize=10,
    )
    return fig


# --- one pair --------------------------------------------------------------------------------


def _mark_epochs(axes: list[Axes], pair: PairRecord) -> None:
    best, diverged = pair.get("best_epoch"), pair.get("diverged_epoch")
    for ax in axes:
        if best is not None:
            ax.axvline(best, color="tab:orange", linestyle="--", label=f"best epoch {best}")
        if diverged is not None:
            ax.axvline(diverged, color="tab:red", linestyle=":", label=f"diverged at epoch {diverged}")


def curves_figure(pair: PairRecord, results: RunResults | None = None) -> Figure:
    """One pair's training loss (log scale) and validation accuracy per epoch, the best (and any
    diverged) epoch marked."""
    from matplotlib.ticker import MaxNLocator

    history = pair.get("history")
    if not history:
        raise ValueError(f"{pair_title(pair)}: no training history in the results")
    epochs = [h["epoch"] for h in history]
    fig = _new_figure(10.0, 4.2)
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [_value(h, "train_loss") for h in history], marker="o", markersize=3, label="training loss")
    acc_ax.plot(epochs, [_value(h, "val_accuracy", 100.0) for h in history], marker="o", markersize=3,
                color="tab:green", label="validation accuracy")
    _mark_epochs([loss_ax, acc_ax], pair)
    loss_ax.set_yscale("log")
    loss_ax.set(title="Training loss", xlabel="Epoch", ylabel="Loss (mean over the epoch), log")
    acc_ax.set(title="Validation accuracy", xlabel="Epoch", ylabel="Validation accuracy (%)")
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _suptitle(fig, results, f"Learning curves — {pair_title(pair)}")
    return fig


# --- files -----------------------------------------------------------------------------------


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of :data:`PLOT_FORMATS`, else a ValueError."""
    if fmt not in PLOT_FORMATS:
        raise ValueError(f"unknown plot format {fmt!r} (expected one of {', '.join(PLOT_FORMATS)})")
    return fmt


class UndrawableFigure(ValueError):
    """A figure that matplotlib cannot draw: its values are near the float limit (1e308), where
    axis ticks cannot be computed. Tables and the report go on without it."""


def figure_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """The figure encoded as PNG, SVG or PDF (without timestamps, so reruns give the same bytes);
    :class:`UndrawableFigure` when its values are beyond what matplotlib can draw."""
    buffer = io.BytesIO()
    metadata = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[check_format(fmt)]
    try:
        fig.savefig(buffer, format=fmt, metadata=metadata)
    except (ValueError, OverflowError) as exc:
        raise UndrawableFigure(f"{type(exc).__name__}: {exc}") from None
    return buffer.getvalue()


def _save(fig: Figure, path: Path, fmt: str) -> Path:
    atomic_write_bytes(path, figure_bytes(fig, fmt))
    return path


def plot_path(run_dir: Path, pair: PairRecord, kind: str, fmt: str = "png") -> Path:
    """``<run_dir>/plots/<pair stem>__<kind>.<fmt>``, the pair named as its record is (never colliding)."""
    return run_dir / PLOTS_DIR / f"{pair_stem(pair['model'], pair['dataset'], pair['seed'])}__{kind}.{fmt}"


def write_pair_plots(run_dir: Path, pair: PairRecord, fmt: str = "png", only_missing: bool = False) -> list[Path]:
    """Save a pair's confusion matrix and learning curves, where its record has the data
    (``only_missing``: those not on disk yet, as a resume after a kill needs)."""
    paths = []
    for kind, has_data, draw in (("confusion", _confusion(pair) is not None, confusion_figure),
                                 ("curves", bool(pair.get("history")), curves_figure)):
        path = plot_path(run_dir, pair, kind, fmt)
        if has_data and not (only_missing and path.exists()):
            with contextlib.suppress(UndrawableFigure):  # epoch times near 1e308: the report says so
                paths.append(_save(draw(pair), path, fmt))
    return paths


def run_figures(results: RunResults) -> Iterator[RunFigure]:
    """The run's figures, drawn one at a time: the summary, learning curves per dataset, and the
    confusion matrix of every model × dataset summed over its seeds."""
    groups = group_pairs(pairs_of(results))
    if not groups:
        return
    yield drawn("summary", "Test accuracy and training time per model and dataset", lambda: summary_figure(results))
    for dataset in dict.fromkeys(d for _, d in groups):
        if any(p.get("history") for (_, d), pairs in groups.items() if d == dataset for p in pairs):
            yield drawn(f"curves__{name_part(dataset)}", f"Learning curves on {dataset}",
                        partial(curves_figure_for, results, dataset))
    for (model, dataset), pairs in groups.items():
        done = [p for p in pairs if p.get("status") == "ok"]
        if summed_confusion(done) is not None:
            yield drawn(
                f"confusion__{name_part(model)}+{name_part(dataset)}",
                f"Confusion matrix of {model} on {dataset}",
                partial(confusion_figure, done, results),
            )


def write_run_plots(run_dir: Path, results: RunResults, fmt: str = "png") -> list[Path]:
    """Save the run's figures (:func:`run_figures`) as ``plots/<name>.<fmt>``."""
    check_format(fmt)
    paths = []
    for f in run_figures(results):
        if f.figure is not None:
            with contextlib.suppress(UndrawableFigure):
                paths.append(_save(f.figure, run_dir / PLOTS_DIR / f"{f.name}.{fmt}", fmt))
    return paths


def write_plots(run_dir: Path, results: RunResults, fmt: str = "png") -> list[Path]:
    """Every plot of a run: each pair's, then the run's."""
    paths = [path for pair in pairs_of(results) for path in write_pair_plots(run_dir, pair, fmt)]
    return paths + write_run_plots(run_dir, results, fmt)
