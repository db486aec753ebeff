"""``seqbench report`` and ``seqbench compare``: read results.json, print tables, write files."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

import click

from seqbench.cli.common import echo, registry_from
from seqbench.records import write_records
from seqbench.reporting.compare import (
    DEFAULT_ALPHA,
    ThresholdError,
    compare_runs,
    comparison_json,
    comparison_table,
    parse_threshold,
    verdict,
)
from seqbench.reporting.leaderboard import across_datasets, check_same_data, leaderboards
from seqbench.reporting.leaderboard_tables import console_report, write_merged_files
from seqbench.reporting.plots import PLOT_FORMATS
from seqbench.reporting.table_files import write_tables
from seqbench.reporting.tables import FORMATS, merged_summary_table, render, summary_table
from seqbench.results import ResultsError, check_own_dirs, load_results
from seqbench.schema.types import RunConfig, RunResults

format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="github", show_default=True,
    help="Table format: github (Markdown), grid, csv or json.",
)
REPORT_FORMATS = (*FORMATS, "latex")


def _load(path: Path) -> RunResults:
    try:
        return load_results(path)
    except ResultsError as exc:
        raise click.ClickException(str(exc)) from None


def _run_labels(paths: tuple[Path, ...]) -> list[str]:
    """Directory names, or the paths as given where two names would be the same."""
    names = [path.name or str(path) for path in paths]
    return names if len(set(names)) == len(names) else [str(path) for path in paths]


#: What reading a malformed results file can raise besides ResultsError; reported in one line.
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def _malformed(where: str, exc: Exception) -> click.ClickException:
    return click.ClickException(f"{where}malformed results ({type(exc).__name__}: {exc})")


def _writing(where: Path, write: Callable[[], list[Path]]) -> list[Path]:
    """``write()``, its errors one line naming ``where``."""
    try:
        return write()
    except ResultsError as exc:
        raise click.ClickException(f"{where}: {exc}") from None
    except MALFORMED as exc:
        raise _malformed(f"{where}: ", exc) from None
    except OSError as exc:
        raise click.ClickException(f"{where}: cannot write ({exc.strerror or exc})") from None


def _redraw(run_dir: Path, label: str, results: RunResults, plot_format: str | None) -> list[Path]:
    """Tables, each pair's plots, the run's plots and report.html, in the run directory."""
    from seqbench.reporting.html_report import write_report
    from seqbench.reporting.plots import write_pair_plots

    check_own_dirs(run_dir)
    pair_plots = [p for pair in results["pairs"] for p in write_pair_plots(run_dir, pair, plot_format)] \
        if plot_format else []
    return [
        *write_tables(run_dir, results),
        write_records(run_dir, results),
        *pair_plots,
        write_report(run_dir, [(label, results)], plot_format, [run_dir]),
    ]


def _report_into(out_dir: Path, runs: list[tuple[str, RunResults]], plot_format: str | None,
                 run_dirs: tuple[Path, ...]) -> list[Path]:
    """One report.html of ``runs`` (and its plots), its summary and records in ``out_dir``."""
    from seqbench.reporting.html_report import write_report

    check_own_dirs(out_dir)
    return [write_report(out_dir, runs, plot_format, run_dirs), *write_merged_files(out_dir, runs, run_dirs)]


def _inside(path: Path, parent: Path) -> bool:
    path, parent = path.resolve(), parent.resolve()
    return path == parent or parent in path.parents


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, metavar="DIR...",
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="github", show_default=True,
              help="Output format: github (Markdown), grid, csv, json (summary, leaderboard, pairs and ranks "
                   "in one object) or latex (booktabs: the summary and a leaderboard per dataset).")
@click.option("--no-plots", is_flag=True, help="Write the tables and report.html, no plots.")
@click.option("--plot-format", type=click.Choice(PLOT_FORMATS), default="png", show_default=True,
              help="File format of the plots (report.html embeds PNG or SVG; PDF plots are embedded as PNG).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write one report.html (and its plots) of all DIRs here, and nothing into the DIRs.")
@click.option("--no-published", is_flag=True,
              help="Leave out the published results (other papers' accuracies) of the runs' datasets.")
def report(run_dirs: tuple[Path, ...], fmt: str, no_plots: bool, plot_format: str, out_dir: Path | None,
           no_published: bool) -> None:
    """Regenerate the tables, plots and report.html of run directories from their results.json.

    Nothing is trained. Without --out, each DIR gets its tables, plots, records.csv and
    report.html redrawn; with --out, one report.html of all DIRs (and its plots, summary.md and
    records.csv) is written there, and the DIRs are left untouched. With several directories the
    printed summary merges them: one row per model × dataset × run, and one leaderboard per
    dataset ranks every model of every run on it (runs on the same dataset must have used the
    same data: the same fingerprint). A model found in several runs is named ``model [run]``.
    """

    labels = _run_labels(run_dirs)
    runs = [(label, _load(path)) for label, path in zip(labels, run_dirs, strict=True)]
    try:
        check_same_data(runs)
    except ResultsError as exc:
        raise click.ClickException(str(exc)) from None
    if no_published:  # as if the runs had been made with --no-published (nothing is written back but the reports)
        for _, results in runs:
            results.setdefault("config", cast(RunConfig, {}))["published"] = False
    fmt_plots = None if no_plots else plot_format
    if out_dir is not None:
        inside = [str(path) for path in run_dirs if _inside(out_dir, path)]
        if inside:
            raise click.UsageError(
                f"--out {out_dir} is inside the input {inside[0]}; choose a directory outside the inputs"
            )
        written = _writing(out_dir, lambda: _report_into(out_dir, runs, fmt_plots, run_dirs))
        echo(f"{out_dir}: wrote {', '.join(str(p) for p in written)}", err=True)
    else:
        for path, (label, results) in zip(run_dirs, runs, strict=True):
            written = _writing(path, partial(_redraw, path, label, results, fmt_plots))
            echo(f"{path}: wrote {len(written)} files", err=True)
    try:
        table = summary_table(runs[0][1]) if len(runs) == 1 else merged_summary_table(runs)
        boards = leaderboards([(label, results, path) for (label, results), path in zip(runs, run_dirs, strict=True)])
        across = across_datasets(boards)
    except ResultsError as exc:
        raise click.ClickException(str(exc)) from None
    except MALFORMED as exc:
        raise _malformed("", exc) from None
    echo(console_report(runs, table, boards, across, fmt), nl=False)


def _thresholds(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Any]:
    try:
        return [parse_threshold(value) for value in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _directions(ctx: click.Context) -> Callable[[str], bool | None]:
    """Which way each metric scalar is better, as the metrics registered here declare
    (the plugins are loaded only when a limit on a metric plugin asks)."""

    def higher_is_better(scalar: str) -> bool | None:
        try:
            return registry_from(ctx).higher_is_better(scalar)
        except KeyError:
            raise ThresholdError(f"no metric registered here has the scalar {scalar!r}: install its plugin, so "
                                 "that compare knows whether higher is better") from None

    return higher_is_better


def _run_dir(path: Path) -> Path:
    """The run directory of a results path (a directory or its results.json)."""
    return path if path.is_dir() else path.parent


@click.command()
@click.argument("base", type=click.Path(exists=True, path_type=Path))
@click.argument("new", type=click.Path(exists=True, path_type=Path))
@click.option("--fail-on", "thresholds", multiple=True, callback=_thresholds, metavar="METRIC[.KEY]:LIMIT",
              help="Exit 1 when a difference is past this limit and significant: accuracy:-0.5 "
                   "(percentage points), time:+10% (median seconds per epoch), or a metric plugin's scalar "
                   "in its units or in % of BASE (top2.top2_accuracy:-0.01, top2:-1%; the sign is the "
                   "worse way, as the metric declares). Repeatable.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=DEFAULT_ALPHA,
              show_default=True, help="Significance level of the gate; intervals are at 1 − alpha.")
@click.option("--allow-missing", is_flag=True,
              help="Accept ok seeds of BASE that are missing or not ok in NEW (they are still listed).")
@format_option
@click.pass_context
def compare(ctx: click.Context, base: Path, new: Path, thresholds: list[Any], alpha: float, allow_missing: bool,
            fmt: str) -> None:
    """Compare run NEW with run BASE, pair by pair (model × dataset, over seeds).

    Prints per pair the accuracy difference NEW − BASE and the time ratio NEW / BASE, each
    with a confidence interval and a p-value: a permutation test over seeds and, where both
    runs stored test predictions of the same data, McNemar's exact test seed by seed (with a
    paired bootstrap interval). Each metric plugin's scalar results are compared too (NEW − BASE,
    permutation test over seeds). Warns when the runs differ in data, hardware or configuration.

    A pair fails a --fail-on limit only when its difference is past the limit and significant
    (p ≤ alpha; the paired prediction test decides where there is one). When no test can
    reach alpha (one seed, or three against three, and no predictions), the limit alone
    decides.

    \b
    Exit codes (the first that applies):
      3  nothing comparable: no model × dataset has an ok seed in both runs
      4  an ok seed of BASE is missing or not ok in NEW (unless --allow-missing)
      1  a significant regression past a --fail-on limit
      2  usage error (bad option or path)
      0  otherwise
    """
    try:
        comparison = compare_runs(_load(base), _load(new), thresholds, alpha=alpha,
                                  allow_missing=allow_missing, dirs=(_run_dir(base), _run_dir(new)),
                                  labels=(f"BASE {base}", f"NEW {new}"), directions=_directions(ctx))
    except ThresholdError as exc:
        raise click.UsageError(str(exc), ctx=ctx) from None
    except ResultsError as exc:
        raise click.ClickException(str(exc)) from None
    except MALFORMED as exc:
        raise _malformed("", exc) from None
    if fmt == "json":
        echo(comparison_json(comparison), nl=False)
    else:
        echo(render(comparison_table(comparison), fmt), nl=False)
        for warning in comparison.warnings:
            echo(f"warning: {warning}", err=True)
        echo(verdict(comparison), err=True)
    if comparison.exit_code:
        raise SystemExit(comparison.exit_code)
