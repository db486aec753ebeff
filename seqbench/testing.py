"""Testing a seqbench plugin, as pytest's ``pytester`` tests a pytest plugin.

:class:`PluginTester` loads the plugin objects you give it (modules, or objects with
``@seqbench.hookimpl`` methods) with the built-ins and a tiny synthetic dataset, ``tiny``, and
nothing installed: an installed copy of the same plugin, or any other distribution, is not
loaded, whatever ``SEQBENCH_LOAD_PLUGINS`` and ``SEQBENCH_BLOCK_PLUGINS`` say. A plugin that
fails to load or register raises :class:`seqbench.plugins.PluginError`.

.. code-block:: python

    from seqbench.testing import PluginTester

    def test_my_model(tmp_path):
        tester = PluginTester(my_plugin, tmp_path=tmp_path)
        trained = tester.train("my-model", steps=5)       # a few minibatches on ``tiny``
        assert trained.losses[-1] < trained.losses[0]
        pair = tester.run_pair("my-model", "tiny")        # the whole protocol, into tmp_path
        assert pair["status"] == "ok", pair["reason"]
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from seqbench.hookspecs import hookimpl
from seqbench.plugins import PluginError, Registry, load_plugins
from seqbench.types import Dataset, DatasetSpec, LoadContext, Model

#: The name of the synthetic dataset every :class:`PluginTester` registers.
TINY = "tiny"


def tiny_dataset(name: str = TINY, *, n_train: int = 240, n_test: int = 60, seq_len: int = 6,
                 n_features: int = 4, num_classes: int = 3, seed: int = 0) -> Dataset:
    """A small learnable dataset: ``(N, seq_len, n_features)`` float32 noise in which the
    feature ``label % n_features`` is raised by 1.5 at every step; labels in ``[0, num_classes)``."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, num_classes, n)
        x = rng.normal(0.0, 0.5, (n, seq_len, n_features)).astype(np.float32)
        x[np.arange(n), :, y % n_features] += 1.5
        return x, y.astype(np.int64)

    (train_x, train_y), (test_x, test_y) = split(n_train), split(n_test)
    digest = hashlib.sha256(b"".join(a.tobytes() for a in (train_x, train_y, test_x, test_y))).hexdigest()
    return Dataset(name, train_x, train_y, test_x, test_y, tuple(f"class{i}" for i in range(num_classes)),
                   f"sha256:{digest}")


def _given(dataset: Dataset, ctx: LoadContext) -> Dataset:
    return dataset


