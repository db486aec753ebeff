"""Figures of a run: a confusion matrix and learning curves per pair, a summary chart per run.

matplotlib is imported inside the functions and figures are drawn on an Agg canvas without
pyplot, so importing this module is cheap and plotting needs no display. The ``*_figure``
functions return the :class:`~matplotlib.figure.Figure`; the ``write_*`` functions save PNGs
under ``<run_dir>/plots/``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqbench.results import atomic_write_bytes, pair_key
from seqbench.tables import (
    Stat,
    accuracy_stat,
    dig,
    group_pairs,
    group_status,
    pair_accuracy,
    pairs_of,
    time_stat,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOTS_DIR = "plots"
DPI = 110
ANNOTATE_MAX_CLASSES = 30  # beyond this, cells are too small to hold their counts


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def pair_title(pair: dict[str, Any]) -> str:
    return f"{pair['model']} on {pair['dataset']} · seed {pair['seed']}"


def _confusion(pair: dict[str, Any]) -> tuple[list[list[int]], list[str]] | None:
    matrix = dig(pair, "metrics", "confusion", "matrix")
    if not matrix:
        return None
    labels = dig(pair, "metrics", "confusion", "labels") or dig(pair, "dataset_info", "class_names")
    return matrix, [str(label) for label in labels or range(len(matrix))]


def _annotate_counts(ax: Axes, matrix: list[list[int]]) -> None:
    top = max(max(row) for row in matrix)
    fontsize = 9 if len(matrix) <= 12 else 7
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            color = "white" if count > top / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=fontsize, color=color)


def confusion_figure(pair: dict[str, Any]) -> Figure:
    """Heatmap of the test confusion matrix: true class per row, predicted per column, counts."""
    confusion = _confusion(pair)
    if confusion is None:
        raise ValueError(f"{pair_title(pair)}: no confusion matrix in the results")
    matrix, labels = confusion
    n = len(labels)
    side = min(max(4.5, 2.0 + 0.55 * n), 24.0)
    fig = _new_figure(side + 1.3, side + 0.6)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, label="test samples", shrink=0.8)
    rotation = 45 if n <= 20 else 90  # beyond 20 classes slanted labels overlap their neighbours
    ax.set_xticks(range(n), labels, rotation=rotation, ha="right", va="center" if rotation == 90 else "top",
                  rotation_mode="anchor")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    if n <= ANNOTATE_MAX_CLASSES:
        _annotate_counts(ax, matrix)
    accuracy = pair_accuracy(pair)
    subtitle = f"\ntest accuracy {100 * accuracy:.2f} %" if accuracy is not None else ""
    ax.set_title(f"Confusion matrix — {pair_title(pair)}{subtitle}")
    return fig


def _series(history: list[dict[str, Any]], key: str, scale: float = 1.0) -> list[float]:
    return [float("nan") if h.get(key) is None else h[key] * scale for h in history]


def _mark_epochs(axes: list[Axes], pair: dict[str, Any]) -> None:
    best, diverged = pair.get("best_epoch"), pair.get("diverged_epoch")
    for ax in axes:
        if best is not None:
            ax.axvline(best, color="tab:orange", linestyle="--", label=f"best epoch {best}")
        if diverged is not None:
            ax.axvline(diverged, color="tab:red", linestyle=":", label=f"diverged at epoch {diverged}")


def curves_figure(pair: dict[str, Any]) -> Figure:
    """Training loss and validation accuracy per epoch, the best (and any diverged) epoch marked."""
    from matplotlib.ticker import MaxNLocator

    history = pair.get("history")
    if not history:
        raise ValueError(f"{pair_title(pair)}: no training history in the results")
    epochs = [h["epoch"] for h in history]
    fig = _new_figure(10.0, 4.2)
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, _series(history, "train_loss"), marker="o", markersize=3, label="training loss")
    acc_ax.plot(epochs, _series(history, "val_accuracy", 100.0), marker="o", markersize=3,
                color="tab:green", label="validation accuracy")
    _mark_epochs([loss_ax, acc_ax], pair)
    loss_ax.set(title="Training loss", xlabel="Epoch", ylabel="Loss (mean over the epoch)")
    acc_ax.set(title="Validation accuracy", xlabel="Epoch", ylabel="Validation accuracy (%)")
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Learning curves — {pair_title(pair)}")
    return fig


def _bars(ax: Axes, stats: list[Stat | None], missing: list[str], fmt: str) -> None:
    """Horizontal bars of means with std error bars, labelled with values (or why there is none)."""
    means = [s.mean if s else 0.0 for s in stats]
    errors = [s.std or 0.0 if s else 0.0 for s in stats]
    bars = ax.barh(range(len(stats)), means, xerr=errors, capsize=4, color="tab:blue", alpha=0.8)
    labels = [s.format(lambda x: format(x, fmt)) if s else why for s, why in zip(stats, missing)]
    ax.bar_label(bars, labels=labels, padding=4, fontsize=8)
    ax.set_xlim(0, 1.45 * max((m + e for m, e in zip(means, errors)), default=0) or 1)
    ax.grid(axis="x", alpha=0.3)


def summary_figure(results: dict[str, Any]) -> Figure:
    """Test accuracy and seconds per epoch for every model × dataset (mean ± std over seeds)."""
    groups = group_pairs(pairs_of(results))
    if not groups:
        raise ValueError("no pairs in the results")
    labels = [f"{model} · {dataset}" for model, dataset in groups]
    statuses = [group_status(pairs) for pairs in groups.values()]
    fig = _new_figure(11.0, 1.8 + 0.45 * len(groups))
    acc_ax, time_ax = fig.subplots(1, 2, sharey=True)
    _bars(acc_ax, [accuracy_stat(p) for p in groups.values()], statuses, ".2f")
    _bars(time_ax, [time_stat(p) for p in groups.values()], statuses, ".2f")
    acc_ax.set_xticks(range(0, 101, 20))
    acc_ax.set(title="Test accuracy", xlabel="Test accuracy (%)")
    time_ax.set(title="Training time", xlabel="Seconds per training epoch")
    acc_ax.set_yticks(range(len(labels)), labels)
    acc_ax.set_ylabel("model · dataset")
    acc_ax.invert_yaxis()
    seeds = max(len(p) for p in groups.values())
    spread = f", mean ± std over {seeds} seeds" if seeds > 1 else ""
    fig.suptitle(f"seqbench summary — {len(groups)} model × dataset pairs{spread}")
    return fig


def _save(fig: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def plot_path(run_dir: Path, pair: dict[str, Any], kind: str) -> Path:
    """``<run_dir>/plots/<model>__<dataset>__seed<k>__<kind>.png`` (unsafe characters → ``_``)."""
    name = re.sub(r"[^\w.+-]", "_", pair_key(pair["model"], pair["dataset"], pair["seed"]))
    return run_dir / PLOTS_DIR / f"{name}__{kind}.png"


def write_pair_plots(run_dir: Path, pair: dict[str, Any]) -> list[Path]:
    """Save a pair's confusion matrix and learning curves, where its record has the data."""
    paths = []
    if _confusion(pair) is not None:
        paths.append(_save(confusion_figure(pair), plot_path(run_dir, pair, "confusion")))
    if pair.get("history"):
        paths.append(_save(curves_figure(pair), plot_path(run_dir, pair, "curves")))
    return paths


def write_run_plots(run_dir: Path, results: dict[str, Any]) -> list[Path]:
    """Save the run's summary chart as ``plots/summary.png`` (nothing when there are no pairs)."""
    if not pairs_of(results):
        return []
    return [_save(summary_figure(results), run_dir / PLOTS_DIR / "summary.png")]


def write_plots(run_dir: Path, results: dict[str, Any]) -> list[Path]:
    """Every plot of a run: each pair's, then the summary chart."""
    paths = [path for pair in pairs_of(results) for path in write_pair_plots(run_dir, pair)]
    return paths + write_run_plots(run_dir, results)
