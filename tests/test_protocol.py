"""The training protocol: honest selection, early stopping, divergence, validation at the boundary, and
its promises pinned row by row (the validation fraction; what a spy model sees)."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import MeanLogReg, make_toy_dataset, toy_plugin

from seqbench import Dataset
from seqbench.cli import main
from seqbench.plugins import load_plugins
from seqbench.progress import Progress
from seqbench.protocol import PluginOutputError, split_train_val, train_and_evaluate, validate_dataset

PARAMS = {"epochs": 8, "batch_size": 32, "patience": 3, "val_fraction": 0.1}


class SpyDataset(Dataset):
    """Records when the test split is read."""

    def __getattribute__(self, name):
        if name in ("test_x", "test_y"):
            object.__getattribute__(self, "meta")["events"].append(f"read:{name}")
        return object.__getattribute__(self, name)


class SpyModel(MeanLogReg):
    def __init__(self, events, *a, **k):
        super().__init__(*a, **k)
        self.events = events

    def train_batch(self, x, y):
        self.events.append("train")
        return super().train_batch(x, y)

    def load_state_dict(self, state):
        self.events.append("restore")
        super().load_state_dict(state)


def test_test_split_is_read_once_after_training_and_selection():
    base = make_toy_dataset()
    events: list[str] = []
    ds = SpyDataset(
        **{f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.name != "meta"}, meta={"events": events}
    )
    out = train_and_evaluate(SpyModel(events, 4, 3), ds, PARAMS, {}, seed=0)
    assert out["status"] == "ok"
    first_read = events.index("read:test_x")
    assert "train" in events[:first_read] and "train" not in events[first_read:]
    assert events.index("restore") < first_read
    assert events.count("read:test_x") == 1 and events.count("read:test_y") == 1


def test_test_labels_do_not_influence_training_or_selection():
    ds = make_toy_dataset()
    scrambled = dataclasses.replace(
        ds, test_y=np.random.default_rng(9).permutation(ds.test_y), test_x=ds.test_x[::-1].copy()
    )
    a = train_and_evaluate(MeanLogReg(4, 3), ds, PARAMS, {}, seed=1)
    b = train_and_evaluate(MeanLogReg(4, 3), scrambled, PARAMS, {}, seed=1)
    strip = lambda hist: [(h["epoch"], h["train_loss"], h["val_accuracy"]) for h in hist]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    assert a["best_epoch"] == b["best_epoch"]


def test_split_is_deterministic_disjoint_and_seeded():
    tr, val = split_train_val(1000, 0.1, seed=3)
    tr2, val2 = split_train_val(1000, 0.1, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(val, val2)
    assert len(val) == 100 and len(tr) == 900 and not set(tr) & set(val)
    assert not np.array_equal(val, split_train_val(1000, 0.1, seed=4)[1])


class ScriptedModel(MeanLogReg):
    """Validation accuracy follows a script; parameters record the epoch they come from."""

    def __init__(self, script):
        super().__init__(4, 3)
        self.script, self.epoch = script, 0

    def train_batch(self, x, y):
        return 1.0

    def epoch_end(self, epoch):
        self.epoch = epoch

    def predict_proba(self, x):
        n = len(x)
        acc = self.script[self.epoch - 1] if self.epoch <= len(self.script) else 0.0
        p = np.zeros((n, 3))
        p[:, 0] = 1.0
        p[: round(acc * n), 0] = 0.0  # not class 0 for the first acc * n samples
        p[: round(acc * n), 1] = 1.0
        return p

    def state_dict(self):
        return {"epoch": np.array(self.epoch)}

    def load_state_dict(self, state):
        self.epoch = int(state["epoch"])


def test_early_stopping_restores_the_best_epoch():
    n = 200
    ds = make_toy_dataset(n_train=n)
    ds = dataclasses.replace(ds, train_y=np.ones(n, dtype=np.int64))  # validation labels all 1
    model = ScriptedModel([0.2, 0.5, 0.9, 0.4, 0.6, 0.8, 0.95])
    out = train_and_evaluate(model, ds, {**PARAMS, "epochs": 10, "patience": 3}, {}, seed=0)
    assert [round(h["val_accuracy"], 2) for h in out["history"]] == [0.2, 0.5, 0.9, 0.4, 0.6, 0.8]
    assert out["best_epoch"] == 3 and out["epochs_run"] == 6 and out["stopped_early"]
    assert model.epoch == 3  # the best epoch's parameters were restored before testing


class NaNModel(MeanLogReg):
    def train_batch(self, x, y):
        return float("nan") if self.b[0] > 0.5 else (self.b.__setitem__(0, self.b[0] + 0.1) or 0.5)


def test_nan_loss_is_recorded_as_diverged():
    out = train_and_evaluate(NaNModel(4, 3), make_toy_dataset(), PARAMS, {}, seed=0)
    assert out["status"] == "diverged" and out["diverged_epoch"] == 1
    assert out["metrics"] is None and "nan" in out["reason"]


@pytest.mark.parametrize("change, message", [
    (lambda d: dataclasses.replace(d, train_y=np.where(d.train_y == 2, 3, d.train_y)), r"labels outside \[0, 3\)"),
    (lambda d: dataclasses.replace(d, test_x=d.test_x[:, :5]),
     r"train steps x features \(6, 4\) differ from test \(5, 4\)"),
    (lambda d: dataclasses.replace(d, train_x=d.train_x[:1], train_y=d.train_y[:1]),
     "needs at least 2 training samples"),
    (lambda d: dataclasses.replace(d, train_x=d.train_x[:, 0]), r"got array of shape \(300, 4\) and dtype float32"),
    (lambda d: dataclasses.replace(d, test_y=list(d.test_y)), r"test_y must be a \(N,\) integer numpy array, got list"),
    (lambda d: dataclasses.replace(d, test_y=d.test_y[:, None]), r"got array of shape \(90, 1\) and dtype int64"),
])
def test_dataset_is_checked_at_the_boundary(change, message):
    with pytest.raises(PluginOutputError, match=message) as exc:
        validate_dataset(change(make_toy_dataset()), "myplugin")
    assert "plugin 'myplugin'" in str(exc.value)


def test_wrong_predict_shape_names_the_plugin():
    class Bad(MeanLogReg):
        def predict_proba(self, x):
            return super().predict_proba(x)[:, :2]

    with pytest.raises(PluginOutputError, match=r"plugin 'badplug'.*shape \(30, 3\)"):
        train_and_evaluate(Bad(4, 3), make_toy_dataset(), PARAMS, {}, seed=0, model_plugin="badplug")


def test_a_metric_that_exits_or_raises_is_reported_and_the_others_are_computed():
    import sys

    from seqbench import MetricSpec

    metrics = {
        "exits": MetricSpec("exits", lambda y, p, proba, names: sys.exit(3)),
        "raises": MetricSpec("raises", lambda y, p, proba, names: 1 / 0),
        "nan": MetricSpec("nan", lambda y, p, proba, names: {"v": float("nan")}),
        "fine": MetricSpec("fine", lambda y, p, proba, names: {"n": len(y)}),
    }
    out = train_and_evaluate(MeanLogReg(4, 3), make_toy_dataset(), PARAMS, metrics, seed=0)
    assert out["status"] == "ok" and out["metrics"] == {"fine": {"n": 90}}
    assert set(out["metric_errors"]) == {"exits", "raises", "nan"}
    assert out["metric_errors"]["exits"].startswith("SystemExit")


@pytest.mark.parametrize("bad, reason", [
    (lambda p: p * np.nan, "non-finite"),
    (lambda p: p - 0.5, "negative"),
    (lambda p: p * 2, "sum to 1"),
])
def test_probabilities_that_are_not_probabilities_fail_the_pair_naming_the_plugin(bad, reason):
    class Broken(MeanLogReg):
        def predict_proba(self, x):
            return bad(super().predict_proba(x))

    with pytest.raises(PluginOutputError, match=f"plugin 'p'.*{reason}"):
        train_and_evaluate(Broken(4, 3), make_toy_dataset(), PARAMS, {}, seed=0, model_plugin="p")


def test_epoch_times_are_summarised_robustly_after_the_first_epoch():
    from seqbench.protocol import robust_times

    t = robust_times([9.0, 1.0, 3.0, 2.0, 100.0])
    assert t["epoch_seconds_median"] == 2.5 and t["epoch_seconds_min"] == 1.0
    assert t["epoch_seconds_mean"] == 23.0 and t["epochs_timed"] == 4
    assert robust_times([4.0]) == {"epoch_seconds_median": 4.0, "epoch_seconds_min": 4.0,
                                   "epoch_seconds_mean": 4.0, "epochs_timed": 1}


# --- the promises row by row ------------------------------------------------------------------
# The protocol's promises pinned row by row: the validation fraction is honoured, and a spy
# model sees every training row once an epoch and never a validation or test row.


TEST_ID_OFFSET = 10_000


def id_dataset(n_train: int = 300, n_test: int = 90, seed: int = 0) -> Dataset:
    """A toy dataset whose rows carry their own id in ``x[:, 0, 0]`` (test ids from 10 000)."""
    rng = np.random.default_rng(seed)

    def split(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, n).astype(np.int64)
        x = rng.normal(0.0, 0.5, (n, 6, 4)).astype(np.float32)
        x[np.arange(n), 1:, y] += 1.5
        x[:, 0, 0] = np.arange(offset, offset + n)
        return x, y

    (tx, ty), (sx, sy) = split(n_train, 0), split(n_test, TEST_ID_OFFSET)
    return Dataset("ids", tx, ty, sx, sy, ("a", "b", "c"), "sha256:ids")


class RowSpy(MeanLogReg):
    """Records the row ids of every training batch (by epoch) and of every prediction."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.epochs: list[list[int]] = [[]]
        self.predicted: list[list[int]] = []
        self.batches: list[np.ndarray] = []
        self.inputs: list[np.ndarray] = []

    def train_batch(self, x, y):
        self.epochs[-1].extend(int(i) for i in x[:, 0, 0])
        self.batches.append(np.array(x))
        return super().train_batch(x, y)

    def epoch_end(self, epoch):
        self.epochs.append([])

    def predict_proba(self, x):
        self.predicted.append([int(i) for i in x[:, 0, 0]])
        self.inputs.append(np.array(x))
        return super().predict_proba(x)


