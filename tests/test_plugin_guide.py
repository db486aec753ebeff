"""The plugin author's guide, docs/plugins.md, works as written: its plugins train, its test passes, its
pyproject builds and installs, and its ``seqbench`` commands run against the installed distribution."""

from __future__ import annotations

import importlib.util
import inspect
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from seqbench import LoadContext, Preprocessing
from seqbench.cli import main
from seqbench.plugins import load_plugins
from seqbench.runner import RunRequest, run_benchmark

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
TEXT = GUIDE.read_text()
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", TEXT, re.S | re.M)
FILES = dict(re.findall(r"^<!-- file: (\S+) -->\n```\w+\n(.*?)^```", TEXT, re.S | re.M))
ENV_ASSIGNMENT = re.compile(r"[A-Z_]+=\S*")


@pytest.fixture
def guide(monkeypatch, tmp_path) -> dict[str, types.ModuleType]:
    """The guide's Python files, written out and imported (and forgotten after the test)."""
    src = tmp_path / "src"
    src.mkdir()
    modules = {}
    for name, text in FILES.items():
        (src / name).write_text(text)
    monkeypatch.syspath_prepend(str(src))
    for name in FILES:
        if name.endswith(".py"):
            spec = importlib.util.spec_from_file_location(name[:-3], src / name)
            module = importlib.util.module_from_spec(spec)
            monkeypatch.setitem(sys.modules, spec.name, module)
            spec.loader.exec_module(module)
            modules[spec.name] = module
    return modules


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The guide's distribution built from its pyproject.toml and installed by pip into a directory."""
    pytest.importorskip("setuptools", reason="building the guide's distribution offline needs setuptools")
    project, site = tmp_path_factory.mktemp("project"), tmp_path_factory.mktemp("site")
    for name, text in FILES.items():
        (project / name).write_text(text)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(site), str(project)],
        check=True, capture_output=True, timeout=300,
    )
    return site


def test_every_python_snippet_is_a_file_the_tests_run():
    python = [body for lang, body in BLOCKS if lang == "python"]
    assert len(python) == 6 and all(body in FILES.values() for body in python)
    assert {"seqbench_meanpool.py", "seqbench_blobs.py", "seqbench_columns.py", "seqbench_top2.py", "pyproject.toml",
            "test_seqbench_mine.py"} <= set(FILES)


def test_model_dataset_and_metric_plugins_train_under_the_protocol(guide, tmp_path):
    registry = load_plugins(extra=[(n, guide[n]) for n in ("seqbench_meanpool", "seqbench_blobs", "seqbench_top2")])
    request = RunRequest(models=["meanpool"], datasets=["blobs"], seeds=[0], out_dir=tmp_path / "run",
                         data_dir=tmp_path, plots=False)
    (pair,) = run_benchmark(registry, request)["pairs"]
    assert pair["status"] == "ok", pair["reason"]
    assert pair["params"] == {"lr": 0.5, "epochs": 10, "batch_size": 32, "patience": 3, "val_fraction": 0.1, "seed": 0}
    accuracy = pair["metrics"]["accuracy"]["accuracy"]
    assert accuracy > 0.9 and pair["metrics"]["top2"]["top2"] >= accuracy
    assert len(pair["metrics"]["calibration"]["histogram"]) == 10
    assert pair["dataset_info"]["fingerprint"].startswith("sha256:")
    summary = (tmp_path / "run" / "summary.csv").read_text().splitlines()[0].split(",")
    assert {"top2_mean", "calibration.gap_mean", "calibration.nll_mean"} <= set(summary)
    assert not [c for c in summary if "histogram" in c]


