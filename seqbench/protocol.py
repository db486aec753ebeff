"""The training protocol: one procedure, owned by the harness, identical for every model.

1. A validation split is carved from train, deterministically from the seed (default 10 %).
   Standardisation statistics, when the dataset declares them, come from the remaining
   training rows only (:mod:`seqbench.preprocess`).
2. Each epoch visits the rest of train in shuffled minibatches from a seeded generator
   (augmented, when the dataset declares it, by a second seeded generator).
3. After each epoch the model is scored on the validation split; the best parameters so far are
   kept, and training stops after ``patience`` epochs without improvement.
4. The best-validation parameters are restored and the test split is read and evaluated
   exactly once, at the end. The test split never influences training or selection.

A loss that becomes NaN or infinite stops the pair, which is recorded as diverged.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqbench import preprocess
from seqbench.hyperparams import Param
from seqbench.progress import EpochRecord, Progress
from seqbench.types import Dataset, MetricSpec, Model, Preprocessing, TrainingContext

#: The protocol's hyperparameters, which every model takes; a model's defaults may change them.
PROTOCOL_PARAMS: tuple[Param, ...] = (
    Param("epochs", int, 20, "epochs at most", ge=1),
    Param("batch_size", int, 128, "minibatch size", ge=1),
    Param("patience", int, 5, "epochs without a better validation accuracy before training stops", ge=1),
    Param("val_fraction", float, 0.1, "share of train held out for validation", gt=0, lt=1),
)
#: Protocol hyperparameters and their defaults.
PROTOCOL_DEFAULTS: dict[str, Any] = {p.name: p.default for p in PROTOCOL_PARAMS}

#: The ``--quick`` smoke profile: a few epochs on a subset.
QUICK_PROFILE: dict[str, Any] = {"epochs": 2, "patience": 2, "max_train": 4000, "max_test": 1000}

EVAL_BATCH = 4096
#: Timed passes over the validation split, after one warm-up pass, for inference throughput.
INFERENCE_REPEATS = 3
#: How far a row of ``predict_proba`` may sum from 1 (float32 softmax sums are within 1e-6).
PROBA_TOLERANCE = 1e-3


class PluginOutputError(Exception):
    """A plugin returned something of the wrong shape, dtype or type."""


def validate_dataset(ds: Dataset, plugin: str, with_test: bool = True) -> None:
    """Check a dataset at the plugin boundary; raise :class:`PluginOutputError` naming the plugin.
    ``with_test=False``: its test split was taken away (``seqbench tune``) and may be empty."""
    where = f"dataset {ds.name!r} from plugin {plugin!r}"
    shapes = []
    for split in ("train", "test"):
        x, y = getattr(ds, f"{split}_x"), getattr(ds, f"{split}_y")
        if not isinstance(x, np.ndarray) or x.ndim != 3:
            raise PluginOutputError(f"{where}: {split}_x must be a (N, T, F) numpy array, got {_describe(x)}")
        if x.dtype != np.float32:
            raise PluginOutputError(f"{where}: {split}_x has dtype {x.dtype}, expected float32")
        if not isinstance(y, np.ndarray) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise PluginOutputError(f"{where}: {split}_y must be a (N,) integer numpy array, got {_describe(y)}")
        if len(y) != len(x):
            raise PluginOutputError(f"{where}: {split}_x has {len(x)} samples but {split}_y has {len(y)}")
        if not len(y) and (split == "train" or with_test):
            raise PluginOutputError(f"{where}: the {split} split is empty")
        _check_finite(x, f"{where}: {split}_x")
        if len(y) and (y.min() < 0 or y.max() >= len(ds.class_names)):
            raise PluginOutputError(
                f"{where}: {split}_y has labels outside [0, {len(ds.class_names)}) (the class names)"
            )
        shapes.append(x.shape[1:])
    if shapes[0] != shapes[1]:
        raise PluginOutputError(f"{where}: train steps x features {shapes[0]} differ from test {shapes[1]}")
    if len(ds.train_y) < 2:
        raise PluginOutputError(f"{where}: needs at least 2 training samples")


def _check_finite(x: np.ndarray, where: str) -> None:
    """Refuse NaN or infinite features; the float64 sum of float32 values overflows only when one is."""
    if not math.isfinite(float(x.sum(dtype=np.float64))):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise PluginOutputError(f"{where} has {bad} non-finite value(s) (NaN or inf)")


def _describe(a: Any) -> str:
    if isinstance(a, np.ndarray):
        return f"array of shape {a.shape} and dtype {a.dtype}"
    return type(a).__name__


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, validation) index arrays of ``range(n)`` for a seed."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    perm = np.random.default_rng([seed, 0x5E9]).permutation(n)
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _subset(n: int, limit: int | None, seed: int) -> np.ndarray | None:
    if limit is None or limit >= n:
        return None
    return np.sort(np.random.default_rng([seed, 0x5B5]).choice(n, size=limit, replace=False))


def test_split(dataset: Dataset, seed: int, max_test: int | None = None,
               stats: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The test rows a pair of ``seed`` is evaluated on: at most ``max_test`` of them (a seeded
    subset), standardised with the training ``stats`` when given."""
    test_x, test_y = dataset.test_x, dataset.test_y
    keep = _subset(len(test_y), max_test, seed)
    if keep is not None:
        test_x, test_y = test_x[keep], test_y[keep]
    if stats is not None:
        test_x = preprocess.standardize(test_x, *stats, dataset.channels)
    return test_x, test_y


