"""Typed records of seqbench's results: a pair record, a run's ``results.json``, its config and sessions.

The JSON Schemas beside this module (``pair.schema.json``, ``results.schema.json``) are the one
description of the format; these TypedDicts are its Python mirror, so that readers get typed
records instead of digging into untyped dicts. ``tests/test_schema.py`` checks that every
TypedDict here has exactly the properties of its schema object, with the same required keys, so
the two cannot drift apart. A key the schema requires is a plain key here; every other key is
optional (the ``total=False`` half of each type). Free-form objects (hyperparameters, a metric
plugin's result, the protocol) stay ``dict[str, Any]``: their keys belong to plugins, not to
the format.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

#: ``"major.minor"``; the integer 1 of runs before 1.1 (1.0) until :func:`seqbench.results.migrate`.
SchemaVersion = str | int
Status = Literal["ok", "diverged", "skipped", "failed"]


# --- where the numbers were made -----------------------------------------------------------------


class Git(TypedDict):
    commit: str
    dirty: bool | None
    diff_sha256: str | None


class Machine(TypedDict, total=False):
    platform: str
    cpu: str
    cpu_count: int | None
    memory_bytes: int | None
    gpus: list[str]
    hostname: str


class Cuda(TypedDict, total=False):
    driver: str | None
    runtime: dict[str, str]


class BlasLibrary(TypedDict, total=False):
    user_api: str | None
    internal_api: str | None
    prefix: str | None
    version: str | None
    num_threads: int | None
    threading_layer: str | None
    architecture: str | None


class Environment(TypedDict, total=False):
    python: str
    packages: dict[str, str | None]
    plugins: dict[str, str | None]
    git_commit: str | None
    git: Git | None
    machine: Machine
    cuda: Cuda | None
    blas: list[BlasLibrary]
    thread_env: dict[str, str]


# --- a pair record -------------------------------------------------------------------------------


class Worker(TypedDict):
    address: str
    host: str
    pid: int


class DatasetInfo(TypedDict, total=False):
    name: str
    seq_len: int
    n_features: int
    class_names: list[str]
    fingerprint: str
    provenance: str | None
    meta: dict[str, Any]
    n_train_full: int
    n_test_full: int
    n_train: int
    n_val: int
    n_test: int


class _EpochRequired(TypedDict):
    epoch: int
    train_loss: float | None
    val_accuracy: float | None
    epoch_seconds: float


class Epoch(_EpochRequired, total=False):
    """One entry of a pair's ``history``."""

    val_seconds: float | None


class AccuracyResult(TypedDict, total=False):
    accuracy: float
    n: int


ClassScores = TypedDict(  # "class" is a keyword: the functional form
    "ClassScores", {"class": str, "precision": float, "recall": float, "f1": float, "support": int}, total=False
)


class PerClassResult(TypedDict, total=False):
    classes: list[ClassScores]
    macro: dict[str, float]


class ConfusionResult(TypedDict, total=False):
    labels: list[str]
    matrix: list[list[int]]


class Metrics(TypedDict, total=False):
    """The built-in metrics' results; a metric plugin's result sits beside them under its own
    name (an object whose keys are the plugin's)."""

    accuracy: AccuracyResult
    per_class: PerClassResult
    confusion: ConfusionResult


class Timing(TypedDict, total=False):
    """Seconds, samples per second and bytes; a plugin's timings may sit beside them (numbers)."""

    epoch_seconds_median: float
    epoch_seconds_min: float
    epoch_seconds_mean: float
    epochs_timed: int
    train_seconds: float
    time_to_best_seconds: float
    inference_seconds: float
    inference_repeats_seconds: list[float]
    inference_timed_samples: int
    inference_samples_per_second: float | None
    peak_host_rss_bytes: int | None
    peak_device_bytes: int | None


class Checkpoint(TypedDict):
    dir: str
    file: str
    sha256: str
    bytes: int


class _EvaluatedRequired(TypedDict):
    checkpoint: str
    sha256: str
    trained_on: dict[str, Any]


class Evaluated(_EvaluatedRequired, total=False):
    validation_accuracy: float | None
    training_test_accuracy: float | None
    commit: str | None


class _PairRequired(TypedDict):
    schema_version: SchemaVersion
    model: str
    dataset: str
    seed: int
    status: Status
    reason: str | None


class PairRecord(_PairRequired, total=False):
    """One model × dataset × seed (``pair.schema.json``). An ``ok`` pair also has params,
    dataset_info (with its fingerprint), history, best_epoch, epochs_run, metrics and timing."""

    model_plugin: str
    dataset_plugin: str
    traceback: str
    started: str
    finished: str
    worker: Worker
    environment: Environment
    dataset_info: DatasetInfo | None
    params: dict[str, Any] | None
    hyperparameters: dict[str, Any]
    device: str | None
    num_parameters: int | None
    history: list[Epoch] | None
    best_epoch: int | None
    epochs_run: int | None
    stopped_early: bool | None
    diverged_epoch: int | None
    preprocessing: dict[str, Any] | None
    metrics: Metrics | None
    metric_errors: dict[str, str] | None
    metric_warnings: dict[str, str] | None
    checkpoint: Checkpoint
    checkpoint_error: str
    evaluated: Evaluated
    timing: Timing | None


# --- results.json --------------------------------------------------------------------------------


class _TunedModelRequired(TypedDict):
    study: str
    trial: int
    budget: dict[str, Any]


class TunedModel(_TunedModelRequired, total=False):
    value: float | None
    dataset: str
    finished: int
    trials: dict[str, Any]
    params: dict[str, Any]


_TunedRequired = TypedDict("_TunedRequired", {"from": str, "models": dict[str, TunedModel]})  # "from": a keyword


class Tuned(_TunedRequired, total=False):
    tune: str | None
    max_train: int | None


class Unavailable(TypedDict):
    kind: Literal["model", "dataset"]
    name: str
    reason: str


class _RunConfigRequired(TypedDict):
    models: list[str]
    datasets: list[str]
    seeds: list[int]


class RunConfig(_RunConfigRequired, total=False):
    """What the run was asked for (``results.json``'s ``config``)."""

    quick: bool
    standardize: bool
    augment: bool
    preprocessing: dict[str, dict[str, Any]]
    overrides: dict[str, str]
    data_dir: str
    protocol: dict[str, Any]
    unavailable: list[Unavailable]
    published: bool
    save_models: bool
    evaluation: dict[str, Any]
    tuned: Tuned


class SessionExecutor(TypedDict):
    """What trained a session's pairs: ``kind`` (sequential, dask-local, dask) and its own details."""

    kind: str


class _SessionRequired(TypedDict):
    started: str | None
    command: str | None
    data_dir: str | None
    environment: Environment | None


class Session(_SessionRequired, total=False):
    """One process that worked on the run: the first, or a ``--resume``."""

    executor: SessionExecutor
    wall_seconds: float


class _RunResultsRequired(TypedDict):
    schema_version: SchemaVersion
    created: str | None
    updated: str
    command: str | None
    config: RunConfig
    environment: Environment
    pairs: list[PairRecord]


class RunResults(_RunResultsRequired, total=False):
    """A whole run (``results.schema.json``); ``sessions`` is there from schema 1.1 on, and
    :func:`seqbench.results.migrate` gives older runs theirs."""

    sessions: list[Session]
