"""``seqbench eval``: saved models (``seqbench run --save-models``) on other datasets."""

from __future__ import annotations

import datetime as _dt
import shlex
import sys
from pathlib import Path

import click

from seqbench.cli.common import complete_names, registry_from
from seqbench.cli.run import ConsoleObserver, _err, _parse_sets
from seqbench.reporting.tables import FORMATS


@click.command("eval")
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-d", "--dataset", "datasets", multiple=True, required=True, shell_complete=complete_names("dataset"),
              help="Dataset to evaluate on, or a shell pattern (repeatable): same steps x features and classes as "
                   "the models' training data.")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), help="Output directory [default: results/eval-<timestamp>/]."
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Root data directory [default: $SEQBENCH_DATA_DIR or the user cache].",
)
@click.option("--offline", is_flag=True, help="Never download missing data.")
@click.option("--set", "overrides", multiple=True, callback=_parse_sets, metavar="KEY=VALUE",
              help="Replace a stored hyperparameter for evaluating (repeatable), e.g. --set threads=1.")
@click.option("--no-plots", is_flag=True, help="Skip the plots (report.html is still written, without them).")
@click.option(
    "--plot-format",
    type=click.Choice(("png", "svg", "pdf")),
    default="png",
    show_default=True,
    help="File format of the plots.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="github", show_default=True,
              help="Format of the summary table on stdout (progress goes to stderr).")
@click.pass_context
def evaluate(ctx: click.Context, checkpoints: tuple[Path, ...], datasets: tuple[str, ...], out_dir: Path | None,
             data_dir: Path | None, offline: bool, overrides: dict[str, str], no_plots: bool, plot_format: str,
             fmt: str) -> None:
    """Evaluate saved models on datasets: CHECKPOINTS are run directories of `seqbench run
    --save-models` (all their checkpoints), or single checkpoints (pairs/<pair>.ckpt.json).

    Each model reads each dataset's test split once, preprocessed as its training data was;
    the results are a run directory (results.json, tables, report.html) whose records name the
    checkpoint and the training data. A model x dataset whose steps, features or classes differ
    is refused before anything is evaluated.
    """
    from seqbench.checkpoints import CheckpointError
    from seqbench.datasets import resolve_data_dir
    from seqbench.evaluation import EvalRequest
    from seqbench.evaluation import evaluate as run_eval
    from seqbench.planning import RunError
    from seqbench.reporting.tables import summary_text
    from seqbench.results import ResultsError, as_record

    registry = registry_from(ctx)
    request = EvalRequest(
        checkpoints=list(checkpoints), datasets=list(datasets),
        out_dir=out_dir or Path("results") / _dt.datetime.now().strftime("eval-%Y%m%d-%H%M%S"),
        data_dir=resolve_data_dir(str(data_dir) if data_dir else None), overrides=overrides, download=not offline,
        plots=not no_plots, plot_format=plot_format, command=" ".join(["seqbench", *map(shlex.quote, sys.argv[1:])]),
    )
    try:
        results = as_record(run_eval(registry, request, ConsoleObserver(sys.stderr.isatty())))
    except (CheckpointError, RunError, ResultsError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary_text(results, fmt), nl=False)
    _err(f"results: {request.out_dir}")
