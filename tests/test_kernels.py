"""The cells' element-wise step kernels: the numba-compiled (fused) form against the NumPy one,
the CUDA form's signature against both, and the choice between them."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from test_sequential_tasks import in_chunks, long_batch

import seqbench.models.kernels as kernels
from seqbench.models import gru, lstm, rnn
from seqbench.models.backend import NumpyBackend
from seqbench.models.recurrent import RecurrentClassifier

pytestmark = pytest.mark.skipif(kernels.numba_unavailable() is not None, reason=str(kernels.numba_unavailable()))

KERNELS = {
    f"{m.__name__.rsplit('.', 1)[1]}.{name}": getattr(m, name)
    for m in (rnn, lstm, gru)
    for name in ("FORWARD", "BACKWARD")
}
CELLS = pytest.mark.parametrize("cell", [rnn.RNN, lstm.LSTM, gru.GRU], ids=["rnn", "lstm", "gru"])


def cuda_names(params: str) -> list[str]:
    """``"raw T g, T c, int32 H"`` -> ``["g", "c", "H"]``."""
    return [p.split()[-1] for p in params.split(",")]


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_the_three_forms_are_called_alike(name):
    """NumPy, numba and CUDA forms take the CUDA kernel's inputs then its outputs, in order."""
    k = KERNELS[name]
    expected = cuda_names(k.cuda.in_params) + cuda_names(k.cuda.out_params)
    assert list(inspect.signature(k.numpy).parameters) == expected
    assert list(inspect.signature(k.fused.py_func).parameters) == expected


def kernel_arguments(name: str, B: int, H: int, dtype: str, rng: np.random.Generator) -> list:
    """Arguments for kernel ``name`` in its call order: arrays of their shapes, H where it is one;
    activations in their ranges where the kernel expects them (backward passes)."""
    k = KERNELS[name]
    blocks = {"rnn": 1, "lstm": 4, "gru": 3}[name.split(".")[0]]
    args = []
    for param in k.cuda.in_params.split(",") + k.cuda.out_params.split(","):
        kind, pname = param.split()[-2:]
        if kind == "int32":
            args.append(H)
            continue
        wide = param.split()[0] == "raw" or pname == "b_h"
        shape = ((blocks * H,) if pname == "b_h" else (B, blocks * H)) if wide else (B, H)
        a = 2.0 * rng.standard_normal(shape)
        if name.endswith("BACKWARD") and pname in ("g", "gx", "h", "tc"):
            a = np.tanh(a) if pname in ("h", "tc") else rng.random(shape)  # activations in (-1, 1), (0, 1)
        args.append(a.astype(dtype))
    return args


@pytest.mark.parametrize("dtype, rtol, atol", [("float32", 2e-6, 2e-6), ("float64", 1e-13, 1e-15)])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_the_fused_kernels_compute_what_the_numpy_ones_do(name, dtype, rtol, atol):
    rng = np.random.default_rng(0)
    k = KERNELS[name]
    for B, H in ((3, 5), (64, 128), (7, 33)):  # odd sizes reach the vector loops' remainders
        args = kernel_arguments(name, B, H, dtype, rng)
        copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        k.fused(*args)
        k.numpy(*copies)
        for i, (a, b) in enumerate(zip(args, copies, strict=True)):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{name} argument {i} at B={B}, H={H}")


def test_the_float32_tanh_is_numpys_to_float32_tolerance():
    """rnn's fused forward is tanh(a + b): over [-20, 20] and at +-inf, within 3e-7 of NumPy's and
    never past +-1; NaN stays NaN (a diverging model shows it)."""
    a = np.linspace(-20, 20, 400_001).astype(np.float32).reshape(1, -1)
    h = np.empty_like(a)
    rnn.FORWARD.fused(a, np.zeros_like(a), h)
    assert np.abs(h - np.tanh(a)).max() < 3e-7
    assert (np.abs(h) <= 1).all()
    special = np.array([[np.nan, np.inf, -np.inf, 0.0]], np.float32)
    out = np.empty_like(special)
    rnn.FORWARD.fused(special, np.zeros_like(special), out)
    assert np.isnan(out[0, 0]) and out[0, 3] == 0
    np.testing.assert_allclose(out[0, 1:3], [1, -1], atol=3e-7)


