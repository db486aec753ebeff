"""The from-scratch LSTM and GRU: gradients, learning, registration, GPU twin."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import max_relative_error
from test_rnn import sequence_task

from seqbench.models.backend import cupy_unavailable
from seqbench.models.gru import GRU
from seqbench.models.lstm import LSTM
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.models.rnn import RNN
from seqbench.plugins import load_plugins
from seqbench.types import DatasetInfo

PARAMS = {LSTM: {"W_x", "W_h", "b"}, GRU: {"W_x", "W_h", "b_x", "b_h"}}
CELLS = pytest.mark.parametrize("cell", [LSTM, GRU], ids=["lstm", "gru"])


@CELLS
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "numpy"])
def test_bptt_gradients_match_finite_differences(cell, fused):
    model = RecurrentClassifier(cell, 5, 3, hidden=6, seed=0, dtype="float64", fused=fused)
    rng = np.random.default_rng(1)
    for p in model.params.values():  # a generic point: every bias and gate path matters
        p += 0.3 * rng.standard_normal(p.shape)
    x, y = rng.standard_normal((4, 7, 5)), rng.integers(0, 3, 4)
    errors = max_relative_error(model, x, y)
    assert set(errors) == PARAMS[cell] | {"W_ya", "b_y"}
    assert max(errors.values()) < 1e-6, errors


def test_initial_parameters():
    lstm = RecurrentClassifier(LSTM, 5, 3, hidden=4).state_dict()
    assert lstm["W_x"].shape == (5, 16) and lstm["W_h"].shape == (4, 16)
    np.testing.assert_array_equal(lstm["b"], np.repeat([0.0, 1.0, 0.0, 0.0], 4))  # forget bias 1
    gru = RecurrentClassifier(GRU, 5, 3, hidden=4).state_dict()
    assert gru["W_x"].shape == (5, 12) and gru["W_h"].shape == (4, 12)
    assert not gru["b_x"].any() and not gru["b_h"].any()


@CELLS
def test_learns_a_tiny_separable_sequence_task(cell):
    x, y = sequence_task()
    model = RecurrentClassifier(cell, 3, 3, hidden=16, seed=0, optimizer="adam", lr=0.02, clip=5.0)
    for _ in range(60):  # 100 % from step 30 on (seeds 0-3)
        model.train_batch(x, y)
    assert (model.predict_proba(x).argmax(1) == y).mean() == 1.0


#: What each built-in model trains with on each kind of dataset (the tables in default_plugins/models.py):
#: (hidden, lr, lr_schedule, epochs, patience).
PER_DATASET = {  # hidden, lr, lr_schedule, epochs, patience, readout
    ("lstm", "mnist"): (256, 2e-3, "exp", 30, 8, "last"), ("lstm", "fashion-mnist"): (256, 2e-3, "exp", 30, 8, "last"),
    ("lstm", "cifar10"): (256, 2e-3, "cosine", 30, 8, "mean"),
    ("lstm", "smnist"): (128, 1e-3, "cosine", 50, 10, "last"),
    ("gru", "mnist"): (256, 2e-3, "exp", 25, 5, "last"), ("gru", "fashion-mnist"): (256, 2e-3, "exp", 25, 5, "last"),
    ("gru", "cifar10"): (256, 2e-3, "cosine", 15, 6, "last"), ("gru", "smnist"): (128, 1e-3, "cosine", 50, 10, "last"),
    ("rnn", "cifar10"): (384, 1e-3, "cosine", 30, 8, "mean"),
    ("rnn", "fashion-mnist"): (256, 1e-3, "exp", 40, 6, "last"),
}
SHAPES = {"mnist": (28, 28), "fashion-mnist": (28, 28), "cifar10": (32, 96), "smnist": (784, 1)}


@pytest.mark.parametrize("cell_name, dataset", sorted(PER_DATASET))
def test_registered_with_per_dataset_defaults(cell_name, dataset):
    from seqbench.builtin_models import defaults_of

    models = load_plugins().models
    assert {"lstm-cpu", "lstm-gpu", "gru-cpu", "gru-gpu"} <= set(models)
    steps, features = SHAPES[dataset]
    info = DatasetInfo(name=dataset, seq_len=steps, n_features=features, class_names=tuple("0123456789"))
    name = f"{cell_name}-cpu"
    defaults = models[name].defaults(info)
    assert defaults == defaults_of(name, dataset) and "cuda_graph" not in defaults
    assert models[f"{cell_name}-gpu"].defaults(info) == {**defaults, "cuda_graph": True}
    hidden, lr, schedule, epochs, patience, readout = PER_DATASET[(cell_name, dataset)]
    assert (defaults["epochs"], defaults["patience"]) == (epochs, patience)
    model = models[name].build(info, {**defaults, "seed": 0})
    assert type(model.cell) is {"lstm": LSTM, "gru": GRU, "rnn": RNN}[cell_name] and model.device == "cpu"
    h = model.hyperparameters()
    got = (h["hidden"], h["lr"], h["lr_schedule"], h["epochs"], h["readout"])
    assert got == (hidden, lr, schedule, epochs, readout)
    assert h["n_features"] == features and h["optimizer"] == "adam" and h["clip"] == 1.0


@pytest.mark.skipif(cupy_unavailable() is None, reason="a GPU is present")
@pytest.mark.parametrize("name", ["lstm-gpu", "gru-gpu"])
def test_gpu_models_say_why_they_are_unavailable(name):
    reason = load_plugins().models[name].unavailable()
    assert reason and ("CuPy" in reason or "CUDA" in reason)


@pytest.mark.gpu
@pytest.mark.skipif(cupy_unavailable() is not None, reason=f"no GPU: {cupy_unavailable()}")
@CELLS
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_gpu_kernels_match_the_cpu(cell, dtype, rtol):
    """The fused CuPy kernels are twins of the NumPy helpers: same loss, gradients and training."""
    x, y = sequence_task(64)
    kw = dict(hidden=16, seed=0, dtype=dtype, optimizer="sgd", lr=0.5)  # Adam would amplify ~0 gradients
    cpu = RecurrentClassifier(cell, 3, 3, **kw)
    gpu = RecurrentClassifier(cell, 3, 3, backend="cupy", **kw)
    xg, yg = gpu.to_device(x), gpu.to_device(y)
    (lc, gc), (lg, gg) = cpu.loss_and_grads(x, y), gpu.loss_and_grads(xg, yg)
    assert float(lg) == pytest.approx(float(lc), rel=rtol)
    for k in gc:
        np.testing.assert_allclose(gpu.backend.to_host(gg[k]), gc[k], rtol=rtol, atol=rtol * 1e-2, err_msg=k)
    for _ in range(5):
        lc, lg = cpu.train_batch(x, y), gpu.train_batch(xg, yg)
    assert float(lg) == pytest.approx(float(lc), rel=10 * rtol)
    np.testing.assert_allclose(gpu.predict_proba(xg), cpu.predict_proba(x), rtol=10 * rtol, atol=1e-6)
