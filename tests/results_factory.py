"""Realistic results records for the tests of tables, plots, report and compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seqbench.fileio import atomic_write_json
from seqbench.metrics import per_class
from seqbench.results import SCHEMA_VERSION, write_predictions

MNIST_CLASSES = [str(i) for i in range(10)]
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"
]
PER_CLASS_SUPPORT = 1000


def confusion(accuracy: float, n_classes: int) -> np.ndarray:
    """Counts with ``accuracy`` on the diagonal; each class's errors go to the next class."""
    correct = round(accuracy * PER_CLASS_SUPPORT)
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    for i in range(n_classes):
        matrix[i, i] = correct
        matrix[i, (i + 1) % n_classes] += PER_CLASS_SUPPORT - correct
    return matrix


def metrics(accuracy: float, class_names: list[str]) -> dict[str, Any]:
    cm = confusion(accuracy, len(class_names))
    stats = per_class(cm)
    classes = [
        {"class": name, **{k: float(stats[k][i]) for k in ("precision", "recall", "f1")},
         "support": int(stats["support"][i])}
        for i, name in enumerate(class_names)
    ]
    return {
        "accuracy": {"accuracy": float(np.trace(cm) / cm.sum()), "n": int(cm.sum())},
        "per_class": {"classes": classes,
                      "macro": {k: float(np.mean(stats[k])) for k in ("precision", "recall", "f1")}},
        "confusion": {"labels": list(class_names), "matrix": cm.tolist()},
        "calibration": {"ece": 0.01},  # a third-party metric: ignored by tables and plots
    }


def history(epochs: int, best_epoch: int, seconds: float, best_accuracy: float) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": 2.0 / e,
            "val_accuracy": best_accuracy - 0.02 * abs(best_epoch - e),
            "epoch_seconds": seconds,
            "val_seconds": seconds / 10,
        }
        for e in range(1, epochs + 1)
    ]


def dataset_info(dataset: str, class_names: list[str], fingerprint: str) -> dict[str, Any]:
    return {
        "name": dataset, "seq_len": 28, "n_features": 28, "class_names": list(class_names),
        "fingerprint": fingerprint, "n_train": 900, "n_val": 100,
        "n_test": PER_CLASS_SUPPORT * len(class_names),
    }


def make_pair(
    model: str = "rnn-cpu",
    dataset: str = "mnist",
    seed: int = 0,
    *,
    status: str = "ok",
    reason: str | None = None,
    accuracy: float = 0.95,
    seconds: float = 2.0,
    class_names: list[str] | None = None,
    epochs: int = 6,
    best_epoch: int = 4,
    fingerprint: str = "sha256:" + "a" * 64,
    device: str = "cpu",
    params: dict[str, Any] | None = None,
    median: float | None = None,
    legacy_timing: bool = False,
) -> dict[str, Any]:
    """One PAIR record as ``seqbench run`` writes it, for ``status`` ok/skipped/failed/diverged.

    ``seconds`` is the mean epoch time and, unless ``median`` says otherwise, the median;
    ``legacy_timing`` writes the timing of records that predate medians (mean only).
    """
    names = class_names or (CIFAR10_CLASSES if dataset.startswith("cifar") else MNIST_CLASSES)
    pair: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "model": model, "dataset": dataset, "seed": seed,
        "model_plugin": "models", "dataset_plugin": "datasets", "status": status, "reason": reason,
        "params": params or {"epochs": 30, "batch_size": 128, "lr": 0.002, "hidden": 128},
        "device": device, "dataset_info": dataset_info(dataset, names, fingerprint),
        "history": None, "best_epoch": None, "epochs_run": None, "stopped_early": None,
        "diverged_epoch": None, "metrics": None, "timing": None,
        "started": "2024-05-01T10:00:00+00:00", "finished": "2024-05-01T10:05:00+00:00",
    }
    if status == "diverged":
        pair.update(history=history(2, 2, seconds, 0.5), epochs_run=3, diverged_epoch=3)
        pair["history"].append({"epoch": 3, "train_loss": None, "val_accuracy": None,
                                "epoch_seconds": seconds, "val_seconds": None})
    if status != "ok":
        return pair
    pair.update(
        history=history(epochs, best_epoch, seconds, accuracy), best_epoch=best_epoch,
        epochs_run=epochs, stopped_early=epochs < 30, metrics=metrics(accuracy, names),
        timing={
            "epoch_seconds_mean": seconds, "train_seconds": seconds * epochs,
            "time_to_best_seconds": seconds * best_epoch, "inference_seconds": 0.5,
            "inference_samples_per_second": 2000.0, "peak_host_rss_bytes": 300 * 2**20,
            "peak_device_bytes": None,
        },
    )
    if not legacy_timing:
        steady = seconds if median is None else median
        pair["timing"].update(
            epoch_seconds_median=steady, epoch_seconds_min=0.9 * steady, epochs_timed=epochs - 1,
            inference_repeats_seconds=[0.5, 0.5, 0.5], inference_timed_samples=1000,
        )
    return pair


