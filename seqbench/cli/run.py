"""``seqbench run``: train and evaluate model x dataset pairs under the protocol."""

from __future__ import annotations

import contextlib
import datetime as _dt
import shlex
import signal
import sys
from pathlib import Path
from typing import Any, Mapping

import click

from seqbench.cli.common import registry_from
from seqbench.progress import RunObserver


#: Exit codes of ``seqbench run``.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_RAN = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM

EXIT_CODES_HELP = f"""\b
Exit codes:
  {EXIT_OK}    no pair failed and at least one ran (ok or diverged); skipped pairs say why
  {EXIT_FAILED}    a pair failed (its reason is in the results), or an error stopped the run (one line)
  {EXIT_USAGE}    the command line is wrong
  {EXIT_NOTHING_RAN}    nothing ran: every pair was skipped (no data, no GPU, ...)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); finished pairs are kept: continue with --resume DIR
  {EXIT_TERMINATED}  terminated (SIGTERM, as CI cancellation and `timeout` send); likewise
"""


class ConsoleObserver(RunObserver):
    """Prints progress: a bar per epoch on a terminal, one line per epoch otherwise."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self._bar: Any = None

    def run_start(self, out_dir: Path, total: int) -> None:
        click.echo(f"seqbench: {total} pair(s); writing results to {out_dir}")

    def pair_start(self, index: int, total: int, model: str, dataset: str, seed: int) -> None:
        click.echo(f"[{index}/{total}] {model} x {dataset} (seed {seed})")

    def epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None:
        if self.tty:
            self._bar = click.progressbar(length=n_batches, label=f"  epoch {epoch}/{epochs}", file=sys.stdout)
            self._bar.__enter__()

    def batch_done(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def epoch_end(self, record: Any, best_epoch: int) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        mark = " *" if best_epoch == record.epoch else ""
        click.echo(
            f"  epoch {record.epoch:>3}  loss {record.train_loss:.4f}  val {100 * record.val_accuracy:6.2f}%"
            f"  {record.epoch_seconds:6.1f}s{mark}"
        )

    def pair_end(self, record: Mapping[str, Any]) -> None:
        status = record["status"]
        if status == "ok":
            acc = record["metrics"]["accuracy"]["accuracy"] if "accuracy" in (record.get("metrics") or {}) else None
            text = f"test accuracy {100 * acc:.2f}%" if acc is not None else "done"
            click.echo(f"  -> {text}, best epoch {record['best_epoch']}/{record['epochs_run']}")
        else:
            click.echo(f"  -> {status}: {record.get('reason')}")

    def warn(self, message: str) -> None:
        click.echo(f"seqbench: warning: {message}", err=True)


def seeds_given(ctx: click.Context) -> bool:
    return ctx.get_parameter_source("seeds") is not click.core.ParameterSource.DEFAULT


def _parse_seeds(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        seeds = [int(s) for s in value.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not seeds or min(seeds) < 0:
        raise click.BadParameter(f"give one or more seeds, each 0 or more, got {value!r}")
    return list(dict.fromkeys(seeds))


def _parse_sets(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in value:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = val.strip()
    return out


@contextlib.contextmanager
def sigterm_interrupts() -> Any:
    """SIGTERM raises :class:`seqbench.runner.Terminated` (a KeyboardInterrupt) in the main thread."""
    from seqbench.runner import Terminated

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code(pairs: list[Mapping[str, Any]]) -> int:
    """:data:`EXIT_FAILED` when a pair failed, :data:`EXIT_NOTHING_RAN` when none ran, else 0."""
    from seqbench.results import DONE_STATUSES

    if any(p["status"] == "failed" for p in pairs):
        return EXIT_FAILED
    return EXIT_OK if any(p["status"] in DONE_STATUSES for p in pairs) else EXIT_NOTHING_RAN


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--all", "all_pairs", is_flag=True, help="Every model x every dataset.")
@click.option("-m", "--model", "models", multiple=True, help="Model to run (repeatable).")
@click.option("-d", "--dataset", "datasets", multiple=True, help="Dataset to run on (repeatable).")
@click.option("--seeds", default="0", callback=_parse_seeds, show_default=True, help="Comma-separated seeds; each pair runs once per seed.")
@click.option("--set", "overrides", multiple=True, callback=_parse_sets, metavar="KEY=VALUE", help="Override a hyperparameter (repeatable), e.g. --set lr=0.01.")
@click.option("--quick", is_flag=True, help="Smoke profile: 2 epochs on a 4,000-sample subset.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Output directory [default: results/<timestamp>/].")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), help="Continue the run in DIR with its own selection, skipping its finished pairs.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Root data directory [default: $SEQBENCH_DATA_DIR or the user cache].")
@click.option("--offline", is_flag=True, help="Never download missing data.")
@click.option("--no-standardize", is_flag=True, help="Feed raw pixels in [0, 1]: no per-channel standardisation.")
@click.option("--no-augment", is_flag=True, help="No train-time augmentation (flips, shifts) where a dataset declares it.")
@click.option("--no-plots", is_flag=True, help="Skip the plots (report.html is still written, without them).")
@click.option("--plot-format", type=click.Choice(("png", "svg", "pdf")), default="png", show_default=True, help="File format of the plots.")
@click.pass_context
def run(ctx: click.Context, all_pairs: bool, models: tuple[str, ...], datasets: tuple[str, ...], seeds: list[int],
        overrides: dict[str, str], quick: bool, out_dir: Path | None, resume_dir: Path | None,
        data_dir: Path | None, offline: bool, no_standardize: bool, no_augment: bool, no_plots: bool, plot_format: str) -> None:
    """Train and evaluate models on datasets under one protocol and write the results."""
    from seqbench.datasets import resolve_data_dir
    from seqbench.results import ResultsError
    from seqbench.runner import RunError, RunRequest, Terminated, resume_request, run_benchmark
    from seqbench.tables import summary_text

    if resume_dir and (all_pairs or models or datasets or overrides or quick or out_dir or seeds_given(ctx)
                       or no_standardize or no_augment):
        raise click.UsageError("--resume continues a run with its own selection; leave out --all, -m, -d, --seeds, "
                               "--set, --quick, --no-standardize, --no-augment and --out")
    if not (all_pairs or models or datasets or resume_dir):
        raise click.UsageError("choose pairs with --all, or with -m MODEL and/or -d DATASET")
    if all_pairs and (models or datasets):
        raise click.UsageError("--all runs every pair; leave out -m/-d, or drop --all")
    registry = registry_from(ctx)
    options = dict(download=not offline, plots=not no_plots, plot_format=plot_format, command=" ".join(["seqbench", *map(shlex.quote, sys.argv[1:])]))
    request = None
    try:
        with sigterm_interrupts():
            if resume_dir:
                request = resume_request(resume_dir, data_dir, **options)
            else:
                request = RunRequest(
                    models=list(models), datasets=list(datasets), seeds=seeds,
                    out_dir=out_dir or Path("results") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S"),
                    data_dir=resolve_data_dir(str(data_dir) if data_dir else None), overrides=overrides, quick=quick,
                    standardize=not no_standardize, augment=not no_augment, **options,
                )
            results = run_benchmark(registry, request, ConsoleObserver(sys.stdout.isatty()))
    except (RunError, ResultsError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt as exc:
        what, code = ("terminated", EXIT_TERMINATED) if isinstance(exc, Terminated) else ("interrupted", EXIT_INTERRUPTED)
        if request is not None:
            out = request.out_dir
            click.echo(f"\nseqbench: {what}; finished pairs are in {out}; continue with --resume {out}", err=True)
        ctx.exit(code)
    click.echo("")
    click.echo(summary_text(results))
    click.echo(f"\nresults: {request.out_dir}")
    code = exit_code(results["pairs"])
    if code == EXIT_NOTHING_RAN:
        click.echo("seqbench: nothing ran: every pair was skipped", err=True)
    ctx.exit(code)
