"""The training protocol: honest selection, early stopping, divergence, validation at the boundary."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from seqbench import Dataset
from seqbench.protocol import PluginOutputError, split_train_val, train_and_evaluate, validate_dataset

from helpers import MeanLogReg, make_toy_dataset

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
    ds = SpyDataset(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.name != "meta"}, meta={"events": events})
    out = train_and_evaluate(SpyModel(events, 4, 3), ds, PARAMS, {}, seed=0)
    assert out["status"] == "ok"
    first_read = events.index("read:test_x")
    assert "train" in events[:first_read] and "train" not in events[first_read:]
    assert events.index("restore") < first_read
    assert events.count("read:test_x") == 1 and events.count("read:test_y") == 1


def test_test_labels_do_not_influence_training_or_selection():
    ds = make_toy_dataset()
    scrambled = dataclasses.replace(ds, test_y=np.random.default_rng(9).permutation(ds.test_y), test_x=ds.test_x[::-1].copy())
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
        p[: int(round(acc * n)), 0] = 0.0  # not class 0 for the first acc * n samples
        p[: int(round(acc * n)), 1] = 1.0
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


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: dataclasses.replace(d, train_x=d.train_x.astype(np.float64)), "train_x has dtype float64, expected float32"),
        (lambda d: dataclasses.replace(d, test_x=d.test_x[:, :, :2]), "differ from test"),
        (lambda d: dataclasses.replace(d, train_x=d.train_x[:, 0]), r"train_x must be a \(N, T, F\) numpy array"),
        (lambda d: dataclasses.replace(d, test_y=d.test_y[:-1]), "test_x has 90 samples but test_y has 89"),
        (lambda d: dataclasses.replace(d, train_y=d.train_y + 5), "labels outside"),
        (lambda d: dataclasses.replace(d, train_y=d.train_y.astype(np.float32)), "integer numpy array"),
    ],
)
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
        "fine": MetricSpec("fine", lambda y, p, proba, names: {"n": int(len(y))}),
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
