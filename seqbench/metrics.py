"""Classification metrics over host NumPy arrays (the built-in metric plugin registers these),
and the scalar results of any metric (what tables, reports and ``compare`` show of it).

NumPy is imported by the functions that compute: :func:`scalars` is cheap to import.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


class Scalar(NamedTuple):
    """One number of a metric's result: ``name`` as tables show it, ``key`` its path in the result."""

    name: str
    key: str
    value: float


def is_number(value: Any) -> bool:
    """A JSON number: an int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def scalars(metric: str, result: Any) -> Iterator[Scalar]:
    """The scalar results of ``metric``'s ``result``: every number in it, nested mappings
    flattened with dots, lists left out. A key named like the metric is the metric itself:
    ``scalars("top2", {"top2": 0.9, "n": 5})`` gives ``top2`` and ``top2.n``."""

    def walk(key: str, value: Any) -> Iterator[Scalar]:
        if is_number(value):
            yield Scalar(metric if key == metric else f"{metric}.{key}", key, value)
        elif isinstance(value, dict):
            for inner, v in value.items():
                yield from walk(f"{key}.{inner}" if key else str(inner), v)

    if isinstance(result, dict):
        yield from walk("", result)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` counts: row = true class, column = predicted class."""
    import numpy as np

    idx = y_true.astype(np.int64) * num_classes + y_pred.astype(np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    import numpy as np

    return float(np.mean(y_true == y_pred)) if len(y_true) else 0.0


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix (0 where undefined)."""
    import numpy as np

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
    import numpy as np

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
