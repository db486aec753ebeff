"""``seqbench tune``: the same hyperparameter-search budget for every model, on validation only."""

from __future__ import annotations

import contextlib
import datetime as _dt
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from seqbench.cli.common import SettingRefused, complete_names, registry_from
from seqbench.cli.run import EXIT_INTERRUPTED, EXIT_TERMINATED, _parse_sets, _read_config, sigterm_interrupts
from seqbench.tuning.study import TuneObserver


class ConsoleTuneObserver(TuneObserver):
    """One line per finished trial on stderr."""

    def trial_end(self, record: Mapping[str, Any], finished: int, budget: str) -> None:
        value = record.get("value")
        text = f"val {100 * value:.2f}%" if value is not None else ""
        searched = " ".join(f"{k}={v}" for k, v in sorted(record.get("searched", {}).items()))
        reason = f": {record.get('reason')}" if record["state"] == "fail" else ""
        click.echo(f"[{record['model']} x {record['dataset']}] trial {record['trial']} {record['state']} "
                   f"{text} in {record['timing']['trial_seconds']:.1f}s ({finished} of {budget}) {searched}{reason}",
                   err=True)


@click.command()
@click.option("-m", "--model", "models", multiple=True, shell_complete=complete_names("model"),
              help="Model to tune, or a shell pattern (repeatable).")
@click.option("-d", "--dataset", "datasets", multiple=True, shell_complete=complete_names("dataset"),
              help="Dataset to tune on, or a shell pattern (repeatable).")
@click.option("--trials", type=click.IntRange(min=1), help="Budget: this many finished trials per model x dataset.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Budget: this many seconds of trials per model x dataset (instead of --trials).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the sampler, and of every trial's split, initialisation and shuffling.")
@click.option("--sampler", type=click.Choice(("tpe", "random")), default="tpe", show_default=True,
              help="Optuna sampler.")
@click.option("--pruner", type=click.Choice(("median", "halving", "none")), default="median", show_default=True,
              help="Optuna pruner: stop a trial whose validation accuracy trails the others' at the same epoch.")
@click.option("--space", multiple=True, metavar="KEY=LOW:HIGH|A,B|VALUE",
              help="Narrow or widen the search: a range (LOW:HIGH[:log]), values (A,B,C), or one fixed value; "
                   "MODEL.KEY for one model.")
@click.option("--set", "overrides", multiple=True, callback=_parse_sets, metavar="KEY=VALUE",
              help="Fix a hyperparameter for every trial, as for seqbench run (e.g. epochs=8, threads=1).")
@click.option("--max-train", type=click.IntRange(min=2), metavar="N",
              help="Tune on a seeded subset of N training samples.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Tune directory [default: results/tune-<timestamp>/].")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path),
              help="Continue the tune in DIR with its own settings.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Root data directory.")
@click.option("--offline", is_flag=True, help="Never download missing data.")
@click.option("--no-standardize", is_flag=True, help="No per-channel standardisation.")
@click.option("--no-augment", is_flag=True, help="No train-time augmentation.")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Train N trials at a time on a local Dask cluster.")
@click.option("--scheduler", metavar="ADDRESS", help="Train the trials on the Dask cluster at ADDRESS.")
@click.option("--dry-run", is_flag=True, help="Print each study's search space and fixed hyperparameters; run nothing.")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), is_eager=True,
              callback=_read_config, expose_value=False,
              help="TOML file of tune's options by long name (trials = 20, [space] lr = \"1e-4:1e-2\", [set] epochs = "
                   "8).")
