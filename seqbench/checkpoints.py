"""Saved models: a pair's restored best-validation model kept beside its record
(``seqbench run --save-models``), and read back for ``seqbench eval``.

A directory beside the pair record ``pairs/<stem>.json``::

    pairs/<stem>.ckpt/model.<format>   the parameters, as the model writes them (the built-ins: npz)
    pairs/<stem>.ckpt/manifest.json    model, params, training data, seed, validation accuracy,
                                       commit, and the parameters file's size and SHA-256

Both are written atomically, the parameters first: a manifest names a complete file. (A
directory, so that ``pairs/*.json`` stay the pair records.) Reading
checks the manifest's fields, then the file's size and SHA-256, and only then hands its bytes
to the model's :meth:`~seqbench.Model.read_checkpoint`; nothing is unpickled. Every refusal is
a :class:`CheckpointError` of one line naming the file.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqbench import fileio
from seqbench import results as res
from seqbench.plugins import one_line
from seqbench.types import DatasetInfo, Model

if TYPE_CHECKING:  # pragma: no cover
    from seqbench.plugins import Registry
    from seqbench.types import Dataset

#: Version of the manifest's layout.
CHECKPOINT_SCHEMA = 1
CHECKPOINT_SUFFIX = ".ckpt"
MANIFEST = "manifest.json"
_FORMAT = re.compile(r"[a-z0-9]{1,16}")

#: Manifest fields a reader needs, and their types.
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "checkpoint_schema": int, "model": str, "model_plugin": str, "seed": int, "file": str, "format": str,
    "sha256": str, "bytes": int, "params": dict, "data": dict, "preprocessing": dict,
}
_DATA_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str, "fingerprint": str, "seq_len": int, "n_features": int, "class_names": list, "channels": int,
}


class CheckpointError(Exception):
    """A checkpoint that cannot be written, found, trusted or read: one line naming the file."""


@dataclass(frozen=True)
class Checkpoint:
    """A model's parameters as written by its plugin, and their manifest."""

    data: bytes
    manifest: dict[str, Any]


@dataclass(frozen=True)
class SavedModel:
    """A checkpoint read from disk, its bytes checked against its manifest."""

    path: Path
    manifest: dict[str, Any]
    data: bytes

    @property
    def trained_on(self) -> DatasetInfo:
        """The shape of the data the model was trained on (it was built for it)."""
        data = self.manifest["data"]
        return DatasetInfo(data["name"], data["seq_len"], data["n_features"], tuple(data["class_names"]))

    def label(self) -> str:
        return f"{self.manifest['model']} seed {self.manifest['seed']} trained on {self.manifest['data']['name']}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack(model: Model, record: Mapping[str, Any], plugin: str, dataset: Dataset, max_test: int | None) -> Checkpoint:
    """The checkpoint of the model of an ok pair (``record``), after its best parameters were restored.

    ``max_test`` is the test subset the pair was evaluated on (``--quick``), so that an
    evaluation on the same data reads the same rows.
    """
    fmt = getattr(model, "checkpoint_format", "npz")
    if not isinstance(fmt, str) or not _FORMAT.fullmatch(fmt):
        raise CheckpointError(f"model plugin {plugin!r}: checkpoint_format {fmt!r} is not a file suffix "
                              "(1 to 16 lower-case letters or digits)")
    buffer = io.BytesIO()
    try:
        model.write_checkpoint(buffer)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a plugin must not end the run
        raise CheckpointError(f"model plugin {plugin!r}: write_checkpoint failed: {one_line(exc)}") from None
    data = buffer.getvalue()
    history = record.get("history") or []
    best = record.get("best_epoch") or 0
    info = record["dataset_info"]
    environment = record.get("environment") or {}
    manifest = {
        "checkpoint_schema": CHECKPOINT_SCHEMA,
        "model": record["model"],
        "model_plugin": plugin,
        "seed": record["seed"],
        "file": f"model.{fmt}",
        "format": fmt,
        "sha256": sha256(data),
        "bytes": len(data),
        "params": record["params"],
        "hyperparameters": record.get("hyperparameters"),
        "num_parameters": record.get("num_parameters"),
        "data": {
            "name": info["name"], "fingerprint": info["fingerprint"], "seq_len": info["seq_len"],
            "n_features": info["n_features"], "class_names": list(info["class_names"]),
            "channels": int(dataset.channels), "meta": info.get("meta") or {},
        },
        "preprocessing": record.get("preprocessing") or {},
        "max_test": max_test,
        "history": history,
        "best_epoch": best,
        "epochs_run": record.get("epochs_run"),
        "validation_accuracy": history[best - 1]["val_accuracy"] if 0 < best <= len(history) else None,
        "test_accuracy": ((record.get("metrics") or {}).get("accuracy") or {}).get("accuracy"),
        "commit": environment.get("git_commit"),
        "seqbench": (environment.get("packages") or {}).get("seqbench"),
        "created": res.now_iso(),
    }
    return Checkpoint(data, res.json_ready(manifest, "checkpoint manifest"))


def checkpoint_dir(run_dir: Path, record: Mapping[str, Any]) -> Path:
    """Where a pair's checkpoint lives: ``pairs/<stem>.ckpt/``."""
    return res.pair_path(run_dir, dict(record), CHECKPOINT_SUFFIX)


