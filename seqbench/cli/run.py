"""``seqbench run``: train and evaluate model x dataset pairs under the protocol."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from seqbench.cli.common import SettingRefused, complete_names, echo, registry_from
from seqbench.progress import Eta, PlannedPair, RunObserver, Unavailable, accuracy_of, duration
from seqbench.reporting.tables import FORMATS

#: Where a run goes without --out: ``runs/<timestamp>/`` in the current directory.
DEFAULT_OUT = Path("runs")

#: Exit codes of ``seqbench run``.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_RAN, EXIT_DATA_MISSING = 0, 1, 2, 3, 4
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM

EXIT_CODES_HELP = f"""\b
Exit codes:
  {EXIT_OK}    no pair failed and at least one ran (ok or diverged); skipped pairs say why
  {EXIT_FAILED}    a pair failed (its reason is in the results), or an error stopped the run (one line)
  {EXIT_USAGE}    the command line is wrong
  {EXIT_NOTHING_RAN}    nothing ran: every pair was skipped (no data, no GPU, ...)
  {EXIT_DATA_MISSING}    --all: a dataset could not be loaded, so the run is partial (--allow-missing-data: 0)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); finished pairs are kept: continue with --resume DIR
  {EXIT_TERMINATED}  terminated (SIGTERM, as CI cancellation and `timeout` send); likewise
