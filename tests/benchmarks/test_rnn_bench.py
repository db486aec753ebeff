"""RNN timings: one training step and one inference batch per backend, and a full MNIST-shaped
epoch against a direct port of the original notebook's float64 code.

    pytest tests/benchmarks -m bench                      # everything available here
    pytest tests/benchmarks -m bench -k epoch             # the 3x epoch comparison (minutes)
    pytest tests/benchmarks -m bench -k cupy              # the GPU timings (needs CuPy + CUDA)

``cupy`` runs the training step eagerly (hundreds of kernel launches), ``cupy-graph`` replays it
as one captured CUDA graph, as ``rnn-gpu`` trains by default.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference_rnn

from seqbench.builtin_models import default_threads
from seqbench.models.backend import cupy_unavailable
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.models.rnn import RNN

B, T, F, H, C = 128, 28, 28, 128, 10
N_EPOCH = 60_000
_NO_GPU = pytest.mark.skipif(cupy_unavailable() is not None, reason=str(cupy_unavailable()))
BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("cupy", id="cupy", marks=_NO_GPU),
    pytest.param("cupy-graph", id="cupy-graph", marks=_NO_GPU),
]


def backend_options(backend: str) -> dict:
    """RecurrentClassifier keywords for a BACKENDS id (CPU threads as the defaults give)."""
    if backend == "cupy-graph":
        return {"backend": "cupy", "cuda_graph": True}
    return {"backend": backend, "threads": default_threads()}


def _model(backend: str) -> RecurrentClassifier:
    """rnn-cpu / rnn-gpu as a run builds them, at the original's settings."""
    return RecurrentClassifier(RNN, F, C, hidden=H, seed=0, optimizer="sgd", lr=0.02, **backend_options(backend))


def _synced(model, fn):
    def run():
        out = fn()
        model.synchronize()  # pytest-benchmark does not synchronize a GPU on its own
        return out

    return run


def train_step(model, x, y):
    """A synchronised training step, already run twice (a CUDA graph is captured on the second)."""
    step = _synced(model, lambda: model.train_batch(x, y))
    step()
    step()
    return step


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_step(benchmark, backend):
    model = _model(backend)
    rng = np.random.default_rng(0)
    x = model.to_device(rng.random((B, T, F), dtype=np.float32))
    y = model.to_device(rng.integers(0, C, B))
    benchmark.group = "rnn train step (B=128, T=28, F=28, H=128)"
    benchmark(train_step(model, x, y))


@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_batch(benchmark, backend):
    model = _model(backend)
    x = model.to_device(np.random.default_rng(0).random((1024, T, F), dtype=np.float32))
    benchmark.group = "rnn inference (1024 samples)"
    benchmark(_synced(model, lambda: model.predict_proba(x)))


def test_reference_train_step(benchmark):
    rng = np.random.default_rng(0)
    x = rng.random((B, T, F))
    y = reference_rnn.one_hot_encode(rng.integers(0, C, B), C)
    params = reference_rnn.initialize_parameters_rnn(F, H, C)

    def step():
        y_pred, a, caches = reference_rnn.rnn_forward(x, np.zeros((B, H)), params)
        reference_rnn.update_parameters_rnn(params, reference_rnn.rnn_backward(y_pred, y, a, caches), 0.02)

    benchmark.group = "rnn train step (B=128, T=28, F=28, H=128)"
    benchmark(step)


@pytest.fixture(scope="module")
def mnist_shaped():
    rng = np.random.default_rng(0)
    return rng.random((N_EPOCH, T, F), dtype=np.float32), rng.integers(0, C, N_EPOCH)


def test_epoch_reference_float64(benchmark, mnist_shaped):
    x, y = mnist_shaped
    x64, y1h = x.astype(np.float64), reference_rnn.one_hot_encode(y, C)
    params = reference_rnn.initialize_parameters_rnn(F, H, C)
    benchmark.group = "mnist-shaped epoch (60,000 x 28 x 28, H=128, B=128)"
    benchmark.pedantic(reference_rnn.train_epoch, args=(x64, y1h, params, H), rounds=2, iterations=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_epoch_seqbench(benchmark, mnist_shaped, backend):
    x_host, y_host = mnist_shaped
    model = _model(backend)
    x, y = model.to_device(x_host), model.to_device(y_host)
    order = model.to_device(np.random.default_rng(0).permutation(N_EPOCH))

    def epoch():
        for i in range(0, N_EPOCH, B):
            idx = order[i : i + B]
            model.train_batch(x[idx], y[idx])
        model.synchronize()

    benchmark.group = "mnist-shaped epoch (60,000 x 28 x 28, H=128, B=128)"
    gpu = backend.startswith("cupy")
    benchmark.pedantic(epoch, rounds=3 if gpu else 2, iterations=1, warmup_rounds=1 if gpu else 0)
