"""Metrics against values computed by hand, and a failing metric plugin through a whole run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import toy_plugin

from seqbench import MetricSpec, hookimpl
from seqbench.default_plugins import metrics as builtin
from seqbench.metrics import accuracy, classification_report, confusion_matrix, per_class, scalars
from seqbench.plugins import load_plugins
from seqbench.runner import RunRequest, run_benchmark

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
    assert metrics["per_class"].compute(Y_TRUE, Y_PRED, proba, names)["macro"]["f1"] == pytest.approx(
        (0.8 + 0.5 + 2 / 3) / 3
    )


# --- a failing metric plugin, hand-counted values ---------------------------------------------
# A failing metric plugin (one that raises, one that returns NaN) through a whole run, and the
# built-in metrics against hand-counted values.


class BrokenMetrics:
    @hookimpl
    def register_metrics(self, register):
        register(MetricSpec("explodes", lambda y, p, proba, names: {"v": 1 / 0}, "raises"))
        register(MetricSpec("nanny", lambda y, p, proba, names: {"v": float("nan")}, "returns NaN"))
        register(MetricSpec("count", lambda y, p, proba, names: {"n": len(y)}, "works"))


def test_a_failing_metric_plugin_is_named_and_the_run_goes_on(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("toy", toy_plugin()), ("brokenmetrics", BrokenMetrics())])
    out = tmp_path / "run"
    results = run_benchmark(registry, RunRequest(["logreg"], ["toy"], [0], out, tmp_path, plots=False))
    pair = results["pairs"][0]
    assert pair["status"] == "ok"
    assert pair["metrics"]["count"] == {"n": 90}
    assert 0 <= pair["metrics"]["accuracy"]["accuracy"] <= 1  # the built-ins are computed too
    assert "explodes" not in pair["metrics"] and "nanny" not in pair["metrics"]
    assert pair["metric_errors"]["explodes"].startswith("ZeroDivisionError")
    assert pair["metric_errors"]["nanny"].startswith("ValueError") and "JSON" in pair["metric_errors"]["nanny"]
    stored = json.loads((out / "results.json").read_text())["pairs"][0]
    assert stored["metric_errors"] == pair["metric_errors"]  # NaN never reaches the JSON
    events = (out / "events.jsonl").read_text()
    assert "metric 'explodes' from plugin 'brokenmetrics' failed: ZeroDivisionError" in events
    assert "metric 'nanny' from plugin 'brokenmetrics' failed" in events


Y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
P = np.array([0, 1, 0, 1, 1, 2, 0, 2, 2, 2])


def test_confusion_matrix_counts_rows_true_columns_predicted():
    cm = confusion_matrix(Y, P, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]
    assert confusion_matrix(np.array([2]), np.array([0]), 4).tolist()[2] == [1, 0, 0, 0]


def test_per_class_and_macro_against_hand_counts():
    stats = per_class(confusion_matrix(Y, P, 3))
    np.testing.assert_allclose(stats["precision"], [2 / 3, 2 / 3, 3 / 4])
    np.testing.assert_allclose(stats["recall"], [2 / 3, 2 / 3, 3 / 4])
    assert stats["support"].tolist() == [3, 3, 4] and stats["support"].dtype == np.int64
    report = classification_report(Y, P, ("a", "b", "c"))
    assert [c["class"] for c in report["classes"]] == ["a", "b", "c"]
    assert report["classes"][2] == {"class": "c", "precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4}
    assert report["macro"]["f1"] == pytest.approx((2 / 3 + 2 / 3 + 3 / 4) / 3)


def test_precision_recall_and_f1_differ_where_they_should():
    y, p = np.array([0, 0, 0, 0, 1]), np.array([0, 1, 1, 1, 1])
    stats = per_class(confusion_matrix(y, p, 3))
    np.testing.assert_allclose(stats["precision"], [1.0, 0.25, 0.0])
    np.testing.assert_allclose(stats["recall"], [0.25, 1.0, 0.0])
    np.testing.assert_allclose(stats["f1"], [0.4, 0.4, 0.0])  # 2 p r / (p + r); class 2 never occurs: 0
    assert stats["support"].tolist() == [4, 1, 0]


def test_accuracy_and_the_builtin_metric_plugin():
    assert accuracy(Y, P) == 0.7 and accuracy(np.array([], int), np.array([], int)) == 0.0
    proba = np.eye(3)[P]
    assert builtin._accuracy(Y, P, proba, ("a", "b", "c")) == {"accuracy": 0.7, "n": 10}
    assert builtin._confusion(Y, P, proba, ("a", "b", "c")) == {"labels": ["a", "b", "c"],
                                                                "matrix": [[2, 1, 0], [0, 2, 1], [1, 0, 3]]}
    assert builtin._per_class(Y, P, proba, ("a", "b", "c")) == classification_report(Y, P, ("a", "b", "c"))


def test_the_builtin_metrics_register_with_their_names():
    registered = []
    builtin.register_metrics(registered.append)
    assert [(m.name, m.higher_is_better) for m in registered] == [
        ("accuracy", True), ("per_class", True), ("confusion", True)]
    assert all(m.description for m in registered)


def test_scalars_flatten_numbers_and_leave_lists_and_bools_out():
    result = {"top2": 0.9, "n": 5, "flag": True, "nested": {"a": 1.5, "b": {"c": 2}}, "bins": [1, 2], "s": "x"}
    got = [(s.name, s.key, s.value) for s in scalars("top2", result)]
    assert got == [("top2", "top2", 0.9), ("top2.n", "n", 5), ("top2.nested.a", "nested.a", 1.5),
                   ("top2.nested.b.c", "nested.b.c", 2)]
    assert list(scalars("m", 0.5)) == [] and list(scalars("m", [1])) == []
