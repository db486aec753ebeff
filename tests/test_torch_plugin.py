"""seqbench-torch: torch-rnn, torch-lstm and torch-gru train under the harness; torch stays optional."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")
seqbench_torch = pytest.importorskip("seqbench_torch")

from helpers import make_toy_dataset, toy_plugin  # noqa: E402

from seqbench import DatasetInfo  # noqa: E402
from seqbench.cli import main  # noqa: E402
from seqbench.plugins import load_plugins  # noqa: E402

MODELS = ("torch-rnn", "torch-lstm", "torch-gru")
INFO = DatasetInfo("toy", 6, 4, ("a", "b", "c"))


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def registry(monkeypatch):
    """Built-in models, the torch plugin (registered without installing it) and the toy dataset."""
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    return load_plugins(extra=[("torch", seqbench_torch), ("toy", toy_plugin(models={}))])


def build(name: str, **overrides):
    spec = load_plugins(extra=[("torch", seqbench_torch)]).models[name]
    return spec.build(INFO, {**spec.defaults(INFO), "hidden": 8, "seed": 0, **overrides})


@pytest.mark.slow
def test_every_cell_learns_the_toy_task_through_seqbench_run(registry, tmp_path):
    out = tmp_path / "run"
    args = ["run", "-d", "toy", "--out", str(out), "--no-plots", "--set", "hidden=16", "--set", "epochs=6",
            "--set", "batch_size=32", "--set", "lr=0.01"]
    for name in MODELS:
        args += ["-m", name]
    result = CliRunner().invoke(main, args, obj={"registry": registry})
    assert result.exit_code == 0, result.output
    pairs = json.loads((out / "results.json").read_text())["pairs"]
    assert [p["model"] for p in pairs] == list(MODELS)
    for pair in pairs:
        assert pair["status"] == "ok", pair
        assert pair["model_plugin"] == "torch"
        assert pair["metrics"]["accuracy"]["accuracy"] >= 0.9, pair["model"]
        assert pair["params"]["hidden"] == 16 and pair["params"]["optimizer"] == "adam"
        assert pair["device"].startswith("cuda:" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name", MODELS)
def test_defaults_are_those_of_the_scratch_models(name):
    registry = load_plugins(extra=[("torch", seqbench_torch)])
    ours, scratch = registry.models[name], registry.models[name.replace("torch-", "") + "-cpu"]
    for dataset in ("mnist", "cifar10"):
        info = DatasetInfo(dataset, 28, 28, tuple("0123456789"))
        scratch_defaults = dict(scratch.defaults(info))
        scratch_defaults.pop("threads")  # the NumPy backend's CPU threads; torch manages its own
        assert ours.defaults(info) == scratch_defaults


def test_to_device_keeps_data_on_the_device_as_torch_tensors():
    model = build("torch-gru")
    x = model.to_device(np.zeros((5, 6, 4), np.float32))
    idx = model.to_device(np.array([4, 0, 2]))
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and idx.dtype == torch.long
    assert x.device == idx.device == model.torch_device
    proba = model.predict_proba(x[idx])
    assert isinstance(proba, np.ndarray) and proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)


def _clipped_grads(model, x, y, clip):
    """The loss and the clipped gradients a step of ``model`` would take, on a copy of its network."""
    import copy

    net = copy.deepcopy(model.net)
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    norm = float(torch.nn.utils.clip_grad_norm_(net.parameters(), clip).detach())
    return float(loss.detach()), [p.grad.detach().clone() for p in net.parameters()], norm


def test_optimizers_clipping_and_lr_decay():
    """Each optimizer's step, from the clipped gradients: SGD p - lr g; momentum (0.9) p - lr (0.9 g1 + g2)
    at its second step; Adam p - lr g / |g| at its first. Then the learning-rate decay."""
    ds = make_toy_dataset(n_train=32)
    for optimizer in ("adam", "sgd", "momentum"):
        model = build("torch-rnn", optimizer=optimizer, lr=0.1, clip=0.5, lr_decay=0.5)
        x, y = model.to_device(ds.train_x), model.to_device(ds.train_y)
        group = model.optimizer.param_groups[0]
        if optimizer == "adam":
            assert isinstance(model.optimizer, torch.optim.Adam)
        else:
            assert isinstance(model.optimizer, torch.optim.SGD)
            assert group["momentum"] == (0.9 if optimizer == "momentum" else 0.0)
        before = [p.detach().clone() for p in model.net.parameters()]
        expected_loss, g1, norm = _clipped_grads(model, x, y, 0.5)
        assert norm > 0.5  # the clipping acts
        loss = model.train_batch(x, y)
        assert loss.shape == () and float(loss) == pytest.approx(expected_loss, rel=1e-6)
        after = [p.detach().clone() for p in model.net.parameters()]
        for p0, p1, g in zip(before, after, g1, strict=True):
            if optimizer == "adam":
                moved = torch.where(g.abs() > 1e-4, 0.1 * torch.sign(g), p0 - p1)  # |g| >> eps only
                torch.testing.assert_close(p0 - p1, moved, rtol=1e-3, atol=1e-6)
            else:
                torch.testing.assert_close(p1, p0 - 0.1 * g, rtol=1e-5, atol=1e-7)
        if optimizer == "momentum":
            _, g2, _ = _clipped_grads(model, x, y, 0.5)
            model.train_batch(x, y)
            for p1, p2, a, b in zip(after, model.net.parameters(), g1, g2, strict=True):
                torch.testing.assert_close(p2.detach(), p1 - 0.1 * (0.9 * a + b), rtol=1e-5, atol=1e-7)
        model.epoch_end(1)
        assert group["lr"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        build("torch-rnn", optimizer="lbfgs")


@pytest.mark.parametrize("name", MODELS)
def test_save_and_load_give_identical_predictions(name, tmp_path):
    ds = make_toy_dataset(n_train=64)
    model = build(name)
    x, y = model.to_device(ds.train_x), model.to_device(ds.train_y)
    for _ in range(3):
        model.train_batch(x, y)
    model.save(tmp_path / "m.npz")
    fresh = build(name, seed=1)
    assert not np.array_equal(fresh.predict_proba(x), model.predict_proba(x))
    fresh.load(tmp_path / "m.npz")
    assert np.array_equal(fresh.predict_proba(x), model.predict_proba(x))


def test_seed_makes_initialisation_reproducible():
    a, b, c = build("torch-lstm", seed=7), build("torch-lstm", seed=7), build("torch-lstm", seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not np.array_equal(sa["rnn.weight_hh_l0"], sc["rnn.weight_hh_l0"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_device_is_named_and_synchronized():
    model = build("torch-rnn")
    assert model.device.startswith("cuda:") and torch.cuda.get_device_name() in model.device
    ds = make_toy_dataset(n_train=64)
    model.train_batch(model.to_device(ds.train_x), model.to_device(ds.train_y))
    model.synchronize()
    assert model.peak_memory_bytes() > 0


def test_without_torch_the_models_are_listed_unavailable_and_skipped(monkeypatch, tmp_path):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else find_spec(name, *a))
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    for mod in [m for m in sys.modules if m.startswith("seqbench_torch")]:
        monkeypatch.delitem(sys.modules, mod)
    plugin = importlib.import_module("seqbench_torch")  # the plugin itself imports without torch
    reason = plugin.unavailable()
    assert reason.startswith("PyTorch is not installed")

    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("torch", plugin), ("toy", toy_plugin(models={}))])
    listing = CliRunner().invoke(main, ["list", "models"], obj={"registry": registry})
    assert listing.exit_code == 0 and listing.output.count("no (PyTorch is not installed)") == 3
    assert listing.output.count(f"] {reason}") == 1  # the whole reason once, as a footnote
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "-m", "torch-rnn", "-m", "rnn-cpu", "-d", "toy", "--set", "epochs=1",
                                       "--set", "hidden=4", "--out", str(out), "--no-plots"],
                                obj={"registry": registry})
    assert result.exit_code == 0, result.output
    status = {p["model"]: (p["status"], p["reason"]) for p in json.loads((out / "results.json").read_text())["pairs"]}
    assert status["torch-rnn"] == ("skipped", reason) and status["rnn-cpu"][0] == "ok"
