"""Plots: written in every format, non-trivial, labelled from the data, quick runs marked."""

import subprocess
import sys

import pytest
from results_factory import CIFAR10_CLASSES, make_pair, make_results, seeded

import seqbench.reporting.plots as plots_module
from seqbench.reporting.plots import (
    NO_VAL_LOSS,
    PLOT_FORMATS,
    confusion_figure,
    curves_figure,
    curves_figure_for,
    interval,
    plot_path,
    run_figures,
    summary_figure,
    t95,
    write_pair_plots,
    write_plots,
    write_run_plots,
)
from seqbench.reporting.query import Stat

MIN_PNG_BYTES = 10_000


@pytest.fixture
def cifar_pair():
    return make_pair("gru-cpu", "cifar10", 1, accuracy=0.61, seconds=30.0)


@pytest.fixture
def two_models():
    """Two models on MNIST over two seeds (one a PyTorch reference), one on CIFAR-10, one skipped."""
    reference = seeded("torch-rnn", "mnist", [0.981, 0.983], [17.0, 18.0])
    for pair in reference:
        pair["model_plugin"] = "torch"
    return make_results(
        seeded("rnn-cpu", "mnist", [0.985, 0.986], [14.0, 15.0]) + reference
        + seeded("gru-cpu", "cifar10", [0.61, 0.63], [30.0, 31.0], epochs=8)
        + [make_pair("lstm-gpu", "mnist", status="skipped", reason="CuPy missing")]
    )


def _png_size(path):
    from matplotlib.image import imread

    assert path.stat().st_size > MIN_PNG_BYTES
    height, width = imread(path).shape[:2]
    return width, height


def _texts(labels):
    return [label.get_text() for label in labels]


