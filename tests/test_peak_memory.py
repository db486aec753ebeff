"""Peak host memory is measured per pair: a small model run after a large one in the same
process does not inherit the large one's peak."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import MeanLogReg
from test_protocol import id_dataset

from seqbench.protocol import peak_host_rss_bytes, reset_peak_rss, train_and_evaluate

SCRATCH = 256 * 2**20  # what the large model touches while it trains


class LargeModel(MeanLogReg):
    """Touches a 256 MiB scratch buffer on every batch, then frees it (as activations would)."""

    def train_batch(self, x, y):
        scratch = np.ones(SCRATCH // 8)
        scratch[::512] += 1.0
        del scratch
        return super().train_batch(x, y)


PARAMS = {"epochs": 1, "batch_size": 100, "patience": 1, "val_fraction": 0.1}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the per-pair reset needs Linux's clear_refs")
def test_a_small_model_after_a_large_one_reports_its_own_peak():
    if not reset_peak_rss():
        pytest.skip("this kernel does not let a process reset its RSS high-water mark")
    large = train_and_evaluate(LargeModel(4, 3), id_dataset(), PARAMS, {}, seed=0)["timing"]["peak_host_rss_bytes"]
    small = train_and_evaluate(MeanLogReg(4, 3), id_dataset(), PARAMS, {}, seed=0)["timing"]["peak_host_rss_bytes"]
    assert large - small > SCRATCH // 2, (large, small)
    assert small <= peak_host_rss_bytes() + 64 * 2**20
