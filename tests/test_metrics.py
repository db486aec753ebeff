"""Metrics against values computed by hand."""

import numpy as np
import pytest

from seqbench.metrics import accuracy, classification_report, confusion_matrix
from seqbench.plugins import load_plugins

Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2])


def test_confusion_matrix_rows_true_columns_predicted():
    assert confusion_matrix(Y_TRUE, Y_PRED, 3).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_accuracy():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)


def test_per_class_and_macro_by_hand():
    report = classification_report(Y_TRUE, Y_PRED, ("a", "b", "c"))
    a, b, c = report["classes"]
    # class a: tp 2, predicted 2, true 3; b: tp 1, predicted 2, true 2; c: tp 1, predicted 2, true 1
    assert (a["precision"], a["recall"]) == pytest.approx((1.0, 2 / 3))
    assert a["f1"] == pytest.approx(2 * 1.0 * (2 / 3) / (1 + 2 / 3))
    assert (b["precision"], b["recall"], b["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert (c["precision"], c["recall"]) == pytest.approx((0.5, 1.0))
    assert c["f1"] == pytest.approx(2 / 3)
    assert [a["support"], b["support"], c["support"]] == [3, 2, 1]
    assert report["macro"]["precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert report["macro"]["recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    assert report["macro"]["f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_class_never_predicted_has_zero_precision_not_nan():
    report = classification_report(np.array([0, 1]), np.array([0, 0]), ("a", "b"))
    assert report["classes"][1] == {"class": "b", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_builtin_metric_plugin_outputs():
    metrics = load_plugins().metrics
    proba = np.eye(3)[Y_PRED]
    names = ("a", "b", "c")
    assert metrics["accuracy"].compute(Y_TRUE, Y_PRED, proba, names) == {"accuracy": pytest.approx(4 / 6), "n": 6}
    conf = metrics["confusion"].compute(Y_TRUE, Y_PRED, proba, names)
    assert conf["labels"] == ["a", "b", "c"] and conf["matrix"][0] == [2, 1, 0]
    assert metrics["per_class"].compute(Y_TRUE, Y_PRED, proba, names)["macro"]["f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