def _all_text(fig):
    fig.canvas.draw()
    return " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def test_matplotlib_is_imported_lazily():
    code = ("import sys, seqbench.reporting.plots, seqbench.reporting.html_report, seqbench.cli; "
            "assert 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_t_quantiles_and_intervals():
    assert t95(2) == pytest.approx(12.706) and t95(3) == pytest.approx(4.303)
    assert t95(12) == pytest.approx(2.201, abs=0.003) and t95(1000) == pytest.approx(1.962, abs=0.002)
    assert interval(Stat(99.0, None, 1)) == (99.0, 99.0)
    _low, high = interval(Stat(99.0, 0.1, 3))
    assert high - 99.0 == pytest.approx(4.303 * 0.1 / 3**0.5)


def test_summary_has_a_zoomed_panel_per_dataset_and_lists_skipped_pairs(two_models):
    fig = summary_figure(two_models)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["mnist: test accuracy", "mnist: training time (dot: mean)",
                      "cifar10: test accuracy", "cifar10: training time (dot: mean)"]
    mnist = fig.axes[0]
    assert _texts(mnist.get_yticklabels()) == ["rnn-cpu", "torch-rnn (reference)"]
    low, high = mnist.get_xlim()
    assert 95.0 < low < 98.1 and 98.6 < high < 101.0  # zoomed to the 95 % intervals, not 0–100
    assert "skipped" in fig.get_supxlabel() and "lstm-gpu · mnist" in fig.get_supxlabel()
    assert "CuPy missing" in fig.get_supxlabel()
    text = _all_text(fig)
    assert "98.55 ± 0.07  (n=2)" in text and "95% t-interval" in fig.get_suptitle()


def test_a_model_keeps_its_colour_in_every_figure(two_models):
    summary = summary_figure(two_models)
    curves = curves_figure_for(two_models, "mnist")
    dot_colour = summary.axes[0].lines[1].get_color()  # rnn-cpu's mean dot (after its seeds)
    curve_colour = curves.axes[0].lines[0].get_color()
    assert dot_colour == curve_colour


def test_curves_overlay_models_with_mean_and_band_against_epoch_and_time(two_models):
    fig = curves_figure_for(two_models, "mnist")
    acc_epoch, acc_time, loss_epoch, loss_time = fig.axes
    assert [line.get_label() for line in acc_epoch.lines] == ["rnn-cpu, 2 seeds", "torch-rnn (reference), 2 seeds"]
    assert len(acc_epoch.collections) == 2  # a ± std band per model
    assert loss_epoch.get_yscale() == "log" and loss_time.get_yscale() == "log"
    assert list(acc_epoch.lines[0].get_xdata()) == [1, 2, 3, 4, 5, 6]
    # against time: cumulative epoch seconds, averaged over the seeds (14 s and 15 s per epoch)
    assert list(acc_time.lines[0].get_xdata()) == pytest.approx([14.5 * e for e in range(1, 7)])
    assert acc_epoch.lines[0].get_ydata()[3] == pytest.approx(98.55)
    assert fig.get_supxlabel() == NO_VAL_LOSS
    assert loss_time.get_xlabel().startswith("Training time")


def test_curves_stop_where_fewer_than_half_the_seeds_train():
    pairs = [make_pair("rnn-cpu", "mnist", s, epochs=e) for s, e in enumerate((4, 6, 9))]
    fig = curves_figure_for(make_results(pairs), "mnist")
    assert len(fig.axes[0].lines[0].get_xdata()) == 6


def test_confusion_is_summed_over_seeds_with_recall_on_the_diagonal():
    pairs = seeded("rnn-cpu", "mnist", [0.99, 0.98], [1.0, 1.0])
    fig = confusion_figure(pairs)
    ax = fig.axes[0]
    texts = _texts(ax.texts)
    assert "98.5%\n1970" in texts  # class 0: 990 + 980 right of 2,000
    assert "30" in texts  # its errors, all predicted as class 1
    assert "summed over 2 seeds" in ax.get_title() and "19,700 of 20,000" in ax.get_title()
    assert [label.get_rotation() for label in ax.get_xticklabels()] == [0] * 10


def test_confusion_labels_are_whole_and_errors_coloured(cifar_pair):
    fig = confusion_figure(cifar_pair)
    ax = fig.axes[0]
    assert _texts(ax.get_xticklabels()) == CIFAR10_CLASSES  # not cut to "airpl", "autom"
    assert ax.get_xticklabels()[0].get_rotation() == 45
    assert _texts(ax.get_yticklabels()) == CIFAR10_CLASSES
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Predicted class", "True class")
    cells = ax.images[0].get_array()
    assert tuple(cells[0, 1][:3]) != (1.0, 1.0, 1.0)  # an error cell is coloured
    assert tuple(cells[0, 5][:3]) == (1.0, 1.0, 1.0)  # an empty one is white
    assert "61.00 %" in ax.get_title() and "gru-cpu" in ax.get_title()


def test_confusion_labels_are_not_clipped(cifar_pair):
    fig = confusion_figure(cifar_pair)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    for text in [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title, ax.xaxis.label, ax.yaxis.label]:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0, text.get_text()
        assert box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, text.get_text()


def test_pair_curves_show_history_best_epoch_and_log_loss(cifar_pair):
    fig = curves_figure(cifar_pair)
    loss_ax, acc_ax = fig.axes
    assert list(loss_ax.lines[0].get_ydata()) == [h["train_loss"] for h in cifar_pair["history"]]
    assert loss_ax.get_yscale() == "log"
    for ax in (loss_ax, acc_ax):
        assert "best epoch 4" in _texts(ax.get_legend().get_texts())


def test_diverged_pair_gets_curves_marked_and_no_confusion(tmp_path):
    pair = make_pair("rnn-cpu", "mnist", status="diverged", reason="loss is nan")
    assert write_pair_plots(tmp_path, pair) == [plot_path(tmp_path, pair, "curves")]
    assert "diverged at epoch 3" in _texts(curves_figure(pair).axes[0].get_legend().get_texts())


def test_skipped_pair_has_no_plots(tmp_path):
    assert write_pair_plots(tmp_path, make_pair(status="skipped", reason="no GPU")) == []


def test_quick_runs_are_marked_in_every_figure(two_models):
    two_models["config"].update(quick=True, protocol={"quick_profile": {"epochs": 2, "max_test": 1000}})
    for figure in run_figures(two_models):
        title = figure.figure.get_suptitle() or figure.figure.axes[0].get_title()
        assert "QUICK RUN" in title and "1,000 test samples" in title, figure.name


def test_run_figures_are_the_summary_curves_per_dataset_and_confusion_per_model_and_dataset(two_models):
    names = [figure.name for figure in run_figures(two_models)]
    assert names == ["summary", "curves__mnist", "curves__cifar10", "confusion__rnn-cpu+mnist",
                     "confusion__torch-rnn+mnist", "confusion__gru-cpu+cifar10"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", PLOT_FORMATS)
def test_every_plot_is_written_in_each_format(tmp_path, fmt):
    magic = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}[fmt]
    results = make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0]))
    paths = write_plots(tmp_path, results, fmt)
    pair = results["pairs"][0]
    assert paths == [plot_path(tmp_path, pair, "confusion", fmt), plot_path(tmp_path, pair, "curves", fmt)] + [
        tmp_path / "plots" / f"{name}.{fmt}" for name in ("summary", "curves__mnist", "confusion__rnn-cpu+mnist")]
    for path in paths:
        assert path.read_bytes()[:5].startswith(magic) and path.stat().st_size > 5_000, path.name
    if fmt == "png":
        width, height = _png_size(paths[2])
        assert width >= 1000 and height >= 500


def test_unknown_format_and_no_pairs(tmp_path):
    with pytest.raises(ValueError, match="unknown plot format"):
        write_run_plots(tmp_path, make_results(seeded("rnn-cpu", "mnist", [0.9], [1.0])), "jpg")
    assert write_run_plots(tmp_path, make_results([])) == []


def test_the_accuracy_axis_stops_at_100_percent_and_titles_are_short():
    results = make_results(seeded("rnn-cpu", "mnist", [0.999, 0.998, 0.9995], [2.0, 2.0, 2.0])
                           + seeded("gru-cpu", "mnist", [0.997, 0.999, 0.998], [0.01, 0.01, 0.01]))
    results["config"].update(quick=True, protocol={"quick_profile": {"epochs": 2, "max_test": 1000}})
    fig = summary_figure(results)
    assert fig.axes[0].get_xlim()[1] <= 100.0
    assert fig.get_suptitle().count("\n") <= 1  # the quick warning in one line, then the title


def test_log_axes_label_minor_ticks_only_where_they_fit():
    from matplotlib.figure import Figure

    for (low, high), expected in (((10, 90), {"20", "30", "50"}), ((0.005, 0.4), {"0.005", "0.02", "0.05", "0.2"}),
                                  ((0.001, 100), set())):
        ax = Figure().add_subplot()
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plots_module._plain(minor=True))
        ax.set_xlim(low, high)
        ticks = [t for t in ax.xaxis.get_minorticklocs() if low <= t <= high]
        minor = {ax.xaxis.get_minor_formatter()(t, i) for i, t in enumerate(ticks)} - {""}
        assert minor == expected, (low, high, minor)