def assert_spy_saw_only_training_rows(spy: RowSpy, n_train: int, val_fraction: float, seed: int, epochs: int):
    tr, val = split_train_val(n_train, val_fraction, seed)
    trained = [e for e in spy.epochs if e]
    assert len(trained) == epochs
    for seen in trained:  # each epoch: every training row exactly once, in a shuffled order
        assert sorted(seen) == tr.tolist()
        assert seen != sorted(seen)
    assert trained[0] != trained[1]  # a fresh shuffle each epoch
    everything_trained = set().union(*trained)
    assert not everything_trained & set(val.tolist())
    assert all(i < TEST_ID_OFFSET for i in everything_trained)
    # Validation passes see exactly the validation rows; the test rows are predicted in one pass.
    test_passes = [p for p in spy.predicted if p and p[0] >= TEST_ID_OFFSET]
    assert len(test_passes) == 1 and test_passes[0] == list(range(TEST_ID_OFFSET, TEST_ID_OFFSET + 90))
    first_test = spy.predicted.index(test_passes[0])
    for p in spy.predicted[:first_test]:
        assert p == val.tolist()


@pytest.mark.parametrize("n, fraction, n_val", [
    (1000, 0.25, 250), (1000, 0.1, 100), (1000, 0.5, 500), (1000, 0.75, 750),
    (2, 0.25, 1), (3, 0.25, 1), (4, 0.25, 1), (8, 0.25, 2), (10, 0.3, 3),
    (5, 0.9, 4),  # at most n - 1: one training row is left
    (7, 0.01, 1),  # at least one validation row
])
def test_split_honours_the_validation_fraction(n, fraction, n_val):
    tr, val = split_train_val(n, fraction, seed=1)
    assert len(val) == n_val and len(tr) == n - n_val
    assert sorted(tr.tolist() + val.tolist()) == list(range(n))


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_refuses_fractions_outside_zero_one(fraction):
    with pytest.raises(ValueError, match="val_fraction must be in"):
        split_train_val(10, fraction, seed=0)


