"""The public types a plugin author codes against.

Shapes are explicit everywhere:

* a sequence batch ``x`` is ``(N, T, F)`` float32: N samples, T time steps, F features per step
  (MNIST: T=28 rows of F=28 pixels; CIFAR-10: T=32 rows of F=96 = 32 pixels x 3 colours);
* labels ``y`` are ``(N,)`` int64 class indices in ``[0, C)``;
* class probabilities are ``(N, C)`` floats whose rows sum to 1.

Heavy libraries are not imported here, so plugins can import this module cheaply.
"""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from seqbench.hyperparams import Param, by_name, declared_defaults

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


class DatasetUnavailable(Exception):
    """Raised by a dataset loader when the data cannot be had here (files missing, offline).

    The harness records the pair as skipped with this message as the reason.
    """


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: train and test arrays, class names and a content fingerprint.

    ``train_x``/``test_x`` are ``(N, T, F)`` float32 arrays, ``train_y``/``test_y`` are ``(N,)``
    int64 labels in ``[0, len(class_names))``. ``fingerprint`` identifies the data content
    (e.g. ``"sha256:..."`` of the decompressed files) and goes into every result.
    ``channels`` is the number of values per pixel: a step of F features is a row of
    ``F // channels`` pixels (MNIST: 1; CIFAR-10: 3, the R, G, B of each pixel side by side).
    """

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: tuple[str, ...]
    fingerprint: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    channels: int = 1

    @property
    def info(self) -> DatasetInfo:
        """The dataset's shape, without its arrays."""
        return DatasetInfo(
            name=self.name,
            seq_len=int(self.train_x.shape[1]),
            n_features=int(self.train_x.shape[2]),
            class_names=tuple(self.class_names),
        )


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset to size itself."""

    name: str
    seq_len: int
    n_features: int
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class LoadContext:
    """What a dataset loader receives.

    ``data_dir`` is the root data directory (the loader uses its own subdirectory of it);
    ``download`` says whether missing files may be fetched from the network. ``datasets`` is
    what the harness registered (set by the harness; ``None`` in a context you make yourself):
    :meth:`load` reads a registered dataset through it. ``params`` holds the values of the
    hyperparameters the dataset declares (``DatasetSpec.params``), ``--set`` included.
    """

    data_dir: Path
    download: bool = True
    datasets: Mapping[str, DatasetSpec] | None = field(default=None, repr=False, compare=False)
    loading: tuple[str, ...] = field(default=(), repr=False, compare=False)
    params: Mapping[str, Any] = field(default_factory=dict)

    def spec(self, name: str) -> DatasetSpec:
        """The registered :class:`DatasetSpec` ``name``; :class:`DatasetUnavailable` when there is none."""
        if self.datasets is None:
            raise DatasetUnavailable(f"cannot read dataset {name!r}: this LoadContext has no registry "
                                     "(the harness, seqbench.testing and `seqbench data` give one)")
        if name not in self.datasets:
            raise DatasetUnavailable(f"dataset {name!r} is not registered (is its plugin installed and not blocked?)")
        return self.datasets[name]

    def load(self, name: str) -> Dataset:
        """The registered dataset ``name``, loaded as a run would load it (files read, downloaded
        when allowed), for a loader that builds on it. Raises :class:`DatasetUnavailable` as that
        dataset's loader does, or when ``name`` is not registered or derives from itself."""
        if name in self.loading:
            raise DatasetUnavailable(f"dataset {name!r} derives from itself: {' -> '.join((*self.loading, name))}")
        spec = self.spec(name)
        return spec.load(replace(self, loading=(*self.loading, name), params=declared_defaults(spec.params)))