def test_the_fused_sigmoid_is_numpys_to_float32_tolerance():
    """LSTM's input and forget gates, sigmoid(a) and sigmoid(0), against the float64 logistic."""
    H = 4001
    a = np.linspace(-30, 30, H).astype(np.float32).reshape(1, -1)
    g = np.concatenate([a, np.zeros((1, 3 * H), np.float32)], axis=1)
    zeros = np.zeros((1, H), np.float32)
    c, tc, h = np.empty_like(zeros), np.empty_like(zeros), np.empty_like(zeros)
    lstm.FORWARD.fused(np.zeros_like(g), zeros, H, g, c, tc, h)
    expected = 1 / (1 + np.exp(-a.astype(np.float64)))
    assert np.abs(g[:, :H] - expected).max() < 3e-7
    assert np.abs(g[:, H : 2 * H] - 0.5).max() < 1e-7  # sigmoid(0)


@pytest.mark.parametrize("dtype, rtol, atol", [("float32", 2e-6, 2e-6), ("float64", 1e-13, 1e-15)])
def test_the_lstm_inference_step_fused_computes_what_the_numpy_one_does(dtype, rtol, atol):
    """INFER has no CUDA form: its two CPU forms are checked alike and against each other,
    h written into its columns of ``z`` and nothing else of ``z`` touched."""
    k = lstm.INFER
    assert k.cuda is None
    assert list(inspect.signature(k.numpy).parameters) == list(inspect.signature(k.fused.py_func).parameters)
    rng = np.random.default_rng(0)
    for B, H, at in ((3, 5, 2), (64, 128, 29), (7, 33, 0)):
        a = (2.0 * rng.standard_normal((B, 4 * H))).astype(dtype)
        c = rng.standard_normal((B, H)).astype(dtype)
        z = rng.standard_normal((B, at + H + 3)).astype(dtype)
        outs = [[a.copy(), c.copy(), z.copy()] for _ in range(2)]
        for form, (a_, c_, z_) in zip((k.fused, k.numpy), outs, strict=True):
            form(a_, H, at, c_, z_)
        (_, c1, z1), (_, c2, z2) = outs
        sig = 1 / (1 + np.exp(-a.astype(np.float64)))
        c_expected = sig[:, H : 2 * H] * c + sig[:, :H] * np.tanh(a[:, 2 * H : 3 * H])
        h_expected = sig[:, 3 * H :] * np.tanh(c_expected)
        for c_, z_ in ((c1, z1), (c2, z2)):
            np.testing.assert_allclose(c_, c_expected, rtol=rtol, atol=atol)
            np.testing.assert_allclose(z_[:, at : at + H], h_expected, rtol=rtol, atol=atol)
            np.testing.assert_array_equal(np.delete(z_, np.s_[at : at + H], axis=1),
                                          np.delete(z, np.s_[at : at + H], axis=1))


@pytest.mark.parametrize("readout", ["last", "mean"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "numpy"])
def test_the_lstm_inference_path_gives_the_forward_passes_state(readout, fused):
    """float32, 40 steps: one product a step against the input projection of all steps, to
    float32 rounding; the cell's other buffers are not its concern (forward after it is unchanged)."""
    x = long_batch(T=40, B=50, F=3, C=3, seed=2)[0].astype(np.float32)
    model = RecurrentClassifier(lstm.LSTM, 3, 3, hidden=24, seed=1, readout=readout, fused=fused)
    x_t = model._time_major(x)
    expected = model.cell.forward(model.params, x_t, readout)[0].copy()
    model.cell.infer(model.params, x_t[::-1].copy(), readout)  # its buffers start over each call
    got = model.cell.infer(model.params, x_t, readout).copy()
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.cell.forward(model.params, x_t, readout)[0], expected)
    model.cell._infer_step = None  # as on the GPU: the forward pass's state itself
    np.testing.assert_array_equal(model.cell.infer(model.params, x_t, readout), expected)