class _Datasets:
    """The plugin that registers the tester's datasets."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self.datasets = datasets

    @hookimpl
    def register_datasets(self, register: Any) -> None:
        for ds in self.datasets:
            register(DatasetSpec(ds.name, partial(_given, ds), "synthetic (seqbench.testing)"))


@dataclass
class Trained:
    """A model after :meth:`PluginTester.train`: its hyperparameters, the loss of each step, and
    its checked test-split probabilities ``(N, C)``."""

    model: Model
    params: dict[str, Any]
    losses: list[float]
    proba: np.ndarray


class PluginTester:
    """The given plugins, isolated from installed distributions, with helpers to exercise them.

    ``plugins`` are plugin objects, or ``(name, plugin)`` pairs (the name is what results and
    messages call the plugin; by default the module's or class's name). ``builtins=False``
    leaves out the built-in datasets, models and metrics. ``datasets`` are extra in-memory
    datasets to register beside :func:`tiny_dataset`. ``tmp_path`` is where runs are written
    (default: a new temporary directory). ``data_dir`` is where registered datasets read their
    files (default: ``tmp_path/data``, empty): give your data directory to test on real data
    (``tester.load("mnist")``, ``tester.run_pair("my-model", "mnist", quick=True)``); nothing is
    downloaded.
    """

    def __init__(self, *plugins: object | tuple[str, object], builtins: bool = True,
                 datasets: Sequence[Dataset] = (), tmp_path: Path | None = None,
                 data_dir: Path | None = None) -> None:
        named = [p if isinstance(p, tuple) else (_plugin_name(p), p) for p in plugins]
        self.tmp_path = Path(tmp_path) if tmp_path is not None else Path(tempfile.mkdtemp(prefix="seqbench-test-"))
        self.data_dir = Path(data_dir) if data_dir is not None else self.tmp_path / "data"
        extra = [*named, ("seqbench.testing", _Datasets([tiny_dataset(), *datasets]))]
        try:
            self.registry: Registry = load_plugins(strict=True, extra=extra, installed=False, builtins=builtins)
        except PluginError as exc:
            if "given in extra= has the name" not in str(exc):
                raise
            raise PluginError(f"{exc}: pass it to PluginTester as (\"another-name\", plugin)") from None
        #: The directory of the latest :meth:`run_pair`.
        self.run_dir: Path | None = None
        self._runs = 0

    def load(self, dataset: str = TINY) -> Dataset:
        """A registered dataset, loaded as a run loads it (data from :attr:`data_dir`, no downloads)."""
        ctx = LoadContext(self.data_dir, download=False, datasets=self.registry.datasets)
        return ctx.load(dataset)

    def train(self, model: str, dataset: str | Dataset = TINY, *, steps: int = 5,
              overrides: Mapping[str, Any] | None = None, seed: int = 0) -> Trained:
        """Build the registered ``model`` for ``dataset`` with its defaults (and ``overrides``,
        values as ``--set`` would give them), take ``steps`` training steps on seeded minibatches
        of its ``batch_size``, and predict the test split. Raises AssertionError when a loss is not
        finite, and the harness's error when the probabilities are not ``(N, C)`` rows summing to 1."""
        from seqbench.planning import declared_params, resolve_params
        from seqbench.protocol import predict_labels

        ds = dataset if isinstance(dataset, Dataset) else self.load(dataset)
        spec = self.registry.models[model]
        texts = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (overrides or {}).items()}
        params = {**resolve_params(dict(spec.defaults_for(ds.info)), texts, quick=False, model=model,
                                   declared=declared_params(spec.params)), "seed": seed}
        built = spec.build(ds.info, params)
        rng = np.random.default_rng(seed)
        size = min(int(params["batch_size"]), len(ds.train_y))
        losses = []
        for step in range(steps):
            rows = rng.choice(len(ds.train_y), size, replace=False)
            loss = float(built.train_batch(built.to_device(ds.train_x[rows]), built.to_device(ds.train_y[rows])))
            assert np.isfinite(loss), f"{model}: loss {loss} at step {step + 1}"
            losses.append(loss)
        built.synchronize()
        proba, _ = predict_labels(built, built.to_device(ds.test_x), ds.info.num_classes,
                                  self.registry.plugin_of("model", model))
        return Trained(built, params, losses, proba)

    def run_pair(self, model: str, dataset: str = TINY, *, seed: int = 0,
                 overrides: Mapping[str, Any] | None = None, quick: bool = False) -> dict[str, Any]:
        """Run ``model`` on ``dataset`` for one seed end to end under the protocol, as
        ``seqbench run`` does, into a new directory under ``tmp_path`` (no plots, no downloads),
        and return the pair's record (``record["status"]``, ``["reason"]``, ``["metrics"]``, ...).
        :attr:`run_dir` is then that directory: ``results.json``, the tables and ``pairs/``."""
        from seqbench.planning import RunRequest
        from seqbench.runner import run_benchmark

        self._runs += 1
        out = self.tmp_path / f"run{self._runs}"
        texts = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (overrides or {}).items()}
        request = RunRequest([model], [dataset], [seed], out, self.data_dir, overrides=texts,
                             quick=quick, download=False, plots=False, command="seqbench.testing")
        (record,) = run_benchmark(self.registry, request)["pairs"]
        self.run_dir = out
        return record


def _plugin_name(plugin: object) -> str:
    name = getattr(plugin, "__name__", None) or type(plugin).__name__
    return name.rsplit(".", 1)[-1]
