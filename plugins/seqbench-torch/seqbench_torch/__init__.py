"""seqbench-torch: PyTorch reference models ``torch-rnn``, ``torch-lstm`` and ``torch-gru``.

They run under the harness's protocol beside the from-scratch models, with the same
hyperparameters, so a results table compares the two in accuracy and in time. torch is
imported only when a model is built or asked whether it can run: without torch the models are
listed as unavailable (and skipped by a run) instead of breaking the plugin.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

from seqbench import DatasetInfo, Model, ModelSpec, defaults_of, hookimpl, params_of

#: seqbench cell name -> torch.nn class name.
CELLS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}

#: The options this plugin implements, besides the harness's protocol keys.
OPTIONS = ("hidden", "optimizer", "lr", "momentum", "clip", "lr_decay", "lr_schedule", "readout")
PROTOCOL_KEYS = ("epochs", "batch_size", "patience", "val_fraction")


def defaults(cell: str, info: DatasetInfo) -> dict[str, Any]:
    """The from-scratch CPU model's defaults for this cell and dataset (``seqbench.defaults_of``),
    restricted to the options implemented here: both sides of a comparison train with the same
    hyperparameters."""
    return {k: v for k, v in defaults_of(f"{cell}-cpu", info).items() if k in OPTIONS or k in PROTOCOL_KEYS}


#: The built-in models' declarations of the options implemented here (same ranges and search spaces).
PARAMS = tuple(p for p in params_of("rnn-cpu") if p.name in OPTIONS)


def unavailable() -> str | None:
    """Why torch cannot run here, or ``None`` (found without importing it: that takes seconds)."""
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed; install torch, then seqbench-torch"
    return None


def _builder(cell: str) -> Callable[[DatasetInfo, Mapping[str, Any]], Model]:
    def build(info: DatasetInfo, params: Mapping[str, Any]) -> Model:
        from seqbench_torch.model import TorchRecurrentClassifier

        return TorchRecurrentClassifier(
            cell,
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
            readout=str(params.get("readout", "last")),
        )

    return build


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    for cell, torch_name in CELLS.items():
        register(
            ModelSpec(
                name=f"torch-{cell}",
                build=_builder(cell),
                defaults=lambda info, _cell=cell: defaults(_cell, info),
                unavailable=unavailable,
                description=f"PyTorch nn.{torch_name} + linear head on the last step or the steps' mean "
                "(cuDNN on CUDA, else CPU)",
                params=PARAMS,
            )
        )
