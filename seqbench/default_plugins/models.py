"""Built-in models: the from-scratch RNN, LSTM and GRU on NumPy (``-cpu``) and CuPy (``-gpu``), registered
with the hyperparameters of :mod:`seqbench.builtin_models`."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from seqbench.builtin_models import BACKENDS, CELLS, defaults_of, model_params
from seqbench.hookspecs import hookimpl
from seqbench.hyperparams import check_values
from seqbench.types import DatasetInfo, Model, ModelSpec


def _build(cell: str, backend: str):
    def build(info: DatasetInfo, params: Mapping[str, Any]) -> Model:
        import importlib

        from seqbench.models.recurrent import BPTT_MB, RecurrentClassifier

        check_values(params, {p.name: p for p in model_params(backend == "cupy")})
        module, cls = CELLS[cell]
        return RecurrentClassifier(
            getattr(importlib.import_module(module), cls),
            info.n_features,
            info.num_classes,
            hidden=int(params["hidden"]),
            seed=int(params["seed"]),
            optimizer=str(params["optimizer"]),
            lr=float(params["lr"]),
            momentum=float(params["momentum"]),
            clip=float(params["clip"]),
            lr_decay=float(params["lr_decay"]),
            lr_schedule=str(params.get("lr_schedule", "exp")),
            epochs=int(params["epochs"]),
            backend=backend,
            threads=int(params["threads"]),
            cuda_graph=bool(params.get("cuda_graph", False)),
            readout=str(params.get("readout", "last")),
            bptt_mb=float(params.get("bptt_mb", BPTT_MB)),
        )

    return build


def _available() -> str | None:
    return None


def _cupy_unavailable() -> str | None:
    from seqbench.models.backend import cupy_unavailable

    return cupy_unavailable()


@hookimpl
def register_models(register):
    for cell in CELLS:
        for suffix, backend in BACKENDS.items():
            register(
                ModelSpec(
                    name=f"{cell}-{suffix}",
                    build=_build(cell, backend),
                    defaults=partial(defaults_of, f"{cell}-{suffix}"),
                    unavailable=_cupy_unavailable if backend == "cupy" else _available,
                    description=f"from-scratch {cell.upper()} with BPTT on "
                    f"{'CuPy (GPU)' if backend == 'cupy' else 'NumPy (CPU)'}",
                    params=model_params(backend == "cupy"),
                )
            )