def test_split_is_a_shuffle_not_a_slice():
    tr, val = split_train_val(1000, 0.25, seed=0)
    assert val.tolist() != list(range(750, 1000)) and val.tolist() != list(range(250))
    assert np.array_equal(val, np.sort(val)) and np.array_equal(tr, np.sort(tr))


@pytest.mark.parametrize("val_fraction, batch_size", [(0.25, 32), (0.1, 50)])
def test_spy_model_never_trains_on_validation_or_test_rows(val_fraction, batch_size):
    spy = RowSpy(4, 3)
    params = {"epochs": 3, "batch_size": batch_size, "patience": 5, "val_fraction": val_fraction}
    out = train_and_evaluate(spy, id_dataset(), params, {}, seed=2)
    n_val = round(300 * val_fraction)
    assert out["split"] == {"n_train": 300 - n_val, "n_val": n_val, "n_test": 90}
    assert_spy_saw_only_training_rows(spy, 300, val_fraction, seed=2, epochs=3)
    # the training batches: full ones then the remainder, in the epoch's order
    sizes = [len(b) for b in _batches(spy, 300 - n_val, batch_size)]
    assert sum(sizes) == 300 - n_val and len(sizes) == -(-(300 - n_val) // batch_size)


def _batches(spy: RowSpy, n: int, batch_size: int) -> list[list[int]]:
    first = spy.epochs[0]
    return [first[i:i + batch_size] for i in range(0, n, batch_size)]


def test_a_run_with_set_val_fraction_trains_only_on_its_training_rows(monkeypatch, tmp_path):
    """End to end through ``seqbench run --set val_fraction=0.2``, with the spy as a model plugin."""
    spies: list[RowSpy] = []

    def build(info, p):
        spies.append(RowSpy(info.n_features, info.num_classes, p["lr"], p["seed"]))
        return spies[-1]

    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("spy", toy_plugin({"ids": id_dataset()}, {"spy": build}))])
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "-m", "spy", "-d", "ids", "--seeds", "3", "--set", "val_fraction=0.2",
                                       "--set", "epochs=2", "--set", "patience=5", "--out", str(out), "--no-plots"],
                                obj={"registry": registry})
    assert result.exit_code == 0, result.output
    pair = json.loads((out / "results.json").read_text())["pairs"][0]
    assert pair["status"] == "ok" and pair["params"]["val_fraction"] == 0.2
    assert (pair["dataset_info"]["n_train"], pair["dataset_info"]["n_val"]) == (240, 60)
    assert len(spies) == 1
    assert_spy_saw_only_training_rows(spies[0], 300, 0.2, seed=3, epochs=2)


