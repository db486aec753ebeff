"""Figures of the comparison of models: the all-pairs heatmap of a leaderboard, the
critical-difference diagram over datasets (Demšar 2006) and accuracy against cost with the
Pareto front. Drawn like :mod:`seqbench.reporting.plots` (Agg canvas, no pyplot, one colour per
model from the caller's palette)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from seqbench.reporting.leaderboard import Leaderboard
from seqbench.reporting.plots import _log_x, _new_figure, _suptitle, interval, model_colours
from seqbench.reporting.query import (
    checked,
    group_pairs,
    ok_pairs,
    pair_accuracy,
    pairs_of,
    seconds_per_epoch,
    stat,
    timing_of,
)
from seqbench.reporting.significance import RankTest
from seqbench.schema.types import PairRecord, RunResults

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LOG_SPREAD = 5.0  # a cost axis turns logarithmic when its largest value is this many times the smallest


def heatmap_figure(board: Leaderboard) -> Figure:
    """Row − column test accuracy (percentage points) for every pair of the leaderboard's models,
    in rank order; cells whose Holm-adjusted p ≤ α are outlined and starred."""
    import numpy as np
    from matplotlib import colormaps

    names = [row.entry.name for row in board.rows]
    k = len(names)
    diff = np.zeros((k, k))
    significant = np.zeros((k, k), bool)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j:
                result = board.pair(a, b)
                diff[i, j] = 100 * result.difference.diff
                significant[i, j] = result.p_adjusted <= board.alpha
    side = 2.2 + 0.75 * k
    label = 0.075 * max(map(len, names))  # inches for the longest name on the y axis
    fig = _new_figure(side + 1.6 + label, side + 0.5 * label)
    ax = fig.add_subplot()
    limit = max(float(np.abs(diff).max()), 0.01)
    image = ax.imshow(diff, cmap=colormaps["RdBu"], vmin=-limit, vmax=limit)
    colourbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colourbar.set_label("row − column (percentage points)")
    for i in range(k):
        for j in range(k):
            if i != j:
                text = f"{diff[i, j]:+.2f}" + ("*" if significant[i, j] else "")
                dark = abs(diff[i, j]) > 0.6 * limit
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black",
                        fontweight="bold" if significant[i, j] else "normal")
    ax.set_xticks(range(k), names, rotation=30, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_title(f"{board.title}: pairwise differences\n* Holm-adjusted p ≤ {board.alpha:g}", fontsize=10)
    return fig


def cd_figure(test: RankTest, colours: dict[str, Any] | None = None) -> Figure:
    """The critical-difference diagram: mean ranks on an axis from 1 (best, left) to k, each model
    labelled, the models of every group within the critical difference joined by a thick bar, and
    the CD drawn above the axis."""
    k = len(test.names)
    order = sorted(zip(test.mean_ranks, test.names, strict=True))
    half = math.ceil(k / 2)
    fig = _new_figure(7.0, 1.6 + 0.32 * half + 0.22 * len(test.groups))
    ax = fig.add_subplot()
    ax.set_xlim(0.5, k + 0.5)
    ax.axis("off")
    top = 0.0
    ax.plot([1, k], [top, top], color="black", linewidth=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [top, top + 0.08], color="black", linewidth=1)
        ax.text(r, top + 0.12, str(r), ha="center", va="bottom", fontsize=9)
    cd_left = 1.0
    ax.plot([cd_left, cd_left + min(test.cd, k - 1.0)], [top + 0.55] * 2, color="black", linewidth=1.5)
    ax.text(cd_left + min(test.cd, k - 1.0) / 2, top + 0.6, f"CD = {test.cd:.2f}" + (" (wider than the axis)"
            if test.cd > k - 1 else ""), ha="center", va="bottom", fontsize=9)
    colours = colours or {}
    for i, (rank, name) in enumerate(order):
        left = i < half
        level = -(0.35 + 0.3 * (i if left else k - 1 - i)) - 0.22 * len(test.groups)
        x_text = 0.55 if left else k + 0.45
        colour = colours.get(name, "black")
        ax.plot([rank, rank, x_text], [top, level, level], color=colour, linewidth=1)
        ax.text(x_text, level, f"{name} ({rank:.2f})", ha="right" if left else "left", va="center", fontsize=9,
                color=colour)
    for g, group in enumerate(test.groups):
        ranks = [r for r, n in order if n in group]
        y = -0.15 - 0.2 * g
        ax.plot([min(ranks) - 0.03, max(ranks) + 0.03], [y, y], color="black", linewidth=3.5, solid_capstyle="round")
    ax.set_ylim(-(0.45 + 0.3 * half) - 0.22 * len(test.groups), top + 1.0)
    ax.set_xlim(-1.6, k + 2.6)
    ax.set_title(f"Mean rank over {test.n_datasets} datasets (1 = best); bars: no significant difference"
                 f" (Nemenyi, α = {test.alpha:g})", fontsize=10)
    return fig


# --- accuracy against cost ----------------------------------------------------------------------


def pareto(points: Sequence[tuple[float, float]], lower_cost: bool = True) -> list[int]:
    """Indices of the points no other point beats on both accuracy (higher) and cost (lower, or
    higher with ``lower_cost`` False), in order of cost."""
    def better_cost(a: float, b: float) -> bool:
        return a <= b if lower_cost else a >= b

    front = [i for i, (c, acc) in enumerate(points)
             if not any(better_cost(c2, c) and acc2 >= acc and (c2, acc2) != (c, acc) for c2, acc2 in points)]
    return sorted(front, key=lambda i: points[i][0])


COSTS: list[tuple[str, str, Callable[[PairRecord], float | None], bool]] = [
    ("seconds per epoch", "Seconds per epoch (median; lower is better)", seconds_per_epoch, True),
    ("parameters", "Trainable parameters (lower is better)",
     lambda p: checked(p, "num_parameters", p.get("num_parameters")), True),
    ("throughput", "Inference throughput (samples/s; higher is better)",
     lambda p: checked(p, "timing.inference_samples_per_second",
                       timing_of(p).get("inference_samples_per_second")), False),
]


def cost_figure(results: RunResults, colours: dict[str, Any] | None = None,
                title: Callable[[str], str] = str) -> Figure:
    """Test accuracy against each cost, one row of panels per dataset: each model's mean over its
    ok seeds with the accuracy's 95 % interval, and the Pareto front (no model both more accurate
    and cheaper) as a dashed line. A cost spread over more than :data:`LOG_SPREAD`× is on a log axis."""
    groups = {key: ok_pairs(pairs) for key, pairs in group_pairs(pairs_of(results)).items()}
    groups = {key: pairs for key, pairs in groups.items() if pairs}
    if not groups:
        raise ValueError("no finished pair to plot")
    colours = colours or model_colours(results)
    datasets = list(dict.fromkeys(d for _, d in groups))
    fig = _new_figure(12.0, 0.6 + 3.1 * len(datasets))
    axes = fig.subplots(len(datasets), len(COSTS), squeeze=False)
    for row, dataset in enumerate(datasets):
        for col, (_, label, cost_of, lower) in enumerate(COSTS):
            _cost_panel(axes[row][col], [(m, p) for (m, d), p in groups.items() if d == dataset], cost_of, lower,
                        colours)
            axes[row][col].set_xlabel(label, fontsize=8)
            if col == 0:
                axes[row][col].set_ylabel(f"{title(dataset)}\ntest accuracy (%)", fontsize=8)
    handles = [axes[0][0].plot([], [], "o", color=colours[m], label=m)[0] for m in dict.fromkeys(m for m, _ in groups)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=8)
    _suptitle(fig, results, "Accuracy against cost (mean over seeds; dashed: Pareto front)")
    return fig


def _cost_panel(
    ax: Axes,
    models: list[tuple[str, list[PairRecord]]],
    cost_of: Callable[[PairRecord], float | None],
    lower: bool,
    colours: dict[str, Any],
) -> None:
    points, names = [], []
    for model, pairs in models:
        cost = stat(cost_of(p) for p in pairs)
        accuracy = stat((pair_accuracy(p) for p in pairs), scale=100.0)
        if cost is None or accuracy is None:
            continue
        low, high = interval(accuracy)
        high = min(high, 100.0)
        ax.errorbar([cost.mean], [accuracy.mean], yerr=[[accuracy.mean - low], [high - accuracy.mean]], fmt="o",
                    color=colours[model], capsize=3, markersize=6)
        points.append((cost.mean, accuracy.mean))
        names.append(model)
    if not points:
        ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="#777")
        return
    front = pareto(points, lower)
    if len(front) > 1:
        ax.plot([points[i][0] for i in front], [points[i][1] for i in front], "--", color="#555", linewidth=1, zorder=0)
    costs = [c for c, _ in points]
    if min(costs) > 0 and max(costs) > LOG_SPREAD * min(costs):
        _log_x(ax)
    _pad(ax, costs, [a for _, a in points])
    ax.grid(alpha=0.3, which="both")
    ax.tick_params(labelsize=8)


def _pad(ax: Axes, xs: list[float], ys: list[float]) -> None:
    """Margins so that no point sits on an edge; the accuracy axis never passes 100 %."""
    if ax.get_xscale() == "log":
        low, high = math.log10(min(xs)), math.log10(max(xs))
        span = (high - low) or 0.3
        ax.set_xlim(10 ** (low - 0.15 * span), 10 ** (high + 0.15 * span))
    else:
        span = (max(xs) - min(xs)) or abs(max(xs)) * 0.2 or 1.0
        ax.set_xlim(min(xs) - 0.15 * span, max(xs) + 0.15 * span)
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, min(top, 100.0))


def provenance_title(results_list: list[RunResults]) -> Callable[[str], str]:
    """``dataset`` → ``dataset (CIFAR-10 dev split)`` where its copy declares a label."""
    from seqbench.reporting.disclosure import dataset_title

    return lambda dataset: dataset_title(dataset, results_list)


def has_cost(results: RunResults) -> bool:
    """Whether any finished pair recorded a cost to plot accuracy against."""
    return any(cost(p) is not None for p in ok_pairs(pairs_of(results)) for _, _, cost, _ in COSTS)

