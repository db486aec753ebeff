"""The protocol's promises pinned row by row: the validation fraction is honoured, and a spy
model sees every training row once an epoch and never a validation or test row."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from seqbench import Dataset
from seqbench.cli import main
from seqbench.plugins import load_plugins
from seqbench.protocol import split_train_val, train_and_evaluate

from helpers import MeanLogReg, toy_plugin

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

    def train_batch(self, x, y):
        self.epochs[-1].extend(int(i) for i in x[:, 0, 0])
        return super().train_batch(x, y)

    def epoch_end(self, epoch):
        self.epochs.append([])

    def predict_proba(self, x):
        self.predicted.append([int(i) for i in x[:, 0, 0]])
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
