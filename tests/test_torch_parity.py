"""Parity: the from-scratch RNN and ``torch-rnn`` compute the same loss and gradients, and train
the same, given the same weights and batches (float64)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
seqbench_torch_model = pytest.importorskip("seqbench_torch.model")

from test_sequential_tasks import in_chunks  # noqa: E402

from seqbench.models.recurrent import RecurrentClassifier  # noqa: E402
from seqbench.models.rnn import RNN  # noqa: E402

F, H, C, T, B = 5, 7, 4, 9, 6
RTOL, ATOL = 1e-10, 1e-13


pytestmark = pytest.mark.usefixtures("torch_one_thread")

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


def scratch_model(**kw) -> RecurrentClassifier:
    return RecurrentClassifier(RNN, F, C, hidden=H, seed=3, dtype="float64", **kw)


def torch_twin(scratch: RecurrentClassifier, device: str, **kw):
    """``torch-rnn``'s model with the scratch model's weights: weight_ih = W_ax.T, weight_hh = W_aa.T,
    bias_ih = b_a, bias_hh = 0, head weight = W_ya.T, head bias = b_y."""
    model = seqbench_torch_model.TorchRecurrentClassifier("rnn", F, C, hidden=H, dtype="float64", device=device, **kw)
    p = scratch.params
    model.load_state_dict({
        "rnn.weight_ih_l0": p["W_ax"].T, "rnn.weight_hh_l0": p["W_aa"].T,
        "rnn.bias_ih_l0": p["b_a"], "rnn.bias_hh_l0": np.zeros(H),
        "head.weight": p["W_ya"].T, "head.bias": p["b_y"],
    })  # fmt: skip
    return model


def torch_params_as_scratch(model) -> dict[str, np.ndarray]:
    s = model.state_dict()
    return {"W_ax": s["rnn.weight_ih_l0"].T, "W_aa": s["rnn.weight_hh_l0"].T,
            "b_a": s["rnn.bias_ih_l0"] + s["rnn.bias_hh_l0"], "W_ya": s["head.weight"].T, "b_y": s["head.bias"]}


def batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, T, F)), rng.integers(0, C, B)


#: The CPU code paths: the fused (numba) or NumPy element-wise kernels, whole sequences or
#: chunked BPTT (chunks of 4 of the 9 steps).
PATHS = pytest.mark.parametrize("fused, chunked", [(True, False), (False, False), (True, True), (False, True)],
                                ids=["fused-whole", "numpy-whole", "fused-chunks", "numpy-chunks"])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("readout", ["last", "mean"])
@PATHS
def test_same_loss_and_gradients(device, readout, fused, chunked):
    scratch = scratch_model(readout=readout, fused=fused)
    if chunked:
        in_chunks(scratch, 4, B, H)
    twin = torch_twin(scratch, device, readout=readout)
    x, y = batch(0)
    loss, grads = scratch.loss_and_grads(x, y)

    net = twin.net
    net.zero_grad()
    t_loss = torch.nn.functional.cross_entropy(net(twin.to_device(x)), twin.to_device(y))
    t_loss.backward()
    g = {k: v.grad.cpu().numpy() for k, v in net.named_parameters()}

    np.testing.assert_allclose(t_loss.item(), loss, rtol=RTOL)
    pairs = {
        "W_ax": g["rnn.weight_ih_l0"].T, "W_aa": g["rnn.weight_hh_l0"].T, "b_a": g["rnn.bias_ih_l0"],
        "W_ya": g["head.weight"].T, "b_y": g["head.bias"],
    }  # fmt: skip
    for name, torch_grad in pairs.items():
        np.testing.assert_allclose(torch_grad, grads[name], rtol=RTOL, atol=ATOL, err_msg=name)
    # Both torch biases enter as b_ih + b_hh, so each gets the gradient of the scratch b_a.
    np.testing.assert_allclose(g["rnn.bias_hh_l0"], grads["b_a"], rtol=RTOL, atol=ATOL)


def assert_moved_together(scratch, twin, initial, rtol, atol):
    """Every scratch parameter moved from ``initial`` and equals the torch twin's, within the tolerances."""
    ours = torch_params_as_scratch(twin)
    for name, value in scratch.state_dict().items():
        assert not np.allclose(value, initial[name]), f"{name} did not move"
        np.testing.assert_allclose(ours[name], value, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer, clip", [("sgd", 0.0), ("momentum", 0.5)])
def test_training_steps_stay_together(device, optimizer, clip):
    scratch = scratch_model(optimizer=optimizer, lr=0.3, clip=clip)
    twin = torch_twin(scratch, device, optimizer=optimizer, lr=0.3, clip=clip)
    # The scratch cell has one bias where torch has two: freeze bias_hh (at 0) so that each step
    # updates one bias by one gradient on both sides (and the clipping norm counts it once).
    twin.net.rnn.bias_hh_l0.requires_grad_(False)
    initial = scratch.state_dict()
    for step in range(5):
        x, y = batch(step + 1)
        loss = scratch.train_batch(x, y)
        t_loss = twin.train_batch(twin.to_device(x), twin.to_device(y))
        np.testing.assert_allclose(t_loss.item(), loss, rtol=RTOL, err_msg=f"loss at step {step}")
    assert_moved_together(scratch, twin, initial, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("lr_decay", [1.0, 0.5])
def test_adam_steps_match_torch_optim_adam(lr_decay):
    """The scratch Adam against ``torch.optim.Adam`` over five steps and two epochs (with a learning-rate
    decay between them). eps is 0 on both sides: the scratch Adam adds eps to sqrt(v), torch to
    sqrt(v / (1 - beta2^t)), which differ only by the scale of eps."""
    scratch = scratch_model(optimizer="adam", lr=0.05, lr_decay=lr_decay)
    twin = torch_twin(scratch, "cpu", optimizer="adam", lr=0.05, lr_decay=lr_decay)
    twin.net.rnn.bias_hh_l0.requires_grad_(False)
    assert isinstance(twin.optimizer, torch.optim.Adam)
    scratch.optimizer.eps = 0.0
    for group in twin.optimizer.param_groups:
        group["eps"] = 0.0
    initial = scratch.state_dict()
    for step in range(5):
        if step == 3:
            scratch.epoch_end(1)
            twin.epoch_end(1)
        x, y = batch(step + 10)
        loss = scratch.train_batch(x, y)
        t_loss = twin.train_batch(twin.to_device(x), twin.to_device(y))
        np.testing.assert_allclose(t_loss.item(), loss, rtol=RTOL, err_msg=f"loss at step {step}")
    assert_moved_together(scratch, twin, initial, rtol=1e-9, atol=1e-12)
