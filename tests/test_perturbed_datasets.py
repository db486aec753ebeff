"""The perturbed MNISTs (noise, shift, permuted pixels) that ``seqbench eval`` measures robustness on."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from helpers import toy_plugin

from seqbench import Dataset, DatasetSpec, hookimpl
from seqbench.cli import main
from seqbench.datasets import perturbed
from seqbench.datasets.sequential import permutation
from seqbench.plugins import load_plugins

NAMES = ("mnist-noise", "mnist-shift", "mnist-scrambled")


def images(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 28, 28), dtype=np.float32)


def test_noise_is_seeded_gaussian_and_stays_in_the_pixel_range():
    x = np.full((200, 28, 28), 0.5, np.float32)
    train, test = perturbed.gaussian_noise(x, x[:50], sigma=0.1, seed=0)
    again, _ = perturbed.gaussian_noise(x, x[:50], sigma=0.1, seed=0)
    assert train.dtype == np.float32 and np.array_equal(train, again) and test.shape == (50, 28, 28)
    assert abs(float((train - 0.5).std()) - 0.1) < 0.002 and abs(float((train - 0.5).mean())) < 0.002
    clipped, _ = perturbed.gaussian_noise(np.ones((10, 28, 28), np.float32), x[:1], sigma=1.0, seed=0)
    assert clipped.max() == 1.0 and clipped.min() >= 0.0


def test_shift_moves_every_pixel_right_and_down_and_blanks_the_edge():
    x = images()
    train, test = perturbed.shift(x, x[:2], right=2, down=3)
    assert np.array_equal(train[:, 3:, 2:], x[:, :-3, :-2]) and np.array_equal(test, train[:2])
    assert not train[:, :3].any() and not train[:, :, :2].any()


def test_permuted_puts_the_pixels_in_psmnists_order_as_rows_again():
    x = images()
    train, _ = perturbed.permuted(x, x, permutation_seed=0)
    assert train.shape == x.shape and np.array_equal(train.reshape(4, -1), x.reshape(4, -1)[:, permutation(784, 0)])


def test_they_are_registered_from_mnist_and_left_out_of_all():
    specs = {s.name: s for s in perturbed.specs()}
    assert set(specs) == set(NAMES)
    assert all(s.source == "mnist" and not s.in_all for s in specs.values())
    builtin = load_plugins(installed=False).datasets
    assert all(builtin[name].source == "mnist" for name in NAMES)


def test_a_model_trained_on_mnist_is_evaluated_on_each(monkeypatch, tmp_path):
    """The first use of seqbench eval, on a stand-in for MNIST (its shape and classes; no real data)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 400)
    x = rng.random((400, 28, 28), dtype=np.float32) * 0.2
    x[np.arange(400), :, y * 2] = 1.0  # the class is which column is bright
    mnist = Dataset("mnist", x[:300], y[:300], x[300:], y[300:], tuple("0123456789"), "sha256:fake-mnist")

    class Perturbed:
        @hookimpl
        def register_datasets(self, register):
            register(DatasetSpec("mnist", lambda ctx: mnist, "a stand-in for MNIST"))
            for spec in perturbed.specs():
                register(spec)

    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("toy", toy_plugin(datasets={})), ("perturbed", Perturbed())])
    run = CliRunner().invoke(main, ["run", "-m", "logreg", "-d", "mnist", "--out", str(tmp_path / "run"), "--no-plots",
                                    "--save-models"], obj={"registry": registry})
    assert run.exit_code == 0, run.output
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "run"), "-d", "mnist*", "--out", str(tmp_path / "e"),
                                       "--no-plots"], obj={"registry": registry})
    assert result.exit_code == 0, result.output
    pairs = {p["dataset"]: p for p in json.loads((tmp_path / "e" / "results.json").read_text())["pairs"]}
    assert set(pairs) == {"mnist", *NAMES}
    (trained,) = json.loads((tmp_path / "run" / "results.json").read_text())["pairs"]
    assert pairs["mnist"]["metrics"]["accuracy"] == trained["metrics"]["accuracy"]
    for name in NAMES:
        info = pairs[name]["dataset_info"]
        assert info["meta"]["derived_from"]["fingerprint"] == "sha256:fake-mnist"
        assert pairs[name]["evaluated"]["trained_on"]["name"] == "mnist"
    # logreg reads the mean of the rows: permuted pixels no longer light one column
    assert pairs["mnist-scrambled"]["metrics"]["accuracy"]["accuracy"] < trained["metrics"]["accuracy"]["accuracy"]
