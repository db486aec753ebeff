"""Built-in datasets: MNIST, Fashion-MNIST and CIFAR-10 as row sequences, and their
pixel-by-pixel versions (sMNIST, psMNIST, sCIFAR, sequential Fashion-MNIST) derived from them,
and MNIST with noise, a shift or its pixels permuted, for evaluating saved models.

Registered like any plugin's. Nothing heavy is imported until a dataset is used; the work is
done by :mod:`seqbench.datasets`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from seqbench.hookspecs import hookimpl
from seqbench.types import Dataset, DatasetSpec, LoadContext


def _load(name: str, ctx: LoadContext) -> Dataset:
    from seqbench.datasets import loader

    return loader.load(name, ctx)


def _locate(name: str, ctx: LoadContext) -> Mapping[str, Any]:
    from seqbench.datasets import loader

    return loader.locate(name, ctx)


def _check(name: str, ctx: LoadContext) -> None:
    from seqbench.datasets import loader

    loader.check(name, ctx)


def _fetch(name: str, ctx: LoadContext) -> None:
    from seqbench.datasets import loader

    loader.fetch(name, ctx)


@hookimpl
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    from seqbench.datasets.catalog import DATASETS

    for name, defn in DATASETS.items():
        register(
            DatasetSpec(
                name,
                load=partial(_load, name),
                description=defn.description,
                locate=partial(_locate, name),
                fetch=partial(_fetch, name),
                preprocessing=defn.preprocessing,
                check=partial(_check, name),
                provenance=defn.provenance,
            )
        )
    from seqbench.datasets import perturbed, sequential

    for spec in [*sequential.specs(), *perturbed.specs()]:
        register(spec)