def predict_labels(model: Model, x: Any, num_classes: int, plugin: str) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and predicted labels of ``x`` (on the model's device), in batches."""
    probs = []
    for i in range(0, x.shape[0], EVAL_BATCH):
        chunk = x[i : i + EVAL_BATCH]
        p = model.predict_proba(chunk)
        if not isinstance(p, np.ndarray) or p.shape != (chunk.shape[0], num_classes):
            raise PluginOutputError(
                f"model from plugin {plugin!r}: predict_proba must return a numpy array of shape "
                f"({chunk.shape[0]}, {num_classes}), got {_describe(p)}"
            )
        _check_probabilities(p, plugin)
        probs.append(p)
    proba = np.concatenate(probs) if probs else np.zeros((0, num_classes))
    return proba, proba.argmax(axis=1)


def _check_probabilities(p: np.ndarray, plugin: str) -> None:
    """Refuse probabilities that are not finite, negative, or whose rows do not sum to 1."""
    where = f"model from plugin {plugin!r}: predict_proba"
    if not np.issubdtype(p.dtype, np.floating):
        raise PluginOutputError(f"{where} returned dtype {p.dtype}, expected floats")
    if not np.isfinite(p).all():
        raise PluginOutputError(f"{where} returned {int((~np.isfinite(p)).sum())} non-finite value(s) (NaN or inf)")
    if (p < 0).any():
        raise PluginOutputError(f"{where} returned negative probabilities (min {float(p.min()):.3g})")
    sums = p.sum(axis=1, dtype=np.float64)
    worst = float(np.abs(sums - 1).max()) if len(sums) else 0.0
    if worst > PROBA_TOLERANCE:
        worst = float(sums[np.abs(sums - 1).argmax()])
        raise PluginOutputError(f"{where}: rows must sum to 1, one sums to {worst:.6g}")


def robust_times(seconds: list[float]) -> dict[str, float]:
    """Median and minimum of the epoch times after the first (warm-up, graph capture), and the mean of all.

    With a single epoch, its time is all there is.
    """
    steady = seconds[1:] or seconds
    return {
        "epoch_seconds_median": float(np.median(steady)),
        "epoch_seconds_min": float(min(steady)),
        "epoch_seconds_mean": float(sum(seconds) / len(seconds)),
        "epochs_timed": len(steady),
    }


def time_inference(model: Model, x: Any, num_classes: int, plugin: str, clock: Callable[[], float]) -> dict[str, Any]:
    """Throughput of ``predict_proba`` on ``x``: one warm-up pass, then :data:`INFERENCE_REPEATS` timed passes."""
    n = int(x.shape[0])
    predict_labels(model, x[:EVAL_BATCH], num_classes, plugin)  # warm-up
    times = []
    for _ in range(INFERENCE_REPEATS):
        model.synchronize()
        t0 = clock()
        predict_labels(model, x, num_classes, plugin)
        model.synchronize()
        times.append(clock() - t0)
    median = float(np.median(times))
    return {
        "inference_repeats_seconds": [float(t) for t in times],
        "inference_timed_samples": n,
        "inference_samples_per_second": n / median if median > 0 else None,
    }


def compute_metrics(
    metrics: Mapping[str, MetricSpec], y: np.ndarray, pred: np.ndarray, proba: np.ndarray, ds: Dataset
) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Every metric's result, NumPy values made plain JSON; a metric that raises or returns what
    JSON cannot hold is reported in the errors (naming the key), the rest go on. The warnings
    name the metrics whose result holds text alone (tables and compare will not show them)."""
    from seqbench.results import UnwritableValue, json_ready

    values, errors, warnings = {}, {}, {}
    for name, spec in metrics.items():
        try:
            value = spec.compute(y, pred, proba, tuple(ds.class_names))
            if not isinstance(value, Mapping):
                raise PluginOutputError(f"compute must return a mapping of name to value, got {type(value).__name__}")
            values[name] = json_ready(dict(value))  # it goes into results.json: refuse what JSON can't hold
        except UnwritableValue as exc:
            errors[name] = f"ValueError: {exc}"
        except (Exception, SystemExit) as exc:  # a metric plugin must not end the run
            errors[name] = str(exc) if isinstance(exc, PluginOutputError) else f"{type(exc).__name__}: {exc}"
        else:
            if _only_text(values[name]):
                warnings[name] = "returned no number, only text: tables and compare will not show it"
    return values, errors, warnings


def _only_text(value: Any) -> bool:
    """Whether a metric's result holds text and nothing else (no number, no list)."""
    if isinstance(value, dict):
        return bool(value) and all(_only_text(v) for v in value.values())
    return isinstance(value, str)


def reset_peak_rss() -> bool:
    """Reset this process's resident-memory high-water mark to its current RSS, so that
    :func:`peak_host_rss_bytes` measures from now on (Linux ≥ 4.0: ``5`` written to
    ``/proc/self/clear_refs``). False where the system does not allow it: the peak then stays
    the process's running peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_host_rss_bytes() -> int:
    """Peak resident memory of this process since the last :func:`reset_peak_rss` (``VmHWM`` of
    ``/proc/self/status``), else since it started (``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def train_and_evaluate(
    model: Model,
    dataset: Dataset,
    params: Mapping[str, Any],
    metrics: Mapping[str, MetricSpec],
    *,
    seed: int,
    model_plugin: str = "?",
    max_train: int | None = None,
    max_test: int | None = None,
    preprocessing: Preprocessing = Preprocessing(),
    progress: Progress | None = None,
    clock: Callable[[], float] = time.perf_counter,
    quick: bool = False,
    evaluate_test: bool = True,
) -> dict[str, Any]:
    """Train ``model`` on ``dataset`` under the protocol and evaluate it once on the test split
    (with ``evaluate_test=False``, as ``seqbench tune`` trains, the test split is never read).

    ``preprocessing`` is applied as :mod:`seqbench.preprocess` describes. The model is told the
    training plan (:meth:`Model.fit_start`, ``quick``: a ``--quick`` run) and each epoch's
    validation accuracy (:meth:`Model.epoch_validated`). Returns the pair's
    record fields: ``status`` (``ok`` or ``diverged``), ``history``, ``best_epoch``,
    ``epochs_run``, ``stopped_early``, ``diverged_epoch``, ``metrics``, ``timing``,
    ``preprocessing`` (with the statistics used) and ``split`` sizes, and, when the test split
    was evaluated, ``test_predictions``: a ``(2, n_test)`` integer array of the test labels and
    the predicted labels, in test order (not JSON: the runner stores it beside the record).
    """
    progress = progress or Progress()
    reset_peak_rss()  # the pair's own peak, not the process's (earlier pairs, the data's loading)
    epochs = int(params["epochs"])
    data = _prepare(model, dataset, params, preprocessing, seed, max_train)
    training = _train(model, data, params, len(dataset.class_names), seed, model_plugin, progress, clock, quick)
    result = _result(training, data, preprocessing, epochs)
    if training.diverged_epoch or not evaluate_test:
        return result
    model.load_state_dict(training.best_state)
    _evaluate_test(model, dataset, data, metrics, result, seed=seed, max_test=max_test, model_plugin=model_plugin,
                   clock=clock)
    return result


@dataclass
class _Prepared:
    """Step 1: the training and validation rows of a pair, preprocessed, on the model's device
    (the training rows stay on the host where they are augmented batch by batch)."""

    x_tr: Any
    x_tr_host: np.ndarray
    y_tr: Any
    x_val: Any
    y_val: np.ndarray
    n_train: int
    n_val: int
    stats: Any
    augment: preprocess.Augmenter


def _prepare(model: Model, dataset: Dataset, params: Mapping[str, Any], preprocessing: Preprocessing, seed: int,
             max_train: int | None) -> _Prepared:
    """Carve the validation split from train (seeded), standardise with the training rows'
    statistics where the dataset declares them, and move the arrays to the model's device."""
    train_x, train_y = dataset.train_x, dataset.train_y
    keep = _subset(len(train_y), max_train, seed)
    if keep is not None:
        train_x, train_y = train_x[keep], train_y[keep]
    tr_idx, val_idx = split_train_val(len(train_y), float(params["val_fraction"]), seed)

    x_tr, x_val = train_x[tr_idx], train_x[val_idx]
    stats = None
    if preprocessing.standardize:
        stats = preprocess.channel_stats(x_tr, dataset.channels)  # training rows only
        x_tr, x_val = (preprocess.standardize(a, *stats, dataset.channels) for a in (x_tr, x_val))
    augment = preprocess.Augmenter(preprocessing.hflip, preprocessing.shift, dataset.channels, seed)
    x_tr_host = x_tr
    if not augment.active:  # then the training rows go to the device once
        x_tr = model.to_device(x_tr)
    y_tr = model.to_device(train_y[tr_idx].astype(np.int64))
    x_val, y_val = model.to_device(x_val), train_y[val_idx]
    return _Prepared(x_tr, x_tr_host, y_tr, x_val, y_val, len(tr_idx), len(val_idx), stats, augment)


@dataclass
class _Training:
    """Steps 2 and 3: what training left: each epoch's record, the best-validation epoch and
    parameters, where the loss diverged, and the times."""

    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_state: Any = None
    diverged_epoch: int | None = None
    train_seconds: float = 0.0
    time_to_best: float = 0.0


def _train(model: Model, data: _Prepared, params: Mapping[str, Any], num_classes: int, seed: int, model_plugin: str,
           progress: Progress, clock: Callable[[], float], quick: bool) -> _Training:
    """Train epoch by epoch on shuffled minibatches, validate after each, keep the best
    parameters; stop after ``patience`` epochs without improvement, or where the loss diverges."""
    epochs, batch_size, patience = int(params["epochs"]), int(params["batch_size"]), int(params["patience"])
    rng = np.random.default_rng([seed, 0xBA7C])
    n_batches = math.ceil(data.n_train / batch_size)
    model.fit_start(TrainingContext(n_batches, data.n_train, data.n_val, epochs, batch_size, quick))
    out = _Training()
    best_acc, since_best = -1.0, 0
    for epoch in range(1, epochs + 1):
        progress.epoch_start(epoch, epochs, n_batches)
        train_loss, epoch_seconds = _train_epoch(model, data, rng, batch_size, n_batches, progress, clock)
        out.train_seconds += epoch_seconds
        model.epoch_end(epoch)

        t1 = clock()
        _, val_pred = predict_labels(model, data.x_val, num_classes, model_plugin)
        val_acc = float(np.mean(val_pred == data.y_val))
        val_seconds = clock() - t1
        model.epoch_validated(epoch, val_acc)
        record = EpochRecord(epoch, train_loss, val_acc, epoch_seconds, val_seconds)
        out.history.append(record)

        if not math.isfinite(train_loss):
            out.diverged_epoch = epoch
            progress.epoch_end(record, out.best_epoch)
            break
        if val_acc > best_acc:
            best_acc, out.best_epoch, since_best = val_acc, epoch, 0
            out.best_state = model.state_dict()
            out.time_to_best = out.train_seconds
        else:
            since_best += 1
        progress.epoch_end(record, out.best_epoch)
        if since_best >= patience:
            break
    return out


def _train_epoch(model: Model, data: _Prepared, rng: np.random.Generator, batch_size: int, n_batches: int,
                 progress: Progress, clock: Callable[[], float]) -> tuple[float, float]:
    """One pass over the training rows in a seeded shuffled order: the mean loss and the seconds."""
    order_host = rng.permutation(data.n_train)
    order = model.to_device(order_host)
    model.synchronize()
    t0 = clock()
    losses = []
    for b in range(n_batches):
        rows = slice(b * batch_size, (b + 1) * batch_size)
        idx = order[rows]
        augmented = data.augment.active
        x_batch = model.to_device(data.augment(data.x_tr_host[order_host[rows]])) if augmented else data.x_tr[idx]
        losses.append(model.train_batch(x_batch, data.y_tr[idx]))
        progress.batch_done()
    model.synchronize()
    return float(sum(losses)) / n_batches, clock() - t0


def _result(training: _Training, data: _Prepared, preprocessing: Preprocessing, epochs: int) -> dict[str, Any]:
    """The pair's record fields that training gives (no test metrics yet)."""
    history, diverged_epoch = training.history, training.diverged_epoch
    return {
        "status": "diverged" if diverged_epoch else "ok",
        "reason": f"loss became {history[-1].train_loss} at epoch {diverged_epoch}" if diverged_epoch else None,
        "history": [r.as_dict() for r in history],
        "best_epoch": training.best_epoch,
        "epochs_run": len(history),
        "stopped_early": diverged_epoch is None and len(history) < epochs,
        "diverged_epoch": diverged_epoch,
        "split": {"n_train": data.n_train, "n_val": data.n_val},
        "preprocessing": preprocess.record(preprocessing, data.stats),
        "metrics": None,
        "timing": {
            **robust_times([r.epoch_seconds for r in history]),
            "train_seconds": training.train_seconds,
            "time_to_best_seconds": training.time_to_best,
        },
    }


def _evaluate_test(model: Model, dataset: Dataset, data: _Prepared, metrics: Mapping[str, MetricSpec],
                   result: dict[str, Any], *, seed: int, max_test: int | None, model_plugin: str,
                   clock: Callable[[], float]) -> None:
    """Step 4: the restored model on the test split, read here once; adds the metrics, the test
    predictions and the inference times and peaks to ``result``."""
    num_classes = len(dataset.class_names)
    # The test split is read here, once, after training and selection are over.
    test_x, test_y = test_split(dataset, seed, max_test, data.stats)
    x_test = model.to_device(test_x)
    model.synchronize()
    t0 = clock()
    proba, pred = predict_labels(model, x_test, num_classes, model_plugin)
    model.synchronize()
    infer_seconds = clock() - t0
    result["split"]["n_test"] = len(test_y)
    result["metrics"], result["metric_errors"], notes = compute_metrics(metrics, test_y, pred, proba, dataset)
    if notes:
        result["metric_warnings"] = notes
    result["test_predictions"] = np.stack([test_y, pred]).astype(np.int8 if num_classes <= 127 else np.int32)
    result["timing"].update(
        inference_seconds=infer_seconds,
        **time_inference(model, data.x_val, num_classes, model_plugin, clock),
        peak_host_rss_bytes=peak_host_rss_bytes(),
        peak_device_bytes=model.peak_memory_bytes(),
    )