"""


class ConsoleObserver(RunObserver):
    """Progress on stderr: each pair with the run's elapsed time and time left, then a bar per
    epoch on a terminal, or one line per epoch ("epoch 3/40") when piped."""

    def __init__(self, tty: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.tty = tty
        self._bar: Any = None
        self._clock = clock
        self._start = clock()
        self._eta = Eta([])
        self._epochs = 0
        self._out: Path | None = None

    def _times(self) -> str:
        left = self._eta.left()
        about = f", about {duration(left)} left" if left is not None else ""
        return f"elapsed {duration(self._clock() - self._start)}{about}"

    def run_start(self, out_dir: Path, plan: Sequence[PlannedPair], unavailable: Sequence[Unavailable],
                  resume: bool) -> None:
        self._start, self._eta, self._out = self._clock(), Eta(plan), out_dir
        finished = sum(p.done for p in plan)
        before = f" ({finished} finished before)" if finished else ""
        _err(f"seqbench: {len(plan) - finished} pair(s) to run{before}; writing results to {out_dir}")
        for line in left_out_lines(unavailable):
            _err(line)

    def unavailable(self, item: Unavailable, pairs: int) -> None:
        self._eta.drop_dataset(item.name)
        _err(f"seqbench: cannot run here, left out with its {pairs} pair(s): {item.kind} {item.name}: {item.reason}")

    def pair_start(self, index: int, total: int, model: str, dataset: str, seed: int) -> None:
        self._eta.pair_start((model, dataset, seed))
        _err(f"[{index}/{total}] {model} x {dataset} (seed {seed})  {self._times()}")

    def epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None:
        self._epochs = epochs
        if self.tty:
            self._bar = click.progressbar(length=n_batches, label=f"  epoch {epoch}/{epochs}", file=sys.stderr)
            self._bar.__enter__()

    def batch_done(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def epoch_end(self, record: Any, best_epoch: int) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        self._eta.epoch_end(record.epoch_seconds + record.val_seconds, self._epochs)
        mark = " *" if best_epoch == record.epoch else "  "
        width = len(str(self._epochs))
        _err(
            f"  epoch {record.epoch:>{width}}/{self._epochs}  loss {record.train_loss:.4f}"
            f"  val {100 * record.val_accuracy:6.2f}%  {record.epoch_seconds:6.1f}s{mark}  {self._times()}"
        )

    def pair_end(self, record: Mapping[str, Any]) -> None:
        self._eta.pair_end(record.get("epochs_run") or 0)
        status = record["status"]
        if status == "ok":
            acc = accuracy_of(record)
            text = f"test accuracy {100 * acc:.2f}%" if acc is not None else "done"
            _err(f"  -> {text}, best epoch {record['best_epoch']}/{record['epochs_run']}{_on_worker(record)}")
        else:
            _err(f"  -> {status}: {record.get('reason')}")
            if record.get("traceback"):
                from seqbench.results import pair_stem

                stem = pair_stem(record["model"], record["dataset"], record["seed"])
                _err(f"     its traceback: seqbench show {self._out} {stem}")

    def warn(self, message: str) -> None:
        _err(f"seqbench: warning: {message}")

    def run_end(self, results: Mapping[str, Any]) -> None:
        _err(f"seqbench: done in {duration(self._clock() - self._start)}")


def _on_worker(record: Mapping[str, Any]) -> str:
    """`` on worker ADDRESS (host H)`` for a pair a Dask worker ran."""
    worker = record.get("worker") or {}
    return f" on worker {worker.get('address')} (host {worker.get('host')})" if worker else ""


def _err(line: str) -> None:
    echo(line, err=True)


def left_out_lines(unavailable: Sequence[Unavailable]) -> list[str]:
    """What the run leaves out, one line per kind and reason."""
    groups: dict[tuple[str, str], list[str]] = {}
    for item in unavailable:
        groups.setdefault((item.kind, item.reason), []).append(item.name)
    lines = [f"seqbench: cannot run here, left out: {kind}{'s' if len(names) > 1 else ''} {', '.join(names)}: {reason}"
             for (kind, reason), names in groups.items()]
    return lines + (["  (--include-unavailable keeps them, as skipped records)"] if lines else [])


def seeds_given(ctx: click.Context) -> bool:
    return ctx.get_parameter_source("seeds") is not ParameterSource.DEFAULT


def parse_seeds(value: str) -> list[int]:
    """The seeds of ``--seeds`` text (``0,1,2``), without repeats; a ValueError saying what is wrong."""
    try:
        seeds = [int(s) for s in value.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {value!r}") from None
    if not seeds or min(seeds) < 0:
        raise ValueError(f"give one or more seeds, each 0 or more, got {value!r}")
    return list(dict.fromkeys(seeds))


def _parse_seeds(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        return parse_seeds(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _out_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """``--out``/``--resume`` as a path; an empty one is refused (it would be the current directory)."""
    if value is not None and not value.strip():
        raise click.BadParameter("an empty path; name a directory")
    return None if value is None else Path(value)


def _parse_sets(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in value:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = val.strip()
    return out


#: Where ``--config``'s own ``set`` table waits to be merged under the command line's ``--set``.
_CONFIG_SET = "seqbench.config_set"


def _read_config(ctx: click.Context, param: click.Parameter, path: Path | None) -> Path | None:
    """Make the options of a ``--config`` TOML file the defaults: the command line wins."""
    if path is not None:
        values = read_config(ctx.command, path)
        ctx.default_map = {**(ctx.default_map or {}), **values}
        ctx.meta[_CONFIG_SET] = _parse_sets(ctx, param, tuple(values.get("overrides", ())))
    return path


def read_config(command: click.Command, path: Path) -> dict[str, Any]:
    """A TOML file of ``command``'s options, keyed by long option name (``data-dir = "..."``), as
    click parameter defaults; an unknown key or a value of the wrong type is a ``BadParameter``."""
    import tomllib

    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise click.BadParameter(f"{path}: {exc}") from None
    options = {
        max(o.opts, key=len).lstrip("-"): o for o in command.params
        if isinstance(o, click.Option) and o.name not in ("config", "help")
    }
    values = {}
    for key, value in data.items():
        option = options.get(key.replace("_", "-"))
        if option is None:
            raise click.BadParameter(f"unknown key {key!r} in {path}; known: {', '.join(sorted(options))}")
        values[option.name] = _config_value(option, key, value, path)
    return values


def _config_value(option: click.Option, key: str, value: Any, path: Path) -> Any:
    """``value`` from the TOML file as the command line would give it."""
    def bad(expected: str) -> click.BadParameter:
        return click.BadParameter(f"{key!r} in {path} must be {expected}, got {value!r}")

    if option.is_flag:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if option.name in ("overrides", "space") and isinstance(value, dict):
        return [f"{k}={_toml_text(v)}" for k, v in value.items()]
    if option.name == "seeds":
        seeds = value if isinstance(value, (list, str)) else [value]
        text = seeds if isinstance(seeds, str) else ",".join(map(str, seeds))
        if isinstance(seeds, list) and not all(isinstance(v, int) and not isinstance(v, bool) for v in seeds):
            raise bad("a seed or a list of seeds, each an integer 0 or more")
        try:
            parse_seeds(text)
        except ValueError as exc:
            raise click.BadParameter(f"{key!r} in {path}: {exc}") from None
        return text
    if isinstance(option.type, (click.types.IntParamType, click.types.FloatParamType)):
        number = int if isinstance(option.type, click.types.IntParamType) else (int, float)
        if isinstance(value, bool) or not isinstance(value, number):
            raise bad("a number" if number is not int else "an integer")
        return value
    if option.multiple:
        items = [value] if isinstance(value, str) else value
        if not (isinstance(items, list) and all(isinstance(v, str) for v in items)):
            raise bad("a text or a list of texts" + (", or a table" if option.name == "overrides" else ""))
        return items
    if isinstance(option.type, (click.types.IntParamType, click.types.FloatParamType)) \
            and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise bad("a text")
    return value


def _toml_text(value: Any) -> str:
    """A TOML value as ``--set`` text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _command_line_wins(ctx: click.Context, all_pairs: bool, models: tuple[str, ...],
                       datasets: tuple[str, ...]) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    """``--all`` against ``-m``/``-d``: what the command line says replaces what the config file says."""
    def from_config(name: str) -> bool:
        return ctx.get_parameter_source(name) is ParameterSource.DEFAULT_MAP

    if all_pairs and (models or datasets):
        if from_config("all_pairs") and not (from_config("models") and from_config("datasets")):
            return False, models, datasets
        if not from_config("all_pairs"):
            return True, () if from_config("models") else models, () if from_config("datasets") else datasets
    return all_pairs, models, datasets


