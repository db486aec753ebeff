"""LSTM and GRU timings beside the RNN's: one training step and one inference batch per backend.

    pytest tests/benchmarks/test_gated_bench.py -m bench             # everything available here
    pytest tests/benchmarks/test_gated_bench.py -m bench -k cupy     # the GPU timings
"""

from __future__ import annotations

import numpy as np
import pytest
from test_rnn_bench import BACKENDS, B, C, F, H, T, _synced, backend_options, train_step

from seqbench.models.gru import GRU
from seqbench.models.lstm import LSTM
from seqbench.models.recurrent import RecurrentClassifier

pytestmark = pytest.mark.bench
CELLS = pytest.mark.parametrize("cell", [LSTM, GRU], ids=["lstm", "gru"])


def _model(cell: type, backend: str) -> RecurrentClassifier:
    """The MNIST defaults: Adam with gradient clipping."""
    return RecurrentClassifier(
        cell, F, C, hidden=H, seed=0, optimizer="adam", lr=2e-3, clip=1.0, **backend_options(backend)
    )


@CELLS
@pytest.mark.parametrize("backend", BACKENDS)
def test_train_step(benchmark, cell, backend):
    model = _model(cell, backend)
    rng = np.random.default_rng(0)
    x = model.to_device(rng.random((B, T, F), dtype=np.float32))
    y = model.to_device(rng.integers(0, C, B))
    benchmark.group = f"{cell.__name__.lower()} train step (B={B}, T={T}, F={F}, H={H}, adam, clip)"
    benchmark(train_step(model, x, y))


@CELLS
@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_batch(benchmark, cell, backend):
    model = _model(cell, backend)
    x = model.to_device(np.random.default_rng(0).random((1024, T, F), dtype=np.float32))
    benchmark.group = f"{cell.__name__.lower()} inference (1024 samples)"
    benchmark(_synced(model, lambda: model.predict_proba(x)))
