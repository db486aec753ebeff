"""Standardisation and augmentation: owned by the harness, fit on training rows, training batches only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import MeanLogReg, toy_plugin

from seqbench import Dataset, DatasetSpec, Preprocessing, hookimpl
from seqbench.cli import main
from seqbench.plugins import load_plugins
from seqbench.preprocess import Augmenter, as_images, channel_stats, standardize
from seqbench.protocol import split_train_val, train_and_evaluate

PARAMS = {"epochs": 3, "batch_size": 16, "patience": 5, "val_fraction": 0.2}
FULL = Preprocessing(standardize=True, hflip=True, shift=1)


def colour_dataset(n_train: int = 120, n_test: int = 40) -> Dataset:
    """(T=4, W=3 pixels x C=2 channels): channel 0 around 10, channel 1 around -5; test far away."""
    rng = np.random.default_rng(0)
    train_x = rng.normal(0, 1, (n_train, 4, 6)).astype(np.float32)
    train_x[:, :, 0::2] += 10
    train_x[:, :, 1::2] -= 5
    test_x = rng.normal(1000, 50, (n_test, 4, 6)).astype(np.float32)  # would move any statistic it fed
    y = lambda n: rng.integers(0, 3, n).astype(np.int64)  # noqa: E731
    return Dataset("colours", train_x, y(n_train), test_x, y(n_test), ("a", "b", "c"), "sha256:c", channels=2)


class Spy(MeanLogReg):
    """Records every array the harness hands over: training batches and what it predicts on."""

    def __init__(self) -> None:
        super().__init__(6, 3, lr=0.1)
        self.train_batches: list[np.ndarray] = []
        self.predicted: list[np.ndarray] = []

    def train_batch(self, x, y):
        self.train_batches.append(np.array(x))
        return super().train_batch(x, y)

    def predict_proba(self, x):
        self.predicted.append(np.array(x))
        return super().predict_proba(x)


def test_statistics_come_from_the_training_rows_only():
    ds = colour_dataset()
    spy = Spy()
    out = train_and_evaluate(spy, ds, PARAMS, {}, seed=3, preprocessing=FULL)
    tr, _val = split_train_val(len(ds.train_y), PARAMS["val_fraction"], 3)
    rows = as_images(ds.train_x[tr], 2)
    expected_mean = rows.reshape(-1, 2).astype(np.float64).mean(axis=0)
    expected_std = rows.reshape(-1, 2).astype(np.float64).std(axis=0)
    rec = out["preprocessing"]
    assert rec["standardize"] and rec["hflip"] and rec["shift"] == 1
    np.testing.assert_allclose(rec["mean"], expected_mean, rtol=1e-6)
    np.testing.assert_allclose(rec["std"], expected_std, rtol=1e-5)
    # not the statistics of all of train (validation rows included), nor anything near the test set's
    all_rows = as_images(ds.train_x, 2).reshape(-1, 2).astype(np.float64).mean(axis=0)
    assert not np.allclose(rec["mean"], all_rows, rtol=0, atol=1e-7)
    assert max(rec["mean"]) < 20


def test_validation_and_test_are_standardised_but_never_augmented():
    ds = colour_dataset()
    spy = Spy()
    train_and_evaluate(spy, ds, PARAMS, {}, seed=3, preprocessing=FULL)
    tr, val = split_train_val(len(ds.train_y), PARAMS["val_fraction"], 3)
    stats = channel_stats(ds.train_x[tr], 2)
    val_x, test_x = standardize(ds.train_x[val], *stats, 2), standardize(ds.test_x, *stats, 2)
    test_calls = [a for a in spy.predicted if len(a) == len(test_x)]
    val_calls = [a for a in spy.predicted if len(a) != len(test_x)]
    assert len(test_calls) == 1 and len(val_x) != len(test_x)
    np.testing.assert_array_equal(test_calls[0], test_x)
    for seen in val_calls:  # validation passes (and the timed inference passes): always the same rows
        np.testing.assert_array_equal(seen, val_x[: len(seen)])
    # while training batches were augmented: some are not rows of the standardised train split
    train_rows = standardize(ds.train_x[tr], *stats, 2)
    as_set = {r.tobytes() for r in train_rows}
    seen_rows = np.concatenate(spy.train_batches)
    assert sum(r.tobytes() not in as_set for r in seen_rows) > len(seen_rows) // 4


def test_same_seed_same_augmented_batches_other_seed_other_batches():
    ds = colour_dataset()
    runs = []
    for seed in (5, 5, 6):
        spy = Spy()
        train_and_evaluate(spy, ds, PARAMS, {}, seed=seed, preprocessing=FULL)
        runs.append(np.concatenate(spy.train_batches))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert runs[0].shape == runs[2].shape and not np.array_equal(runs[0], runs[2])


def test_no_preprocessing_feeds_the_arrays_as_loaded():
    ds = colour_dataset()
    spy = Spy()
    out = train_and_evaluate(spy, ds, PARAMS, {}, seed=3)
    tr, _ = split_train_val(len(ds.train_y), PARAMS["val_fraction"], 3)
    assert out["preprocessing"] == {"standardize": False, "hflip": False, "shift": 0}
    assert {r.tobytes() for r in np.concatenate(spy.train_batches)} == {r.tobytes() for r in ds.train_x[tr]}
    assert sum(np.array_equal(a, ds.test_x) for a in spy.predicted) == 1


def test_flip_reverses_pixels_and_keeps_each_pixels_channels_together():
    # one image: 2 rows of 3 pixels, 2 channels; pixel p of row r holds (10r + p, -(10r + p))
    img = np.array([[[10 * r + p, -(10 * r + p)] for p in range(3)] for r in range(2)], np.float32)
    x = img.reshape(1, 2, 6).repeat(64, axis=0)
    out = as_images(Augmenter(hflip=True, shift=0, channels=2, seed=0)(x), 2)
    flipped = img[:, ::-1]
    kinds = [("same" if np.array_equal(o, img) else "flipped" if np.array_equal(o, flipped) else "other") for o in out]
    assert "other" not in kinds and 10 < kinds.count("flipped") < 54


def test_shift_moves_the_image_and_fills_the_border_with_zeros():
    img = np.arange(1, 26, dtype=np.float32).reshape(5, 5, 1)  # 5 rows of 5 one-channel pixels
    x = img.reshape(1, 5, 5).repeat(200, axis=0)
    aug = Augmenter(hflip=False, shift=2, channels=1, seed=1)
    out = as_images(aug(x), 1)[..., 0]
    seen = set()
    for o in out:
        # find the shift: where the pixel 13 (the centre) went
        (r,), (c,) = np.nonzero(o == 13)
        dy, dx = r - 2, c - 2
        seen.add((dy, dx))
        expected = np.zeros((5, 5), np.float32)
        ys, xs = slice(max(dy, 0), 5 + min(dy, 0)), slice(max(dx, 0), 5 + min(dx, 0))
        expected[ys, xs] = img[max(-dy, 0) : 5 + min(-dy, 0), max(-dx, 0) : 5 + min(-dx, 0), 0]
        np.testing.assert_array_equal(o, expected)
    assert seen == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}


def test_features_must_split_into_pixels():
    with pytest.raises(ValueError, match="channel"):
        as_images(np.zeros((1, 2, 5), np.float32), 3)


def _registry_with(ds: Dataset, declared: Preprocessing):
    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            register(DatasetSpec(ds.name, lambda ctx: ds, "colours", preprocessing=declared))

    return load_plugins(extra=[("colours", Plugin()), ("toy", toy_plugin(datasets={}))])


@pytest.mark.parametrize("flags, expected", [
    ((), {"standardize": True, "hflip": True, "shift": 1}),
    (("--no-augment",), {"standardize": True, "hflip": False, "shift": 0}),
    (("--no-standardize", "--no-augment"), {"standardize": False, "hflip": False, "shift": 0}),
])
def test_a_run_applies_the_declaration_to_every_model_records_it_and_can_turn_it_off(
    monkeypatch, tmp_path, flags, expected
):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = _registry_with(colour_dataset(), FULL)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "-m", "logreg", "-m", "rnn-cpu", "-d", "colours", "--set", "hidden=4",
                                       "--set", "epochs=2", "--out", str(out), "--no-plots", *flags],
                                obj={"registry": registry})
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["preprocessing"] == {"colours": expected}
    for pair in results["pairs"]:  # the third-party logreg and the built-in RNN alike
        assert {k: pair["preprocessing"][k] for k in expected} == expected
        assert ("mean" in pair["preprocessing"]) == expected["standardize"]
    summary = (out / "summary.md").read_text()
    assert "colours: " + Preprocessing(**expected).describe() in summary


def test_cifar10_declares_standardisation_and_augmentation_mnist_declares_none():
    registry = load_plugins()
    assert registry.datasets["cifar10"].preprocessing == Preprocessing(standardize=True, hflip=True, shift=2)
    assert registry.datasets["mnist"].preprocessing == Preprocessing()
    assert registry.datasets["fashion-mnist"].preprocessing == Preprocessing()


def test_a_resumed_run_keeps_its_preprocessing_choice(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = _registry_with(colour_dataset(), FULL)
    out = tmp_path / "run"
    first = CliRunner().invoke(main, ["run", "-m", "logreg", "-d", "colours", "--seeds", "0", "--no-augment",
                                      "--out", str(out), "--no-plots"], obj={"registry": registry})
    assert first.exit_code == 0, first.output
    results = json.loads((out / "results.json").read_text())
    results["config"]["seeds"] = [0, 1]  # as if the run had been interrupted before seed 1
    (out / "results.json").write_text(json.dumps(results))
    again = CliRunner().invoke(main, ["run", "--resume", str(out), "--no-plots"], obj={"registry": registry})
    assert again.exit_code == 0, again.output
    pairs = json.loads((out / "results.json").read_text())["pairs"]
    assert [p["preprocessing"]["hflip"] for p in pairs] == [False, False]


def test_standardize_leaves_the_input_untouched():
    x = colour_dataset().train_x
    before = x.copy()
    out = standardize(x, *channel_stats(x, 2), 2)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(as_images(out, 2).reshape(-1, 2).mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(as_images(out, 2).reshape(-1, 2).std(axis=0), 1, atol=1e-4)
