"""Backend logic that runs without a GPU: the cuBLAS operand layout, the CUDA-graph state machine
(against a stand-in for CuPy), and the optimizers' device-side step sizes."""

from __future__ import annotations

import types
from contextlib import contextmanager

import numpy as np
import pytest

from seqbench.models.backend import NumpyBackend
from seqbench.models.backend.cublas import Cublas
from seqbench.models.backend.cuda_graph import CudaGraphStep
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.models.rnn import RNN


def _column_major_gemm(op_a, op_b, m, n, k, a, lda, b, ldb):
    """What cuBLAS computes, C = op(A) op(B) (m x n), from flat column-major buffers; C's buffer."""

    def matrix(buf, rows, cols, ld):  # X[i, j] = buf[i + j * ld]
        return buf.reshape(cols, ld).T[:rows]

    A = matrix(a, m, k, lda) if op_a == 0 else matrix(a, k, m, lda).T
    B = matrix(b, k, n, ldb) if op_b == 0 else matrix(b, n, k, ldb).T
    return (A @ B).T.ravel()  # column-major, ldc = m


@pytest.mark.parametrize("m, k, n", [(7, 5, 3), (1, 4, 6), (4, 1, 3), (3, 4, 1)])
@pytest.mark.parametrize("a_order, b_order", [("C", "C"), ("F", "C"), ("C", "F"), ("F", "F")])
def test_row_major_product_is_one_column_major_gemm(m, k, n, a_order, b_order):
    """``out = a @ b`` as cuBLAS is asked for it: ``out^T = b^T a^T`` on the raw buffers."""
    rng = np.random.default_rng(0)
    a = np.asarray(rng.standard_normal((m, k)), order=a_order)
    b = np.asarray(rng.standard_normal((k, n)), order=b_order)
    (op_a, ld_a), (op_b, ld_b) = Cublas._layout(a), Cublas._layout(b)
    raw = lambda x: x.ravel(order="K")  # noqa: E731  the buffer as it lies in memory
    out = _column_major_gemm(op_b, op_a, n, m, k, raw(b), ld_b, raw(a), ld_a)  # out^T, ldc = n
    np.testing.assert_allclose(out.reshape(m, n), a @ b, rtol=1e-12)


def test_strided_views_are_not_handed_to_cublas():
    assert Cublas._layout(np.zeros((6, 10))[:, ::2]) is None
    assert Cublas._layout(np.zeros((4, 3)).T) == (1, 3)


class _FakeCupy:
    """Just enough of CuPy for CudaGraphStep: a capture records closures, a launch runs them."""

    def __init__(self):
        self.capturing = False
        self.recorded: list = []
        outer = self

        class Stream:
            def __init__(self, non_blocking):
                assert non_blocking  # the legacy default stream cannot capture

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def begin_capture(self, mode=None):
                outer.capturing, outer.recorded = True, []

            def end_capture(self):
                outer.capturing = False
                ops = list(outer.recorded)
                return types.SimpleNamespace(launch=lambda: [op() for op in ops])

        @contextmanager
        def using_allocator(malloc):
            yield

        self.cuda = types.SimpleNamespace(
            MemoryPool=lambda: types.SimpleNamespace(malloc=None, used_bytes=lambda: 0),
            Stream=Stream, using_allocator=using_allocator, runtime=types.SimpleNamespace(),
        )


def _summing_step(cupy, log):
    """A training step whose loss is sum(x) + sum(y): run now, or recorded while capturing."""

    def step(x, y):
        if cupy.capturing:
            out = np.zeros(())
            cupy.recorded.append(lambda: (out.fill(x.sum() + y.sum()), log.append("replay")))
            return out
        log.append("eager")
        return np.array(x.sum() + y.sum())

    return step


def test_graph_step_warms_up_captures_then_replays_on_fresh_batches():
    cupy, log = _FakeCupy(), []
    step = CudaGraphStep(cupy, _summing_step(cupy, log))
    batches = [(np.full((2, 3), v), np.array([v, v])) for v in (1.0, 2.0, 3.0)]
    losses = [float(step(x, y)) for x, y in batches]
    assert losses == [8.0, 16.0, 24.0]  # each loss is its own batch's: the static inputs are refreshed
    assert log == ["eager", "replay", "replay"]
    assert float(step(np.ones((1, 3)), np.ones(1))) == 4.0 and log[-1] == "eager"  # a new shape warms up
    assert step.failure is None


def test_graph_step_returns_a_copy_of_the_graphs_loss():
    cupy, log = _FakeCupy(), []
    step = CudaGraphStep(cupy, _summing_step(cupy, log))
    x, y = np.ones((2, 2)), np.ones(2)
    step(x, y)
    first = step(x, y)
    step(2 * x, 2 * y)
    assert float(first) == 6.0  # not overwritten by the next replay


def test_a_failed_capture_warns_once_and_trains_eagerly():
    cupy, log = _FakeCupy(), []
    inner = _summing_step(cupy, log)

    def step(x, y):
        if cupy.capturing:
            raise NotImplementedError("not capturable")
        return inner(x, y)

    graphed = CudaGraphStep(cupy, step)
    x, y = np.ones((2, 2)), np.ones(2)
    graphed(x, y)
    with pytest.warns(UserWarning, match="CUDA graph capture failed.*not capturable"):
        assert float(graphed(x, y)) == 6.0
    assert float(graphed(x, y)) == 6.0
    assert log == ["eager"] * 3 and "NotImplementedError" in graphed.failure


def test_cpu_backend_has_no_graphs():
    step = lambda x, y: x  # noqa: E731
    assert NumpyBackend().graphed(step) is step


def test_step_sizes_reach_the_device_array_each_step():
    """What a replayed graph reads: Adam's bias-corrected step and the decayed learning rate."""
    model = RecurrentClassifier(RNN, 3, 3, hidden=4, optimizer="adam", lr=0.1, lr_decay=0.5)
    opt, x, y = model.optimizer, np.zeros((2, 4, 3), np.float32), np.array([0, 1])
    model.train_batch(x, y)
    assert opt.rate[0] == pytest.approx(0.1 * (1 - 0.999) ** 0.5 / (1 - 0.9), rel=1e-6)
    model.epoch_end(0)
    model.train_batch(x, y)
    assert opt.rate[0] == pytest.approx(0.05 * (1 - 0.999**2) ** 0.5 / (1 - 0.9**2), rel=1e-6)