def make_results(pairs: list[dict[str, Any]], *, cpu: str = "AMD EPYC 7763 64-Core Processor",
                 seeds: list[int] | None = None) -> dict[str, Any]:
    """A whole ``results.json`` around ``pairs``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "created": "2024-05-01T10:00:00+00:00",
        "updated": "2024-05-01T11:00:00+00:00",
        "command": "seqbench run --all",
        "config": {
            "models": sorted({p["model"] for p in pairs}),
            "datasets": sorted({p["dataset"] for p in pairs}),
            "seeds": seeds or sorted({p["seed"] for p in pairs}), "quick": False, "overrides": {},
            "data_dir": "/data", "protocol": {"val_fraction": 0.1},
        },
        "environment": {
            "python": "3.11.7", "packages": {"seqbench": "0.1.0", "numpy": "1.26.4"},
            "plugins": {"models": "0.1.0"}, "git_commit": "0123456789abcdef0123",
            "machine": {"platform": "Linux-6.1-x86_64", "cpu": cpu, "cpu_count": 2,
                        "memory_bytes": 8 * 2**30, "hostname": "ci"},
        },
        "pairs": pairs,
    }


def write_run(run_dir: Path, results: dict[str, Any], predictions: dict[int, np.ndarray] | None = None) -> Path:
    """Write ``results.json`` into ``run_dir``, and ``predictions[seed]`` beside every ok pair
    of that seed; return ``run_dir``."""
    atomic_write_json(run_dir / "results.json", results)
    for pair in results["pairs"]:
        if predictions and pair["status"] == "ok" and pair["seed"] in predictions:
            write_predictions(run_dir, pair, predictions[pair["seed"]])
    return run_dir


def predictions(labels: np.ndarray, correct: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """The ``(2, n)`` int8 array of a pair's test labels and predictions, right where ``correct``."""
    predicted = np.where(correct, labels, (labels + 1) % n_classes)
    return np.stack([labels, predicted]).astype(np.int8)


def balanced_labels(n: int = 10_000, n_classes: int = 10) -> np.ndarray:
    """Balanced test labels, in a fixed order."""
    return np.arange(n) % n_classes


def correct_mask(n: int, accuracy: float, seed: int) -> np.ndarray:
    """Exactly ``round(accuracy · n)`` right predictions, at random places."""
    mask = np.zeros(n, bool)
    mask[np.random.default_rng(seed).permutation(n)[: round(accuracy * n)]] = True
    return mask


def seeded(model: str, dataset: str, accuracies: list[float], seconds: list[float],
           **kwargs: Any) -> list[dict[str, Any]]:
    """One ``ok`` pair per seed with the given accuracies and seconds per epoch."""
    return [
        make_pair(model, dataset, seed, accuracy=a, seconds=s, **kwargs)
        for seed, (a, s) in enumerate(zip(accuracies, seconds, strict=True))
    ]
