"""Saved models: ``seqbench run --save-models`` keeps each ok pair's best model with a manifest and
a checksum; ``seqbench eval`` reads them back (never through pickle) and evaluates them."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import MeanLogReg, make_toy_dataset, toy_plugin

from seqbench import Dataset, DatasetSpec, hookimpl
from seqbench.cli import main
from seqbench.plugins import load_plugins
from seqbench.results import read_predictions


def invoke(registry, *args):
    return CliRunner().invoke(main, list(args), obj={"registry": registry})


def train(registry, out, *extra, models=("logreg", "rnn-cpu"), seeds="0"):
    args = ["run", *[a for m in models for a in ("-m", m)], "-d", "toy", "--seeds", seeds, "--set", "epochs=3",
            "--out", str(out), "--no-plots", *extra]
    if "rnn-cpu" in models:
        args += ["--set", "hidden=8", "--set", "threads=1"]
    result = invoke(registry, *args)
    assert result.exit_code == 0, result.output
    return json.loads((out / "results.json").read_text())


def manifest_of(run_dir: Path, model: str, seed: int = 0, dataset: str = "toy") -> Path:
    return run_dir / "pairs" / f"{model}+{dataset}+seed{seed}.ckpt" / "manifest.json"


@pytest.fixture
def saved_run(toy_registry, tmp_path):
    out = tmp_path / "run"
    return out, train(toy_registry, out, "--save-models")


def test_save_models_keeps_each_ok_pair_with_manifest_and_checksum(saved_run):
    out, results = saved_run
    assert results["config"]["save_models"] is True
    for pair in results["pairs"]:
        manifest_file = manifest_of(out, pair["model"])
        manifest = json.loads(manifest_file.read_text())
        data = (manifest_file.parent / manifest["file"]).read_bytes()
        assert manifest["file"] == "model.npz" and manifest["format"] == "npz"
        assert manifest["sha256"] == hashlib.sha256(data).hexdigest() and manifest["bytes"] == len(data)
        assert pair["checkpoint"] == {"dir": f"{pair['model']}+toy+seed0.ckpt", "file": "model.npz",
                                      "sha256": manifest["sha256"], "bytes": len(data)}
        assert manifest["params"] == pair["params"] and manifest["seed"] == 0 and manifest["model"] == pair["model"]
        assert manifest["data"]["fingerprint"] == "sha256:toy0" and manifest["data"]["class_names"] == ["a", "b", "c"]
        assert manifest["validation_accuracy"] == pair["history"][pair["best_epoch"] - 1]["val_accuracy"]
        assert manifest["commit"] == pair["environment"]["git_commit"]
        with np.load(io.BytesIO(data), allow_pickle=False) as f:  # plain arrays: no pickle needed to read them
            assert set(f.files) and all(f[k].dtype != object for k in f.files)


def test_without_save_models_no_checkpoint_is_written(toy_registry, tmp_path):
    results = train(toy_registry, tmp_path / "run", models=("logreg",))
    assert not list((tmp_path / "run" / "pairs").glob("*.ckpt")) and "checkpoint" not in results["pairs"][0]


def test_the_config_file_key_saves_models(toy_registry, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('model = "logreg"\ndataset = "toy"\nsave-models = true\n')
    result = invoke(toy_registry, "run", "--config", str(config), "--out", str(tmp_path / "run"), "--no-plots")
    assert result.exit_code == 0, result.output
    assert manifest_of(tmp_path / "run", "logreg").exists()


def test_eval_on_its_own_test_split_gives_the_runs_accuracy_and_predictions_exactly(saved_run, toy_registry, tmp_path):
    out, results = saved_run
    evaluated = tmp_path / "eval"
    result = invoke(toy_registry, "eval", str(out), "-d", "toy", "--out", str(evaluated), "--no-plots")
    assert result.exit_code == 0, result.output
    got = json.loads((evaluated / "results.json").read_text())
    assert len(got["pairs"]) == len(results["pairs"]) == 2
    for run_pair, eval_pair in zip(results["pairs"], got["pairs"], strict=True):
        assert eval_pair["metrics"]["accuracy"] == run_pair["metrics"]["accuracy"]
        assert eval_pair["metrics"]["per_class"] == run_pair["metrics"]["per_class"]
        assert np.array_equal(read_predictions(evaluated, eval_pair), read_predictions(out, run_pair))
        source = eval_pair["evaluated"]
        assert source["checkpoint"] == str(manifest_of(out, run_pair["model"]).resolve())
        assert source["trained_on"]["name"] == "toy" and source["trained_on"]["fingerprint"] == "sha256:toy0"
        assert source["sha256"] == run_pair["checkpoint"]["sha256"]
    for name in ("summary.md", "per_class.md", "timing.md", "records.csv", "report.html"):
        assert (evaluated / name).stat().st_size > 0
    assert "logreg" in result.stdout and "rnn-cpu" in result.stdout


def test_eval_of_a_quick_model_reads_the_same_test_subset(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("toy", toy_plugin({"toy": make_toy_dataset(n_test=1500)}))])
    out = tmp_path / "run"
    train(registry, out, "--save-models", "--quick", models=("logreg",), seeds="3")
    result = invoke(registry, "eval", str(manifest_of(out, "logreg", 3)), "-d", "toy", "--out", str(tmp_path / "e"),
                    "--no-plots")
    assert result.exit_code == 0, result.output
    (pair,) = json.loads((tmp_path / "e" / "results.json").read_text())["pairs"]
    (trained,) = json.loads((out / "results.json").read_text())["pairs"]
    assert pair["dataset_info"]["n_test"] == 1000
    assert np.array_equal(read_predictions(tmp_path / "e", pair), read_predictions(out, trained))


def test_a_standardised_model_is_evaluated_with_its_training_statistics(monkeypatch, tmp_path):
    toy = make_toy_dataset()
    shifted = Dataset("toy", toy.train_x + 10, toy.train_y, toy.test_x + 10, toy.test_y, toy.class_names, "sha256:s")

    class Standardised:
        @hookimpl
        def register_datasets(self, register):
            from seqbench import Preprocessing

            register(DatasetSpec("toy", lambda ctx: shifted, "toy + 10", preprocessing=Preprocessing(standardize=True)))

    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("toy", toy_plugin({})), ("std", Standardised())])
    out = tmp_path / "run"
    train(registry, out, "--save-models", models=("logreg",))
    assert json.loads(manifest_of(out, "logreg").read_text())["preprocessing"]["mean"]
    result = invoke(registry, "eval", str(out), "-d", "toy", "--out", str(tmp_path / "e"), "--no-plots")
    assert result.exit_code == 0, result.output
    (pair,) = json.loads((tmp_path / "e" / "results.json").read_text())["pairs"]
    (trained,) = json.loads((out / "results.json").read_text())["pairs"]
    assert np.array_equal(read_predictions(tmp_path / "e", pair), read_predictions(out, trained))


@pytest.mark.slow
def test_torch_models_are_saved_and_evaluated_exactly(monkeypatch, tmp_path, torch_one_thread):
    seqbench_torch = pytest.importorskip("seqbench_torch")
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("torch", seqbench_torch), ("toy", toy_plugin(models={}))])
    out = tmp_path / "run"
    result = invoke(registry, "run", "-m", "torch-gru", "-d", "toy", "--set", "epochs=2", "--set", "hidden=8",
                    "--out", str(out), "--no-plots", "--save-models")
    assert result.exit_code == 0, result.output
    result = invoke(registry, "eval", str(out), "-d", "toy", "--out", str(tmp_path / "e"), "--no-plots")
    assert result.exit_code == 0, result.output
    (pair,) = json.loads((tmp_path / "e" / "results.json").read_text())["pairs"]
    (trained,) = json.loads((out / "results.json").read_text())["pairs"]
    assert pair["metrics"]["accuracy"] == trained["metrics"]["accuracy"]
    assert np.array_equal(read_predictions(tmp_path / "e", pair), read_predictions(out, trained))


def _refused(result, *texts):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    for text in texts:
        assert text in lines[0], lines[0]


@pytest.mark.parametrize("damage", ["byte", "truncate"])
def test_a_changed_or_truncated_checkpoint_is_refused_in_one_line(saved_run, toy_registry, tmp_path, damage):
    out, _ = saved_run
    weights = out / "pairs" / "logreg+toy+seed0.ckpt" / "model.npz"
    data = bytearray(weights.read_bytes())
    if damage == "byte":
        data[len(data) // 2] ^= 0x01
    else:
        del data[-10:]
    weights.write_bytes(bytes(data))
    result = invoke(toy_registry, "eval", str(out), "-d", "toy", "--out", str(tmp_path / "e"))
    _refused(result, str(weights), "SHA-256 differs" if damage == "byte" else "truncated or changed")
    assert not (tmp_path / "e").exists()


class Payload:
    """Unpickling this writes the file its path names: proof that pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pickle ran"))