@contextlib.contextmanager
def sigterm_interrupts() -> Any:
    """SIGTERM raises :class:`seqbench.runner.Terminated` (a KeyboardInterrupt) in the main thread."""
    from seqbench.runner import Terminated
    from seqbench.timeouts import request_stop, stops_on

    def terminate(signum: int, frame: Any) -> None:
        request_stop(Terminated)

    if threading.current_thread() is not threading.main_thread():  # leave signals alone
        yield
        return
    with stops_on(signal.SIGTERM, terminate):
        yield


def exit_code(pairs: Sequence[Mapping[str, Any]]) -> int:
    """:data:`EXIT_FAILED` when a pair failed, :data:`EXIT_NOTHING_RAN` when none ran, else 0."""
    from seqbench.results import DONE_STATUSES

    if any(p["status"] == "failed" for p in pairs):
        return EXIT_FAILED
    return EXIT_OK if any(p["status"] in DONE_STATUSES for p in pairs) else EXIT_NOTHING_RAN


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--all", "all_pairs", is_flag=True,
              help="Every model x every dataset that can run here (the pixel-by-pixel tasks, hours a pair "
              "on a CPU, only when named with -d).")
@click.option("-m", "--model", "models", multiple=True, shell_complete=complete_names("model"),
              help="Model to run, or a shell pattern such as 'rnn-*' (repeatable).")
@click.option("-d", "--dataset", "datasets", multiple=True, shell_complete=complete_names("dataset"),
              help="Dataset to run on, or a shell pattern (repeatable).")
@click.option("--seeds", default="0", callback=_parse_seeds, show_default=True,
              help="Comma-separated seeds; each pair runs once per seed.")
@click.option("--set", "overrides", multiple=True, callback=_parse_sets, metavar="KEY=VALUE",
              help="Override a hyperparameter (repeatable), e.g. --set lr=0.01.")
@click.option("--quick", is_flag=True, help="Smoke profile: 2 epochs on a 4,000-sample subset.")
@click.option("--out", "out_dir", type=click.Path(), callback=_out_path,
              help="Output directory, new or empty [default: runs/<timestamp>/ in the current directory].")
@click.option("--allow-nonempty-out", is_flag=True,
              help="Write a new run into an --out directory that holds other files (files of the same names are "
                   "overwritten).")
@click.option("--resume", "resume_dir", type=click.Path(), callback=_out_path,
              help="Continue the run in DIR with its own selection, skipping its finished pairs.")
@click.option("--data-dir", type=click.Path(path_type=Path),
              help="Root data directory [default: $SEQBENCH_DATA_DIR or the user cache].")
@click.option("--offline", is_flag=True, help="Never download missing data.")
@click.option("--no-standardize", is_flag=True, help="Feed raw pixels in [0, 1]: no per-channel standardisation.")
@click.option("--no-augment", is_flag=True,
              help="No train-time augmentation (flips, shifts) where a dataset declares it.")
