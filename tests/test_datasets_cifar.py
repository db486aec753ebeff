"""CIFAR-10 from synthetic pickles: the row layout, archive and folder forms, corrupt variants."""

from __future__ import annotations

import hashlib
import os
import pickle

import numpy as np
import pytest
from datasets_helpers import (
    CIFAR_NAMES,
    CIFAR_PER_BATCH,
    cifar_archive_bytes,
    cifar_members,
    use_small,
    write_cifar_archive,
    write_cifar_folder,
)

from seqbench.datasets import cifar, loader
from seqbench.datasets.errors import DataError
from seqbench.types import DatasetUnavailable, LoadContext

N = CIFAR_PER_BATCH


@pytest.fixture(autouse=True)
def small(monkeypatch):
    use_small(monkeypatch, "cifar10", (5 * N, N))


def _load(tmp_path):
    return loader.load("cifar10", LoadContext(tmp_path, download=False))


def _error(tmp_path) -> str:
    with pytest.raises(DataError) as err:
        _load(tmp_path)
    return str(err.value)


def test_layout_pin_with_a_hand_made_image():
    # One image, channel-major as CIFAR stores it: (3, 32, 32) = all red, all green, all blue.
    image = np.zeros((3, 32, 32), np.uint8)
    image[0, 0, 1] = 200  # red of the pixel at row 0, column 1
    image[1, 0, 1] = 100  # green of the same pixel
    image[2, 5, 0] = 7  # blue of the pixel at row 5, column 0
    image[0, 31, 31] = 255  # red of the last pixel
    rows = cifar.to_rows(image.reshape(1, 3072))
    assert rows.shape == (1, 32, 96)
    # Step r holds row r's pixels left to right, each as (R, G, B).
    assert list(rows[0, 0, 3:6]) == [200, 100, 0]
    assert list(rows[0, 5, 0:3]) == [0, 0, 7]
    assert rows[0, 31, 93] == 255
    assert rows.sum() == 200 + 100 + 7 + 255
    # Reshaping the raw 3072 values straight to 32 x 96 puts them elsewhere: the known mistake.
    assert list(image.reshape(1, 32, 96)[0, 0, 3:6]) != [200, 100, 0]


def test_layout_matches_every_pixel():
    data = np.random.default_rng(0).integers(0, 256, (2, 3072), dtype=np.uint8)
    planes = data.reshape(2, 3, 32, 32)
    rows = cifar.to_rows(data)
    for r, c, k in [(0, 0, 0), (3, 17, 2), (31, 0, 1), (12, 31, 2)]:
        assert (rows[:, r, 3 * c + k] == planes[:, k, r, c]).all()


def test_archive_loads_with_class_names_from_meta(tmp_path):
    members = cifar_members()
    write_cifar_archive(tmp_path / "cifar10", members)
    ds = _load(tmp_path)
    assert ds.train_x.shape == (5 * N, 32, 96) and ds.test_x.shape == (N, 32, 96)
    assert ds.train_x.dtype == np.float32 and ds.test_y.dtype == np.int64
    assert ds.class_names == CIFAR_NAMES
    assert ds.info.seq_len == 32 and ds.info.n_features == 96
    batch1 = pickle.loads(members["data_batch_1"], encoding="bytes")
    expected = cifar.to_rows(batch1[b"data"]).astype(np.float32) / 255
    np.testing.assert_array_equal(ds.train_x[:N], expected)
    np.testing.assert_array_equal(ds.train_y[:N], batch1[b"labels"])
    order = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    assert ds.fingerprint == "sha256:" + hashlib.sha256(b"".join(members[m] for m in order)).hexdigest()


def test_folder_gives_the_same_data_and_fingerprint_as_the_archive(tmp_path):
    members = cifar_members()
    write_cifar_archive(tmp_path / "a" / "cifar10", members)
    write_cifar_folder(tmp_path / "b" / "cifar10", members)
    a, b = _load(tmp_path / "a"), _load(tmp_path / "b")
    assert a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a.train_x, b.train_x)
    assert b.meta["files"] == [str(tmp_path / "b" / "cifar10" / "cifar-10-batches-py")]


