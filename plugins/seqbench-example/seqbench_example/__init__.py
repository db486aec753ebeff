"""seqbench-example: registers ``logreg``, softmax regression on the flattened sequence.

This module is what the entry point loads, so it stays cheap: NumPy and the model code are
imported only when a run builds the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from seqbench import DatasetInfo, Model, ModelSpec, Param, hookimpl

#: The hyperparameters, declared once: checked before a run, searched by ``seqbench tune``.
PARAMS = (
    Param("lr", float, 0.1, "SGD learning rate", gt=0, search=(1e-3, 1.0), log=True),
    Param("momentum", float, 0.9, "SGD momentum", ge=0, lt=1, search=(0.0, 0.99)),
    Param("weight_decay", float, 1e-4, "L2 penalty on the weights", ge=0, search=(1e-6, 1e-2), log=True),
)

#: Hyperparameters per dataset ("*" for any other), chosen on the validation split.
DEFAULTS: dict[str, dict[str, Any]] = {
    "*": {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "epochs": 20, "batch_size": 128, "patience": 3},
    "cifar10": {"lr": 0.005},
}


def defaults(info: DatasetInfo) -> dict[str, Any]:
    return {**DEFAULTS["*"], **DEFAULTS.get(info.name, {})}


def build(info: DatasetInfo, params: Mapping[str, Any]) -> Model:
    from seqbench_example.logreg import SoftmaxRegression

    return SoftmaxRegression(
        info.seq_len * info.n_features,
        info.num_classes,
        lr=float(params["lr"]),
        momentum=float(params["momentum"]),
        weight_decay=float(params["weight_decay"]),
    )


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    register(
        ModelSpec(
            name="logreg",
            build=build,
            defaults=defaults,
            description="softmax regression on the flattened sequence (NumPy; a non-sequential baseline)",
            params=PARAMS,
        )
    )