@click.option("--no-plots", is_flag=True, help="Skip the plots (report.html is still written, without them).")
@click.option("--plot-format", type=click.Choice(("png", "svg", "pdf")), default="png", show_default=True,
              help="File format of the plots.")
@click.option("--no-published", is_flag=True,
              help="Leave out the published results (other papers' accuracies) shown beside the run's datasets in "
                   "summary.md and report.html.")
@click.option("--allow-missing-data", is_flag=True,
              help=f"With --all, exit 0 even when a dataset could not be loaded (else {EXIT_DATA_MISSING}); the "
                   "reports still say what is missing.")
@click.option("--include-unavailable", is_flag=True,
              help="Keep models and datasets that cannot run here (not named with -m/-d) as skipped pairs, instead of "
                   "leaving them out.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="github", show_default=True,
              help="Format of the summary table on stdout (progress goes to stderr).")
@click.option("--save-models", is_flag=True,
              help="Keep each ok pair's best-validation model beside its record (pairs/<pair>.ckpt/, with a "
                   "manifest and SHA-256), for seqbench eval.")
@click.option("--dry-run", is_flag=True,
              help="List the pairs and the hyperparameters each would use; run and write nothing.")
@click.option("--params-from", "params_from", type=click.Path(exists=True, file_okay=False, path_type=Path),
              metavar="TUNE_DIR",
              help="Train each model with its best trial's hyperparameters in the tune in TUNE_DIR (seqbench tune); "
                   "-m/-d default to the tune's. --set MODEL.KEY=... still overrides one.")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Train N pairs at a time on a local Dask cluster of N processes, each with cores/N threads "
                   "(--set threads=...), plus one per GPU for GPU pairs. Needs: pip install 'seqbench[dask]'.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Train the pairs on the workers of the Dask cluster at ADDRESS (tcp://host:8786); they load "
                   "plugins and data themselves (from --data-dir if given, else their default).")
@click.option("--pair-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop a pair that trains longer than this, record it as failed with the reason, and go on "
                   "[default: no limit].")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), is_eager=True,
              callback=_read_config, expose_value=False,
              help="TOML file of run's options by long name (model = [\"rnn-*\"], seeds = [0, 1], [set] lr = 0.01); "
                   "the command line wins.")
