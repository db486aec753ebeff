"""seqbench-tensorboard against the real TensorBoard: its EventAccumulator reads what a run wrote."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorboardX")
pytest.importorskip("seqbench_tensorboard")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

from seqbench_tensorboard import DIR_VARIABLE, TensorBoardLogger  # noqa: E402

from seqbench.testing import PluginTester  # noqa: E402

SMALL = {"epochs": 3, "hidden": 8, "threads": 1}


def read(directory):
    accumulator = event_accumulator.EventAccumulator(str(directory))
    accumulator.Reload()
    return accumulator


@pytest.fixture(autouse=True)
def _no_dir_env(monkeypatch):
    monkeypatch.delenv(DIR_VARIABLE, raising=False)


def test_each_pair_has_event_files_with_the_recorded_values_per_epoch(tmp_path):
    tester = PluginTester(TensorBoardLogger(), tmp_path=tmp_path)
    for seed in (0, 1):
        record = tester.run_pair("rnn-cpu", seed=seed, overrides=SMALL)
        events = read(tester.run_dir / "tensorboard" / f"rnn-cpu+tiny+seed{seed}")
        for tag, key in (("val/accuracy", "val_accuracy"), ("train/loss", "train_loss"),
                         ("train/epoch_seconds", "epoch_seconds")):
            got = [(e.step, e.value) for e in events.Scalars(tag)]
            assert got == [(h["epoch"], pytest.approx(h[key], rel=1e-6)) for h in record["history"]]  # float32 on disk
        (accuracy,) = events.Scalars("test/accuracy")
        assert accuracy.step == record["best_epoch"]
        assert accuracy.value == pytest.approx(record["metrics"]["accuracy"]["accuracy"], rel=1e-6)
        assert "test/per_class.macro.f1" in events.Tags()["scalars"]


def test_the_directory_variable_moves_the_event_files(monkeypatch, tmp_path):
    monkeypatch.setenv(DIR_VARIABLE, str(tmp_path / "tb"))
    tester = PluginTester(TensorBoardLogger(), tmp_path=tmp_path)
    record = tester.run_pair("rnn-cpu", overrides=SMALL)
    events = read(tmp_path / "tb" / tester.run_dir.name / "rnn-cpu+tiny+seed0")
    assert len(events.Scalars("val/accuracy")) == record["epochs_run"]
    assert not (tester.run_dir / "tensorboard").exists()
