"""Classification metrics over host NumPy arrays (the built-in metric plugin registers these)."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` counts: row = true class, column = predicted class."""
    idx = y_true.astype(np.int64) * num_classes + y_pred.astype(np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true == y_pred)) if len(y_true) else 0.0


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix (0 where undefined)."""
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, Any]:
    """Per-class precision/recall/F1/support and their macro averages, JSON-ready."""
    stats = per_class(confusion_matrix(y_true, y_pred, len(class_names)))
    classes = [
        {
            "class": name,
            "precision": float(stats["precision"][i]),
            "recall": float(stats["recall"][i]),
            "f1": float(stats["f1"][i]),
            "support": int(stats["support"][i]),
        }
        for i, name in enumerate(class_names)
    ]
    macro = {k: float(np.mean(stats[k])) for k in ("precision", "recall", "f1")}
    return {"classes": classes, "macro": macro}
