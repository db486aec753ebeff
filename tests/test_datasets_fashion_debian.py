"""Real data: Debian's dataset-fashion-mnist loaded end to end (skipped where it is not installed)."""

from __future__ import annotations

import numpy as np
import pytest

from seqbench.datasets.catalog import DEBIAN_FASHION_DIR, FASHION_CLASSES, IDX_FILES
from seqbench.datasets.paths import find_file
from seqbench.plugins import load_plugins
from seqbench.types import LoadContext

pytestmark = pytest.mark.skipif(
    not all(find_file(DEBIAN_FASHION_DIR, name) for name in IDX_FILES),
    reason=f"Debian's dataset-fashion-mnist is not installed ({DEBIAN_FASHION_DIR})",
)


@pytest.mark.slow
def test_debian_fashion_mnist_end_to_end(tmp_path):
    spec = load_plugins().datasets["fashion-mnist"]
    ds = spec.load(LoadContext(tmp_path, download=False))  # an empty data dir: found in /usr/share
    assert ds.meta["directory"] == str(DEBIAN_FASHION_DIR)
    assert ds.train_x.shape == (60_000, 28, 28) and ds.test_x.shape == (10_000, 28, 28)
    assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int64
    assert ds.train_x.min() == 0.0 and ds.train_x.max() == 1.0
    assert np.bincount(ds.train_y, minlength=10).tolist() == [6_000] * 10
    assert np.bincount(ds.test_y, minlength=10).tolist() == [1_000] * 10
    assert ds.class_names == FASHION_CLASSES
    assert ds.fingerprint.startswith("sha256:") and len(ds.fingerprint) == 7 + 64
    assert not any(tmp_path.iterdir())
