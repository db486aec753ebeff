"""The pixel-by-pixel tasks (issue 16): sMNIST, psMNIST, sCIFAR and sequential Fashion-MNIST,
derived from the built-in row datasets; their shapes and values against the source images."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from datasets_helpers import N_TEST, N_TRAIN, cifar_members, mnist_arrays, use_small, write_cifar_folder, write_mnist
from gradcheck import max_relative_error
from helpers import MeanLogReg

from seqbench import DatasetSpec, LoadContext, ModelSpec, Preprocessing, hookimpl
from seqbench.datasets import sequential
from seqbench.datasets.catalog import IDX_FILES
from seqbench.models.backend import cupy_unavailable
from seqbench.models.gru import GRU
from seqbench.models.lstm import LSTM
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.models.rnn import RNN
from seqbench.preprocess import channel_stats
from seqbench.references import for_datasets, published
from seqbench.testing import PluginTester
from seqbench.types import derived_fingerprint


@pytest.fixture
def ctx(monkeypatch, tmp_path):
    """A registry with the built-in datasets over small synthetic MNIST and CIFAR-10 files."""
    use_small(monkeypatch, "mnist", (N_TRAIN, N_TEST))
    write_mnist(tmp_path / "mnist")
    use_small(monkeypatch, "cifar10", (5 * 4, 4))
    write_cifar_folder(tmp_path / "cifar10", cifar_members())
    return LoadContext(tmp_path, download=False, datasets=PluginTester(tmp_path=tmp_path).registry.datasets)


def test_smnist_is_mnist_one_pixel_a_step_row_major(ctx):
    images = mnist_arrays()[IDX_FILES[0]]  # the raw (N, 28, 28) uint8 images written to disk
    seq = ctx.load("smnist")
    assert seq.train_x.shape == (N_TRAIN, 784, 1) and seq.test_x.shape == (N_TEST, 784, 1)
    assert seq.train_x.dtype == np.float32 and seq.channels == 1
    r, c = 5, 17  # step 28 r + c is pixel (r, c)
    assert np.array_equal(seq.train_x[:, 28 * r + c, 0], images[:, r, c] / np.float32(255))
    assert np.array_equal(seq.train_x[:, :, 0] * 255, images.reshape(N_TRAIN, 784).astype(np.float32))
    mnist = ctx.load("mnist")
    assert np.array_equal(seq.train_y, mnist.train_y) and seq.class_names == mnist.class_names


def test_psmnist_is_smnist_in_the_documented_fixed_order(ctx):
    order = np.random.default_rng(sequential.PERMUTATION_SEED).permutation(784)
    assert sorted(order.tolist()) == list(range(784)) and not np.array_equal(order, np.arange(784))
    smnist, psmnist = ctx.load("smnist"), ctx.load("psmnist")
    assert psmnist.train_x.shape == (N_TRAIN, 784, 1)
    assert np.array_equal(psmnist.train_x, smnist.train_x[:, order]) and np.array_equal(
        psmnist.test_x, smnist.test_x[:, order]
    )
    assert np.array_equal(psmnist.test_y, smnist.test_y)
    assert psmnist.meta["derived_from"]["params"] == {"permutation_seed": sequential.PERMUTATION_SEED}


def test_the_permutation_is_the_same_in_another_process():
    code = ("from seqbench.datasets.sequential import permutation; "
            "print(','.join(map(str, permutation(784))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert [int(v) for v in out.strip().split(",")] == sequential.permutation(784).tolist()
    # NumPy's Generator stream is stable across versions and machines: the documented order begins so
    assert sequential.permutation(784)[:6].tolist() == np.random.default_rng(0).permutation(784)[:6].tolist()


def test_the_fingerprint_changes_with_the_permutation_seed(ctx):
    mnist = ctx.load("mnist").fingerprint
    fingerprints = {name: ctx.load(name).fingerprint for name in ("smnist", "psmnist")}
    assert fingerprints["psmnist"] == derived_fingerprint(
        mnist, "pixels/v1", {"permutation_seed": sequential.PERMUTATION_SEED}
    )
    assert len({mnist, *fingerprints.values()}) == 3
    other = DatasetSpec.derive(
        "psmnist-1", "mnist", sequential.pixels, identity="pixels/v1", params={"permutation_seed": 1}
    )
    seq1 = other.load(ctx)
    assert seq1.fingerprint not in fingerprints.values()
    assert not np.array_equal(seq1.train_x, ctx.load("psmnist").train_x)


def test_scifar10_is_one_pixel_a_step_with_its_three_colours(ctx):
    batch = pickle.loads(cifar_members()["data_batch_1"], encoding="bytes")  # what the fixture wrote
    raw = batch[b"data"]  # (n, 3072) uint8: the R plane (1024), then G, then B, each row-major
    seq = ctx.load("scifar10")
    assert seq.train_x.shape == (20, 1024, 3) and seq.test_x.shape == (4, 1024, 3) and seq.channels == 3
    first = seq.train_x[: len(raw)]  # the loader keeps the batches' order
    expected = raw.reshape(len(raw), 3, 1024).transpose(0, 2, 1) / np.float32(255)
    assert np.array_equal(first, expected.astype(np.float32))
    r, c = 3, 30  # step 32 r + c is pixel (r, c); its values are that pixel's R, G, B
    step = 32 * r + c
    assert np.array_equal(first[:, step] * 255, raw[:, [step, 1024 + step, 2048 + step]].astype(np.float32))
    # the same values as the row layout's pixel: 32 rows of 96 values, the 3 colours side by side
    rows = ctx.load("cifar10").train_x
    assert np.array_equal(seq.train_x[:, step], rows[:, r, 3 * c : 3 * c + 3])


def test_scifar10_declares_standardisation_only_with_the_sources_statistics(ctx):
    specs = ctx.datasets
    assert specs["cifar10"].preprocessing.hflip and specs["cifar10"].preprocessing.shift == 2
    # no row flips or shifts of a pixel sequence
    assert specs["scifar10"].preprocessing == Preprocessing(standardize=True)
    assert specs["smnist"].preprocessing == specs["psmnist"].preprocessing == Preprocessing()
    rows, seq = ctx.load("cifar10"), ctx.load("scifar10")
    for a, b in zip(channel_stats(rows.train_x, 3), channel_stats(seq.train_x, 3), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_list_datasets_says_the_order_and_layout():
    from click.testing import CliRunner

    from seqbench.cli import main

    out = CliRunner().invoke(main, ["list", "datasets"]).output
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert "row-major over the 32x32 pixels, 1024 steps x 3 values" in lines["scifar10"]
    assert f"default_rng({sequential.PERMUTATION_SEED}).permutation(784)" in lines["psmnist"]
    assert "784 steps x 1 value" in lines["smnist"] and "fashion-smnist" in lines
    assert all(name in lines for name in ("mnist", "fashion-mnist", "cifar10"))


# -- the cells at long sequences ---------------------------------------------------------------


CELLS = pytest.mark.parametrize("cell", [RNN, LSTM, GRU], ids=["rnn", "lstm", "gru"])


def long_batch(T=64, B=4, F=2, C=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, T, F)), rng.integers(0, C, B)


def in_chunks(model, steps: int, B: int, H: int, segment: int = 3):
    """Make every cell of ``model`` run sequences in chunks of ``steps`` steps, and go back
    through a chunk in segments of ``segment`` steps."""
    for cell in model.cells:
        cell.cache_bytes = 0
        cell.chunk_bytes = steps * B * H * cell.widths * cell.dtype.itemsize
        cell.grad_bytes = segment * B * H * cell.grad_widths * cell.dtype.itemsize
    return model


@pytest.mark.slow
@CELLS
@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunks"])
@pytest.mark.parametrize("readout", ["last", "mean"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "numpy"])
def test_gradients_at_64_steps_match_finite_differences(cell, chunked, readout, fused):
    x, y = long_batch(B=3, F=1)
    model = RecurrentClassifier(cell, 1, 3, hidden=3, seed=1, dtype="float64", readout=readout, fused=fused)
    if chunked:
        in_chunks(model, 10, 3, 3)  # 64 steps: a chunk of 4, then six of 10, each in segments of 3
        assert model.cells[0].chunk_len(64, 3, 3) == 10 and model.cells[0].grad_len(10, 3, 3) == 3
    else:
        assert model.cells[0].chunk_len(64, 3, 3) == 64
    errors = max_relative_error(model, x, y)
    assert max(errors.values()) < 1e-6, errors


@CELLS
@pytest.mark.parametrize("readout", ["last", "mean"])
def test_chunks_give_the_gradients_and_predictions_of_the_whole_sequence(cell, readout):
    x, y = long_batch(T=97, B=8, F=3, C=4, seed=2)
    whole = RecurrentClassifier(cell, 3, 4, hidden=6, seed=3, dtype="float64", readout=readout)
    chunks = in_chunks(RecurrentClassifier(cell, 3, 4, hidden=6, seed=3, dtype="float64", readout=readout), 16, 8, 6)
    (lw, gw), (lc, gc) = whole.loss_and_grads(x, y), chunks.loss_and_grads(x, y)
    assert lw == pytest.approx(lc, rel=1e-12)
    for k in gw:
        np.testing.assert_allclose(gc[k], gw[k], rtol=1e-10, atol=1e-13, err_msg=k)
    np.testing.assert_allclose(chunks.predict_proba(x), whole.predict_proba(x), rtol=1e-12)


@CELLS
def test_the_bptt_workspace_is_bounded_at_long_sequences(cell):
    """A step at T=1,024 in chunks keeps one state a chunk, not every step's buffers."""
    import tracemalloc

    T, B, F, H = 1024, 8, 1, 16
    x = np.random.default_rng(0).random((B, T, F)).astype(np.float32)
    y = np.arange(B) % 10
    model = RecurrentClassifier(cell, F, 10, hidden=H, bptt_mb=0.0625)  # 64 KiB: chunks
    per_step = B * H * model.cell.widths * 4
    K = model.cell.chunk_len(T, B, H)
    assert T * per_step > 2**16 and K < T
    model.train_batch(x, y)  # the workspace is made by the first step
    tracemalloc.start()
    model.train_batch(x, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    whole = T * per_step
    assert peak < whole / 4, (peak, whole)  # a second step allocates no per-step buffers
    held = sum(b.nbytes for b in model.cell.ws._buffers.values())
    assert held < whole / 4, (held, whole)


def test_bptt_mb_is_the_models_budget_and_a_hyperparameter():
    model = RecurrentClassifier(GRU, 1, 10, hidden=256, threads=1)
    assert model.hyperparameters()["bptt_mb"] == 1024.0
    assert model.cell.chunk_len(28, 128, 256) == 28  # the row tasks: whole sequences, as before
    assert model.cell.chunk_len(784, 128, 256) == 784  # sMNIST at batch 128: whole sequences too
    assert model.cell.chunk_len(2048, 128, 256) < 2048  # past the budget: chunks


@pytest.mark.parametrize("name", ["rnn-cpu", "lstm-cpu", "gru-cpu"])
def test_pixel_tasks_have_their_own_defaults(name):
    from seqbench import defaults_of

    rows, pixels = defaults_of(name, "mnist"), defaults_of(name, "smnist")
    assert pixels["hidden"] == 128 and pixels["clip"] == 1.0 and "bptt_mb" in pixels and "bptt_mb" not in rows
    assert defaults_of(name, "psmnist") == defaults_of(name, "scifar10") == pixels
    assert defaults_of(name, "cifar10") != pixels


# -- published results beside the run's rows ---------------------------------------------------


def test_the_published_anchors_are_there_with_their_sources():
    s4 = {p.dataset: p.accuracy for p in published() if p.model == "S4"}
    assert s4 == {"smnist": 99.63, "psmnist": 98.70, "scifar10": 91.13}
    for p in published():
        assert p.dataset in ("smnist", "psmnist", "scifar10", "fashion-smnist")
        assert (
            0 < p.accuracy <= 100 and 2010 < p.year < 2030 and p.table.startswith("Table ") and str(p.year) in p.source
        )
    assert [p.dataset for p in for_datasets(["scifar10", "mnist"])] == ["scifar10", "scifar10"]
    assert for_datasets(["mnist", "cifar10"]) == []


class Mean:
    """A fast model, to run a pixel task end to end."""

    @hookimpl
    def register_models(self, register):
        register(ModelSpec("mean", lambda info, p: MeanLogReg(info.n_features, info.num_classes, 0.5, p["seed"]),
                           lambda info: {"epochs": 1, "batch_size": 32}))


def test_published_rows_are_shown_marked_for_the_runs_datasets_and_can_be_turned_off(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from seqbench.cli import main

    use_small(monkeypatch, "mnist", (N_TRAIN, N_TEST))
    write_mnist(tmp_path / "data" / "mnist")
    tester = PluginTester(Mean(), tmp_path=tmp_path)
    assert tester.run_pair("mean", "smnist")["status"] == "ok"
    run = tester.run_dir
    summary, report = (run / "summary.md").read_text(), (run / "report.html").read_text()
    assert "## Published results (published, not run here)" in summary
    rows = [line for line in summary.splitlines() if "| published, not run here |" in line]
    assert len(rows) == 2 and all("| smnist " in r for r in rows)  # S4 and LSTM; not psmnist's, not in the run
    assert any("| S4 " in r and "99.63" in r and "ICLR 2022" in r and "Table 6" in r for r in rows)
    assert "99.63" not in (run / "summary.csv").read_text()  # the machine table holds the run's own rows only
    assert report.count('<tr class="published">') == 2 and "published, not run here" in report
    redrawn = CliRunner().invoke(main, ["report", str(run), "--no-published", "--no-plots"])
    assert redrawn.exit_code == 0, redrawn.output
    assert "published" not in (run / "summary.md").read_text().lower()
    assert 'class="published"' not in (run / "report.html").read_text()


def test_a_graph_whose_first_launch_fails_falls_back_to_eager_once():
    """The CUDA-graph path at long sequences: a captured graph the device refuses to launch
    (too many nodes, out of resources) trains eagerly from then on, with one warning."""
    import warnings

    from test_backend import _FakeCupy, _summing_step

    from seqbench.models.backend.cuda_graph import CudaGraphStep

    cupy, log = _FakeCupy(), []
    capture_end = cupy.cuda.Stream  # wrap the fake's streams so that their graphs cannot launch

    class Refusing(capture_end):
        def end_capture(self):
            super().end_capture()
            return type("Graph", (), {"launch": lambda self: (_ for _ in ()).throw(RuntimeError("graph too large"))})()

    cupy.cuda.Stream = Refusing
    step = CudaGraphStep(cupy, _summing_step(cupy, log))
    x, y = np.ones((2, 3)), np.ones(2)
    assert float(step(x, y)) == 8.0
    with pytest.warns(UserWarning, match="runs eagerly: RuntimeError: graph too large"):
        assert float(step(2 * x, 2 * y)) == 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        assert float(step(3 * x, 3 * y)) == 24.0 and float(step(np.ones((1, 3)), np.ones(1))) == 4.0
    assert log == ["eager"] * 4 and step.graphs == {} and "graph too large" in step.failure


_NO_GPU = pytest.mark.skipif(cupy_unavailable() is not None, reason=f"no GPU: {cupy_unavailable()}")


@pytest.mark.gpu
@_NO_GPU
@CELLS
@pytest.mark.parametrize("readout", ["last", "mean"])
def test_chunks_on_the_gpu_match_the_cpu_and_replay_as_a_graph(cell, readout):
    """On CuPy, a long sequence in chunks gives the CPU's gradients (float64), and a captured
    training step of it replays the eager losses and parameters (float32)."""
    x, y = long_batch(T=150, B=8, F=3, C=4, seed=4)
    cpu = RecurrentClassifier(cell, 3, 4, hidden=8, seed=5, dtype="float64", readout=readout)
    gpu = in_chunks(RecurrentClassifier(cell, 3, 4, hidden=8, seed=5, dtype="float64", backend="cupy",
                                        readout=readout), 32, 8, 8)
    (lc, gc), (lg, gg) = cpu.loss_and_grads(x, y), gpu.loss_and_grads(gpu.to_device(x), gpu.to_device(y))
    assert float(lg) == pytest.approx(float(lc), rel=1e-10)
    for k in gc:
        np.testing.assert_allclose(gpu.backend.to_host(gg[k]), gc[k], rtol=1e-8, atol=1e-11, err_msg=k)
    kw = dict(hidden=16, seed=0, lr=1e-2, clip=1.0, backend="cupy", bptt_mb=0.01, readout=readout)
    eager, graphed = RecurrentClassifier(cell, 3, 4, **kw), RecurrentClassifier(cell, 3, 4, cuda_graph=True, **kw)
    assert eager.cell.chunk_len(150, 8, 16) < 150
    xs, ys = x.astype(np.float32), y
    for _ in range(4):
        le = eager.train_batch(eager.to_device(xs), eager.to_device(ys))
        lg = graphed.train_batch(graphed.to_device(xs), graphed.to_device(ys))
        assert float(lg) == pytest.approx(float(le), rel=1e-5, abs=1e-6)
    assert graphed._step.failure is None, graphed._step.failure
    for k, v in eager.state_dict().items():
        np.testing.assert_allclose(graphed.state_dict()[k], v, rtol=1e-5, atol=1e-6, err_msg=k)


def test_the_torch_plugin_evaluates_long_sequences_in_fewer_rows(torch_one_thread):
    """nn.GRU returns every step's output: at 784 steps a 4,096-row chunk would be (4096, 784, H)."""
    pytest.importorskip("torch")
    from seqbench_torch import model as torch_model

    model = torch_model.TorchRecurrentClassifier("gru", 1, 10, hidden=4, device="cpu")
    seen, forward = [], model.net.forward
    model.net.forward = lambda x: (seen.append(tuple(x.shape)), forward(x))[1]
    x = np.random.default_rng(0).random((400, 784, 1), dtype=np.float32)
    proba = model.predict_proba(x)
    rows = torch_model.PREDICT_STEPS // 784
    assert proba.shape == (400, 10) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert [s[0] for s in seen] == [rows, rows, 400 - 2 * rows] and all(
        s[0] * 784 <= torch_model.PREDICT_STEPS for s in seen
    )
    np.testing.assert_allclose(proba[:5], model.predict_proba(x[:5]), rtol=1e-5, atol=1e-6)
    seen.clear()
    model.predict_proba(np.zeros((10, 28, 1), np.float32))
    assert seen == [(10, 28, 1)]  # the row tasks: one chunk of up to 4,096 rows, as before


def test_a_run_that_names_no_dataset_leaves_the_pixel_tasks_out_and_a_named_one_runs(tmp_path):
    from seqbench.plugins import load_plugins
    from seqbench.runner import RunRequest, plan_run

    registry = load_plugins()
    pixel_tasks = {"smnist", "psmnist", "scifar10", "fashion-smnist"}
    assert all(not registry.datasets[d].in_all for d in pixel_tasks)

    def datasets(models, names):
        return set(plan_run(registry, RunRequest(models, names, [0], tmp_path / "run", tmp_path)).datasets)

    whole = datasets([], [])  # seqbench run --all
    assert {"mnist", "fashion-mnist", "cifar10"} <= whole and not whole & pixel_tasks
    assert not datasets(["rnn-cpu"], []) & pixel_tasks  # -m alone
    assert datasets(["rnn-cpu"], ["smnist"]) == {"smnist"}
    assert datasets(["rnn-cpu"], ["*mnist"]) == {"mnist", "smnist", "psmnist", "fashion-mnist", "fashion-smnist"}


def test_a_derived_dataset_can_stay_out_of_whole_runs(ctx):
    def negate(train_x, test_x):
        return -train_x, -test_x

    spec = DatasetSpec.derive("neg", "mnist", negate, identity="neg/v1", in_all=False)
    assert spec.in_all is False and DatasetSpec.derive("neg", "mnist", negate, identity="neg/v1").in_all
    assert spec.load(ctx).train_x.shape == ctx.load("mnist").train_x.shape
