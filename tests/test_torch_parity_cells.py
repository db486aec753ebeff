"""Parity: the from-scratch LSTM and GRU against ``nn.LSTM`` / ``nn.GRU`` with a linear head on the
last step, given the same weights and batches (float64): same loss, same gradients, same training.

Weight mapping: ``weight_ih_l0 = W_x.T``, ``weight_hh_l0 = W_h.T`` (the gate blocks are in
PyTorch's order on both sides: LSTM [i, f, g, o], GRU [r, z, n]); LSTM: ``bias_ih_l0 = b``,
``bias_hh_l0 = 0``; GRU: ``bias_ih_l0 = b_x``, ``bias_hh_l0 = b_h``.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_sequential_tasks import in_chunks  # noqa: E402

from seqbench.models.gru import GRU  # noqa: E402
from seqbench.models.lstm import LSTM  # noqa: E402
from seqbench.models.recurrent import RecurrentClassifier  # noqa: E402

F, H, C, T, B = 5, 7, 4, 9, 6
RTOL, ATOL = 1e-10, 1e-13
CELLS = pytest.mark.parametrize("cell", [LSTM, GRU], ids=["lstm", "gru"])


pytestmark = pytest.mark.usefixtures("torch_one_thread")


class TorchTwin(torch.nn.Module):
    """``nn.LSTM`` or ``nn.GRU`` (batch first) and an ``nn.Linear`` head on the last step, or on
    the mean of the steps (``readout="mean"``), written here independently of the plugin."""

    def __init__(self, cell: type, readout: str = "last") -> None:
        super().__init__()
        layer = torch.nn.LSTM if cell is LSTM else torch.nn.GRU
        self.rnn = layer(F, H, batch_first=True, dtype=torch.float64)
        self.head = torch.nn.Linear(H, C, dtype=torch.float64)
        self.readout = readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rnn(x)[0]
        return self.head(out.sum(dim=1) / out.shape[1] if self.readout == "mean" else out[:, -1])


def scratch_model(cell: type, **kw) -> RecurrentClassifier:
    """A float64 scratch model at a generic point: every bias nonzero, the forget bias included."""
    model = RecurrentClassifier(cell, F, C, hidden=H, seed=3, dtype="float64", **kw)
    rng = np.random.default_rng(4)
    for p in model.params.values():
        p += 0.2 * rng.standard_normal(p.shape)
    return model


def as_torch(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Scratch parameters as the twin's state dict."""
    gru = "b_x" in params
    return {
        "rnn.weight_ih_l0": params["W_x"].T, "rnn.weight_hh_l0": params["W_h"].T,
        "rnn.bias_ih_l0": params["b_x"] if gru else params["b"],
        "rnn.bias_hh_l0": params["b_h"] if gru else np.zeros(4 * H),
        "head.weight": params["W_ya"].T, "head.bias": params["b_y"],
    }  # fmt: skip


def as_scratch(state: dict[str, np.ndarray], cell: type) -> dict[str, np.ndarray]:
    """The twin's state dict (or gradients) in scratch names; LSTM: b = bias_ih + bias_hh."""
    out = {"W_x": state["rnn.weight_ih_l0"].T, "W_h": state["rnn.weight_hh_l0"].T,
           "W_ya": state["head.weight"].T, "b_y": state["head.bias"]}  # fmt: skip
    if cell is GRU:
        out.update(b_x=state["rnn.bias_ih_l0"], b_h=state["rnn.bias_hh_l0"])
    else:
        out["b"] = state["rnn.bias_ih_l0"] + state["rnn.bias_hh_l0"]
    return out


def torch_twin(scratch: RecurrentClassifier, cell: type, readout: str = "last") -> TorchTwin:
    twin = TorchTwin(cell, readout)
    state = as_torch(scratch.state_dict())
    twin.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    if cell is LSTM:
        # The scratch LSTM has one bias where torch has two: freeze bias_hh at 0 so that each
        # step updates one bias by one gradient on both sides.
        twin.rnn.bias_hh_l0.requires_grad_(False)
    return twin


def batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, T, F)), rng.integers(0, C, B)


def torch_loss(twin: TorchTwin, x: np.ndarray, y: np.ndarray) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y))


#: The CPU code paths: the fused (numba) or NumPy element-wise kernels, whole sequences or
#: chunked BPTT (chunks of 4 of the 9 steps, gone back through in segments of 3).
PATHS = pytest.mark.parametrize("fused, chunked", [(True, False), (False, False), (True, True), (False, True)],
                                ids=["fused-whole", "numpy-whole", "fused-chunks", "numpy-chunks"])


@CELLS
@pytest.mark.parametrize("readout", ["last", "mean"])
@PATHS
def test_same_loss_and_gradients(cell, readout, fused, chunked):
    scratch = scratch_model(cell, readout=readout, fused=fused)
    if chunked:
        in_chunks(scratch, 4, B, H)
    twin = torch_twin(scratch, cell, readout)
    x, y = batch(0)
    loss, grads = scratch.loss_and_grads(x, y)
    t_loss = torch_loss(twin, x, y)
    t_loss.backward()
    t_grads = {k: v.grad.numpy() for k, v in twin.named_parameters() if v.grad is not None}
    np.testing.assert_allclose(t_loss.item(), loss, rtol=RTOL)
    if cell is LSTM:
        t_grads["rnn.bias_hh_l0"] = np.zeros(4 * H)  # frozen; bias_ih's gradient is b's
    expected = as_scratch(t_grads, cell)
    assert set(expected) == set(grads)
    for name, value in expected.items():
        np.testing.assert_allclose(grads[name], value, rtol=RTOL, atol=ATOL, err_msg=name)


@CELLS
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "numpy"])
def test_sgd_steps_stay_together(cell, fused):
    lr = 0.3
    scratch = scratch_model(cell, optimizer="sgd", lr=lr, fused=fused)
    twin = torch_twin(scratch, cell)
    opt = torch.optim.SGD([p for p in twin.parameters() if p.requires_grad], lr=lr)
    initial = scratch.state_dict()
    for step in range(5):
        x, y = batch(step + 1)
        loss = scratch.train_batch(x, y)
        opt.zero_grad()
        t_loss = torch_loss(twin, x, y)
        t_loss.backward()
        opt.step()
        np.testing.assert_allclose(t_loss.item(), loss, rtol=RTOL, err_msg=f"loss at step {step}")
    ours = as_scratch({k: v.detach().numpy() for k, v in twin.state_dict().items()}, cell)
    for name, value in scratch.state_dict().items():
        assert not np.allclose(value, initial[name]), f"{name} did not move"
        np.testing.assert_allclose(ours[name], value, rtol=RTOL, atol=ATOL, err_msg=name)


@CELLS
@pytest.mark.parametrize("readout", ["last", "mean"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "numpy"])
def test_same_predictions(cell, readout, fused):
    """``predict_proba`` (the LSTM's lean inference path, one product a step) against the twin's
    softmax, with shards on two threads."""
    scratch = scratch_model(cell, readout=readout, fused=fused, threads=2)
    twin = torch_twin(scratch, cell, readout)
    x = np.random.default_rng(9).standard_normal((70, T, F))
    with torch.no_grad():
        expected = torch.softmax(twin(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(scratch.predict_proba(x), expected, rtol=RTOL, atol=ATOL)
