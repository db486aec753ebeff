"""Property-based tests (hypothesis): the split, the rows of each dataset layout, the names of
pair files, and the statistics behind ``seqbench compare``."""

from __future__ import annotations

import math
from urllib.parse import unquote

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from seqbench.datasets import cifar, idx  # noqa: E402
from seqbench.plugins import NAME_PATTERN  # noqa: E402
from seqbench.protocol import split_train_val  # noqa: E402
from seqbench.reporting import stats  # noqa: E402
from seqbench.results import pair_stem  # noqa: E402
from seqbench.types import derived_fingerprint  # noqa: E402

FAST = settings(max_examples=50, deadline=None, database=None)
seeds = st.integers(0, 2**32 - 1)
_TEXT = "ab0 +/:é\"{}"  # explicit alphabets: no Unicode tables to build


# --- the split --------------------------------------------------------------------------------


@FAST
@given(n=st.integers(2, 5000), fraction=st.floats(0.001, 0.999), seed=seeds)
def test_split_partitions_range_n_with_the_asked_fraction(n, fraction, seed):
    tr, val = split_train_val(n, fraction, seed)
    assert 1 <= len(val) <= n - 1 and len(tr) + len(val) == n
    assert np.array_equal(np.sort(np.concatenate([tr, val])), np.arange(n))
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(val) > 0)  # sorted, hence disjoint
    if 1 <= round(n * fraction) <= n - 1:  # unless clamped to keep a row on each side
        assert abs(len(val) - n * fraction) <= 0.5
    again = split_train_val(n, fraction, seed)
    assert np.array_equal(again[0], tr) and np.array_equal(again[1], val)


@FAST
@given(n=st.integers(50, 2000), fraction=st.floats(0.05, 0.95), seed=seeds)
def test_split_of_a_seed_is_a_random_subset(n, fraction, seed):
    _, val = split_train_val(n, fraction, seed)
    _, other = split_train_val(n, fraction, seed + 1)
    assert not np.array_equal(val, other)
    assert not np.array_equal(val, np.arange(len(val)))  # not the first rows
    assert not np.array_equal(val, np.arange(n - len(val), n))  # nor the last


# --- row layouts --------------------------------------------------------------------------------


@FAST
@given(data=arrays(np.uint8, st.tuples(st.integers(1, 4), st.just(3 * 32 * 32))))
def test_cifar_rows_are_image_rows_with_rgb_side_by_side(data):
    """CIFAR-10 stores each image as three 32×32 colour planes; step r is image row r and
    feature 3c + k is colour k of pixel (r, c)."""
    rows = cifar.to_rows(data)
    assert rows.shape == (len(data), 32, 96) and rows.dtype == np.uint8
    planes = data.reshape(len(data), 3, 32, 32)
    n, r, c, k = np.meshgrid(np.arange(len(data)), np.arange(32), np.arange(32), np.arange(3), indexing="ij")
    assert np.array_equal(rows[n, r, 3 * c + k], planes[n, k, r, c])


@FAST
@given(images=arrays(np.uint8, st.tuples(st.integers(0, 5), st.integers(1, 28), st.integers(1, 28))))
def test_idx_images_read_back_row_by_row(images, tmp_path_factory):
    """An IDX image file read by the parser gives image row r as step r (MNIST, Fashion-MNIST)."""
    header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape)
    parsed = idx.parse(header + images.tobytes(), tmp_path_factory.getbasetemp() / "x.idx", idx.IMAGES_MAGIC)
    assert parsed.shape == images.shape and np.array_equal(parsed, images)


@FAST
@given(labels=arrays(np.uint8, st.integers(0, 50), elements=st.integers(0, 9)), extra=st.integers(1, 3))
def test_idx_files_of_the_wrong_length_are_refused(labels, extra, tmp_path_factory):
    header = (2049).to_bytes(4, "big") + len(labels).to_bytes(4, "big")
    path = tmp_path_factory.getbasetemp() / "y.idx"
    assert np.array_equal(idx.parse(header + labels.tobytes(), path, idx.LABELS_MAGIC), labels)
    with pytest.raises(idx.DataError, match="unexpected bytes"):
        idx.parse(header + labels.tobytes() + b"\0" * extra, path, idx.LABELS_MAGIC)
    if len(labels):
        with pytest.raises(idx.DataError, match="truncated"):
            idx.parse(header + labels.tobytes()[:-1], path, idx.LABELS_MAGIC)


# --- pair file names ----------------------------------------------------------------------------