@dataclass(frozen=True)
class Preprocessing:
    """What the harness does to a dataset's arrays, the same for every model of a run.

    ``standardize``: subtract the per-channel mean and divide by the per-channel standard
    deviation, both computed from the training rows only. ``hflip``: flip training images
    horizontally (each row's pixels reversed) with probability 1/2. ``shift``: translate training
    images by up to this many pixels in each direction. Validation and test data are never
    augmented. A run can turn standardisation and augmentation off (``--no-standardize``,
    ``--no-augment``).
    """

    standardize: bool = False
    hflip: bool = False
    shift: int = 0

    def describe(self) -> str:
        """One line for people, e.g. ``standardised per channel; augmented: flip, shift ±2 px``."""
        aug = [a for a in ("flip" if self.hflip else "", f"shift ±{self.shift} px" if self.shift else "") if a]
        return "; ".join((
            "standardised per channel" if self.standardize else "not standardised",
            ("augmented: " + ", ".join(aug)) if aug else "no augmentation",
        ))


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset registration.

    ``load(ctx)`` returns a :class:`Dataset` or raises :class:`DatasetUnavailable`.
    ``locate(ctx)``, when given, describes the files for ``seqbench data info`` without loading
    them, as a mapping with any of: ``status`` (``"ok"``, ``"missing"`` or ``"error"``),
    ``directory``, ``missing`` (file names), ``fingerprint``, ``train_shape``, ``test_shape``,
    ``error``. ``fetch(ctx)``, when given, downloads what is missing for ``seqbench data fetch``
    (raising :class:`DatasetUnavailable` when it cannot); without it the dataset has no fetcher
    and ``seqbench data`` says so. ``preprocessing`` declares the standardisation and
    augmentation the harness applies to this dataset for every model. ``source`` is the
    dataset a derived one is built from (see :meth:`derive`), else ``None``. ``in_all``:
    whether a run that names no dataset (``seqbench run --all``, or ``-m`` alone) includes it;
    set it ``False`` for tasks too long for that (the pixel-by-pixel ones): they run when named.
    ``check(ctx)``, when given, raises :class:`DatasetUnavailable` as ``load`` would when the
    data cannot be had here (files missing and downloads off), cheaply: without reading the
    data. A run calls it for every selected dataset before the first pair trains, so that all
    missing data is reported at once.
    ``provenance`` labels known copies of the data by fingerprint, as ``(fingerprint, label)``
    pairs (``("sha256:3ec8…", "CIFAR-10 dev split")``): each pair's record keeps the label of
    the copy it ran on, and reports show it wherever that copy's figures appear.
    ``params`` declares the hyperparameters ``load`` takes (:class:`seqbench.Param`, e.g. a noise
    level): ``--set DATASET.KEY=VALUE`` sets them, and ``load`` finds them in ``ctx.params``; the
    harness folds their values into the fingerprint.
    """

    name: str
    load: Callable[[LoadContext], Dataset]
    description: str = ""
    locate: Callable[[LoadContext], Mapping[str, Any]] | None = None
    fetch: Callable[[LoadContext], None] | None = None
    preprocessing: Preprocessing = Preprocessing()
    source: str | None = None
    in_all: bool = True
    check: Callable[[LoadContext], None] | None = None
    provenance: tuple[tuple[str, str], ...] = ()
    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(by_name(self.params, f"dataset {self.name!r}").values()))

    @classmethod
    def derive(
        cls,
        name: str,
        source: str,
        transform: Callable[..., Any],
        *,
        identity: str,
        params: Mapping[str, Any] | None = None,
        whole: bool = False,
        channels: int | None = None,
        preprocessing: Preprocessing = Preprocessing(),
        description: str = "",
        in_all: bool = True,
    ) -> DatasetSpec:
        """A dataset built from the registered dataset ``source`` by ``transform``, in memory.

        ``transform(train_x, test_x, **params)`` returns the new ``(train_x, test_x)`` (labels
        and class names are kept), or, with ``whole=True``, ``transform(dataset, **params)``
        returns a new :class:`Dataset` (``dataclasses.replace`` it: labels, class names and
        subsets may change). The harness loads ``source`` once per run and gives the result
        ``name``, the fingerprint :func:`derived_fingerprint` of the source's fingerprint,
        ``identity`` and ``params`` (change ``identity`` whenever the transform's code changes
        what it computes), and ``meta["derived_from"]`` (source, its fingerprint and meta,
        identity, params). ``channels`` is the values per pixel of the result (default: the
        source's). ``preprocessing`` is declared afresh, default none: the source's flips and
        shifts presume its row layout, so nothing is inherited; declare
        ``Preprocessing(standardize=True)`` where the source standardises and your layout
        keeps its channels. ``in_all`` as for any spec. ``seqbench data info`` and ``data fetch``
        answer for the source's files; ``data info`` gives the result's shapes (from one sample
        of each split, or from the whole transform with ``whole=True``).
        """
        params = dict(params or {})

        def load(ctx: LoadContext) -> Dataset:
            src = ctx.load(source)
            if whole:
                out = transform(src, **params)
                if not isinstance(out, Dataset):
                    raise TypeError(f"the transform of derived dataset {name!r} returned "
                                    f"{type(out).__name__}, not a Dataset")
            else:
                train_x, test_x = transform(src.train_x, src.test_x, **params)
                out = replace(src, train_x=train_x, test_x=test_x)
            lineage = {"dataset": source, "fingerprint": src.fingerprint, "meta": dict(src.meta),
                       "transform": identity, "params": params}
            own = dict(out.meta) if out.meta is not src.meta else {}  # what a whole-dataset transform added
            return replace(out, name=name, fingerprint=derived_fingerprint(src.fingerprint, identity, params),
                           meta={**own, "derived_from": lineage}, channels=channels or out.channels)

        def locate(ctx: LoadContext) -> Mapping[str, Any]:
            spec = ctx.spec(source)
            where = dict(spec.locate(ctx)) if spec.locate is not None else {"status": "unknown"}
            out = {k: where[k] for k in ("status", "directory", "missing", "error") if where.get(k) is not None}
            if where.get("fingerprint"):
                out["fingerprint"] = derived_fingerprint(where["fingerprint"], identity, params)
            if where.get("status") == "ok":
                out.update(shapes(ctx))
            return {**out, "derived_from": source}

        def shapes(ctx: LoadContext) -> dict[str, list[int]]:
            """The result's shapes: a per-sample transform needs one sample of each split (it
            keeps the labels, hence the counts); a whole-dataset one runs in full."""
            if whole:
                out = load(ctx)
                return {"train_shape": list(out.train_x.shape), "test_shape": list(out.test_x.shape)}
            src = ctx.load(source)
            train_x, test_x = transform(src.train_x[:1], src.test_x[:1], **params)
            return {"train_shape": [len(src.train_x), *train_x.shape[1:]],
                    "test_shape": [len(src.test_x), *test_x.shape[1:]]}

        def fetch(ctx: LoadContext) -> None:
            spec = ctx.spec(source)
            if spec.fetch is None:
                raise DatasetUnavailable(f"dataset {name!r} derives from {source!r}, which has no fetcher")
            spec.fetch(ctx)

        def check(ctx: LoadContext) -> None:
            spec = ctx.spec(source)
            if spec.check is not None:
                spec.check(ctx)

        return cls(name, load, description or f"{source}, {identity}", locate, fetch, preprocessing, source, in_all,
                   check)


def derived_fingerprint(source: str, identity: str, params: Mapping[str, Any] | None = None) -> str:
    """The fingerprint of a dataset derived from one of fingerprint ``source`` by the transform
    ``identity`` with ``params``: ``sha256:`` of the three, so that a change in any changes it."""
    text = json.dumps({"source": source, "transform": identity, "params": dict(params or {})},
                      sort_keys=True, default=repr)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class TrainingContext:
    """What the harness tells a model before its first epoch (:meth:`Model.fit_start`):
    ``steps_per_epoch`` minibatches of ``batch_size`` over ``n_train`` training rows (``n_val``
    more are held out for validation), at most ``epochs`` epochs, and whether the run is a
    ``--quick`` smoke run. A learning-rate warm-up or schedule needs them."""

    steps_per_epoch: int
    n_train: int
    n_val: int
    epochs: int
    batch_size: int
    quick: bool = False


class Model(abc.ABC):
    """A trainable classifier of ``(B, T, F)`` sequences.

    The harness owns the training loop: it moves data to the model's device once with
    :meth:`to_device`, calls :meth:`train_batch` for every shuffled minibatch, :meth:`epoch_end`
    after every epoch, :meth:`predict_proba` to evaluate, and :meth:`state_dict` /
    :meth:`load_state_dict` to keep and restore the best parameters.
    """

    #: Where the model computes, e.g. ``"cpu"`` or ``"cuda:0 (NVIDIA H100)"``.
    device: str = "cpu"

    def to_device(self, array: np.ndarray) -> Any:
        """Return ``array`` on the model's device (the harness does this once per split)."""
        return array

    @abc.abstractmethod
    def train_batch(self, x: Any, y: Any) -> Any:
        """Take one optimisation step on a minibatch and return its mean loss.

        ``x`` is ``(B, T, F)`` float32 and ``y`` is ``(B,)`` int64, both as returned by
        :meth:`to_device` and indexed by the harness. The loss may be a Python float or a 0-d
        array on the device: the harness converts it once per epoch, so a GPU model need not
        synchronize per step.
        """

    @abc.abstractmethod
    def predict_proba(self, x: Any) -> np.ndarray:
        """Return class probabilities ``(B, C)`` as a host NumPy array for a batch ``(B, T, F)``."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, np.ndarray]:
        """Return a copy of the parameters as host NumPy arrays."""

    @abc.abstractmethod
    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Replace the parameters with those of ``state`` (as returned by :meth:`state_dict`)."""

    def fit_start(self, context: TrainingContext) -> None:  # noqa: B027 (an optional hook: no-op unless overridden)
        """Called once before the first epoch with the training plan (steps per epoch, training
        rows, epochs, ``--quick``), e.g. to size a warm-up or a schedule."""

    def epoch_end(self, epoch: int) -> None:  # noqa: B027 (an optional hook: no-op unless overridden)
        """Called after each training epoch (1-based), before validation, e.g. for a learning-rate schedule."""

    def epoch_validated(self, epoch: int, val_accuracy: float) -> None:  # noqa: B027 (an optional hook: no-op unless overridden)
        """Called after each epoch's validation with its accuracy (a fraction), e.g. for a
        schedule that lowers the learning rate when validation stops improving."""

    def synchronize(self) -> None:  # noqa: B027 (an optional hook: no-op unless overridden)
        """Block until queued device work is done; the harness calls it before reading a clock."""

    def peak_memory_bytes(self) -> int | None:
        """Peak device memory used so far, where the device can tell; ``None`` otherwise."""
        return None

    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters the model was built with (stored beside saved parameters)."""
        return {}

    def num_parameters(self) -> int | None:
        """How many trainable numbers the model has (recorded per pair); ``None``: unknown."""
        return None

    #: The file suffix of the format :meth:`write_checkpoint` writes (``seqbench run --save-models``).
    checkpoint_format: str = "npz"

    def write_checkpoint(self, file: BinaryIO) -> None:
        """Write the parameters to the binary ``file``, for ``seqbench run --save-models``.

        The default writes :meth:`state_dict` as a NumPy ``.npz`` of plain arrays. A plugin with
        a format of its own overrides this, :meth:`read_checkpoint` and :attr:`checkpoint_format`
        together; its reader must never run code from the file (no ``pickle``: e.g.
        ``torch.load(..., weights_only=True)``, safetensors).
        """
        import numpy as np

        state = self.state_dict()
        pickled = [k for k, v in state.items() if np.asarray(v).dtype.hasobject]
        if pickled:
            raise TypeError(f"state_dict() entries {', '.join(pickled)} hold Python objects, which only pickle "
                            "can store: give plain numeric arrays")
        np.savez(file, **state)  # type: ignore[arg-type]  # numpy's stub types **kwds as its allow_pickle flag

    def read_checkpoint(self, file: BinaryIO) -> None:
        """Replace the parameters with those :meth:`write_checkpoint` wrote to ``file`` (its bytes
        already checked against the checkpoint's SHA-256). The default reads the ``.npz`` with
        ``allow_pickle=False``, so a planted object array is refused, never unpickled."""
        import numpy as np

        with np.load(file, allow_pickle=False) as f:
            state = {k: f[k] for k in f.files}
        self.load_state_dict(state)

    def save(self, path: str | Path) -> None:
        """Save parameters and hyperparameters to an ``.npz`` file."""
        import numpy as np

        state = self.state_dict()
        meta = json.dumps({"class": type(self).__name__, "hyperparameters": self.hyperparameters()})
        np.savez(path, __meta__=np.frombuffer(meta.encode(), dtype=np.uint8), **state)  # type: ignore[arg-type]  # as above

    def load(self, path: str | Path) -> None:
        """Load parameters saved by :meth:`save`; shapes must match this model's."""
        import numpy as np

        with np.load(path) as f:
            state = {k: f[k] for k in f.files if k != "__meta__"}
        self.load_state_dict(state)


@dataclass(frozen=True)
class ModelSpec:
    """A model registration.

    ``build(info, params)`` returns a fresh, randomly initialised :class:`Model` for a dataset
    of shape ``info``; ``params`` holds every hyperparameter (``seed`` included).
    ``defaults(info)`` returns the model's hyperparameters for that dataset; the protocol keys
    ``epochs``, ``batch_size`` and ``patience`` may be among them. ``unavailable()`` returns
    ``None`` when the model can run on this machine, else the reason it cannot.

    ``params`` declares the hyperparameters with their types, allowed values, search space and
    descriptions (:class:`seqbench.Param`): ``--set`` values are checked against them before a
    run starts, ``seqbench tune`` searches them. Their defaults hold for every dataset;
    ``defaults(info)`` may change them per dataset and may add undeclared keys (kept as they
    are: a plugin without declarations works unchanged).
    """

    name: str
    build: Callable[[DatasetInfo, Mapping[str, Any]], Model]
    defaults: Callable[[DatasetInfo], Mapping[str, Any]] = lambda info: {}
    unavailable: Callable[[], str | None] = lambda: None
    description: str = ""
    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(by_name(self.params, f"model {self.name!r}").values()))

    def defaults_for(self, info: DatasetInfo) -> dict[str, Any]:
        """The hyperparameters for a dataset: the declared defaults, then ``defaults(info)``."""
        return {**declared_defaults(self.params), **self.defaults(info)}


