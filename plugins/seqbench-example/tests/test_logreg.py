"""seqbench-example's own tests, with seqbench.testing: run them with
``python -m pytest plugins/seqbench-example/tests``."""

from __future__ import annotations

import numpy as np
import seqbench_example

from seqbench.testing import PluginTester


def test_logreg_learns_in_a_few_steps(tmp_path):
    tester = PluginTester(seqbench_example, tmp_path=tmp_path)
    trained = tester.train("logreg", steps=20)
    assert trained.losses[-1] < trained.losses[0]
    assert (trained.proba.argmax(axis=1) == tester.load().test_y).mean() > 0.8


def test_logreg_runs_under_the_protocol(tmp_path):
    tester = PluginTester(seqbench_example, tmp_path=tmp_path)
    pair = tester.run_pair("logreg", overrides={"epochs": 3})
    assert pair["status"] == "ok", pair["reason"]
    assert pair["model_plugin"] == "seqbench_example"
    assert pair["metrics"]["accuracy"]["accuracy"] > 0.8
    assert pair["params"]["epochs"] == 3 and pair["hyperparameters"]["n_inputs"] == 6 * 4
    assert pair["num_parameters"] == 6 * 4 * 3 + 3
    assert (tester.run_dir / "summary.md").exists()


def test_saved_model_predicts_the_same(tmp_path):
    tester = PluginTester(seqbench_example, tmp_path=tmp_path)
    model = tester.train("logreg", steps=5).model
    model.save(tmp_path / "logreg.npz")
    again = tester.train("logreg", steps=0).model
    again.load(tmp_path / "logreg.npz")
    x = tester.load().test_x
    assert np.array_equal(again.predict_proba(x), model.predict_proba(x))