def test_the_protocol_reads_its_val_fraction_parameter():
    ds = id_dataset()
    sizes = {}
    for fraction in (0.1, 0.25, 0.5):
        out = train_and_evaluate(MeanLogReg(4, 3), ds, {"epochs": 1, "batch_size": 64, "patience": 1,
                                                         "val_fraction": fraction}, {}, seed=0)
        sizes[fraction] = (out["split"]["n_train"], out["split"]["n_val"])
    assert sizes == {0.1: (270, 30), 0.25: (225, 75), 0.5: (150, 150)}


def test_max_train_subsets_before_the_split_and_max_test_limits_the_test_rows():
    spy = RowSpy(4, 3)
    out = train_and_evaluate(spy, id_dataset(), {"epochs": 2, "batch_size": 16, "patience": 5, "val_fraction": 0.25},
                             {}, seed=4, max_train=100, max_test=30)
    assert out["split"] == {"n_train": 75, "n_val": 25, "n_test": 30}
    seen = set(spy.epochs[0])
    assert len(seen) == 75 and all(i < 300 for i in seen)
    test_passes = [p for p in spy.predicted if p and p[0] >= TEST_ID_OFFSET]
    assert len(test_passes) == 1 and len(set(test_passes[0])) == 30
    assert out["test_predictions"].shape == (2, 30)


# --- sharper checks of the protocol's bookkeeping (found by mutation testing) --------------------


class Recorder(Progress):
    def __init__(self):
        self.calls: list[tuple] = []

    def epoch_start(self, epoch, epochs, n_batches):
        self.calls.append(("start", epoch, epochs, n_batches))

    def epoch_end(self, record, best_epoch):
        self.calls.append(("end", record.epoch, best_epoch))


class ConstantLoss(MeanLogReg):
    def train_batch(self, x, y):
        super().train_batch(x, y)
        return 0.25


def test_timing_losses_and_progress_with_a_counting_clock():
    """Each clock() call advances one second: every interval the protocol measures is one second."""
    ticks = itertools.count()
    progress = Recorder()
    out = train_and_evaluate(ConstantLoss(4, 3), id_dataset(), {"epochs": 3, "batch_size": 100, "patience": 5,
                                                                 "val_fraction": 0.1}, {}, seed=0,
                             progress=progress, clock=lambda: float(next(ticks)))
    assert [h["train_loss"] for h in out["history"]] == [0.25] * 3  # the mean over 3 batches
    assert [(h["epoch_seconds"], h["val_seconds"]) for h in out["history"]] == [(1.0, 1.0)] * 3
    t = out["timing"]
    assert t["train_seconds"] == 3.0 and t["time_to_best_seconds"] == float(out["best_epoch"])
    assert t["inference_seconds"] == 1.0 and t["inference_repeats_seconds"] == [1.0, 1.0, 1.0]
    assert t["inference_timed_samples"] == 30 and t["inference_samples_per_second"] == 30.0
    assert t["epoch_seconds_median"] == 1.0 and t["epochs_timed"] == 2
    assert t["peak_host_rss_bytes"] > 10 * 2**20 and t["peak_host_rss_bytes"] % 1024 == 0
    assert progress.calls[:2] == [("start", 1, 3, 3), ("end", 1, 1)]
    assert [c[0] for c in progress.calls] == ["start", "end"] * 3


