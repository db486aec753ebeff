"""Long sequences (issue 16): one training step of each cell at T=784 (sMNIST's length),
B=128, F=1, H=128, with the pixel tasks' defaults (Adam, clip 1), on every backend here; on a
GPU, in the same call, PyTorch's GRU (cuDNN) on the same shapes.

    pytest tests/benchmarks/test_long_bench.py -m bench              # what can run here
    pytest tests/benchmarks/test_long_bench.py -m bench -k 'gru and (cupy or cudnn)'   # ours vs cuDNN

The NumPy steps take seconds each (three rounds); the step is chunked BPTT (bptt_mb default).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_rnn_bench import BACKENDS, backend_options, train_step

from seqbench.models.gru import GRU
from seqbench.models.lstm import LSTM
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.models.rnn import RNN

pytestmark = pytest.mark.bench
B, T, F, H, C = 128, 784, 1, 128, 10
CELLS = pytest.mark.parametrize("cell", [RNN, LSTM, GRU], ids=["rnn", "lstm", "gru"])


def _batch(model):
    rng = np.random.default_rng(0)
    return model.to_device(rng.random((B, T, F), dtype=np.float32)), model.to_device(rng.integers(0, C, B))


@CELLS
@pytest.mark.parametrize("backend", BACKENDS)
def test_train_step_784(benchmark, cell, backend):
    model = RecurrentClassifier(cell, F, C, hidden=H, seed=0, optimizer="adam", lr=1e-3, clip=1.0,
                                **backend_options(backend))
    step = train_step(model, *_batch(model))
    benchmark.group = f"train step at T={T} (B={B}, F={F}, H={H}, adam, clip)"
    benchmark.extra_info["chunk_steps"] = model.cell.chunk_len(T, B // model.backend.threads, H)
    if backend == "numpy":
        benchmark.pedantic(step, rounds=3, iterations=1)
    else:
        benchmark(step)


def _cudnn_unavailable() -> str | None:
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    return (
        None
        if torch.cuda.is_available() and torch.backends.cudnn.is_available()
        else "no CUDA device for PyTorch (cuDNN)"
    )


@pytest.mark.skipif(_cudnn_unavailable() is not None, reason=str(_cudnn_unavailable()))
def test_train_step_784_torch_gru_cudnn(benchmark):
    """torch-gru as the plugin builds it, on the GPU: nn.GRU through cuDNN."""
    from seqbench_torch.model import TorchRecurrentClassifier

    model = TorchRecurrentClassifier("gru", F, C, hidden=H, seed=0, optimizer="adam", lr=1e-3, clip=1.0, device="cuda")
    benchmark.group = f"train step at T={T} (B={B}, F={F}, H={H}, adam, clip)"
    benchmark(train_step(model, *_batch(model)))
    assert "cudnn" in model.hyperparameters() and model.hyperparameters()["cudnn"]