@dataclass(frozen=True)
class MetricSpec:
    """A metric registration.

    ``compute(y_true, y_pred, proba, class_names)`` receives host NumPy arrays of the test split
    (``(N,)`` labels, ``(N,)`` predicted labels, ``(N, C)`` probabilities) and returns a
    JSON-serialisable mapping, stored under the metric's name in the results.

    Its **scalar results** are its numbers: ``{"top2_accuracy": 0.98}`` is the scalar
    ``top2.top2_accuracy``, nested mappings are flattened with dots (``macro.f1``), and a key
    named like the metric is the metric itself (``{"top2": 0.98}`` is ``top2``). They appear
    in the summary table (mean ± std over seeds), in ``seqbench report`` and in ``seqbench
    compare``, which gates on them with ``--fail-on METRIC[.KEY]:LIMIT``. Lists (per-class
    tables, matrices, curves) are not scalars: they stay in the JSON records.

    ``higher_is_better`` says which way is better: one answer for all of the metric's scalars,
    or a mapping from the flattened key (``"top2_accuracy"``, ``"macro.f1"``) to the answer;
    ``compare`` refuses to gate on a scalar whose direction the metric does not give.

    ``params`` declares the hyperparameters ``compute`` takes (:class:`seqbench.Param`, e.g. a
    bin count): they are passed as keyword arguments, their defaults or ``--set METRIC.KEY=VALUE``.
    """

    name: str
    compute: Callable[..., Mapping[str, Any]]
    description: str = ""
    higher_is_better: bool | Mapping[str, bool] = True
    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(by_name(self.params, f"metric {self.name!r}").values()))

    def is_higher_better(self, key: str) -> bool | None:
        """Whether a higher value of the scalar at ``key`` (the flattened key of the mapping
        ``compute`` returns, e.g. ``"top2_accuracy"`` or ``"macro.f1"``) is better; ``None`` when
        the metric does not say."""
        if isinstance(self.higher_is_better, bool):
            return self.higher_is_better
        value = self.higher_is_better.get(key)
        return None if value is None else bool(value)
