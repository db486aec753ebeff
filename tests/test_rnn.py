"""The from-scratch RNN: gradients, learning, clipping, sharding, GPU availability and options."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import max_relative_error

from seqbench.models.backend import cupy_unavailable
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.models.rnn import RNN
from seqbench.plugins import load_plugins
from seqbench.types import DatasetInfo


def tiny_model(cell=RNN, **kw):
    return RecurrentClassifier(cell, 5, 3, hidden=6, seed=0, dtype="float64", **kw)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "numpy"])
def test_bptt_gradients_match_finite_differences(fused):
    model = tiny_model(fused=fused)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((4, 7, 5)), rng.integers(0, 3, 4)
    errors = max_relative_error(model, x, y)
    assert set(errors) == {"W_ax", "W_aa", "b_a", "W_ya", "b_y"}
    assert max(errors.values()) < 1e-6, errors


def sequence_task(n=256, seed=0):
    """Class = which of 3 features carries a pulse at a random step; solvable only by remembering."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.1, (n, 8, 3)).astype(np.float32)
    x[np.arange(n), rng.integers(0, 4, n), y] += 1.0  # the pulse comes in the first half
    return x, y


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.3), ("momentum", 0.1), ("adam", 0.02)])
def test_learns_a_tiny_separable_sequence_task(optimizer, lr):
    x, y = sequence_task()
    model = RecurrentClassifier(RNN, 3, 3, hidden=16, seed=0, optimizer=optimizer, lr=lr, clip=5.0)
    for _ in range(300):
        model.train_batch(x, y)
    assert (model.predict_proba(x).argmax(1) == y).mean() == 1.0


def test_gradient_clipping_bounds_the_update():
    x, y = sequence_task(32)
    model = RecurrentClassifier(RNN, 3, 3, hidden=8, seed=0, optimizer="sgd", lr=1.0, clip=1e-3)
    before = model.state_dict()
    model.train_batch(x, y)
    step = np.sqrt(sum(((model.state_dict()[k] - before[k]) ** 2).sum() for k in before))
    assert step == pytest.approx(1e-3, rel=1e-2)


def test_gpu_models_train_through_cuda_graphs_by_default():
    models = load_plugins().models
    mnist = DatasetInfo(name="mnist", seq_len=28, n_features=28, class_names=tuple("0123456789"))
    for cell in ("rnn", "lstm", "gru"):
        assert models[f"{cell}-gpu"].defaults(mnist)["cuda_graph"] is True
        assert "cuda_graph" not in models[f"{cell}-cpu"].defaults(mnist)
        cpu = models[f"{cell}-cpu"].build(mnist, {**models[f"{cell}-cpu"].defaults(mnist), "seed": 0})
        assert "cuda_graph" not in cpu.hyperparameters()


@pytest.mark.skipif(cupy_unavailable() is None, reason="a GPU is present")
def test_gpu_model_says_why_it_is_unavailable():
    spec = load_plugins().models["rnn-gpu"]
    reason = spec.unavailable()
    assert reason and ("CuPy" in reason or "CUDA" in reason)


@pytest.mark.gpu
@pytest.mark.skipif(cupy_unavailable() is not None, reason=f"no GPU: {cupy_unavailable()}")
def test_gpu_matches_cpu():
    x, y = sequence_task(64)
    cpu = RecurrentClassifier(RNN, 3, 3, hidden=16, seed=0, dtype="float64")
    gpu = RecurrentClassifier(RNN, 3, 3, hidden=16, seed=0, dtype="float64", backend="cupy")
    for _ in range(5):
        lc, lg = cpu.train_batch(x, y), gpu.train_batch(gpu.to_device(x), gpu.to_device(y))
        assert float(lg) == pytest.approx(float(lc), rel=1e-9)
    np.testing.assert_allclose(gpu.predict_proba(gpu.to_device(x)), cpu.predict_proba(x), rtol=1e-8)


def test_sharded_batch_gives_the_same_loss_and_gradients():
    x, y = sequence_task(128)
    one = RecurrentClassifier(RNN, 3, 3, hidden=8, seed=0, dtype="float64", threads=1)
    two = RecurrentClassifier(RNN, 3, 3, hidden=8, seed=0, dtype="float64", threads=2)
    (l1, g1), (l2, g2) = one.loss_and_grads(x, y), two.loss_and_grads(x, y)
    assert l2 == pytest.approx(l1, rel=1e-12)
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(two.predict_proba(x), one.predict_proba(x), rtol=1e-12)
    again = RecurrentClassifier(RNN, 3, 3, hidden=8, seed=0, dtype="float64", threads=2)
    assert again.loss_and_grads(x, y)[0] == l2  # sharding is deterministic


def test_cuda_graph_can_be_switched_off_with_set(monkeypatch):
    """``--set cuda_graph=false`` reaches the model as False: its steps are never graphed. The GPU
    backend is stood in for by a NumPy one that records what ``graphed`` is asked to wrap."""
    import seqbench.models.recurrent as recurrent
    from seqbench.models.backend import NumpyBackend
    from seqbench.planning import RunError, check_overrides, resolve_params

    registry = load_plugins()
    check_overrides(registry, ["rnn-gpu"], ["mnist"], {"cuda_graph": "false"})
    with pytest.raises(RunError, match="cuda_graph=maybe"):
        check_overrides(registry, ["rnn-gpu"], ["mnist"], {"cuda_graph": "maybe"})

    graphed: list = []

    class RecordingBackend(NumpyBackend):
        def graphed(self, step):
            graphed.append(step)
            return step

    monkeypatch.setattr(recurrent, "get_backend", lambda name, threads=1, fused=True: RecordingBackend(threads, fused))
    info = DatasetInfo(name="mnist", seq_len=4, n_features=3, class_names=("a", "b", "c"))
    spec = registry.models["rnn-gpu"]
    x, y = sequence_task(16)
    losses = {}
    for text, expected in (("false", False), ("true", True)):
        params = {
            **resolve_params(spec.defaults(info), {"cuda_graph": text, "hidden": "8"}, False, "rnn-gpu"),
            "seed": 0,
        }
        assert params["cuda_graph"] is expected
        model = spec.build(info, params)
        assert model.hyperparameters()["cuda_graph"] is expected
        assert len(graphed) == int(expected)
        losses[text] = float(model.train_batch(x, y))
    assert losses["false"] == losses["true"]  # the same step, graphed or not
