"""Plots: every PNG is written and non-trivial, and its labels come from the data."""

import subprocess
import sys

import pytest
from matplotlib.container import BarContainer
from results_factory import CIFAR10_CLASSES, make_pair, make_results, seeded

from seqbench.plots import (
    confusion_figure,
    curves_figure,
    summary_figure,
    write_pair_plots,
    write_plots,
    write_run_plots,
)

MIN_PNG_BYTES = 10_000


@pytest.fixture
def cifar_pair():
    return make_pair("gru-cpu", "cifar10", 1, accuracy=0.61, seconds=30.0)


def _png_size(path):
    from matplotlib.image import imread

    assert path.stat().st_size > MIN_PNG_BYTES
    height, width = imread(path).shape[:2]
    return width, height


def _drawn(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _texts(labels):
    return [label.get_text() for label in labels]


def test_matplotlib_is_imported_lazily():
    code = "import sys, seqbench.plots; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pair_plots_are_written_and_non_trivial(tmp_path, cifar_pair):
    paths = write_pair_plots(tmp_path, cifar_pair)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "plots/gru-cpu__cifar10__seed1__confusion.png",
        "plots/gru-cpu__cifar10__seed1__curves.png",
    ]
    confusion_w, confusion_h = _png_size(paths[0])
    assert confusion_w >= 500 and confusion_h >= 500
    curves_w, curves_h = _png_size(paths[1])
    assert curves_w >= 900 and curves_h >= 400


def test_confusion_labels_come_from_the_data(cifar_pair):
    fig = confusion_figure(cifar_pair)
    ax = fig.axes[0]
    assert _texts(ax.get_xticklabels()) == CIFAR10_CLASSES
    assert _texts(ax.get_yticklabels()) == CIFAR10_CLASSES
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Predicted class", "True class")
    assert "gru-cpu" in ax.get_title() and "cifar10" in ax.get_title() and "61.00 %" in ax.get_title()
    matrix = cifar_pair["metrics"]["confusion"]["matrix"]
    assert _texts(ax.texts) == [str(count) for row in matrix for count in row]


def test_confusion_labels_are_not_clipped(cifar_pair):
    fig = confusion_figure(cifar_pair)
    renderer = _drawn(fig)
    ax = fig.axes[0]
    texts = [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title, ax.xaxis.label, ax.yaxis.label]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0, text.get_text()
        assert box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, text.get_text()


def test_curves_show_history_and_best_epoch(cifar_pair):
    fig = curves_figure(cifar_pair)
    loss_ax, acc_ax = fig.axes
    epochs = [h["epoch"] for h in cifar_pair["history"]]
    assert list(loss_ax.lines[0].get_xdata()) == epochs
    assert list(loss_ax.lines[0].get_ydata()) == [h["train_loss"] for h in cifar_pair["history"]]
    assert list(acc_ax.lines[0].get_ydata()) == pytest.approx(
        [100 * h["val_accuracy"] for h in cifar_pair["history"]])
    for ax in (loss_ax, acc_ax):
        assert ax.get_xlabel() == "Epoch" and ax.get_ylabel()
        assert "best epoch 4" in _texts(ax.get_legend().get_texts())
    assert "gru-cpu" in fig.get_suptitle() and "cifar10" in fig.get_suptitle()


def test_diverged_pair_gets_curves_marked_and_no_confusion(tmp_path):
    pair = make_pair("rnn-cpu", "mnist", status="diverged", reason="loss is nan")
    paths = write_pair_plots(tmp_path, pair)
    assert [p.name for p in paths] == ["rnn-cpu__mnist__seed0__curves.png"]
    legend = _texts(curves_figure(pair).axes[0].get_legend().get_texts())
    assert "diverged at epoch 3" in legend


def test_skipped_pair_has_no_plots(tmp_path):
    assert write_pair_plots(tmp_path, make_pair(status="skipped", reason="no GPU")) == []


def test_summary_chart_has_every_pair_with_error_bars():
    results = make_results(
        seeded("rnn-cpu", "mnist", [0.95, 0.97], [2.0, 3.0])
        + [make_pair("lstm-gpu", "cifar10", status="skipped", reason="no GPU")]
    )
    fig = summary_figure(results)
    acc_ax, time_ax = fig.axes
    assert _texts(acc_ax.get_yticklabels()) == ["rnn-cpu · mnist", "lstm-gpu · cifar10"]
    assert acc_ax.get_xlabel() == "Test accuracy (%)"
    assert time_ax.get_xlabel() == "Seconds per training epoch"
    assert [bar.get_width() for bar in acc_ax.patches] == pytest.approx([96.0, 0.0])
    bars = next(c for c in acc_ax.containers if isinstance(c, BarContainer))
    (x0, _), (x1, _) = bars.errorbar.lines[2][0].get_segments()[0]
    assert x1 - x0 == pytest.approx(2 * 1.41421356)  # ± the std of 95 % and 97 %
    assert "96.00 ± 1.41" in _texts(acc_ax.texts) and "skipped" in _texts(time_ax.texts)
    assert "2 seeds" in fig.get_suptitle()


def test_write_plots_writes_every_png(tmp_path):
    results = make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0]))
    paths = write_plots(tmp_path, results)
    assert sorted(p.name for p in paths) == [
        "rnn-cpu__mnist__seed0__confusion.png", "rnn-cpu__mnist__seed0__curves.png", "summary.png"
    ]
    width, height = _png_size(tmp_path / "plots" / "summary.png")
    assert width >= 1000 and height >= 200


def test_no_pairs_no_summary(tmp_path):
    assert write_run_plots(tmp_path, make_results([])) == []
