"""seqbench: a benchmarking harness for models that read images as sequences of rows."""

from seqbench.builtin_models import defaults_of, params_of
from seqbench.hookspecs import hookimpl
from seqbench.hyperparams import Param
from seqbench.types import (
    Dataset,
    DatasetInfo,
    DatasetSpec,
    DatasetUnavailable,
    LoadContext,
    MetricSpec,
    Model,
    ModelSpec,
    Preprocessing,
    TrainingContext,
)

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "DatasetInfo",
    "DatasetSpec",
    "DatasetUnavailable",
    "LoadContext",
    "MetricSpec",
    "Model",
    "ModelSpec",
    "Param",
    "Preprocessing",
    "TrainingContext",
    "__version__",
    "defaults_of",
    "hookimpl",
    "params_of",
]