def test_fused_is_the_default_and_numpy_the_fallback(monkeypatch):
    assert NumpyBackend().kernels == "numba" and NumpyBackend(fused=False).kernels == "numpy"
    model = RecurrentClassifier(lstm.LSTM, 3, 2, hidden=4)
    assert model.hyperparameters()["kernels"] == "numba"
    assert model.cell._forward_step is lstm.FORWARD.fused
    assert RecurrentClassifier(lstm.LSTM, 3, 2, hidden=4, fused=False).cell._forward_step is lstm.FORWARD.numpy
    monkeypatch.setattr(kernels, "numba_unavailable", lambda: "no numba here")
    fallback = RecurrentClassifier(gru.GRU, 3, 2, hidden=4)
    assert fallback.hyperparameters()["kernels"] == "numpy" and fallback.cell._backward_step is gru.BACKWARD.numpy


@CELLS
@pytest.mark.parametrize("readout", ["last", "mean"])
@pytest.mark.parametrize("chunked, threads", [(False, 1), (True, 1), (False, 2)], ids=["whole", "chunks", "shards"])
def test_fused_and_numpy_kernels_train_to_the_same_parameters(cell, readout, chunked, threads):
    """float32, five SGD steps with clipping (Adam would amplify gradients that are ~0)."""
    x, y = long_batch(T=40, B=64, F=3, C=3, seed=5)
    x = x.astype(np.float32)

    def trained(fused: bool) -> RecurrentClassifier:
        model = RecurrentClassifier(cell, 3, 3, hidden=24, seed=1, optimizer="sgd", lr=0.5, clip=1.0,
                                    readout=readout, threads=threads, fused=fused)
        if chunked:
            in_chunks(model, 7, 64, 24)
        for _ in range(5):
            model.train_batch(x, y)
        return model

    fused, numpy = trained(True), trained(False)
    assert fused.hyperparameters()["kernels"] == "numba" and numpy.hyperparameters()["kernels"] == "numpy"
    initial = RecurrentClassifier(cell, 3, 3, hidden=24, seed=1).state_dict()
    for k, v in numpy.state_dict().items():
        assert not np.allclose(v, initial[k]), f"{k} did not move"
        np.testing.assert_allclose(fused.state_dict()[k], v, rtol=1e-4, atol=1e-5, err_msg=k)
    np.testing.assert_allclose(fused.predict_proba(x), numpy.predict_proba(x), rtol=1e-4, atol=1e-6)


def test_on_cupy_each_kernel_is_one_elementwise_kernel_of_its_cuda_form(monkeypatch):
    """What CupyBackend.kernel builds, against a stand-in for CuPy (no GPU here): one
    ``ElementwiseKernel`` a kernel, from its CUDA form, under a name of its own."""
    import sys
    import types

    from seqbench.models.backend import cupy_backend

    made = []
    fake = types.SimpleNamespace(ElementwiseKernel=lambda *args, **kw: made.append((args, kw)) or len(made))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    cupy_backend._compiled.cache_clear()
    try:
        backend = object.__new__(cupy_backend.CupyBackend)
        for k in KERNELS.values():
            assert backend.kernel(k) == backend.kernel(k)  # compiled once
        assert made == [((k.cuda.in_params, k.cuda.out_params, k.cuda.body, k.name), {"preamble": k.cuda.preamble})
                        for k in KERNELS.values()]
        assert len({k.name for k in KERNELS.values()}) == len(KERNELS)
        assert all("sigm(" not in k.cuda.body or "sigm(" in k.cuda.preamble for k in KERNELS.values())
        with pytest.raises(ValueError, match="seqbench_lstm_infer has no CUDA form"):
            backend.kernel(lstm.INFER)
    finally:
        cupy_backend._compiled.cache_clear()