def test_derived_datasets_build_on_mnist(guide, monkeypatch, tmp_path):
    from datasets_helpers import N_TEST, N_TRAIN, use_small, write_mnist

    from seqbench.testing import PluginTester
    from seqbench.types import derived_fingerprint

    use_small(monkeypatch, "mnist", (N_TRAIN, N_TEST))
    write_mnist(tmp_path / "data" / "mnist")
    tester = PluginTester(guide["seqbench_columns"], tmp_path=tmp_path)
    mnist, cols, perm = (tester.load(n) for n in ("mnist", "mnist-columns", "mnist-permuted"))
    assert np.array_equal(cols.train_x, mnist.train_x.transpose(0, 2, 1)) and perm.test_x.shape == (N_TEST, 784, 1)
    assert sorted(perm.test_x[0, :, 0]) == sorted(mnist.test_x[0].ravel())
    assert perm.fingerprint == derived_fingerprint(mnist.fingerprint, "permuted-pixels/v1", {"seed": 0})
    assert tester.registry.datasets["mnist-permuted"].preprocessing == Preprocessing()
    assert not tester.registry.datasets["mnist-permuted"].in_all and tester.registry.datasets["mnist-columns"].in_all


def test_file_dataset_is_skipped_when_missing_and_loads_when_present(guide, tmp_path):
    npz, blobs = guide["seqbench_npzdata"], guide["seqbench_blobs"]
    registry = load_plugins(extra=[("meanpool", guide["seqbench_meanpool"]), ("npzdata", npz)])
    request = RunRequest(models=["meanpool"], datasets=["npzdata"], seeds=[0], out_dir=tmp_path / "run",
                         data_dir=tmp_path / "data", plots=False)
    (pair,) = run_benchmark(registry, request)["pairs"]
    assert pair["status"] == "skipped" and "npzdata.npz is missing" in pair["reason"]

    ctx = LoadContext(data_dir=tmp_path / "data")
    where = npz.locate(ctx)
    assert where["status"] == "missing" and where["missing"] == ["npzdata.npz"]
    ds = blobs.load(ctx)
    path = Path(where["directory"]) / "npzdata.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, train_x=ds.train_x, train_y=ds.train_y, test_x=ds.test_x, test_y=ds.test_y,
             class_names=np.array(ds.class_names))
    request.out_dir = tmp_path / "run2"
    (pair,) = run_benchmark(registry, request)["pairs"]
    assert pair["status"] == "ok" and pair["metrics"]["accuracy"]["accuracy"] > 0.9
    assert pair["dataset_info"]["class_names"] == list(ds.class_names)
    assert npz.locate(ctx)["status"] == "ok"


def test_the_guides_own_tests_pass(guide, monkeypatch, tmp_path):
    tests = guide["test_seqbench_mine"]
    fixtures = {"monkeypatch": monkeypatch, "tmp_path": tmp_path}
    names = [n for n in dir(tests) if n.startswith("test_")]
    assert len(names) == 3
    for name in names:
        fn = getattr(tests, name)
        (tmp_path / name).mkdir()
        fn(**{p: fixtures[p] if p != "tmp_path" else tmp_path / name for p in inspect.signature(fn).parameters})


def _commands() -> list[tuple[dict[str, str], list[str]]]:
    """The ``seqbench`` command lines of the guide's bash blocks, with their environment prefixes."""
    out = []
    for lang, body in BLOCKS:
        if lang != "bash":
            continue
        for line in body.splitlines():
            words = shlex.split(line)
            env = {}
            while words and ENV_ASSIGNMENT.fullmatch(words[0]):
                key, _, value = words.pop(0).partition("=")
                env[key] = value
            if words[0] == "seqbench":
                out.append((env, words[1:]))
            else:
                assert line == "pip install -e .", f"a command the test does not run: {line}"
    return out


@pytest.mark.slow
def test_the_guides_commands_work_with_the_distribution_installed(site, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEQBENCH_LOAD_PLUGINS", "seqbench-mine")  # whatever else is installed here
    commands = _commands()
    assert len(commands) == 10
    for env, args in commands:
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        assert "warning" not in result.output, (args, result.output)
        if args[0] == "run":
            assert "test accuracy" in result.output and "meanpool" in result.output
        if args[:2] == ["list", "models"]:
            assert any(line.startswith("meanpool ") for line in result.output.splitlines())
    (table,) = [body for lang, body in BLOCKS if lang == "text"]
    assert CliRunner().invoke(main, ["plugins"]).output == table