@click.pass_context
def tune(ctx: click.Context, models: tuple[str, ...], datasets: tuple[str, ...], trials: int | None,
         timeout: float | None, seed: int, sampler: str, pruner: str, space: tuple[str, ...], overrides: dict[str, str],
         max_train: int | None, out_dir: Path | None, resume_dir: Path | None, data_dir: Path | None, offline: bool,
         no_standardize: bool, no_augment: bool, workers: int | None, scheduler: str | None, dry_run: bool) -> None:
    """Search each model's hyperparameters with the same budget, on the validation split only.

    Optuna (TPE, seeded) searches the space the models declare (seqbench list models --params),
    narrowed with --space; trials report validation accuracy each epoch and the pruner stops the
    hopeless ones. The studies live in DIR/study.db; a killed tune continues with --resume DIR.
    Then: seqbench run --params-from DIR.
    """
    from seqbench.datasets import resolve_data_dir
    from seqbench.planning import RunError, SettingError
    from seqbench.results import ResultsError
    from seqbench.runner import Terminated
    from seqbench.tuning.space import SpaceError, parse_entries
    from seqbench.tuning.study import TuneRequest, plan_tune, request_from_config, run_tune, stored_tune
    from seqbench.tuning.trial import PrunerSpec

    if resume_dir and (models or datasets or trials or timeout or space or overrides or max_train or out_dir):
        raise click.UsageError("--resume continues a tune with its own settings; leave out -m, -d, --trials, "
                               "--timeout, --space, --set, --max-train and --out")
    if not resume_dir and not (models and datasets):
        raise click.UsageError("choose what to tune with -m MODEL and -d DATASET")
    if not resume_dir and (trials is None) == (timeout is None):
        raise click.UsageError("give the budget of every model: --trials N or --timeout SECONDS")
    if workers and scheduler:
        raise click.UsageError("--workers starts a local cluster, --scheduler uses an existing one: give one of them")
    import importlib.util

    if importlib.util.find_spec("optuna") is None:  # imported only when a tune runs: it takes a while
        raise click.ClickException("seqbench tune needs Optuna: pip install 'seqbench[tune]'")
    registry = registry_from(ctx)
    command = " ".join(["seqbench", *map(shlex.quote, sys.argv[1:])])
    options: dict[str, Any] = {"download": not offline, "command": command}
    request = None
    try:
        if resume_dir:
            stored = stored_tune(resume_dir)
            if stored is None:
                raise RunError(f"--resume {resume_dir}: no tune there")
            request = request_from_config(stored["config"], resume_dir, data_dir, **options)
        else:
            request = TuneRequest(
                models=list(models), datasets=list(datasets), trials=trials, timeout=timeout, seed=seed,
                out_dir=out_dir or Path("results") / _dt.datetime.now().strftime("tune-%Y%m%d-%H%M%S"),
                data_dir=resolve_data_dir(str(data_dir) if data_dir else None), sampler=sampler,
                pruner=PrunerSpec(kind=pruner), space=parse_entries(space), overrides=overrides, max_train=max_train,
                standardize=not no_standardize, augment=not no_augment, **options)
        if workers and not request.resume:
            request = _split_threads(registry, request, workers)
        if dry_run:
            for study in plan_tune(registry, request):
                click.echo(f"{study.model} x {study.dataset}: searches "
                           + " ".join(f"{k}={d.describe()}" for k, d in study.space.items())
                           + "; fixed " + " ".join(f"{k}={v}" for k, v in study.params.items() if k not in study.space))
            return
        pool, plugins = _pool(ctx, registry, request, workers, scheduler, data_dir)
        with sigterm_interrupts(), (pool.open() if hasattr(pool, "open") else contextlib.nullcontext(pool)) as opened:
            summary = run_tune(registry, request, opened, plugins, ConsoleTuneObserver())
    except (SettingError, SpaceError) as exc:
        raise SettingRefused(str(exc)) from None
    except (RunError, ResultsError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt as exc:
        code = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
        if request is not None:
            click.echo(f"\nseqbench: stopped; finished trials are in {request.out_dir}; continue with --resume "
                       f"{request.out_dir}", err=True)
        ctx.exit(code)
    from seqbench.tuning.report import summary_lines, write_report

    try:
        write_report(request.out_dir, summary)
    except Exception as exc:  # the trials are safe; a report that cannot be drawn is a warning
        click.echo(f"seqbench: warning: could not write the tune's report: {exc}", err=True)
    click.echo("\n".join(summary_lines(summary)))
    click.echo(f"tune: {request.out_dir}; train the winners with: seqbench run --params-from {request.out_dir} "
               "--seeds 0,1,2",
               err=True)


def _split_threads(registry: Any, request: Any, workers: int) -> Any:
    """``request`` with ``threads`` so that ``workers`` local workers share this machine's cores."""
    from dataclasses import replace

    from seqbench.builtin_models import available_cores
    from seqbench.executors.resources import split_threads, threads_per_worker
    from seqbench.planning import RunRequest

    probe = RunRequest(request.models, request.datasets, [0], request.out_dir, request.data_dir, request.overrides)
    split = split_threads(registry, probe, threads_per_worker(workers, available_cores()))
    return replace(request, overrides=split.overrides)


def _pool(ctx: click.Context, registry: Any, request: Any, workers: int | None, scheduler: str | None,
          data_dir: Path | None) -> tuple[Any, Any]:
    """Where the trials train (here, or a Dask cluster) and how workers load their plugins."""
    from seqbench.executors.worker import PluginSource
    from seqbench.tuning.pool import DaskPool, InProcess

    plugins = PluginSource(strict=(ctx.find_root().obj or {}).get("strict_plugins") or None)
    if not (workers or scheduler):
        return InProcess(registry), plugins
    try:
        from seqbench.executors.dask_executor import DaskExecutor
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    from seqbench.builtin_models import available_cores

    if scheduler:
        return DaskPool(DaskExecutor(plugins, scheduler=scheduler, data_dir=data_dir)), plugins
    return DaskPool(DaskExecutor(plugins, workers=workers, data_dir=request.data_dir, cores=available_cores())), plugins