@click.pass_context
def run(ctx: click.Context, all_pairs: bool, models: tuple[str, ...], datasets: tuple[str, ...], seeds: list[int],
        overrides: dict[str, str], quick: bool, out_dir: Path | None, allow_nonempty_out: bool, resume_dir: Path | None,
        data_dir: Path | None, offline: bool, no_standardize: bool, no_augment: bool, no_plots: bool, plot_format: str,
        no_published: bool, allow_missing_data: bool, include_unavailable: bool, fmt: str, save_models: bool,
        dry_run: bool, params_from: Path | None, workers: int | None, scheduler: str | None,
        pair_timeout: float | None) -> None:
    """Train and evaluate models on datasets under one protocol and write the results.

    Progress goes to stderr and the summary table to stdout; the run's events are logged to
    events.jsonl in its directory.
    """
    from seqbench.datasets import resolve_data_dir
    from seqbench.planning import RunError, RunRequest, SettingError
    from seqbench.reporting.disclosure import missing_lines, partial_note
    from seqbench.reporting.leaderboard_tables import run_leaderboard_text
    from seqbench.reporting.tables import summary_text
    from seqbench.results import ResultsError, as_record
    from seqbench.runner import Terminated, resume_request, run_benchmark

    all_pairs, models, datasets = _command_line_wins(ctx, all_pairs, models, datasets)
    if ctx.get_parameter_source("overrides") is ParameterSource.COMMANDLINE:
        overrides = {**ctx.meta.get(_CONFIG_SET, {}), **overrides}
    if resume_dir and (all_pairs or models or datasets or overrides or quick or out_dir or seeds_given(ctx)
                       or no_standardize or no_augment or include_unavailable or params_from):
        raise click.UsageError("--resume continues a run with its own selection; leave out --all, -m, -d, --seeds, "
                               "--set, --quick, --no-standardize, --no-augment, --include-unavailable, --params-from "
                               "and --out")
    if params_from and all_pairs:
        raise click.UsageError("--params-from runs the models of a tune: leave out --all (-m/-d choose among them)")
    tuned = None
    if params_from:
        models, datasets, overrides, tuned = _tuned(ctx, params_from, models, datasets, overrides)
    if resume_dir and save_models:
        raise click.UsageError("--resume keeps the run's own --save-models setting; leave it out")
    if not (all_pairs or models or datasets or resume_dir):
        raise click.UsageError("choose pairs with --all, or with -m MODEL and/or -d DATASET")
    if all_pairs and (models or datasets):
        raise click.UsageError("--all runs every pair; leave out -m/-d, or drop --all")
    if scheduler is not None and not scheduler.strip():
        raise click.BadParameter("give an address such as tcp://host:8786", ctx=ctx, param_hint="--scheduler")
    if workers and scheduler:
        raise click.UsageError("--workers starts a local cluster, --scheduler uses an existing one: give one of them")
    registry = registry_from(ctx)
    options: dict[str, Any] = dict(download=not offline, plots=not no_plots, plot_format=plot_format,
                                   published=not no_published, pair_timeout=pair_timeout,
                                   command=" ".join(["seqbench", *map(shlex.quote, sys.argv[1:])]))
    request = None
    try:
        with sigterm_interrupts():
            if resume_dir:
                request = resume_request(resume_dir, data_dir, **options)
            else:
                request = RunRequest(
                    models=list(models), datasets=list(datasets), seeds=seeds,
                    out_dir=out_dir or DEFAULT_OUT / _dt.datetime.now().strftime("%Y%m%d-%H%M%S"),
                    allow_nonempty=allow_nonempty_out,
                    data_dir=resolve_data_dir(str(data_dir) if data_dir else None), overrides=overrides, quick=quick,
                    standardize=not no_standardize, augment=not no_augment, include_unavailable=include_unavailable,
                    save_models=save_models, tuned=tuned, **options,
                )
            if workers and not request.resume:
                request = _split_threads(registry, request, workers)
            if dry_run:
                _dry_run(registry, request, fmt)
                return
            executor = _dask_executor(ctx, registry, request, workers, scheduler, data_dir) \
                if workers or scheduler is not None else None
            results = as_record(run_benchmark(registry, request, ConsoleObserver(sys.stderr.isatty()), executor))
    except SettingError as exc:
        raise SettingRefused(str(exc)) from None
    except (RunError, ResultsError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        what, code = ("terminated", EXIT_TERMINATED) if terminated else ("interrupted", EXIT_INTERRUPTED)
        if request is not None:
            out = request.out_dir
            _err(f"\nseqbench: {what}; finished pairs are in {out}; continue with --resume {out}")
        ctx.exit(code)
    missing = missing_lines(results)
    if missing and fmt in ("github", "grid"):  # at the top of the summary people read; csv and json stay data
        echo(f"{partial_note(results)}\n" + "".join(f"  - {line}\n" for line in missing))
    echo(summary_text(results, fmt), nl=False)
    if fmt in ("github", "grid"):
        echo(run_leaderboard_text(request.out_dir, results, fmt), nl=False)
    _err(f"results: {request.out_dir}")
    code = exit_code(results["pairs"])
    if code == EXIT_NOTHING_RAN:
        _err("seqbench: nothing ran: every pair was skipped")
    lost = [u["name"] for u in (results["config"].get("unavailable") or []) if u.get("kind") == "dataset"]
    if code == EXIT_OK and all_pairs and lost and not allow_missing_data:
        _err(f"seqbench: --all: dataset(s) {', '.join(lost)} could not be loaded (exit {EXIT_DATA_MISSING};"
             " --allow-missing-data accepts that)")
        code = EXIT_DATA_MISSING
    ctx.exit(code)


def _tuned(ctx: click.Context, tune_dir: Path, models: tuple[str, ...], datasets: tuple[str, ...],
           overrides: dict[str, str]) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str], dict[str, Any]]:
    """The models, datasets and ``--set`` of a run trained with a tune's best hyperparameters
    (the command line's ``--set`` wins), and the record of where they came from."""
    from seqbench.planning import RunError, check_names
    from seqbench.tuning.summary import TuneDirError, read_tune, tuned_overrides

    registry = registry_from(ctx)
    try:
        tune = read_tune(tune_dir)
        studies = tune.get("studies") or []
        models = models or tuple(dict.fromkeys(s["model"] for s in studies))
        datasets = datasets or tuple(dict.fromkeys(s["dataset"] for s in studies))
        names = check_names("model", list(models), registry.models)
        data = check_names("dataset", list(datasets), registry.datasets)
        best, tuned = tuned_overrides(tune, tune_dir, names, data)
    except (TuneDirError, RunError) as exc:
        raise click.ClickException(str(exc)) from None
    return models, datasets, {**best, **overrides}, tuned