def test_a_tie_keeps_the_first_best_epoch_and_a_divergence_at_epoch_1_has_no_best():
    from test_protocol import NaNModel, ScriptedModel

    n = 100
    ds = dataclasses.replace(id_dataset(n_train=n), train_y=np.ones(n, dtype=np.int64))
    model = ScriptedModel([0.5, 0.5, 0.5])
    out = train_and_evaluate(model, ds, {"epochs": 5, "batch_size": 32, "patience": 2, "val_fraction": 0.1}, {}, seed=0)
    assert out["best_epoch"] == 1 and out["epochs_run"] == 3 and model.epoch == 1
    progress = Recorder()
    nan = NaNModel(4, 3)
    nan.b[0] = 1.0  # NaN from the first batch
    out = train_and_evaluate(nan, id_dataset(), {"epochs": 3, "batch_size": 32, "patience": 2, "val_fraction": 0.1},
                             {}, seed=0, progress=progress)
    assert out["status"] == "diverged" and out["best_epoch"] == 0 and out["epochs_run"] == 1
    assert out["history"][0]["train_loss"] is None and not out["stopped_early"]
    assert progress.calls == [("start", 1, 3, 9), ("end", 1, 0)]
    assert out["timing"]["time_to_best_seconds"] == 0.0


def test_epoch_records_turn_a_non_finite_loss_into_null():
    from seqbench.protocol import EpochRecord

    assert EpochRecord(1, float("inf"), 0.5, 1.0, 0.1).as_dict() == {
        "epoch": 1, "train_loss": None, "val_accuracy": 0.5, "epoch_seconds": 1.0, "val_seconds": 0.1}
    assert EpochRecord(2, 0.75, 0.5, 1.0, 0.1).as_dict()["train_loss"] == 0.75


def test_standardisation_statistics_come_from_the_training_rows_only():
    from seqbench import preprocess
    from seqbench.types import Preprocessing

    ds = id_dataset()
    ds = dataclasses.replace(ds, train_x=ds.train_x * 3 + 1, test_x=ds.test_x * 3 + 1)
    spy = RowSpy(4, 3)
    out = train_and_evaluate(spy, ds, {"epochs": 1, "batch_size": 300, "patience": 1, "val_fraction": 0.2},
                             {}, seed=5, preprocessing=Preprocessing(standardize=True))
    tr, val = split_train_val(300, 0.2, 5)
    mean, std = preprocess.channel_stats(ds.train_x[tr], ds.channels)
    assert out["preprocessing"]["standardize"] is True
    np.testing.assert_allclose(out["preprocessing"]["mean"], mean)
    np.testing.assert_allclose(out["preprocessing"]["std"], std)
    seen = np.concatenate(spy.batches)
    np.testing.assert_allclose(
        np.sort(seen.ravel()), np.sort(preprocess.standardize(ds.train_x[tr], mean, std, 1).ravel()), rtol=1e-5
    )
    assert abs(seen.mean()) < 1e-5 and abs(seen.std() - 1) < 1e-4
    np.testing.assert_allclose(spy.inputs[0], preprocess.standardize(ds.train_x[val], mean, std, 1), rtol=1e-5)
    test_input = next(x for x in spy.inputs if len(x) == 90)
    np.testing.assert_allclose(test_input, preprocess.standardize(ds.test_x, mean, std, 1), rtol=1e-5)


