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


class _DeviceArray:
    """A NumPy array dressed as a CuPy one for :meth:`Cublas.gemm`: ``.data.ptr`` is its address."""

    def __init__(self, array):
        self.host = array
        self.shape, self.ndim, self.dtype, self.flags = array.shape, array.ndim, array.dtype, array.flags
        self.data = types.SimpleNamespace(ptr=array.__array_interface__["data"][0])


class _FakeCublasLib:
    """cuBLAS's C functions on the CPU: the gemms compute on the raw column-major buffers."""

    def __init__(self, arrays):
        self.by_ptr = {a.data.ptr: a.host for a in arrays}
        self.calls: list[tuple] = []

    def cublasSetStream_v2(self, handle, stream):
        self.calls.append(("stream", handle, stream))
        return 0

    def cublasSetWorkspace_v2(self, handle, ptr, size):
        self.calls.append(("workspace", handle, ptr, size))
        return 0

    def _gemm(self, name, ctype, h, op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        self.calls.append((name, h, op_a, op_b, m, n, k, lda, ldb, ldc))
        assert ctype.from_address(alpha).value == 1.0 and ctype.from_address(beta).value == 0.0
        out = self.by_ptr[c]
        assert ldc == m and out.size == m * n
        result = _column_major_gemm(op_a, op_b, m, n, k, self.by_ptr[a].ravel(order="K"), lda,
                                    self.by_ptr[b].ravel(order="K"), ldb)
        out.reshape(-1)[:] = result  # out is C-contiguous: its buffer is C column-major, ldc = m
        return 0

    def cublasSgemm_v2(self, *args):
        import ctypes

        return self._gemm("sgemm", ctypes.c_float, *args)

    def cublasDgemm_v2(self, *args):
        import ctypes

        return self._gemm("dgemm", ctypes.c_double, *args)


def _fake_cublas(*arrays):
    """A :class:`Cublas` wired to the fake library, without CuPy or a GPU."""
    cublas = object.__new__(Cublas)
    cublas.cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(
        get_current_stream=lambda: types.SimpleNamespace(ptr=4242)))
    cublas.lib, cublas.handle, cublas.workspace = _FakeCublasLib(arrays), 7, 9999
    cublas.one = {np.dtype(t): np.ones(1, t) for t in (np.float32, np.float64)}
    cublas.zero = {np.dtype(t): np.zeros(1, t) for t in (np.float32, np.float64)}
    return cublas


@pytest.mark.parametrize("m, k, n", [(7, 5, 3), (1, 4, 6), (4, 1, 3), (3, 4, 1)])
@pytest.mark.parametrize("a_order, b_order", [("C", "C"), ("F", "C"), ("C", "F"), ("F", "F")])
@pytest.mark.parametrize("dtype, gemm", [(np.float64, "dgemm"), (np.float32, "sgemm")])
def test_cublas_gemm_computes_the_row_major_product(m, k, n, a_order, b_order, dtype, gemm):
    """:meth:`Cublas.gemm` itself, against a fake cuBLAS that computes what the real one would."""
    rng = np.random.default_rng(1)
    a = _DeviceArray(np.asarray(rng.standard_normal((m, k)), dtype=dtype, order=a_order))
    b = _DeviceArray(np.asarray(rng.standard_normal((k, n)), dtype=dtype, order=b_order))
    out = _DeviceArray(np.full((m, n), np.nan, dtype=dtype))
    cublas = _fake_cublas(a, b, out)
    assert cublas.gemm(a, b, out) is True
    np.testing.assert_allclose(out.host, a.host @ b.host, rtol=1e-5 if dtype == np.float32 else 1e-12)
    calls = cublas.lib.calls
    assert calls[0] == ("stream", 7, 4242) and calls[1] == ("workspace", 7, 9999, Cublas.WORKSPACE_BYTES)
    assert calls[2][0] == gemm and calls[2][1] == 7 and len(calls) == 3


def test_cublas_gemm_declines_what_it_cannot_do():
    def dev(shape, dtype=np.float64, order="C"):
        return _DeviceArray(np.zeros(shape, dtype=dtype, order=order))

    a, b, out = dev((3, 4)), dev((4, 2)), dev((3, 2))
    cases = [
        (dev((3, 4), np.float16), dev((4, 2), np.float16), dev((3, 2), np.float16)),  # no half gemm
        (a, dev((4, 2), np.float32), out),  # mixed dtypes
        (a, b, dev((3, 2), np.float32)),
        (_DeviceArray(np.zeros((3, 8))[:, ::2]), b, out),  # strided view
        (a, _DeviceArray(np.zeros((8, 2))[::2]), out),
        (a, b, dev((3, 2), order="F")),  # out must be C-ordered
        (dev((0, 4)), b, dev((0, 2))), (dev((3, 0)), dev((0, 2)), out), (a, dev((4, 0)), dev((3, 0))),  # empty
        (dev((2, 3, 4)), b, out),  # not 2-D
    ]
    for x, y, z in cases:
        cublas = _fake_cublas(x, y, z)
        assert cublas.gemm(x, y, z) is False and cublas.lib.calls == []


def test_a_cublas_error_status_is_raised_with_its_name():
    a, b, out = (_DeviceArray(np.ones(s)) for s in ((2, 2), (2, 2), (2, 2)))
    cublas = _fake_cublas(a, b, out)
    cublas.lib.cublasDgemm_v2 = lambda *args: 13
    with pytest.raises(RuntimeError, match="cuBLAS gemm failed with status 13"):
        cublas.gemm(a, b, out)


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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_model_keeps_its_parameters_in_its_dtype(dtype):
    model = RecurrentClassifier(RNN, 3, 2, hidden=4, dtype=dtype)  # init draws float64 on the host
    rng = np.random.default_rng(0)
    model.train_batch(rng.standard_normal((8, 5, 3)), rng.integers(0, 2, 8))
    assert {p.dtype.name for p in model.params.values()} == {dtype}
    assert NumpyBackend().asarray([1, 2], dtype=np.float32).dtype == np.float32


def test_a_batch_is_cut_into_contiguous_even_shards_one_a_thread():
    backend = NumpyBackend(threads=2)
    assert backend.map_shards(lambda i, rows: (i, rows.start, rows.stop), 100) == [(0, 0, 50), (1, 50, 100)]
    assert backend.map_shards(lambda i, rows: (i, rows.start, rows.stop), 40) == [(0, 0, 40)]  # too few rows to split