def _split_threads(registry: Any, request: Any, workers: int) -> Any:
    """``request`` with ``threads`` set so that ``workers`` local workers share this machine's cores."""
    from seqbench.builtin_models import available_cores
    from seqbench.executors.resources import split_threads, threads_per_worker

    return split_threads(registry, request, threads_per_worker(workers, available_cores()))


def _dask_executor(ctx: click.Context, registry: Any, request: Any, workers: int | None, scheduler: str | None,
                   data_dir: Path | None) -> Any:
    """The executor of ``--workers``/``--scheduler``: workers load the plugins as this command
    does, and their data from the run's data directory (``--scheduler``: ``--data-dir`` or theirs)."""
    try:
        from seqbench.executors.dask_executor import DaskExecutor
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    from seqbench.builtin_models import available_cores
    from seqbench.executors.resources import is_gpu_pair, threads_per_worker, visible_gpus
    from seqbench.executors.worker import PluginSource
    from seqbench.planning import plan_run

    plugins = PluginSource(strict=(ctx.find_root().obj or {}).get("strict_plugins") or None)
    if scheduler:
        _err(f"seqbench: training on the Dask cluster at {scheduler}")
        return DaskExecutor(plugins, scheduler=scheduler, data_dir=data_dir)
    assert workers is not None, "the caller asks for an executor with --workers or --scheduler"
    cores = available_cores()
    gpus = tuple(visible_gpus()) if any(is_gpu_pair(p) for p in plan_run(registry, request).pairs) else ()
    gpu_text = f", and {len(gpus)} GPU worker(s), one GPU each" if gpus else ""
    _err(f"seqbench: training on a local Dask cluster of {workers} worker(s) sharing {cores} core(s), "
         f"{threads_per_worker(workers, cores)} thread(s) each{gpu_text}")
    return DaskExecutor(plugins, workers=workers, data_dir=request.data_dir, cores=cores, gpus=gpus)


def _dry_run(registry: Any, request: Any, fmt: str) -> None:
    """Print the pairs a run would train, with their hyperparameters, and what it leaves out."""
    from seqbench.planning import plan_run
    from seqbench.runner import finished_pairs

    plan = plan_run(registry, request)
    done = finished_pairs(request.out_dir) if request.resume else {}
    todo = [p for p in plan.pairs if p.key not in done]
    for line in left_out_lines(plan.unavailable):
        _err(line)
    if done:
        _err(f"seqbench: {len(done)} pair(s) finished before")
    if fmt == "json":
        echo(json.dumps({
            "pairs": [{"model": p.model, "dataset": p.dataset, "seed": p.seed, "params": p.params} for p in todo],
            "unavailable": [u.as_dict() for u in plan.unavailable],
        }, indent=2))
        return
    rows: dict[tuple[str, str], list[Any]] = {}
    for p in todo:
        row = rows.setdefault((p.model, p.dataset), [p.model, p.dataset, [], _params_text(p.params)])
        row[2].append(str(p.seed))
    table = [[m, d, ",".join(seeds), params] for m, d, seeds, params in rows.values()]
    headers = ["model", "dataset", "seeds", "hyperparameters"]
    if fmt == "csv":
        import csv
        import io

        from seqbench.safe_text import csv_cell

        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([headers, *([csv_cell(c) for c in row] for row in table)])
        echo(buffer.getvalue(), nl=False)
        return
    from tabulate import tabulate

    echo(tabulate(table, headers=headers, tablefmt=fmt, disable_numparse=True))


def _params_text(params: Mapping[str, Any] | None) -> str:
    """``key=value ...`` without the seed; ``?`` when the model's defaults fail (so will the pair)."""
    if params is None:
        return "?"
    return " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in params.items() if k != "seed")
