"""MNIST-format datasets from synthetic IDX files: loading, fingerprint, and every corrupt variant."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from datasets_helpers import (
    IDX_FILES,
    N_TEST,
    N_TRAIN,
    idx_bytes,
    idx_fingerprint,
    mnist_arrays,
    use_small,
    write_mnist,
)

from seqbench.datasets import loader
from seqbench.datasets.errors import DataError
from seqbench.types import DatasetUnavailable, LoadContext


@pytest.fixture
def small(monkeypatch):
    use_small(monkeypatch, "mnist", (N_TRAIN, N_TEST))
    use_small(monkeypatch, "fashion-mnist", (N_TRAIN, N_TEST), system_dirs=())


def _load(tmp_path, name="mnist"):
    return loader.load(name, LoadContext(tmp_path, download=False))


def test_loads_as_float_row_sequences(small, tmp_path):
    contents = write_mnist(tmp_path / "mnist")
    ds = _load(tmp_path)
    arrays = mnist_arrays()
    assert ds.train_x.shape == (N_TRAIN, 28, 28) and ds.test_x.shape == (N_TEST, 28, 28)
    assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int64
    assert ds.train_x.min() >= 0.0 and ds.train_x.max() <= 1.0
    np.testing.assert_array_equal(np.rint(ds.train_x * 255).astype(np.uint8), arrays[IDX_FILES[0]])
    np.testing.assert_array_equal(ds.test_y, arrays[IDX_FILES[3]])
    assert ds.class_names == tuple("0123456789")
    assert ds.fingerprint == idx_fingerprint(contents)
    assert ds.info.seq_len == 28 and ds.info.n_features == 28 and ds.info.num_classes == 10


def test_pixel_255_is_exactly_one(small, tmp_path):
    d = tmp_path / "mnist"
    write_mnist(d)
    x = np.full((N_TRAIN, 28, 28), 255, np.uint8)
    (d / IDX_FILES[0]).write_bytes(gzip.compress(idx_bytes(x)))
    assert _load(tmp_path).train_x.max() == np.float32(1.0)


def test_uncompressed_files_give_the_same_fingerprint(small, tmp_path):
    contents = write_mnist(tmp_path / "mnist", compressed=False)
    ds = _load(tmp_path)
    assert ds.fingerprint == idx_fingerprint(contents)
    assert all(not f.endswith(".gz") for f in ds.meta["files"])


def test_fashion_mnist_reads_its_own_directory_with_its_class_names(small, tmp_path):
    write_mnist(tmp_path / "fashion-mnist", seed=1)
    ds = _load(tmp_path, "fashion-mnist")
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[-1] == "Ankle boot"
    assert ds.meta["directory"] == str(tmp_path / "fashion-mnist")


def test_fashion_mnist_falls_back_to_the_system_directory(monkeypatch, tmp_path):
    system = tmp_path / "usr-share"
    use_small(monkeypatch, "fashion-mnist", (N_TRAIN, N_TEST), system_dirs=(system,))
    contents = write_mnist(system)
    ds = _load(tmp_path / "data", "fashion-mnist")
    assert ds.meta["directory"] == str(system)
    assert ds.fingerprint == idx_fingerprint(contents)


def test_missing_files_offline_give_the_one_clear_message(small, tmp_path):
    d = tmp_path / "mnist"
    write_mnist(d)
    (d / IDX_FILES[2]).unlink()
    with pytest.raises(DatasetUnavailable) as err:
        _load(tmp_path)
    msg = str(err.value)
    assert "'mnist' is not available" in msg and IDX_FILES[2] in msg and IDX_FILES[0] not in msg
    assert f"{d}/" in msg and "downloads are off" in msg
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in msg
    assert "https://storage.googleapis.com/cvdf-datasets/mnist/" in msg
    assert "seqbench data fetch mnist" in msg
    assert sorted(p.name for p in d.iterdir()) == sorted(set(IDX_FILES) - {IDX_FILES[2]})


def _corrupt(tmp_path, name, content, *, raw=False):
    """Write the synthetic set, then replace file ``name`` by ``content`` (gzipped unless ``raw``)."""
    d = tmp_path / "mnist"
    write_mnist(d)
    path = d / name
    path.write_bytes(content if raw else gzip.compress(content))
    return path


def _error(tmp_path) -> str:
    with pytest.raises(DataError) as err:
        _load(tmp_path)
    return str(err.value)


def test_bad_magic(small, tmp_path):
    content = idx_bytes(mnist_arrays()[IDX_FILES[0]], magic=0x1234)
    path = _corrupt(tmp_path, IDX_FILES[0], content)
    msg = _error(tmp_path)
    assert msg.startswith(str(path)) and "bad magic number 0x00001234, expected 2051" in msg


def test_labels_file_in_the_images_place(small, tmp_path):
    path = _corrupt(tmp_path, IDX_FILES[0], idx_bytes(mnist_arrays()[IDX_FILES[1]]))
    msg = _error(tmp_path)
    assert msg.startswith(str(path)) and "is an IDX labels file (magic 2049), expected images (magic 2051)" in msg


def test_truncated_gzip(small, tmp_path):
    d = tmp_path / "mnist"
    write_mnist(d)
    path = d / IDX_FILES[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    msg = _error(tmp_path)
    assert msg.startswith(str(path)) and "truncated gzip file" in msg


def test_corrupt_gzip_checksum(small, tmp_path):
    d = tmp_path / "mnist"
    write_mnist(d)
    path = d / IDX_FILES[1]
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    path.write_bytes(bytes(data))
    msg = _error(tmp_path)
    assert msg.startswith(str(path)) and "corrupt gzip file" in msg and "CRC" in msg


def test_not_a_gzip_file(small, tmp_path):
    path = _corrupt(tmp_path, IDX_FILES[0], b"<html>Not Found</html>", raw=True)
    assert _error(tmp_path) == f"{path}: not a gzip file"


def test_gzip_under_an_uncompressed_name(small, tmp_path):
    d = tmp_path / "mnist"
    write_mnist(d, compressed=False)
    path = d / IDX_FILES[0][:-3]
    path.write_bytes(gzip.compress(path.read_bytes()))
    assert "is gzip-compressed but its name lacks the .gz suffix" in _error(tmp_path)


def test_truncated_idx_body(small, tmp_path):
    content = idx_bytes(mnist_arrays()[IDX_FILES[0]])
    path = _corrupt(tmp_path, IDX_FILES[0], content[:-100])
    msg = _error(tmp_path)
    assert msg.startswith(str(path)) and "truncated: its header announces" in msg and "(50, 28, 28)" in msg


def test_trailing_bytes(small, tmp_path):
    content = idx_bytes(mnist_arrays()[IDX_FILES[1]])
    path = _corrupt(tmp_path, IDX_FILES[1], content + b"\0\0\0")
    assert _error(tmp_path) == f"{path}: 3 unexpected bytes after the data (50,)"


def test_empty_file(small, tmp_path):
    path = _corrupt(tmp_path, IDX_FILES[3], b"")
    assert _error(tmp_path) == f"{path}: too short to be an IDX file (0 bytes)"


def test_mismatched_counts(small, tmp_path):
    labels = mnist_arrays()[IDX_FILES[1]][:-1]
    path = _corrupt(tmp_path, IDX_FILES[1], idx_bytes(labels))
    msg = _error(tmp_path)
    assert msg == f"{tmp_path / 'mnist' / IDX_FILES[0]} holds 50 images but {path} holds 49 labels"


def test_label_out_of_range(small, tmp_path):
    labels = mnist_arrays()[IDX_FILES[3]].copy()
    labels[3] = 10
    path = _corrupt(tmp_path, IDX_FILES[3], idx_bytes(labels))
    assert _error(tmp_path) == f"{path}: label 10 at index 3 is out of range [0, 10)"


def test_wrong_image_size(small, tmp_path):
    path = _corrupt(tmp_path, IDX_FILES[2], idx_bytes(np.zeros((N_TEST, 32, 32), np.uint8)))
    assert _error(tmp_path) == f"{path}: images are 32x32 pixels, expected 28x28"


def test_test_files_in_the_train_place(small, tmp_path):
    d = tmp_path / "mnist"
    contents = write_mnist(d)
    (d / IDX_FILES[0]).write_bytes(gzip.compress(contents[IDX_FILES[2]]))
    (d / IDX_FILES[1]).write_bytes(gzip.compress(contents[IDX_FILES[3]]))
    assert _error(tmp_path) == f"{d / IDX_FILES[0]}: 20 images, expected 50 for the train split"


def test_real_sizes_are_expected_by_default(tmp_path):
    write_mnist(tmp_path / "mnist")
    with pytest.raises(DataError, match="50 images, expected 60000 for the train split"):
        _load(tmp_path)


def test_locate_reports_ok_missing_and_corrupt(small, tmp_path):
    ctx = LoadContext(tmp_path, download=False)
    missing = loader.locate("mnist", ctx)
    assert missing["status"] == "missing" and missing["missing"] == list(IDX_FILES)
    assert missing["directory"] == str(tmp_path / "mnist") and missing["fingerprint"] is None

    contents = write_mnist(tmp_path / "mnist")
    ok = loader.locate("mnist", ctx)
    assert ok["status"] == "ok" and ok["fingerprint"] == idx_fingerprint(contents)
    assert ok["train_shape"] == [N_TRAIN, 28, 28] and ok["test_shape"] == [N_TEST, 28, 28]
    assert len(ok["files"]) == 4 and ok["missing"] == []

    (tmp_path / "mnist" / IDX_FILES[3]).write_bytes(b"junk")
    corrupt = loader.locate("mnist", ctx)
    assert corrupt["status"] == "corrupt" and "not a gzip file" in corrupt["error"]