def test_augmented_batches_are_flips_of_training_rows():
    from seqbench.types import Preprocessing

    ds = id_dataset()
    ds.train_x[:, 0, -1] = ds.train_x[:, 0, 0]  # the id at both ends of step 0 survives a flip
    spy = RowSpy(4, 3)
    train_and_evaluate(spy, ds, {"epochs": 2, "batch_size": 64, "patience": 5, "val_fraction": 0.25},
                       {}, seed=1, preprocessing=Preprocessing(hflip=True))
    tr, _ = split_train_val(300, 0.25, 1)
    assert sorted(spy.epochs[0]) == tr.tolist()
    flipped = 0
    for x in np.concatenate(spy.batches):
        original = ds.train_x[int(x[0, 0])]
        assert np.array_equal(x, original) or np.array_equal(x, original[:, ::-1])
        flipped += not np.array_equal(x, original)
    assert 0.3 < flipped / (2 * len(tr)) < 0.7


def test_the_default_plugin_name_and_int_or_float32_probabilities():
    class Wrong(MeanLogReg):
        def predict_proba(self, x):
            return super().predict_proba(x)[:, :2]

    with pytest.raises(PluginOutputError, match=r"plugin '\?'"):
        train_and_evaluate(Wrong(4, 3), id_dataset(), {"epochs": 1, "batch_size": 64, "patience": 1,
                                                       "val_fraction": 0.1}, {}, seed=0)

    class Ints(MeanLogReg):
        def predict_proba(self, x):
            return np.eye(3, dtype=np.int64)[super().predict_proba(x).argmax(axis=1)]

    with pytest.raises(PluginOutputError, match="returned dtype int64, expected floats"):
        train_and_evaluate(Ints(4, 3), id_dataset(), {"epochs": 1, "batch_size": 64, "patience": 1,
                                                      "val_fraction": 0.1}, {}, seed=0, model_plugin="p")

    class Float32(MeanLogReg):
        def predict_proba(self, x):
            return super().predict_proba(x).astype(np.float32)

    out = train_and_evaluate(Float32(4, 3), id_dataset(), {"epochs": 1, "batch_size": 64, "patience": 1,
                                                           "val_fraction": 0.1}, {}, seed=0)
    assert out["status"] == "ok"


def test_bad_probabilities_are_described_exactly():
    from seqbench.protocol import _check_probabilities

    p = np.full((3, 2), 0.5)
    p[1] = [0.5, 1.0]
    with pytest.raises(PluginOutputError, match=r"rows must sum to 1, one sums to 1\.5$"):
        _check_probabilities(p, "x")
    p[1] = [np.nan, 0.5]
    p[2] = [np.inf, 0.5]
    with pytest.raises(PluginOutputError, match="returned 2 non-finite value"):
        _check_probabilities(p, "x")
    with pytest.raises(PluginOutputError, match="plugin 'x': predict_proba returned dtype int64, expected floats"):
        _check_probabilities(np.array([[1, 0]]), "x")


def test_predictions_go_in_eval_batches_and_an_empty_split_has_none(monkeypatch):
    import seqbench.protocol as protocol

    monkeypatch.setattr(protocol, "EVAL_BATCH", 7)
    spy = RowSpy(4, 3)
    x = id_dataset().train_x[:20]
    proba, labels = protocol.predict_labels(spy, x, 3, "p")
    assert [len(p) for p in spy.predicted] == [7, 7, 6] and proba.shape == (20, 3) and len(labels) == 20
    proba, labels = protocol.predict_labels(spy, x[:0], 3, "p")
    assert proba.shape == (0, 3) and labels.shape == (0,)

    class Bad(MeanLogReg):
        def predict_proba(self, x):
            return super().predict_proba(x)[:, :2]

    with pytest.raises(PluginOutputError, match=r"shape \(7, 3\), got array of shape \(7, 2\) and dtype float64"):
        protocol.predict_labels(Bad(4, 3), x, 3, "p")


def test_metrics_receive_labels_predictions_probabilities_and_class_names():
    from seqbench import MetricSpec

    seen = {}

    def record(y, pred, proba, names):
        seen.update(y=y, pred=pred, proba=proba, names=names)
        return {"ok": 1}

    spy = RowSpy(4, 3)
    out = train_and_evaluate(spy, id_dataset(), {"epochs": 1, "batch_size": 64, "patience": 1, "val_fraction": 0.1},
                             {"rec": MetricSpec("rec", record)}, seed=0)
    assert out["metrics"] == {"rec": {"ok": 1}} and out["metric_errors"] == {}
    assert seen["names"] == ("a", "b", "c") and np.array_equal(seen["y"], id_dataset().test_y)
    assert np.array_equal(seen["pred"], seen["proba"].argmax(axis=1)) and seen["proba"].shape == (90, 3)
    assert np.array_equal(out["test_predictions"], np.stack([seen["y"], seen["pred"]]))


