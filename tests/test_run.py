"""``seqbench run`` end to end on toy plugins: results on disk, resume, skips, divergence, errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import MeanLogReg, make_toy_dataset, toy_plugin

from seqbench import DatasetSpec, DatasetUnavailable, hookimpl
from seqbench.cli import main
from seqbench.plugins import load_plugins


def invoke(registry, *args):
    return CliRunner().invoke(main, ["run", *args], obj={"registry": registry})


def test_run_writes_complete_results(toy_registry, tmp_path):
    out = tmp_path / "run"
    result = invoke(toy_registry, "-m", "logreg", "-m", "rnn-cpu", "-d", "toy", "--seeds", "0,1",
                    "--set", "hidden=8", "--set", "epochs=3", "--out", str(out), "--no-plots")
    assert result.exit_code == 0, result.output
    assert "epoch 1/3" in result.stderr and "logreg" in result.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["schema_version"] == "1.1"
    assert results["config"]["seeds"] == [0, 1] and results["config"]["overrides"] == {"hidden": "8", "epochs": "3"}
    env = results["environment"]
    assert env["machine"]["cpu_count"] and env["packages"]["numpy"] and "git_commit" in env
    assert len(results["pairs"]) == 4
    for pair in results["pairs"]:
        assert pair["status"] == "ok", pair
        assert pair["dataset_info"]["fingerprint"] == "sha256:toy0"
        assert pair["dataset_info"]["n_train"] + pair["dataset_info"]["n_val"] == 300
        assert pair["params"]["epochs"] == 3 and pair["params"]["seed"] == pair["seed"]
        assert {"train_loss", "val_accuracy", "epoch_seconds"} <= set(pair["history"][0])
        assert 0 <= pair["metrics"]["accuracy"]["accuracy"] <= 1
        assert len(pair["metrics"]["per_class"]["classes"]) == 3
        assert np.array(pair["metrics"]["confusion"]["matrix"]).sum() == 90
        t = pair["timing"]
        assert t["epoch_seconds_mean"] > 0 and t["inference_samples_per_second"] > 0 and t["peak_host_rss_bytes"] > 0
        assert t["time_to_best_seconds"] <= t["train_seconds"]
    rnn = [p for p in results["pairs"] if p["model"] == "rnn-cpu"]
    assert rnn[0]["params"]["hidden"] == 8 and "lr" in rnn[0]["params"]
    assert {p.name for p in (out / "pairs").iterdir()} == {
        f"{m}+toy+seed{s}{ext}" for m in ("logreg", "rnn-cpu") for s in (0, 1) for ext in (".json", ".pred.npy")
    }
    from seqbench.results import read_predictions

    for pair in results["pairs"]:  # test labels and predictions, in test order, agree with the metrics
        labels, pred = read_predictions(out, pair)
        assert len(labels) == 90 and labels.dtype == np.int8
        assert np.mean(labels == pred) == pytest.approx(pair["metrics"]["accuracy"]["accuracy"])
        assert np.array(pair["metrics"]["confusion"]["matrix"]).trace() == int((labels == pred).sum())
    for name in ("summary", "per_class", "timing"):
        assert (out / f"{name}.md").stat().st_size > 0 and (out / f"{name}.csv").stat().st_size > 0
    assert not list(out.rglob("*.tmp"))


def test_resume_skips_finished_pairs_with_the_stored_selection(toy_registry, tmp_path):
    out = tmp_path / "run"
    first = invoke(toy_registry, "-m", "logreg", "-d", "toy", "--seeds", "0,1", "--set", "epochs=3", "--out",
                   str(out), "--no-plots")
    assert first.exit_code == 0, first.output
    kept = json.loads((out / "pairs" / "logreg+toy+seed0.json").read_text())
    (out / "pairs" / "logreg+toy+seed1.json").unlink()  # as if interrupted during seed 1
    result = invoke(toy_registry, "--resume", str(out), "--no-plots")
    assert result.exit_code == 0, result.output
    assert "[1/2]" not in result.output and "[2/2] logreg x toy (seed 1)" in result.output
    assert json.loads((out / "pairs" / "logreg+toy+seed0.json").read_text()) == kept
    results = json.loads((out / "results.json").read_text())
    assert [p["seed"] for p in results["pairs"]] == [0, 1]
    assert results["config"]["overrides"] == {"epochs": "3"}
    assert all(p["params"]["epochs"] == 3 for p in results["pairs"])


class Interrupting(MeanLogReg):
    def train_batch(self, x, y):  # the user's Ctrl-C: a KeyboardInterrupt a plugin raises is its own failure
        import signal
        import time

        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)


def test_interrupted_first_pair_can_be_resumed(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    models = {"logreg": lambda info, p: Interrupting(4, 3)}
    reg = load_plugins(extra=[("toy", toy_plugin(models=models))])
    out = tmp_path / "run"
    result = invoke(reg, "-m", "logreg", "-d", "toy", "--out", str(out), "--no-plots")
    assert result.exit_code == 130 and "--resume" in result.output
    assert json.loads((out / "results.json").read_text())["pairs"] == []
    models["logreg"] = lambda info, p: MeanLogReg(4, 3)
    result = invoke(load_plugins(extra=[("toy", toy_plugin(models=models))]), "--resume", str(out), "--no-plots")
    assert result.exit_code == 0, result.output
    assert [p["status"] for p in json.loads((out / "results.json").read_text())["pairs"]] == ["ok"]


def test_an_existing_run_is_not_overwritten(toy_registry, tmp_path):
    out = str(tmp_path / "run")
    assert invoke(toy_registry, "-m", "logreg", "-d", "toy", "--out", out, "--no-plots").exit_code == 0
    _one_line_error(invoke(toy_registry, "-m", "logreg", "-d", "toy", "--out", out), "already holds a run", "--resume")
    _one_line_error(invoke(toy_registry, "--resume", out, "-m", "logreg"), "own selection")


class Exploding(MeanLogReg):
    def train_batch(self, x, y):
        return float("inf")


def test_diverged_pair_is_recorded_and_the_next_pair_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    reg = load_plugins(extra=[("toy", toy_plugin(models={
        "a-explodes": lambda info, p: Exploding(4, 3),
        "b-fine": lambda info, p: MeanLogReg(4, 3),
    }))])
    out = tmp_path / "run"
    result = invoke(reg, "-m", "a-explodes", "-m", "b-fine", "-d", "toy", "--out", str(out), "--no-plots")
    assert result.exit_code == 0, result.output
    pairs = {p["model"]: p for p in json.loads((out / "results.json").read_text())["pairs"]}
    assert pairs["a-explodes"]["status"] == "diverged" and pairs["a-explodes"]["diverged_epoch"] == 1
    assert pairs["b-fine"]["status"] == "ok"


def test_include_unavailable_keeps_skipped_records_with_reasons(monkeypatch, tmp_path):
    class Missing:
        @hookimpl
        def register_datasets(self, register):
            def load(ctx):
                raise DatasetUnavailable("files missing: put them in /nowhere")

            register(DatasetSpec("missing", load))

    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    reg = load_plugins(extra=[("toy", toy_plugin()), ("missing", Missing())])
    reg.models["rnn-gpu"] = reg.models["rnn-gpu"].__class__(
        **{**reg.models["rnn-gpu"].__dict__, "unavailable": lambda: "no CUDA device found"}
    )
    out = tmp_path / "run"
    result = invoke(reg, "--all", "--include-unavailable", "--set", "epochs=1", "--set", "hidden=4", "--out",
                    str(out), "--no-plots")
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["unavailable"] == []
    pairs = {(p["model"], p["dataset"]): p for p in results["pairs"]}
    assert pairs[("rnn-gpu", "toy")]["status"] == "skipped"
    assert pairs[("rnn-gpu", "toy")]["reason"] == "no CUDA device found"
    assert pairs[("logreg", "missing")]["status"] == "skipped"
    assert "files missing" in pairs[("logreg", "missing")]["reason"]
    assert pairs[("logreg", "toy")]["status"] == "ok"


def _one_line_error(result, *fragments):
    assert result.exit_code != 0
    # click prints usage hints above a usage error; the error itself is one line
    lines = [line for line in result.output.strip().splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for f in fragments:
        assert f in lines[0]


def test_cli_errors_are_one_line(toy_registry, tmp_path):
    out = str(tmp_path / "o")
    _one_line_error(invoke(toy_registry, "-m", "nope", "-d", "toy", "--out", out), "unknown model 'nope'",
                    "known: gru-cpu, gru-gpu, logreg, lstm-cpu, lstm-gpu, rnn-cpu")
    _one_line_error(
        invoke(toy_registry, "-m", "logreg", "-d", "nope", "--out", out), "unknown dataset 'nope'", "known: toy"
    )
    _one_line_error(
        invoke(toy_registry, "-m", "logreg", "-d", "toy", "--set", "bogus=1", "--out", out), "unknown parameter 'bogus'"
    )
    _one_line_error(
        invoke(toy_registry, "-m", "logreg", "-d", "toy", "--set", "epochs=many", "--out", out), "epochs=many", "int"
    )
    _one_line_error(invoke(toy_registry, "-m", "logreg", "-d", "toy", "--set", "novalue", "--out", out), "KEY=VALUE")
    _one_line_error(
        invoke(toy_registry, "-m", "logreg", "-d", "toy", "--seeds", "a,b", "--out", out), "comma-separated integers"
    )
    _one_line_error(invoke(toy_registry, "--out", out), "choose pairs")
    _one_line_error(invoke(toy_registry, "--resume", str(tmp_path / "none")), "no such results file")
    _one_line_error(
        invoke(toy_registry, "-m", "logreg", "-d", "toy", "--set", "lr=nan", "--out", out), "lr=nan", "finite"
    )
    for bad in ("epochs=0", "batch_size=0", "patience=0", "val_fraction=1.5"):
        _one_line_error(invoke(toy_registry, "-m", "logreg", "-d", "toy", "--set", bad, "--out", out), bad, "must be")
    _one_line_error(invoke(toy_registry, "-m", "logreg", "-d", "toy", "--seeds", "-1", "--out", out), "each 0 or more")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_dir_non_root(toy_registry, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    _one_line_error(invoke(toy_registry, "-m", "logreg", "-d", "toy", "--out", str(ro / "x")), "cannot write")


def test_unwritable_output_dir(toy_registry, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    _one_line_error(
        invoke(toy_registry, "-m", "logreg", "-d", "toy", "--out", str(blocker / "run")),
        "cannot write to output directory",
    )


def test_plugin_with_wrong_dtype_is_named_and_exits_non_zero(monkeypatch, tmp_path):
    bad = make_toy_dataset("bad")
    bad = bad.__class__(**{**bad.__dict__, "train_x": bad.train_x.astype(np.float64)})
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    reg = load_plugins(extra=[("toy", toy_plugin({"bad": bad, "toy": make_toy_dataset()}))])
    result = invoke(reg, "-m", "logreg", "--out", str(tmp_path / "o"), "--no-plots")
    assert result.exit_code == 1
    assert "failed: dataset 'bad' from plugin 'toy': train_x has dtype float64, expected float32" in result.output
    pairs = json.loads((tmp_path / "o" / "results.json").read_text())["pairs"]
    assert [p["status"] for p in pairs] == ["failed", "ok"]
    assert "Traceback" not in result.output


def test_quick_profile_limits_epochs_and_data(toy_registry, tmp_path):
    big = make_toy_dataset(n_train=6000, n_test=2000)
    reg = load_plugins(extra=[("toy", toy_plugin({"toy": big}))])
    out = tmp_path / "q"
    assert invoke(reg, "-m", "logreg", "-d", "toy", "--quick", "--out", str(out), "--no-plots").exit_code == 0
    pair = json.loads((out / "results.json").read_text())["pairs"][0]
    assert pair["params"]["epochs"] == 2 and pair["epochs_run"] <= 2
    assert (
        pair["dataset_info"]["n_train"] + pair["dataset_info"]["n_val"] == 4000
        and pair["dataset_info"]["n_test"] == 1000
    )


@pytest.mark.usefixtures("torch_one_thread")
def test_torch_models_count_their_parameters():
    pytest.importorskip("torch")
    model_module = pytest.importorskip("seqbench_torch.model")
    for cell, gates in (("rnn", 1), ("lstm", 4), ("gru", 3)):
        model = model_module.TorchRecurrentClassifier(cell, 4, 3, hidden=5)
        # per gate: input and recurrent weights and PyTorch's two bias vectors; then the head
        assert model.num_parameters() == gates * (5 * 4 + 5 * 5 + 2 * 5) + 5 * 3 + 3


@pytest.mark.slow
def test_a_run_ends_with_its_report_in_the_chosen_plot_format(toy_registry, tmp_path):
    out = tmp_path / "run"
    result = invoke(toy_registry, "-m", "logreg", "-d", "toy", "--seeds", "0,1", "--set", "epochs=2",
                    "--plot-format", "svg", "--out", str(out))
    assert result.exit_code == 0, result.output
    svgs = {p.name for p in (out / "plots").iterdir()}
    assert svgs and all(name.endswith(".svg") for name in svgs)
    assert any(name.startswith("summary") for name in svgs) and any(name.startswith("curves") for name in svgs)
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 3 and "data:image/svg+xml" in html


def test_no_plots_still_writes_the_report_without_images(toy_registry, tmp_path):
    out = tmp_path / "run"
    result = invoke(toy_registry, "-m", "logreg", "-d", "toy", "--set", "epochs=2", "--no-plots", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert not (out / "plots").exists()
    html = (out / "report.html").read_text()
    assert "<img" not in html and "logreg" in html
