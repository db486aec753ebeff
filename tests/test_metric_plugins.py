"""A metric plugin's scalar results reach every table, report and gate (issue 13).

The test plugin registers ``top2`` (a number: higher is better) and ``calib`` (a dict of numbers
and a list: lower is better). Their scalars are ``top2``, ``calib.ece`` and ``calib.nll``;
``calib.bins`` is a list and stays in the JSON.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import fake_entry_point, toy_plugin
from results_factory import make_pair, make_results, write_run

import seqbench.plugins as plugins_mod
from seqbench import MetricSpec, hookimpl
from seqbench.cli import main
from seqbench.plugins import load_plugins
from seqbench.runner import RunRequest, run_benchmark


def _top2(y, pred, proba, names):
    best2 = np.argsort(proba, axis=1)[:, -2:]
    return {"top2": float((best2 == y[:, None]).any(axis=1).mean())}


def _calib(y, pred, proba, names):
    confidence = proba.max(axis=1)
    return {"ece": float(abs(confidence.mean() - (pred == y).mean())),
            "nll": float(-np.log(proba[np.arange(len(y)), y] + 1e-12).mean()),
            "bins": np.histogram(confidence, bins=4, range=(0, 1))[0].tolist()}


class MetricPlugin:
    @hookimpl
    def register_metrics(self, register):
        register(MetricSpec("top2", _top2, "top-2 accuracy"))
        register(MetricSpec("calib", _calib, "calibration", higher_is_better=False))


@pytest.fixture
def run_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("toy", toy_plugin()), ("calibration", MetricPlugin())])
    out = tmp_path / "run"
    results = run_benchmark(registry, RunRequest(["logreg"], ["toy"], [0, 1], out, tmp_path, plots=False))
    assert [p["status"] for p in results["pairs"]] == ["ok", "ok"]
    return out


def test_scalar_and_dict_metrics_are_columns_of_the_summary(run_dir):
    markdown = (run_dir / "summary.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| model"))
    assert [h.strip() for h in header.split("|")][5:11] == [
        "n", "test accuracy (%)", "macro F1", "top2", "calib.ece", "calib.nll"]
    assert "bins" not in markdown
    (row,) = csv.DictReader(io.StringIO((run_dir / "summary.csv").read_text()))
    results = json.loads((run_dir / "results.json").read_text())
    top2 = [p["metrics"]["top2"]["top2"] for p in results["pairs"]]
    assert float(row["top2_mean"]) == pytest.approx(np.mean(top2), abs=1e-6)
    assert row["top2_n"] == row["calib.ece_n"] == row["calib.nll_n"] == "2"
    assert float(row["calib.nll_mean"]) > 0
    assert results["pairs"][0]["metrics"]["calib"]["bins"]  # the list is in the JSON


def test_report_shows_the_metric_columns_in_every_format(run_dir):
    result = CliRunner().invoke(main, ["report", str(run_dir), "--format", "json", "--no-plots"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["summary"]
    assert {"top2_mean", "top2_std", "calib.ece_mean", "calib.nll_n"} <= set(row)
    for fmt in ("github", "grid", "csv"):
        out = CliRunner().invoke(main, ["report", str(run_dir), "--format", fmt, "--no-plots"]).stdout
        assert "top2" in out and "calib.ece" in out and "calib.nll" in out


def test_list_metrics_says_which_way_is_better():
    result = CliRunner().invoke(main, ["list", "metrics"])
    assert result.exit_code == 0, result.output
    accuracy = next(line for line in result.output.splitlines() if line.startswith("accuracy "))
    assert "higher" in accuracy and "metrics" in accuracy


# --- compare ----------------------------------------------------------------------------------


def _run(top2: list[float], ece: list[float]) -> dict:
    pairs = []
    for seed, (t, e) in enumerate(zip(top2, ece, strict=True)):
        pair = make_pair(seed=seed)
        pair["metrics"].update(top2={"top2": t}, calib={"ece": e, "nll": 0.3, "bins": [1, 2, 3, 4]})
        pairs.append(pair)
    return make_results(pairs)


@pytest.fixture
def compare_dirs(tmp_path, monkeypatch):
    """BASE, and NEW with a worse top2 (lower) and a worse ECE (higher); the metric plugin installed."""
    monkeypatch.setattr(plugins_mod, "_entry_points",
                        lambda: [fake_entry_point("calibration", "seqbench-calibration", "1.0", MetricPlugin)])
    monkeypatch.delenv("SEQBENCH_LOAD_PLUGINS")
    base = write_run(tmp_path / "base", _run([0.99, 0.985, 0.99, 0.995], [0.02, 0.021, 0.019, 0.02]))
    new = write_run(tmp_path / "new", _run([0.95, 0.955, 0.95, 0.945], [0.06, 0.061, 0.059, 0.06]))
    return str(base), str(new)


def _compare(*args: str):
    return CliRunner().invoke(main, ["compare", *args])


def test_compare_gates_on_a_scalar_metric(compare_dirs):
    base, new = compare_dirs
    result = _compare(base, new, "--fail-on", "top2:-0.01")
    assert result.exit_code == 1, result.output
    assert "rnn-cpu on mnist: top2 -0.04, past the limit -0.01, significant" in result.output
    assert _compare(base, new, "--fail-on", "top2:-0.1").exit_code == 0
    assert _compare(base, new, "--fail-on", "top2:-5%").exit_code == 0  # a 4 % drop
    assert _compare(base, new, "--fail-on", "top2:-3%").exit_code == 1
    assert _compare(new, base, "--fail-on", "top2:-0.01").exit_code == 0  # better is never a regression


def test_compare_gates_on_a_dict_metric_in_its_declared_direction(compare_dirs):
    base, new = compare_dirs
    result = _compare(base, new, "--fail-on", "calib.ece:+0.01")
    assert result.exit_code == 1 and "calib.ece +0.04, past the limit +0.01" in result.output
    assert _compare(new, base, "--fail-on", "calib.ece:+0.01").exit_code == 0  # a lower ECE is better
    wrong_way = _compare(base, new, "--fail-on", "calib.ece:-0.01")
    assert wrong_way.exit_code == 2 and "a lower calib.ece is better, so its limit is a rise" in wrong_way.output
    several = _compare(base, new, "--fail-on", "calib:+0.01")
    assert several.exit_code == 2 and "several scalars; name one: calib.ece, calib.nll" in several.output
    unknown = _compare(base, new, "--fail-on", "calib.bins:+1")
    assert unknown.exit_code == 2 and "no metric scalar 'calib.bins'" in unknown.output


def test_compare_shows_every_metric_scalar(compare_dirs):
    base, new = compare_dirs
    result = _compare(base, new, "--format", "json")
    (row,) = json.loads(result.stdout)["pairs"]
    assert row["base_top2_mean"] == pytest.approx(0.99) and row["new_calib.ece_n"] == 4
    assert row["top2_diff"] == pytest.approx(-0.04) and row["calib.nll_diff"] == pytest.approx(0.0)
    assert "Δ calib.ece" in _compare(base, new).stdout


def test_a_limit_on_a_metric_not_registered_here_is_refused(tmp_path):
    base = write_run(tmp_path / "base", _run([0.99] * 2, [0.02] * 2))
    result = _compare(str(base), str(base), "--fail-on", "top2:-0.01")
    assert result.exit_code == 2 and "install its plugin" in result.output
    assert _compare(str(base), str(base)).exit_code == 0  # shown without it: no direction needed