def test_missing_offline_message(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        _load(tmp_path)
    msg = str(err.value)
    assert "cifar-10-python.tar.gz missing from" in msg and "https://www.cs.toronto.edu/~kriz/" in msg


def _folder_with(tmp_path, name, content):
    members = cifar_members()
    members[name] = content
    folder = write_cifar_folder(tmp_path / "cifar10", members)
    return f"{folder / name}"


def test_not_a_pickle(tmp_path):
    where = _folder_with(tmp_path, "data_batch_2", os.urandom(64))
    msg = _error(tmp_path)
    assert msg.startswith(f"{where}: not a CIFAR-10 batch pickle (")


def test_pickle_of_the_wrong_type(tmp_path):
    where = _folder_with(tmp_path, "test_batch", pickle.dumps([1, 2, 3]))
    assert _error(tmp_path) == f"{where}: not a CIFAR-10 batch (a pickled list, expected a dict)"


def test_missing_key(tmp_path):
    where = _folder_with(tmp_path, "data_batch_1", pickle.dumps({b"data": np.zeros((N, 3072), np.uint8)}))
    assert _error(tmp_path) == f"{where}: not a CIFAR-10 batch (no 'labels' entry)"


def test_wrong_data_shape(tmp_path):
    batch = {"data": np.zeros((N, 1024), np.uint8), "labels": [0] * N}
    where = _folder_with(tmp_path, "data_batch_3", pickle.dumps(batch))
    assert (
        _error(tmp_path)
        == f"{where}: 'data' is a uint8 array of shape ({N}, 1024), expected a uint8 array of shape (N, 3072)"
    )


def test_label_count_mismatch(tmp_path):
    batch = {"data": np.zeros((N, 3072), np.uint8), "labels": [0] * (N - 1)}
    where = _folder_with(tmp_path, "data_batch_4", pickle.dumps(batch))
    assert _error(tmp_path) == f"{where}: 'labels' must be {N} integers, one per image"


def test_label_out_of_range(tmp_path):
    batch = {"data": np.zeros((N, 3072), np.uint8), "labels": [0, 10, 0, 0]}
    where = _folder_with(tmp_path, "data_batch_5", pickle.dumps(batch))
    assert _error(tmp_path) == f"{where}: label 10 at index 1 is out of range [0, 10)"


def test_meta_without_label_names(tmp_path):
    where = _folder_with(tmp_path, "batches.meta", pickle.dumps({"num_vis": 3072}))
    assert _error(tmp_path) == f"{where}: not CIFAR-10 batches.meta (no list of label_names)"


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    where = _folder_with(tmp_path, "data_batch_1", pickle.dumps(_Exploit(marker)))
    msg = _error(tmp_path)
    assert msg.startswith(f"{where}: not a CIFAR-10 batch pickle (UnpicklingError: refusing to load")
    assert not marker.exists()


def test_truncated_archive(tmp_path):
    d = tmp_path / "cifar10"
    d.mkdir()
    data = cifar_archive_bytes(cifar_members())
    (d / "cifar-10-python.tar.gz").write_bytes(data[: len(data) // 2])
    msg = _error(tmp_path)
    assert msg.startswith(f"{d / 'cifar-10-python.tar.gz'}: truncated archive")


def test_archive_without_a_member(tmp_path):
    members = cifar_members()
    del members["test_batch"]
    path = write_cifar_archive(tmp_path / "cifar10", members)
    assert _error(tmp_path) == f"{path}: not the CIFAR-10 python archive (no cifar-10-batches-py/test_batch)"


def test_wrong_file_in_the_archive_place(tmp_path):
    import gzip

    d = tmp_path / "cifar10"
    d.mkdir()
    path = d / "cifar-10-python.tar.gz"
    path.write_bytes(gzip.compress(b"\0\0\x08\x03 this is an IDX file, not a tar archive" * 50))
    assert _error(tmp_path).startswith(f"{path}: not a readable tar.gz archive (")


def test_wrong_split_size(tmp_path, monkeypatch):
    use_small(monkeypatch, "cifar10", (50_000, 10_000))
    path = write_cifar_archive(tmp_path / "cifar10", cifar_members())
    assert _error(tmp_path) == f"{path}: {5 * N} train images, expected 50000"


def test_pickles_naming_numpy_1_modules_load(tmp_path):
    # The real batches were pickled with NumPy 1, whose arrays name numpy.core.multiarray.
    members = {
        name: content.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        for name, content in cifar_members().items()
    }
    assert b"numpy.core.multiarray\n_reconstruct" in members["data_batch_1"]
    write_cifar_folder(tmp_path / "cifar10", members)
    assert _load(tmp_path).train_x.shape == (5 * N, 32, 96)
