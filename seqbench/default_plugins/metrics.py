"""Built-in metrics: accuracy, per-class precision/recall/F1, confusion matrix."""

from __future__ import annotations

from seqbench.hookspecs import hookimpl
from seqbench.types import MetricSpec


def _accuracy(y_true, y_pred, proba, class_names):
    from seqbench.metrics import accuracy

    return {"accuracy": accuracy(y_true, y_pred), "n": len(y_true)}


def _per_class(y_true, y_pred, proba, class_names):
    from seqbench.metrics import classification_report

    return classification_report(y_true, y_pred, class_names)


def _confusion(y_true, y_pred, proba, class_names):
    from seqbench.metrics import confusion_matrix

    cm = confusion_matrix(y_true, y_pred, len(class_names))
    return {"labels": list(class_names), "matrix": cm.tolist()}


@hookimpl
def register_metrics(register):
    register(MetricSpec("accuracy", _accuracy, "fraction of test samples classified correctly"))
    register(MetricSpec("per_class", _per_class, "precision, recall, F1 per class and macro averages"))
    register(MetricSpec("confusion", _confusion, "confusion matrix: rows true, columns predicted"))
