"""Derived datasets through the public API (issue 13): ``DatasetSpec.derive`` and
``LoadContext.load`` build on a registered dataset in memory; the fingerprint combines the
source's and the transform's identity."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from datasets_helpers import N_TEST, N_TRAIN, use_small, write_mnist
from helpers import MeanLogReg

from seqbench import Dataset, DatasetSpec, DatasetUnavailable, LoadContext, Preprocessing, hookimpl
from seqbench.cli import main
from seqbench.testing import PluginTester, tiny_dataset
from seqbench.types import derived_fingerprint


def columns(train_x, test_x):
    """Images read column by column: (N, T, F) -> (N, F, T)."""
    return train_x.transpose(0, 2, 1), test_x.transpose(0, 2, 1)


def pixels(train_x, test_x, *, permutation_seed=None):
    """One pixel a step, (N, T*F, 1), optionally in a fixed random order."""
    train, test = (x.reshape(len(x), -1, 1) for x in (train_x, test_x))
    if permutation_seed is not None:
        order = np.random.default_rng(permutation_seed).permutation(train.shape[1])
        train, test = train[:, order], test[:, order]
    return train, test


def first_two_classes(ds: Dataset) -> Dataset:
    train, test = ds.train_y < 2, ds.test_y < 2
    return replace(ds, train_x=ds.train_x[train], train_y=ds.train_y[train], test_x=ds.test_x[test],
                   test_y=ds.test_y[test], class_names=ds.class_names[:2], meta={"kept": [0, 1]})


class Derived:
    @hookimpl
    def register_datasets(self, register):
        register(DatasetSpec.derive("tiny-cols", "tiny", columns, identity="columns/v1"))
        register(DatasetSpec.derive("tiny-pixels", "tiny", pixels, identity="pixels/v1"))
        register(DatasetSpec.derive("tiny-perm", "tiny", pixels, identity="pixels/v1", params={"permutation_seed": 7}))
        register(DatasetSpec.derive("tiny-2", "tiny", first_two_classes, identity="classes01/v1", whole=True))
        register(DatasetSpec.derive("loop", "loop", columns, identity="loop"))


@pytest.fixture
def tester(tmp_path):
    return PluginTester(Derived(), tmp_path=tmp_path)


def test_a_transform_of_the_arrays_builds_on_the_source_in_memory(tester):
    source, cols = tester.load("tiny"), tester.load("tiny-cols")
    assert cols.name == "tiny-cols" and cols.train_x.shape == (240, 4, 6)
    assert np.array_equal(cols.train_x, source.train_x.transpose(0, 2, 1))
    assert np.array_equal(cols.test_y, source.test_y) and cols.class_names == source.class_names
    assert cols.channels == 1 and tester.registry.datasets["tiny-cols"].source == "tiny"
    assert cols.meta["derived_from"] == {"dataset": "tiny", "fingerprint": source.fingerprint, "meta": {},
                                         "transform": "columns/v1", "params": {}}


def test_the_fingerprint_combines_the_source_the_transform_and_its_parameters(tester):
    source = tester.load("tiny").fingerprint
    fingerprints = {name: tester.load(name).fingerprint for name in ("tiny-cols", "tiny-pixels", "tiny-perm")}
    assert fingerprints["tiny-cols"] == derived_fingerprint(source, "columns/v1")
    assert fingerprints["tiny-perm"] == derived_fingerprint(source, "pixels/v1", {"permutation_seed": 7})
    assert len({source, *fingerprints.values()}) == 4 and all(f.startswith("sha256:") for f in fingerprints.values())
    other_source = tiny_dataset(seed=1).fingerprint
    assert derived_fingerprint(other_source, "columns/v1") != fingerprints["tiny-cols"]
    assert derived_fingerprint(source, "columns/v2") != fingerprints["tiny-cols"]


def test_a_whole_dataset_transform_may_change_labels_and_class_names(tester):
    two = tester.load("tiny-2")
    assert two.class_names == ("class0", "class1") and set(two.test_y) <= {0, 1}
    assert two.meta["kept"] == [0, 1] and two.meta["derived_from"]["transform"] == "classes01/v1"


def test_a_derived_dataset_declares_its_own_preprocessing_and_channels(tmp_path):
    rgb = replace(tiny_dataset("rgb", n_features=6), channels=3)

    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            register(DatasetSpec("rgb-aug", lambda ctx: rgb, preprocessing=Preprocessing(True, True, 2)))
            register(
                DatasetSpec.derive(
                    "rgb-pixels",
                    "rgb-aug",
                    lambda a, b: (a.reshape(len(a), -1, 3), b.reshape(len(b), -1, 3)),
                    identity="pixels",
                    preprocessing=Preprocessing(standardize=True),
                )
            )
            register(DatasetSpec.derive("rgb-flat", "rgb-aug", pixels, identity="flat", channels=1))

    specs = PluginTester(Plugin(), tmp_path=tmp_path).registry.datasets
    assert specs["rgb-pixels"].preprocessing == Preprocessing(standardize=True)  # no row flips of a pixel sequence
    assert specs["rgb-flat"].preprocessing == Preprocessing()  # nothing inherited
    ctx = LoadContext(tmp_path, datasets=specs)
    assert ctx.load("rgb-pixels").channels == 3 and ctx.load("rgb-pixels").train_x.shape == (240, 12, 3)
    assert ctx.load("rgb-flat").channels == 1


def test_a_derived_pair_records_the_combined_fingerprint_and_lineage(tester):
    class Model:
        @hookimpl
        def register_models(self, register):
            from seqbench import ModelSpec

            register(ModelSpec("mean", lambda info, p: MeanLogReg(info.n_features, info.num_classes, 0.5, p["seed"]),
                               lambda info: {"epochs": 2, "batch_size": 32}))

    tester = PluginTester(Derived(), Model(), tmp_path=tester.tmp_path)
    pair = tester.run_pair("mean", "tiny-cols")
    assert pair["status"] == "ok", pair["reason"]
    info = pair["dataset_info"]
    assert info["fingerprint"] == tester.load("tiny-cols").fingerprint
    assert (info["seq_len"], info["n_features"]) == (4, 6)
    assert info["meta"]["derived_from"]["dataset"] == "tiny"


def test_sources_that_are_missing_or_circular_are_unavailable(tester, tmp_path):
    with pytest.raises(DatasetUnavailable, match=r"dataset 'loop' derives from itself: loop -> loop"):
        tester.load("loop")
    with pytest.raises(DatasetUnavailable, match="'nowhere' is not registered"):
        LoadContext(tmp_path, datasets={}).load("nowhere")
    with pytest.raises(DatasetUnavailable, match="this LoadContext has no registry"):
        LoadContext(tmp_path).load("tiny")


@pytest.mark.slow
def test_a_derived_mnist_reads_the_files_once_through_the_builtin(monkeypatch, tmp_path):
    """sMNIST-style: the built-in MNIST, one pixel a step; data info and fetch answer for the source."""
    use_small(monkeypatch, "mnist", (N_TRAIN, N_TEST))
    write_mnist(tmp_path / "mnist")
    tester = PluginTester(("pixels", type("P", (), {"register_datasets": hookimpl(
        lambda self, register: register(DatasetSpec.derive("mnist-pixels", "mnist", pixels,
                                                           identity="pixels/v1")))})()),
        tmp_path=tmp_path)
    ctx = LoadContext(tmp_path, download=False, datasets=tester.registry.datasets)
    mnist, seq = ctx.load("mnist"), ctx.load("mnist-pixels")
    assert seq.train_x.shape == (N_TRAIN, 784, 1) and np.array_equal(
        seq.train_x[:, :, 0], mnist.train_x.reshape(N_TRAIN, -1)
    )
    assert seq.fingerprint == derived_fingerprint(mnist.fingerprint, "pixels/v1")
    spec = tester.registry.datasets["mnist-pixels"]
    where = spec.locate(ctx)
    assert where["status"] == "ok" and where["derived_from"] == "mnist" and where["fingerprint"] == seq.fingerprint
    assert (where["train_shape"], where["test_shape"]) == ([N_TRAIN, 784, 1], [N_TEST, 784, 1])
    table = CliRunner().invoke(main, ["data", "info", "--data-dir", str(tmp_path)], obj={"registry": tester.registry})
    assert f"{N_TRAIN}x784x1" in table.output and f"{N_TEST}x784x1" in table.output, table.output


def test_data_info_and_fetch_answer_for_the_source(monkeypatch, tmp_path):
    fetched = []

    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            register(DatasetSpec("files", lambda ctx: tiny_dataset("files"),
                                 locate=lambda ctx: {"status": "ok"} if fetched else {
                                     "status": "missing", "directory": str(ctx.data_dir / "files"),
                                     "missing": ["files.npz"]},
                                 fetch=lambda ctx: fetched.append(ctx.data_dir)))
            register(DatasetSpec("bare", lambda ctx: tiny_dataset("bare")))
            register(DatasetSpec.derive("files-cols", "files", columns, identity="columns/v1"))
            register(DatasetSpec.derive("bare-cols", "bare", columns, identity="columns/v1"))

    from helpers import fake_entry_point

    import seqbench.plugins as plugins_mod

    monkeypatch.setattr(plugins_mod, "_entry_points", lambda: [fake_entry_point("d", "seqbench-d", "1", Plugin)])
    monkeypatch.setenv("SEQBENCH_LOAD_PLUGINS", "seqbench-d")
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    info = CliRunner().invoke(main, ["data", "info", "--json", "--data-dir", str(tmp_path)])
    by_name = {d["name"]: d for d in json.loads(info.output)["datasets"]}
    assert by_name["files-cols"]["status"] == "missing" and by_name["files-cols"]["derived_from"] == "files"
    table = CliRunner().invoke(main, ["data", "info", "--data-dir", str(tmp_path)]).output
    assert f"files-cols: missing files.npz; run `seqbench data fetch files-cols --data-dir {tmp_path}`" in table
    assert CliRunner().invoke(main, ["data", "fetch", "files-cols", "--data-dir", str(tmp_path)]).exit_code == 0
    assert fetched == [tmp_path]
    bare = CliRunner().invoke(main, ["data", "fetch", "bare-cols", "--data-dir", str(tmp_path)])
    assert bare.exit_code == 1 and "dataset 'bare-cols' derives from 'bare', which has no fetcher" in bare.output
    everything = CliRunner().invoke(main, ["data", "fetch", "all", "--data-dir", str(tmp_path)])
    assert everything.exit_code == 0 and fetched == [tmp_path, tmp_path]  # the source once, not again for the derived


def test_data_info_gives_the_shapes_of_what_a_run_would_load(tmp_path):
    """Per-sample transforms are sized from one sample a split, whole-dataset ones in full: both
    agree with the dataset a run loads."""
    source = tiny_dataset("src")

    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            register(DatasetSpec("src", lambda ctx: source, locate=lambda ctx: {"status": "ok"}))
            register(
                DatasetSpec.derive("src-perm", "src", pixels, identity="pixels/v1", params={"permutation_seed": 7})
            )
            register(DatasetSpec.derive("src-2", "src", first_two_classes, identity="classes01/v1", whole=True))

    tester = PluginTester(("p", Plugin()), tmp_path=tmp_path)
    ctx = LoadContext(tmp_path, download=False, datasets=tester.registry.datasets)
    for name in ("src-perm", "src-2"):
        where, loaded = tester.registry.datasets[name].locate(ctx), ctx.load(name)
        assert (where["train_shape"], where["test_shape"]) == (list(loaded.train_x.shape), list(loaded.test_x.shape))
    assert ctx.load("src-2").train_x.shape[0] < source.train_x.shape[0]  # the whole transform changed the count
