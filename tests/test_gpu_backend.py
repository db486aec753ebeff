"""The CuPy backend's own machinery: direct cuBLAS products, the fused Adam kernel, CUDA graphs.

All of it needs CuPy and a CUDA device; without them the module is skipped with the reason.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_rnn import sequence_task

from seqbench.models.backend import NumpyBackend, cupy_unavailable, get_backend
from seqbench.models.gru import GRU
from seqbench.models.lstm import LSTM
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.models.rnn import RNN

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(cupy_unavailable() is not None, reason=f"no GPU: {cupy_unavailable()}"),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("a_order, b_order", [("C", "C"), ("F", "C"), ("C", "F"), ("F", "F")])
@pytest.mark.parametrize("m, k, n", [(7, 5, 3), (1, 4, 6), (128, 28, 128)])
def test_cublas_matmul_matches_numpy(dtype, a_order, b_order, m, k, n):
    import cupy

    be = get_backend("cupy")
    rng = np.random.default_rng(0)
    a_host, b_host = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    a, b = cupy.asarray(a_host, order=a_order), cupy.asarray(b_host, order=b_order)
    expected = a_host.astype(np.float64) @ b_host.astype(np.float64)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(cupy.asnumpy(be.matmul(a, b)), expected, rtol=rtol, atol=rtol)
    out = cupy.full((m, n), np.nan, dtype=dtype)
    assert be.matmul(a, b, out=out) is out
    np.testing.assert_allclose(cupy.asnumpy(out), expected, rtol=rtol, atol=rtol)


def test_matmul_of_strided_views_falls_back_to_cupy():
    import cupy

    be = get_backend("cupy")
    a = cupy.arange(60, dtype=cupy.float32).reshape(6, 10)[:, ::2]  # neither C- nor F-ordered
    b = cupy.ones((5, 2), dtype=cupy.float32)
    np.testing.assert_allclose(cupy.asnumpy(be.matmul(a, b)), cupy.asnumpy(a) @ np.ones((5, 2)))


@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-6), ("float64", 1e-13)])
def test_fused_adam_matches_numpy(dtype, rtol):
    be, ref = get_backend("cupy"), NumpyBackend()
    rng = np.random.default_rng(0)
    p, g, m, v = (rng.standard_normal(50).astype(dtype) for _ in range(4))
    v = np.abs(v)
    host = [a.copy() for a in (p, m, v)]
    dev = [be.asarray(a) for a in (p, m, v)]
    for step in (0.01, 0.002):
        ref.adam_update(host[0], g, host[1], host[2], ref.scalar(step, dtype), 0.9, 0.999, 1e-8)
        be.adam_update(dev[0], be.asarray(g), dev[1], dev[2], be.scalar(step, dtype), 0.9, 0.999, 1e-8)
    for h, d in zip(host, dev, strict=True):
        np.testing.assert_allclose(be.to_host(d), h, rtol=rtol, atol=rtol)


def _pair(cell, optimizer, clip):
    kw = dict(hidden=16, seed=0, optimizer=optimizer, lr=0.05, clip=clip, lr_decay=0.5, backend="cupy")
    return RecurrentClassifier(cell, 3, 3, **kw), RecurrentClassifier(cell, 3, 3, cuda_graph=True, **kw)


@pytest.mark.parametrize("cell", [RNN, LSTM, GRU], ids=["rnn", "lstm", "gru"])
@pytest.mark.parametrize("optimizer, clip", [("adam", 1.0), ("sgd", 0.0), ("momentum", 0.5)])
def test_cuda_graph_training_matches_eager(cell, optimizer, clip):
    """Replayed graphs give the eager losses and parameters: step sizes, learning-rate decay and
    two batch shapes (each captured on its second use) all reach the graph."""
    eager, graphed = _pair(cell, optimizer, clip)
    x, y = sequence_task(96)
    batches = [(0, 64), (64, 96)] * 4
    for epoch in range(2):
        for i, (a, b) in enumerate(batches):
            le = eager.train_batch(eager.to_device(x[a:b]), eager.to_device(y[a:b]))
            lg = graphed.train_batch(graphed.to_device(x[a:b]), graphed.to_device(y[a:b]))
            assert float(lg) == pytest.approx(float(le), rel=1e-6, abs=1e-7), (epoch, i)
        eager.epoch_end(epoch)
        graphed.epoch_end(epoch)
    step = graphed._step
    assert step.failure is None, step.failure
    assert all(isinstance(entry, tuple) for entry in step.graphs.values()) and len(step.graphs) == 2
    for k, v in eager.state_dict().items():
        np.testing.assert_allclose(graphed.state_dict()[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
    xd = graphed.to_device(x)
    np.testing.assert_allclose(graphed.predict_proba(xd), eager.predict_proba(xd), rtol=1e-5, atol=1e-6)


def test_arrays_made_after_a_capture_are_never_overwritten_by_replays():
    import cupy

    _, graphed = _pair(RNN, "adam", 1.0)
    x, y = (graphed.to_device(a) for a in sequence_task(64))
    for _ in range(3):  # warm-up, capture, replay
        graphed.train_batch(x, y)
    keep = [cupy.full((n,), float(n), dtype=cupy.float32) for n in (16, 64, 256, 1024, 4096)]
    for _ in range(5):
        graphed.train_batch(x, y)
    graphed.synchronize()
    for a in keep:
        assert bool((a == a.size).all())
    assert graphed.peak_memory_bytes() > 0
