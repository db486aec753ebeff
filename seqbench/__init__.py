"""seqbench: a benchmarking harness for models that read images as sequences of rows."""

from seqbench.default_plugins.models import defaults_of
from seqbench.hookspecs import hookimpl
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
    "Preprocessing",
    "TrainingContext",
    "__version__",
    "defaults_of",
    "hookimpl",
]