names = st.text(alphabet="ab2_-.+%/ é\u00e9\U0001f600", min_size=1, max_size=6)  # the characters that could collide
triples = st.tuples(names, names, st.integers(0, 10**6))


@FAST
@given(a=triples, b=triples)
def test_pair_stems_are_one_to_one(a, b):
    assert (pair_stem(*a) == pair_stem(*b)) == (a == b)


@FAST
@given(t=triples)
def test_a_pair_stem_is_one_file_name_that_names_its_pair(t):
    stem = pair_stem(*t)
    assert "/" not in stem and "\0" not in stem
    model, dataset, seed = stem.split("+")
    assert (unquote(model), unquote(dataset), seed) == (t[0], t[1], f"seed{t[2]}")


_ALNUM = "abcXYZ0129"
valid_names = st.builds(str.__add__, st.sampled_from(_ALNUM), st.text(alphabet=_ALNUM + "._-", max_size=10))


@FAST
@given(model=valid_names, dataset=valid_names, seed=st.integers(0, 999))
def test_the_pair_stem_of_valid_names_is_readable_and_not_hidden(model, dataset, seed):
    assert NAME_PATTERN.fullmatch(model) and NAME_PATTERN.fullmatch(dataset)
    stem = pair_stem(model, dataset, seed)
    assert stem == f"{model}+{dataset}+seed{seed}" and not stem.startswith(".")


@FAST
@given(
    a=st.text(_TEXT, max_size=8),
    b=st.text(_TEXT, max_size=8),
    p=st.dictionaries(st.text(_TEXT, max_size=4), st.integers(), max_size=3),
)
def test_derived_fingerprints_change_with_each_input(a, b, p):
    fp = derived_fingerprint(a, b, p)
    assert fp.startswith("sha256:") and len(fp) == 7 + 64
    assert fp == derived_fingerprint(a, b, dict(p))
    assert fp != derived_fingerprint(a + "x", b, p) and fp != derived_fingerprint(a, b + "x", p)
    assert fp != derived_fingerprint(a, b, {**p, "extra-key": 1})


# --- the statistics of compare ------------------------------------------------------------------

scores = st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=1, max_size=6)


@FAST
@given(base=scores, new=scores)
def test_permutation_test_difference_p_and_interval(base, new):
    est = stats.permutation_test(base, new)
    assert est.diff == pytest.approx(np.mean(new) - np.mean(base), abs=1e-9)
    assert est.p_min <= est.p <= 1.0
    assert est.p_min == stats.permutation_min_p(len(base), len(new))
    assert est.low <= est.diff + 1e-6 and est.diff - 1e-6 <= est.high
    if est.p_min > 0.05:  # too few seeds: no interval can exclude anything
        assert (est.low, est.high) == (-math.inf, math.inf)


@FAST
@given(base=scores, new=scores, shift=st.floats(-50, 50))
def test_permutation_test_is_shift_equivariant_and_antisymmetric(base, new, shift):
    est = stats.permutation_test(base, new)
    moved = stats.permutation_test(base, [v + shift for v in new])
    assert moved.diff == pytest.approx(est.diff + shift, abs=1e-6)
    swapped = stats.permutation_test(new, base)
    assert swapped.diff == pytest.approx(-est.diff, abs=1e-9)
    assert swapped.p == pytest.approx(est.p)


@FAST
@given(b=st.integers(0, 300), c=st.integers(0, 300))
def test_mcnemar_is_symmetric_a_probability_and_one_when_balanced(b, c):
    p = stats.mcnemar_exact(b, c)
    assert 0.0 < p <= 1.0 and p == stats.mcnemar_exact(c, b)
    if b == c:
        assert p == 1.0
    if b + c <= 20:  # against the binomial sum written out
        n, k = b + c, min(b, c)
        exact = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
        assert p == pytest.approx(exact, rel=1e-9)


@FAST
@given(data=st.data(), seeds_=st.integers(1, 3), n=st.integers(1, 60))
def test_paired_accuracy_test_difference_and_counts(data, seeds_, n):
    shape = (seeds_, n)
    base = data.draw(arrays(np.bool_, shape))
    new = data.draw(arrays(np.bool_, shape))
    est = stats.paired_accuracy_test(base, new)
    assert est.diff == pytest.approx(new.mean() - base.mean())
    b, c = int((base & ~new).sum()), int((~base & new).sum())
    assert est.p == stats.mcnemar_exact(b, c)
    assert est.p_min == stats.mcnemar_exact(base.size, 0)
    assert est.low <= est.high and est.low >= -1.0 and est.high <= 1.0