def test_a_max_train_subset_is_the_same_for_a_seed():
    runs = [RowSpy(4, 3) for _ in range(2)]
    for spy in runs:
        train_and_evaluate(spy, id_dataset(), {"epochs": 1, "batch_size": 64, "patience": 1, "val_fraction": 0.5},
                           {}, seed=9, max_train=40)
    assert sorted(runs[0].epochs[0]) == sorted(runs[1].epochs[0]) and len(runs[0].epochs[0]) == 20


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: dataclasses.replace(d, train_y=np.where(d.train_y == 2, 3, d.train_y)), r"labels outside \[0, 3\)"),
        (
            lambda d: dataclasses.replace(d, test_x=d.test_x[:, :5]),
            r"train steps x features \(6, 4\) differ from test \(5, 4\)",
        ),
        (
            lambda d: dataclasses.replace(d, train_x=d.train_x[:1], train_y=d.train_y[:1]),
            "needs at least 2 training samples",
        ),
        (lambda d: dataclasses.replace(d, train_x=d.train_x[:, 0]), r"got array of shape \(300, 4\) and dtype float32"),
        (
            lambda d: dataclasses.replace(d, test_y=list(d.test_y)),
            r"test_y must be a \(N,\) integer numpy array, got list",
        ),
        (lambda d: dataclasses.replace(d, test_y=d.test_y[:, None]), r"got array of shape \(90, 1\) and dtype int64"),
    ],
)
def test_dataset_validation_boundaries(change, message):
    from seqbench.protocol import validate_dataset

    with pytest.raises(PluginOutputError, match=message):
        validate_dataset(change(id_dataset()), "plug")


def test_two_training_samples_are_enough():
    from seqbench.protocol import validate_dataset

    ds = id_dataset()
    validate_dataset(dataclasses.replace(ds, train_x=ds.train_x[:2], train_y=np.array([0, 2])), "plug")


class DeviceRows(np.ndarray):
    """What a spy model's ``to_device`` returns: the harness must hand these to ``train_batch``."""


class DeviceSpy(MeanLogReg):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.device_bytes = 123

    def to_device(self, array):
        return np.asarray(array).view(DeviceRows)

    def train_batch(self, x, y):
        assert isinstance(x, DeviceRows) and isinstance(y, DeviceRows)
        return super().train_batch(np.asarray(x), np.asarray(y))

    def peak_memory_bytes(self):
        return self.device_bytes


def test_a_full_run_on_the_device_records_its_numbers_and_no_reason():
    ticks = itertools.count(0, 2)  # every interval is two seconds
    out = train_and_evaluate(DeviceSpy(4, 3), id_dataset(), {"epochs": 2, "batch_size": 64, "patience": 5,
                                                             "val_fraction": 0.1}, {}, seed=0,
                             clock=lambda: float(next(ticks)))
    assert out["status"] == "ok" and out["reason"] is None and out["stopped_early"] is False
    assert out["epochs_run"] == 2 and out["timing"]["peak_device_bytes"] == 123
    assert out["timing"]["inference_samples_per_second"] == 15.0  # 30 validation rows in 2 s
    assert out["test_predictions"].dtype == np.int8


def test_a_clock_that_does_not_move_gives_no_throughput():
    out = train_and_evaluate(MeanLogReg(4, 3), id_dataset(), {"epochs": 1, "batch_size": 64, "patience": 5,
                                                              "val_fraction": 0.1}, {}, seed=0, clock=lambda: 5.0)
    assert out["timing"]["inference_samples_per_second"] is None


@pytest.mark.parametrize("classes, dtype", [(127, np.int8), (128, np.int32)])
def test_test_predictions_are_int8_up_to_127_classes(classes, dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2, 4)).astype(np.float32)
    y = (np.arange(40) * 3 % classes).astype(np.int64)
    ds = Dataset("many", x[:30], y[:30], x[30:], y[30:], tuple(str(i) for i in range(classes)), "sha256:m")
    out = train_and_evaluate(MeanLogReg(4, classes), ds, {"epochs": 1, "batch_size": 16, "patience": 1,
                                                          "val_fraction": 0.2}, {}, seed=0)
    assert out["test_predictions"].dtype == dtype
    assert out["test_predictions"][0].tolist() == y[30:].tolist()


