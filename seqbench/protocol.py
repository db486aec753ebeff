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
from typing import Any, Callable, Mapping

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
        raise PluginOutputError(f"{where} has {int(np.count_nonzero(~np.isfinite(x)))} non-finite value(s) (NaN or inf)")


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
        raise PluginOutputError(f"{where}: rows must sum to 1, one sums to {float(sums[np.abs(sums - 1).argmax()]):.6g}")


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
    epochs, batch_size, patience = int(params["epochs"]), int(params["batch_size"]), int(params["patience"])

    train_x, train_y = dataset.train_x, dataset.train_y
    keep = _subset(len(train_y), max_train, seed)
    if keep is not None:
        train_x, train_y = train_x[keep], train_y[keep]
    tr_idx, val_idx = split_train_val(len(train_y), float(params["val_fraction"]), seed)
    num_classes = len(dataset.class_names)

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
    rng = np.random.default_rng([seed, 0xBA7C])
    n_batches = math.ceil(len(tr_idx) / batch_size)
    model.fit_start(TrainingContext(n_batches, int(len(tr_idx)), int(len(val_idx)), epochs, batch_size, quick))

    history: list[EpochRecord] = []
    best_acc, best_epoch, best_state, since_best = -1.0, 0, None, 0
    diverged_epoch = None
    train_seconds = 0.0
    time_to_best = 0.0
    for epoch in range(1, epochs + 1):
        progress.epoch_start(epoch, epochs, n_batches)
        order_host = rng.permutation(len(tr_idx))
        order = model.to_device(order_host)
        model.synchronize()
        t0 = clock()
        losses = []
        for b in range(n_batches):
            rows = slice(b * batch_size, (b + 1) * batch_size)
            idx = order[rows]
            x_batch = model.to_device(augment(x_tr_host[order_host[rows]])) if augment.active else x_tr[idx]
            losses.append(model.train_batch(x_batch, y_tr[idx]))
            progress.batch_done()
        model.synchronize()
        epoch_seconds = clock() - t0
        train_seconds += epoch_seconds
        model.epoch_end(epoch)
        train_loss = float(sum(losses)) / n_batches

        t1 = clock()
        _, val_pred = predict_labels(model, x_val, num_classes, model_plugin)
        val_acc = float(np.mean(val_pred == y_val))
        val_seconds = clock() - t1
        model.epoch_validated(epoch, val_acc)
        record = EpochRecord(epoch, train_loss, val_acc, epoch_seconds, val_seconds)
        history.append(record)

        if not math.isfinite(train_loss):
            diverged_epoch = epoch
            progress.epoch_end(record, best_epoch)
            break
        if val_acc > best_acc:
            best_acc, best_epoch, since_best = val_acc, epoch, 0
            best_state = model.state_dict()
            time_to_best = train_seconds
        else:
            since_best += 1
        progress.epoch_end(record, best_epoch)
        if since_best >= patience:
            break

    result: dict[str, Any] = {
        "status": "diverged" if diverged_epoch else "ok",
        "reason": f"loss became {history[-1].train_loss} at epoch {diverged_epoch}" if diverged_epoch else None,
        "history": [r.as_dict() for r in history],
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "stopped_early": diverged_epoch is None and len(history) < epochs,
        "diverged_epoch": diverged_epoch,
        "split": {"n_train": int(len(tr_idx)), "n_val": int(len(val_idx))},
        "preprocessing": preprocess.record(preprocessing, stats),
        "metrics": None,
        "timing": {
            **robust_times([r.epoch_seconds for r in history]),
            "train_seconds": train_seconds,
            "time_to_best_seconds": time_to_best,
        },
    }
    if diverged_epoch or not evaluate_test:
        return result

    model.load_state_dict(best_state)
    # The test split is read here, once, after training and selection are over.
    test_x, test_y = test_split(dataset, seed, max_test, stats)
    x_test = model.to_device(test_x)
    model.synchronize()
    t0 = clock()
    proba, pred = predict_labels(model, x_test, num_classes, model_plugin)
    model.synchronize()
    infer_seconds = clock() - t0
    result["split"]["n_test"] = int(len(test_y))
    result["metrics"], result["metric_errors"], notes = compute_metrics(metrics, test_y, pred, proba, dataset)
    if notes:
        result["metric_warnings"] = notes
    result["test_predictions"] = np.stack([test_y, pred]).astype(np.int8 if num_classes <= 127 else np.int32)
    result["timing"].update(
        inference_seconds=infer_seconds,
        **time_inference(model, x_val, num_classes, model_plugin, clock),
        peak_host_rss_bytes=peak_host_rss_bytes(),
        peak_device_bytes=model.peak_memory_bytes(),
    )
    return result
