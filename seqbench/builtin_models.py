"""The built-in models' hyperparameters: their declarations and their defaults per cell and dataset,
chosen on validation. Core data, importing no NumPy: the built-in models plugin
(:mod:`seqbench.default_plugins.models`) registers the models with them, and a plugin whose model
trains with a built-in model's settings reads them here (:func:`defaults_of`, :func:`params_of`,
re-exported by :mod:`seqbench`).
"""

from __future__ import annotations

import os
from typing import Any

from seqbench.hyperparams import Param
from seqbench.models.optim import OPTIMIZERS
from seqbench.types import DatasetInfo


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """CPU cores this process may use, at most 4 (shards of a 128-sample batch stay >= 32 rows)."""
    return max(1, min(available_cores(), 4))


def model_params(gpu: bool) -> tuple[Param, ...]:
    """The hyperparameters of a built-in model; ``search`` is ``seqbench tune``'s default space.
    The choices of ``lr_schedule`` and ``readout`` are seqbench.models.recurrent's (a test checks),
    written out so that registering the models imports no NumPy."""
    return (
        Param("hidden", int, 128, "hidden units of the recurrent cell", ge=1, search=(32, 512), log=True),
        Param("optimizer", str, "adam", "optimiser", choices=tuple(OPTIMIZERS)),
        Param("lr", float, 2e-3, "initial learning rate", gt=0, search=(1e-4, 3e-2), log=True),
        Param("momentum", float, 0.9, "momentum of the momentum optimiser (Adam: its beta1 stays 0.9)", ge=0, lt=1),
        Param("clip", float, 1.0, "gradient norm clipped to this (0: no clipping)", ge=0, search=(0.25, 8.0), log=True),
        Param("lr_decay", float, 0.9, "learning rate factor per epoch (lr_schedule=exp)", gt=0, le=1),
        Param("lr_schedule", str, "exp", "learning rate schedule: exp (lr_decay a epoch) or cosine (to 0 over epochs)",
              choices=("exp", "cosine"), search=("exp", "cosine")),
        Param("readout", str, "last", "the head reads the last hidden state, or the mean over the steps",
              choices=("last", "mean"), search=("last", "mean")),
        Param("threads", int, default_threads(), "BLAS threads (CPU) of this process", ge=1, le=available_cores()),
        Param("bptt_mb", float, None, "MiB of per-step buffers kept for whole sequences (0: long ones in chunks)",
              ge=0),
        *((Param("cuda_graph", bool, True, "replay each training step as a captured CUDA graph"),) if gpu else ()),
    )


_COMMON = {"hidden": 128, "optimizer": "adam", "lr": 2e-3, "clip": 1.0, "lr_decay": 0.9, "lr_schedule": "exp",
           "batch_size": 128, "momentum": 0.9, "readout": "last", "threads": default_threads()}
_GATED = {"*": {**_COMMON, "hidden": 256, "epochs": 25, "patience": 5},
          # CIFAR-10 (standardised, flipped and shifted by the harness): a cosine schedule over
          # 15 epochs, chosen on validation (results/cifar10-dev-tuning/)
          "cifar10": {"lr": 2e-3, "lr_schedule": "cosine", "epochs": 15, "patience": 6}}
# The LSTM's validation accuracy still rose once the decayed learning rate was small (past epoch
# 16 of the lstm-gpu seed-2 run), where patience 5 had stopped the other seeds: train longer.
# On CIFAR-10 it learns more slowly than the GRU (60.98 % validation after the GRU's 15 epochs,
# against 64.64 %): a cosine schedule twice as long, and the head on the mean of the hidden
# states (63.64 % validation against 62.58 % on the last one, seed 0).
_LSTM = {"*": {**_GATED["*"], "epochs": 30, "patience": 8},
         "cifar10": {**_GATED["cifar10"], "epochs": 30, "patience": 8, "readout": "mean"}}

#: Hyperparameters per cell and dataset (``"*"``: any dataset), chosen on the validation split.
DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    # CIFAR-10: the head on the mean of the 32 hidden states reached 56.38 % validation against
    # 44.34 % on the last one; hidden 384 then 57.36 % (results/cifar10-dev-tuning/)
    "rnn": {"*": {**_COMMON, "hidden": 256, "lr": 1e-3, "epochs": 40, "patience": 6},
            "cifar10": {"lr_schedule": "cosine", "epochs": 30, "patience": 8, "readout": "mean", "hidden": 384}},
    "lstm": _LSTM,
    "gru": _GATED,
}

# The pixel-by-pixel tasks (784 or 1,024 steps, issue 16): NOT tuned on validation (gru-cpu at
# hidden 256 took 4.8 s a 128-sample step at 784 steps on our two shared cores: over half an
# hour an epoch). Common choices for LSTM/GRU on these tasks, not one paper's recipe: hidden 128,
# Adam lr 1e-3, gradient norm clipped at 1, a cosine schedule over 50 epochs. bptt_mb bounds each
# model's BPTT buffers (seqbench/models/recurrent.py).
PIXEL_TASKS = ("smnist", "psmnist", "fashion-smnist", "scifar10")
_PIXELS = {"hidden": 128, "lr": 1e-3, "clip": 1.0, "lr_schedule": "cosine", "epochs": 50, "patience": 10,
           "bptt_mb": 1024.0}
for _table in DEFAULTS.values():
    _table.update({name: dict(_PIXELS) for name in PIXEL_TASKS})

CELLS = {
    "rnn": ("seqbench.models.rnn", "RNN"),
    "lstm": ("seqbench.models.lstm", "LSTM"),
    "gru": ("seqbench.models.gru", "GRU"),
}
BACKENDS = {"cpu": "numpy", "gpu": "cupy"}


def defaults_for(cell: str, dataset: str) -> dict[str, Any]:
    table = DEFAULTS[cell]
    return {**table["*"], **table.get(dataset, {})}


def defaults_of(model: str, dataset: DatasetInfo | str) -> dict[str, Any]:
    """The hyperparameters of the built-in ``model`` (``rnn-cpu``, ``gru-gpu``, ...) for
    ``dataset`` (its :class:`DatasetInfo`, or its name): a fresh dict, for a plugin whose
    ``ModelSpec.defaults`` trains with the same settings as a built-in model. Unknown
    names are a ValueError listing the built-in ones."""
    cell, _, suffix = model.rpartition("-")
    if cell not in CELLS or suffix not in BACKENDS:
        names = ", ".join(f"{c}-{b}" for c in CELLS for b in BACKENDS)
        raise ValueError(f"{model!r} is not a built-in model; built-in: {names}")
    name = dataset if isinstance(dataset, str) else dataset.name
    return {**defaults_for(cell, name), **({"cuda_graph": True} if BACKENDS[suffix] == "cupy" else {})}


def params_of(model: str) -> tuple[Param, ...]:
    """The typed hyperparameters of the built-in ``model`` (``rnn-cpu``, ``gru-gpu``, ...), for a
    plugin whose model takes the same ones (``seqbench-torch``). Unknown names: a ValueError."""
    defaults_of(model, "")  # refuses an unknown name, listing the built-in ones
    return model_params(gpu=model.endswith("-gpu"))