def test_a_model_that_fails_only_on_the_test_rows_is_named():
    class TestOnly(MeanLogReg):
        def predict_proba(self, x):
            p = super().predict_proba(x)
            return p[:, :2] if len(x) == 90 else p

    with pytest.raises(PluginOutputError, match=r"plugin 'tplug'.*shape \(90, 3\)"):
        train_and_evaluate(TestOnly(4, 3), id_dataset(), {"epochs": 1, "batch_size": 64, "patience": 1,
                                                          "val_fraction": 0.1}, {}, seed=0, model_plugin="tplug")


def test_the_row_furthest_from_one_is_named():
    from seqbench.protocol import _check_probabilities

    p = np.array([[0.5, 0.5], [0.25, 0.25], [0.5, 0.5]])
    with pytest.raises(PluginOutputError, match=r"one sums to 0\.5$"):
        _check_probabilities(p, "x")


# --- derived datasets (found by mutation testing) ---------------------------------------------------


def _ctx(source: Dataset, locate=None):
    """A stand-in LoadContext serving one source dataset ``src``."""
    import types

    from seqbench import DatasetSpec

    spec = DatasetSpec("src", lambda ctx: source, locate=locate)
    return types.SimpleNamespace(load=lambda name: source, spec=lambda name: spec)


def test_a_derived_dataset_passes_its_params_and_keeps_only_its_lineage_in_meta():
    from seqbench import DatasetSpec

    src = dataclasses.replace(id_dataset(), meta={"from_source": 1})
    arrays = DatasetSpec.derive("plus", "src", lambda tr, te, k: (tr + k, te + k), identity="add/v1", params={"k": 2})
    out = arrays.load(_ctx(src))
    assert np.array_equal(out.train_x, src.train_x + 2) and np.array_equal(out.test_x, src.test_x + 2)
    assert out.meta == {"derived_from": {"dataset": "src", "fingerprint": "sha256:ids", "meta": {"from_source": 1},
                                         "transform": "add/v1", "params": {"k": 2}}}
    assert arrays.description == "src, add/v1" and arrays.source == "src"
    whole = DatasetSpec.derive("w", "src", lambda ds, k: dataclasses.replace(ds, train_y=ds.train_y * 0 + k,
                                                                             meta={"added": True}),
                               identity="w/v1", params={"k": 1}, whole=True, description="mine")
    out = whole.load(_ctx(src))
    assert set(out.train_y.tolist()) == {1} and out.meta["added"] is True and whole.description == "mine"
    bad = DatasetSpec.derive("bad", "src", lambda ds: 3, identity="bad/v1", whole=True)
    with pytest.raises(TypeError, match="the transform of derived dataset 'bad' returned int, not a Dataset"):
        bad.load(_ctx(src))


def test_a_derived_dataset_locates_through_its_source():
    from seqbench import DatasetSpec
    from seqbench.types import derived_fingerprint

    spec = DatasetSpec.derive("plus", "src", lambda tr, te, k: (tr, te), identity="add/v1", params={"k": 2})
    assert spec.locate(_ctx(id_dataset())) == {"status": "unknown", "derived_from": "src"}
    where = {"status": "ok", "directory": "/d", "missing": [], "error": None, "fingerprint": "sha256:f",
             "train_shape": [3, 4, 5]}
    source = id_dataset()
    assert spec.locate(_ctx(source, lambda ctx: where)) == {  # shapes of the result, not the source's claim
        "status": "ok", "directory": "/d", "missing": [], "derived_from": "src",
        "fingerprint": derived_fingerprint("sha256:f", "add/v1", {"k": 2}),
        "train_shape": list(source.train_x.shape), "test_shape": list(source.test_x.shape)}
    failed = spec.locate(_ctx(id_dataset(), lambda ctx: {"status": "error", "error": "boom"}))
    assert failed == {"status": "error", "error": "boom", "derived_from": "src"}


def test_the_derived_fingerprint_is_the_documented_hash():
    import hashlib
    from pathlib import PurePosixPath

    from seqbench.types import derived_fingerprint

    text = json.dumps({"params": {"a": 2, "b": 1}, "source": "sha256:s", "transform": "t/v1"}, sort_keys=True)
    expected = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert derived_fingerprint("sha256:s", "t/v1", {"b": 1, "a": 2}) == expected  # key order does not matter
    assert derived_fingerprint("sha256:s", "t/v1", {"a": 2, "b": 1}) == expected
    odd = derived_fingerprint("sha256:s", "t/v1", {"p": PurePosixPath("/x")})  # not JSON: its repr counts
    assert odd != derived_fingerprint("sha256:s", "t/v1", {"p": PurePosixPath("/y")})
