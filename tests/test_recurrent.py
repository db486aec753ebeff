"""What every from-scratch cell shares through RecurrentClassifier: save/load and determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_rnn import sequence_task

from seqbench.models.gru import GRU
from seqbench.models.lstm import LSTM
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.models.rnn import RNN

CELLS = pytest.mark.parametrize("cell", [RNN, LSTM, GRU], ids=["rnn", "lstm", "gru"])


@CELLS
def test_save_and_load_give_identical_predictions(cell, tmp_path):
    x, y = sequence_task(64)
    model = RecurrentClassifier(cell, 3, 3, hidden=8, seed=0)
    for _ in range(10):
        model.train_batch(x, y)
    path = tmp_path / "model.npz"
    model.save(path)
    fresh = RecurrentClassifier(cell, 3, 3, hidden=8, seed=99)
    assert not np.array_equal(fresh.predict_proba(x), model.predict_proba(x))
    fresh.load(path)
    assert np.array_equal(fresh.predict_proba(x), model.predict_proba(x))
    with np.load(path) as f:
        assert {k: f[k].shape for k in model.params} == {k: v.shape for k, v in model.params.items()}
        meta = json.loads(f["__meta__"].tobytes())
    assert meta["hyperparameters"]["cell"] == cell.__name__ and meta["hyperparameters"]["hidden"] == 8
    with pytest.raises(ValueError, match="shape"):
        RecurrentClassifier(cell, 3, 3, hidden=4).load(path)


@CELLS
def test_same_seed_is_bit_identical_on_the_cpu(cell):
    x, y = sequence_task(192)

    def train():  # batches of 64: two shards of 32 rows on two threads
        model = RecurrentClassifier(cell, 3, 3, hidden=8, seed=3, clip=1.0, threads=2)
        losses = [float(model.train_batch(x[i : i + 64], y[i : i + 64])) for i in range(0, 192, 64)]
        return losses, model.state_dict()

    (l1, s1), (l2, s2) = train(), train()
    assert l1 == l2
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)


@CELLS
def test_the_mean_readout_averages_the_hidden_states_of_every_step(cell):
    """readout="mean" predicts from (h_1 + ... + h_T) / T; each h_t is the last state of the
    first t steps, which the last-state model computes."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 6, 3))
    mean = RecurrentClassifier(cell, 3, 4, hidden=7, seed=2, dtype="float64", readout="mean")
    last = RecurrentClassifier(cell, 3, 4, hidden=7, seed=2, dtype="float64")
    states = [last.cells[0].forward(last.params, last._time_major(x[:, :t]), "last")[0].copy() for t in range(1, 7)]
    h_mean = np.mean(states, axis=0)
    logits = h_mean @ last.params["W_ya"] + last.params["b_y"]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(mean.predict_proba(x), expected / expected.sum(axis=1, keepdims=True), rtol=1e-12)
    assert not np.allclose(mean.predict_proba(x), last.predict_proba(x))


def test_an_unknown_readout_is_refused():
    with pytest.raises(ValueError, match="unknown readout 'max'"):
        RecurrentClassifier(RNN, 3, 2, readout="max")