def _plant(manifest_file: Path, data: bytes) -> None:
    """Replace the checkpoint's bytes and fix the manifest's size and checksum, as an attacker would."""
    manifest = json.loads(manifest_file.read_text())
    (manifest_file.parent / manifest["file"]).write_bytes(data)
    manifest.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    manifest_file.write_text(json.dumps(manifest))


@pytest.mark.parametrize("carrier", ["object array in the npz", "bare pickle"])
def test_a_planted_pickle_payload_never_runs(saved_run, toy_registry, tmp_path, carrier):
    out, _ = saved_run
    marker = tmp_path / "pwned"
    if carrier == "bare pickle":
        data = pickle.dumps({"W": Payload(marker)})
    else:
        buffer = io.BytesIO()
        np.savez(buffer, W=np.array([Payload(marker)], dtype=object), b=np.zeros(3))
        data = buffer.getvalue()
    _plant(manifest_of(out, "logreg"), data)
    result = invoke(toy_registry, "eval", str(manifest_of(out, "logreg")), "-d", "toy", "--out", str(tmp_path / "e"))
    _refused(result, "model plugin 'toy' could not restore it", "pickle")
    assert not marker.exists()


def test_the_planted_payload_is_live(tmp_path):
    """The payload the test above plants does run when unpickled: its harmlessness there is the harness's doing."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.read_text() == "pickle ran"


def test_a_model_of_another_shape_or_classes_is_refused_before_evaluating(saved_run, monkeypatch, tmp_path):
    out, _ = saved_run
    toy = make_toy_dataset()
    wide = make_toy_dataset("wide")
    wide = Dataset("wide", np.concatenate([wide.train_x] * 2, axis=2), wide.train_y,
                   np.concatenate([wide.test_x] * 2, axis=2), wide.test_y, wide.class_names, "sha256:wide")
    renamed = Dataset("renamed", toy.train_x, toy.train_y, toy.test_x, toy.test_y, ("x", "y", "z"), "sha256:r")
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("toy", toy_plugin({"toy": toy, "wide": wide, "renamed": renamed}))])
    result = invoke(registry, "eval", str(out), "-d", "toy", "-d", "wide", "--out", str(tmp_path / "e"))
    _refused(result, "cannot be evaluated on wide", "6 steps x 4 features (toy), wide's is 6 x 8")
    result = invoke(registry, "eval", str(out), "-d", "renamed", "--out", str(tmp_path / "e"))
    _refused(result, "cannot be evaluated on renamed", "classes of toy (a, b, c)")
    assert not (tmp_path / "e").exists()  # nothing evaluated, nothing written


def test_eval_refuses_what_it_cannot_find_or_build_in_one_line(saved_run, monkeypatch, tmp_path):
    out, _ = saved_run
    result = invoke(load_plugins(extra=[("toy", toy_plugin())]), "eval", str(tmp_path / "nowhere"), "-d", "toy")
    _refused(result, "no such checkpoint or run directory")
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets,models")
    registry = load_plugins(extra=[("toy", toy_plugin())])
    result = invoke(registry, "eval", str(out), "-d", "toy", "--out", str(tmp_path / "e"))
    _refused(result, "model 'rnn-cpu' is not registered here; install its plugin ('models')")
    result = invoke(registry, "eval", str(manifest_of(out, "logreg")), "-d", "toy", "--set", "width=3",
                    "--out", str(tmp_path / "e"))
    _refused(result, "--set width: logreg has no such stored hyperparameter")
    manifest_of(out, "logreg").write_text("{")
    result = invoke(registry, "eval", str(manifest_of(out, "logreg")), "-d", "toy", "--out", str(tmp_path / "e"))
    _refused(result, "not a checkpoint manifest")


def test_a_resume_keeps_the_checkpoints_and_saves_the_rest(toy_registry, tmp_path):
    out = tmp_path / "run"
    train(toy_registry, out, "--save-models", models=("logreg",), seeds="0,1")
    kept = {p.name: p.read_bytes() for p in (out / "pairs").glob("*seed0.ckpt/*")}
    for path in (out / "pairs").glob("*seed1.*"):  # seed 1 was training when the run was killed
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    result = invoke(toy_registry, "run", "--resume", str(out), "--no-plots")
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in (out / "pairs").glob("*seed0.ckpt/*")} == kept
    assert manifest_of(out, "logreg", 1).exists()
    results = json.loads((out / "results.json").read_text())
    assert all(p["checkpoint"]["sha256"] for p in results["pairs"])


def test_a_failing_write_checkpoint_keeps_the_pair_and_warns(monkeypatch, tmp_path):
    class NoCheckpoint(MeanLogReg):
        def write_checkpoint(self, file):
            raise OSError("no room")

    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("toy", toy_plugin(models={
        "nock": lambda info, p: NoCheckpoint(info.n_features, info.num_classes, p["lr"], p["seed"])}))])
    out = tmp_path / "run"
    result = invoke(registry, "run", "-m", "nock", "-d", "toy", "--out", str(out), "--no-plots", "--save-models")
    assert result.exit_code == 0, result.output
    assert (
        "no checkpoint of nock x toy seed 0: model plugin 'toy': write_checkpoint failed: OSError: no room"
        in result.stderr
    )
    (pair,) = json.loads((out / "results.json").read_text())["pairs"]
    assert pair["status"] == "ok" and not list((out / "pairs").glob("*.ckpt"))


def test_a_run_with_checkpoints_and_its_evaluation_match_the_schemas(saved_run, toy_registry, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from test_schema import validators

    out, _ = saved_run
    assert (
        invoke(toy_registry, "eval", str(out), "-d", "toy", "--out", str(tmp_path / "e"), "--no-plots").exit_code == 0
    )
    results_validator, pair_validator = validators()
    for run_dir in (out, tmp_path / "e"):
        results = json.loads((run_dir / "results.json").read_text())
        results_validator.validate(results)
        for pair in results["pairs"]:
            pair_validator.validate(pair)
    with pytest.raises(jsonschema.ValidationError):
        pair_validator.validate({**results["pairs"][0], "evaluated": {"checkpoint": "x"}})