def write(run_dir: Path, record: Mapping[str, Any], checkpoint: Checkpoint) -> dict[str, Any]:
    """Write the checkpoint beside the pair's record, each file atomically; what the record says of it."""
    manifest = checkpoint.manifest
    where = checkpoint_dir(run_dir, record)
    fileio.atomic_write_bytes(where / manifest["file"], checkpoint.data)
    fileio.atomic_write_json(where / MANIFEST, manifest)
    return {"dir": where.name, "file": manifest["file"], "sha256": manifest["sha256"], "bytes": manifest["bytes"]}


def find(path: Path) -> list[Path]:
    """The manifests ``path`` names: a checkpoint directory, a file in one (its manifest or its
    parameters), or a run directory (every checkpoint of its ``pairs/``)."""
    if (path / MANIFEST).is_file():
        return [path / MANIFEST]
    if path.is_dir():
        pairs = path / res.PAIRS_DIR
        found = sorted((pairs if pairs.is_dir() else path).glob(f"*{CHECKPOINT_SUFFIX}/{MANIFEST}"))
        if not found:
            raise CheckpointError(f"{path}: no checkpoints (pairs/*{CHECKPOINT_SUFFIX}/) there; "
                                  "save them with seqbench run --save-models")
        return found
    if path.is_file() and (path.parent / MANIFEST).is_file():
        return [path.parent / MANIFEST]
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or run directory")
    raise CheckpointError(f"{path}: not a checkpoint (a <pair>{CHECKPOINT_SUFFIX} directory with {MANIFEST}) "
                          "nor a run directory")


def read(manifest_file: Path) -> SavedModel:
    """The checkpoint of ``manifest_file``, its parameters file's size and SHA-256 checked."""
    try:
        manifest = res.loads(manifest_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckpointError(f"{manifest_file}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise CheckpointError(f"{manifest_file}: not a checkpoint manifest ({one_line(exc)})") from None
    _check_manifest(manifest, manifest_file)
    file = manifest_file.with_name(manifest["file"])
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{file}: cannot read the checkpoint ({exc.strerror or exc})") from None
    if len(data) != manifest["bytes"]:
        raise CheckpointError(f"{file}: {len(data)} bytes where its manifest says {manifest['bytes']} "
                              "(truncated or changed): refused")
    if sha256(data) != manifest["sha256"]:
        raise CheckpointError(f"{file}: SHA-256 differs from its manifest's (the file was changed): refused")
    return SavedModel(manifest_file, manifest, data)


def _check_manifest(manifest: Any, where: Path) -> None:
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{where}: not a checkpoint manifest (a JSON object)")
    for fields, obj, prefix in ((_FIELDS, manifest, ""), (_DATA_FIELDS, manifest.get("data") or {}, "data.")):
        for name, kind in fields.items():
            value = obj.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise CheckpointError(f"{where}: manifest field {prefix}{name} is missing or not {_kind(kind)}")
    if manifest["checkpoint_schema"] != CHECKPOINT_SCHEMA:
        raise CheckpointError(f"{where}: checkpoint schema {manifest['checkpoint_schema']} is not readable by this "
                              f"seqbench (it reads {CHECKPOINT_SCHEMA})")
    if Path(manifest["file"]).name != manifest["file"] or not manifest["file"].endswith(f".{manifest['format']}"):
        raise CheckpointError(f"{where}: manifest field file must name a .{manifest['format']} file beside it")


def _kind(kind: type | tuple[type, ...]) -> str:
    names: dict[type | tuple[type, ...], str] = {int: "an integer", str: "text", dict: "an object", list: "a list"}
    return names.get(kind, str(kind))


def incompatibility(saved: SavedModel, info: DatasetInfo, channels: int) -> str | None:
    """Why the saved model cannot be evaluated on a dataset of shape ``info``, or ``None``."""
    trained = saved.trained_on
    if (info.seq_len, info.n_features) != (trained.seq_len, trained.n_features):
        return (f"its input is {trained.seq_len} steps x {trained.n_features} features ({trained.name}), "
                f"{info.name}'s is {info.seq_len} x {info.n_features}")
    if tuple(info.class_names) != trained.class_names:
        return (f"it predicts the {trained.num_classes} classes of {trained.name} "
                f"({', '.join(trained.class_names[:4])}{', ...' if trained.num_classes > 4 else ''}), "
                f"{info.name} has {info.num_classes} ({', '.join(info.class_names[:4])}"
                f"{', ...' if info.num_classes > 4 else ''})")
    stats = saved.manifest["preprocessing"].get("mean")
    if stats is not None and len(stats) != channels:
        return f"it was standardised over {len(stats)} channel(s), {info.name} has {channels}"
    return None


def restore(saved: SavedModel, registry: Registry, params: Mapping[str, Any]) -> Model:
    """The saved model, built by its registered plugin with ``params`` and its parameters read back."""
    name = saved.manifest["model"]
    if name not in registry.models:
        raise CheckpointError(f"{saved.path}: model {name!r} is not registered here; install its plugin "
                              f"({saved.manifest['model_plugin']!r})")
    plugin = registry.plugin_of("model", name)
    try:
        model = registry.models[name].build(saved.trained_on, dict(params))
        fmt = getattr(model, "checkpoint_format", "npz")
        if fmt != saved.manifest["format"]:
            raise CheckpointError(f"{saved.path}: the checkpoint is {saved.manifest['format']!r}, but model plugin "
                                  f"{plugin!r} now writes {fmt!r}: refused")
        model.read_checkpoint(io.BytesIO(saved.data))
    except CheckpointError:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a plugin must not end the command: SystemExit too
        raise CheckpointError(f"{saved.path}: model plugin {plugin!r} could not restore it: {one_line(exc)}") from None
    return model
