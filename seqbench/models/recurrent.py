"""A recurrent classifier: a cell unrolled over the rows, a softmax head on its readout state.

The readout is the last hidden state h_T (``readout="last"``, the notebook's model) or the mean
of all hidden states (``readout="mean"``): r = (h_1 + ... + h_T) / T, whose gradient reaches every
step directly (dL/dh_t gets dL/dr / T on top of what flows back from step t + 1).

Everything a cell (RNN, LSTM, GRU) shares lives here: the head, the cross-entropy loss, the
optimizer, gradient clipping, the learning-rate schedule, state and the NumPy/CuPy plumbing.
The cell supplies its parameters, its forward and backward passes through time and its
element-wise step kernels (:mod:`seqbench.models.kernels`); the readout is an argument of its
forward pass, chosen by the head. DEVELOPING.md, "Adding a cell", lists what a new cell needs.

Shapes: ``x`` is ``(B, T, F)``; the cells work time-major, on ``x_t = x.transpose(1, 0, 2)``
of shape ``(T, B, F)``; the hidden state is ``(B, H)``; logits are ``(B, C)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import numpy as np

from seqbench.models.backend import get_backend
from seqbench.models.optim import clip_grad_norm, make_optimizer
from seqbench.types import Model

PREDICT_CHUNK = 2048
LR_SCHEDULES = ("exp", "cosine")
READOUTS = ("last", "mean")


class Cell(Protocol):
    """The recurrent part of a model; arrays are of the backend's array module.

    A cell is built as ``Cell(backend, dtype)`` and keeps its own :class:`Workspace`.
    """

    def init(self, rng: np.random.Generator, n_features: int, hidden: int) -> dict[str, np.ndarray]:
        """Fresh float64 host parameters."""

    def forward(self, p: Mapping[str, Any], x_t: Any, readout: str) -> tuple[Any, Any]:
        """Run over ``x_t`` ``(T, B, F)``; return the readout state ``(B, H)`` (one of
        :data:`READOUTS`) and a cache."""

    def backward(self, p: Mapping[str, Any], cache: Any, dh: Any) -> dict[str, Any]:
        """Given dL/d(readout state) ``(B, H)``, return dL/dparam for every cell parameter."""

    def infer(self, p: Mapping[str, Any], x_t: Any, readout: str) -> Any:
        """:meth:`forward`'s readout state alone (predictions: nothing kept for a backward pass)."""


#: Default of ``bptt_mb``: the MiB of per-step buffers a model may keep for whole sequences. 1 GiB
#: keeps every cell's whole sMNIST step (784 steps, batch 128) at hidden 256 (686 MiB for the LSTM
#: and GRU), less than PyTorch's own CPU training step keeps there (docs/pixel-tasks.md).
BPTT_MB = 1024.0


class CellBase:
    """What every cell keeps: its backend, array module, dtype and its own buffers.

    **Long sequences.** The per-step buffers of the forward pass (gate values and hidden states:
    ``widths`` arrays of ``(B, H)`` a step) are kept for the whole sequence when they fit in
    ``cache_bytes``. Past that, the sequence is cut into chunks of as many steps as fit
    (see :meth:`chunk_len`), the short one first: the forward pass keeps only each chunk's
    first state, and the backward pass recomputes a chunk's forward steps from it before going
    back through them (checkpointing: memory independent of T but for one state a chunk). The
    last chunk is still in the buffers when the backward pass starts, so only the steps before
    it are computed twice.

    **Weight gradients.** The backward pass goes through a chunk in segments of steps whose
    gradient buffers (``grad_widths`` arrays of ``(B, H)`` a step) fit in ``grad_bytes``: each
    weight gradient is one product a segment, summed. A segment is all of a row task's steps.
    """

    widths = 1
    grad_widths = 1
    cache_bytes = int(BPTT_MB * 2**20)
    chunk_bytes = 32 << 20
    grad_bytes = 32 << 20

    def __init__(self, backend: Any, dtype: np.dtype) -> None:
        self.backend, self.xp, self.dtype = backend, backend.xp, dtype
        self.ws = Workspace()

    def chunk_len(self, T: int, B: int, H: int) -> int:
        """Steps a chunk holds: what fits in ``cache_bytes`` (``chunk_bytes`` when that is 0), at
        most ``T``, at least one."""
        per_step = B * H * self.widths * self.dtype.itemsize
        budget = self.cache_bytes if self.cache_bytes > 0 else self.chunk_bytes
        return max(1, min(T, budget // per_step))

    def grad_len(self, K: int, B: int, H: int) -> int:
        """Steps a segment holds: what fits in ``grad_bytes``, at most ``K``, at least one."""
        return max(1, min(K, self.grad_bytes // (B * H * self.grad_widths * self.dtype.itemsize)))

    def _segments(self, n: int, S: int) -> list[tuple[int, int]]:
        """``(first step, end)`` of the segments of ``S`` steps of a chunk of ``n``, last first."""
        return self._chunks(n, S)[::-1]

    @staticmethod
    def _chunks(T: int, K: int) -> list[tuple[int, int]]:
        """``(first step, end)`` of each chunk of ``K`` steps, in order; the first is the short one."""
        return [(max(0, end - K), end) for end in range(T, 0, -K)][::-1]

    def _add(self, grads: dict[str, Any], name: str, a: Any, b: Any) -> None:
        """``grads[name] += a @ b`` (``=`` for the first chunk), with no new array after the first."""
        if name not in grads:
            grads[name] = self.backend.matmul(a, b)
            return
        part = self.ws.get(self.xp, "part_" + name, grads[name].shape, self.dtype)
        self.backend.matmul(a, b, out=part)
        grads[name] += part

    def _forward_chunks(self, x_t: Any, K: int, states: tuple[Any, ...],
                        steps: Callable[[Any], int], readout: str) -> tuple[Any, Any]:
        """Run ``steps(x)`` over the chunks of ``K`` steps of ``x_t``, each from the last state of
        the one before. ``states`` are the chunk's state buffers (``hs``, and ``cs`` for the LSTM;
        ``state[t]`` before its step t), ``steps`` runs a chunk from ``state[0]`` and returns its
        length. Returns the ``readout`` state (the last hidden state, or the mean of all of them)
        and each chunk's first states ``(chunks, S, B, H)``."""
        T, B, _ = x_t.shape
        H = states[0].shape[2]
        starts = self.ws.get(self.xp, "starts", (-(-T // K), len(states), B, H), self.dtype)
        mean = readout == "mean"
        h = self.ws.get(self.xp, "h_out", (B, H), self.dtype)
        if mean:
            h[...] = 0
        n = 0
        for i, (first, end) in enumerate(self._chunks(T, K)):
            for j, state in enumerate(states):
                state[0] = state[n] if i else 0
                starts[i, j] = state[0]
            n = steps(x_t[first:end])
            if mean:
                h += states[0][1 : n + 1].sum(axis=0)
        if mean:
            h /= T
        else:
            h[...] = states[0][n]
        return h, starts

    def forward(self, p: Mapping[str, Any], x_t: Any, readout: str) -> tuple[Any, Any]:
        """See :class:`Cell`; each cell defines it."""
        raise NotImplementedError

    def infer(self, p: Mapping[str, Any], x_t: Any, readout: str) -> Any:
        """:meth:`forward`'s readout state; a cell may override it with a leaner path."""
        return self.forward(p, x_t, readout)[0]

    def _readout_grads(self, dh: Any, T: int, readout: str) -> tuple[Any, Any]:
        """What dL/d(readout) gives the hidden states: (dL/dh_T from it, what it adds to every
        earlier dL/dh_t, or None when nothing: the last-state readout)."""
        if readout == "last":
            return dh, None
        every = self.ws.get(self.xp, "dh_every", dh.shape, self.dtype)
        self.xp.divide(dh, T, out=every)
        return every, every

    @classmethod
    def _chunks_backward(cls, x_t: Any, K: int) -> Iterator[tuple[int, int, Any, bool]]:
        """The chunks of ``K`` steps of ``x_t``, last first: ``(index, first step, its inputs,
        whether its forward pass must be recomputed)``; the last chunk's buffers still hold it."""
        chunks = cls._chunks(x_t.shape[0], K)
        for i in range(len(chunks) - 1, -1, -1):
            first, end = chunks[i]
            yield i, first, x_t[first:end], i < len(chunks) - 1

    def _add_sum(self, grads: dict[str, Any], name: str, a: Any) -> None:
        """``grads[name] += a.sum(axis=0)`` (``=`` for the first chunk)."""
        if name not in grads:
            grads[name] = a.sum(axis=0)
        else:
            grads[name] += a.sum(axis=0)


class RecurrentClassifier(Model):
    """A :class:`seqbench.Model` made of a :class:`Cell` and a linear softmax head.

    ``readout`` is the head's input (:data:`READOUTS`); ``fused`` runs the cells' element-wise
    steps on the CPU as numba-compiled kernels (False, or numba missing: as NumPy ufuncs; the
    ``kernels`` hyperparameter says which ran)."""

    def __init__(
        self,
        cell_type: type,
        n_features: int,
        num_classes: int,
        *,
        hidden: int = 128,
        seed: int = 0,
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.9,
        clip: float = 0.0,
        lr_decay: float = 1.0,
        lr_schedule: str = "exp",
        epochs: int = 1,
        dtype: str = "float32",
        backend: str = "numpy",
        threads: int = 1,
        cuda_graph: bool = False,
        bptt_mb: float = BPTT_MB,
        readout: str = "last",
        fused: bool = True,
    ) -> None:
        self.backend = get_backend(backend, threads, fused)
        self.xp = self.backend.xp
        self.device = self.backend.device
        self.dtype = np.dtype(dtype)
        # one cell (with its own buffers) per shard of a batch; see NumpyBackend.map_shards
        self.cells = [cell_type(self.backend, self.dtype) for _ in range(self.backend.threads)]
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r} (expected one of {', '.join(READOUTS)})")
        self.readout = readout
        for c in self.cells:  # bptt_mb is the model's: its shards' cells share it
            c.cache_bytes = int(bptt_mb * 2**20 / len(self.cells))
        self.cell = cell = self.cells[0]
        self._hparams = {
            "cell": cell_type.__name__, "n_features": n_features, "num_classes": num_classes,
            "hidden": hidden, "seed": seed, "optimizer": optimizer, "lr": lr, "momentum": momentum,
            "clip": clip, "lr_decay": lr_decay, "lr_schedule": lr_schedule, "epochs": epochs,
            "dtype": self.dtype.name, "backend": backend,
            "threads": self.backend.threads, "bptt_mb": bptt_mb, "readout": readout,
            "kernels": self.backend.kernels,
        }
        if backend == "cupy":
            self._hparams["cuda_graph"] = cuda_graph
        rng = np.random.default_rng(seed)
        host = cell.init(rng, n_features, hidden)
        host["W_ya"] = rng.standard_normal((hidden, num_classes)) * math.sqrt(1.0 / hidden)
        host["b_y"] = np.zeros(num_classes)
        self.params = {k: self.backend.asarray(v, dtype=self.dtype) for k, v in host.items()}
        self.optimizer = make_optimizer(optimizer, self.params, lr, self.backend, momentum)
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {lr_schedule!r} (expected one of {', '.join(LR_SCHEDULES)})")
        self.clip = clip
        self.base_lr, self.lr_decay, self.lr_schedule, self.epochs = lr, lr_decay, lr_schedule, max(1, epochs)
        self._step = self.backend.graphed(self._update) if cuda_graph else self._update

    # -- the math -------------------------------------------------------------------------------

    def _time_major(self, x: Any) -> Any:
        return self.xp.ascontiguousarray(self.xp.asarray(x, dtype=self.dtype).transpose(1, 0, 2))

    def _logits(self, h: Any) -> Any:
        return self.backend.matmul(h, self.params["W_ya"]) + self.params["b_y"]

    def _softmax(self, logits: Any) -> Any:
        z = logits - logits.max(axis=1, keepdims=True)
        e = self.xp.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def loss_and_grads(self, x: Any, y: Any) -> tuple[Any, dict[str, Any]]:
        """Mean cross-entropy of a batch and its gradient for every parameter (BPTT).

        The batch is cut into shards (one per CPU thread); their summed losses and gradients are
        added in shard order, so a given ``threads`` setting is deterministic.
        """
        n = x.shape[0]
        parts = self.backend.map_shards(lambda i, rows: self._shard(self.cells[i], x[rows], y[rows], n), n)
        loss, grads = parts[0]
        for part_loss, part_grads in parts[1:]:
            loss = loss + part_loss
            for k, g in part_grads.items():
                grads[k] += g
        return loss / n, grads

    def _shard(self, cell: Cell, x: Any, y: Any, n: int) -> tuple[Any, dict[str, Any]]:
        """Summed cross-entropy of a shard of a batch of ``n``, and its share of the gradients."""
        xp, be, p = self.xp, self.backend, self.params
        h, cache = cell.forward(p, self._time_major(x), self.readout)
        logits = self._logits(h)
        z = logits - logits.max(axis=1, keepdims=True)
        log_p = z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))
        one_hot = (y[:, None] == xp.arange(logits.shape[1])).astype(log_p.dtype)  # no indexing: graph-safe
        loss = -(log_p * one_hot).sum()
        dlogits = xp.exp(log_p)  # softmax
        dlogits -= one_hot
        dlogits /= n
        grads = cell.backward(p, cache, be.matmul(dlogits, p["W_ya"].T))
        grads["W_ya"] = be.matmul(h.T, dlogits)
        grads["b_y"] = dlogits.sum(axis=0)
        return loss, grads

    # -- the Model interface --------------------------------------------------------------------

    def to_device(self, array: np.ndarray) -> Any:
        return self.backend.asarray(array)

    def train_batch(self, x: Any, y: Any) -> Any:
        self.optimizer.prepare()
        return self._step(x, y)

    def _update(self, x: Any, y: Any) -> Any:
        """Device work of one training step (what a CUDA graph captures): loss, BPTT, clip, update."""
        loss, grads = self.loss_and_grads(x, y)
        if self.clip > 0:
            clip_grad_norm(self.xp, grads, self.clip)
        self.optimizer.apply(self.params, grads)
        return loss

    def epoch_end(self, epoch: int) -> None:
        """Learning rate for the next epoch: ``lr * lr_decay**epoch`` (``exp``), or
        ``lr * (1 + cos(pi * epoch / epochs)) / 2`` (``cosine``, reaching 0 after ``epochs``)."""
        if self.lr_schedule == "cosine":
            self.optimizer.lr = self.base_lr * 0.5 * (1 + math.cos(math.pi * min(epoch, self.epochs) / self.epochs))
        else:
            self.optimizer.lr *= self.lr_decay

    def predict_proba(self, x: Any) -> np.ndarray:
        def proba(i: int, rows: slice) -> np.ndarray:
            h = self.cells[i].infer(self.params, self._time_major(chunk[rows]), self.readout)
            return self.backend.to_host(self._softmax(self._logits(h)))

        out = []
        for start in range(0, x.shape[0], PREDICT_CHUNK):
            chunk = x[start : start + PREDICT_CHUNK]
            out.extend(self.backend.map_shards(proba, chunk.shape[0]))
        return np.concatenate(out) if out else np.zeros((0, self._hparams["num_classes"]), self.dtype)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: self.backend.to_host(v).copy() for k, v in self.params.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        missing = set(self.params) ^ set(state)
        if missing:
            raise ValueError(f"parameter names differ: {sorted(missing)}")
        for k, v in self.params.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise ValueError(f"parameter {k}: shape {tuple(state[k].shape)}, expected {tuple(v.shape)}")
            v[...] = self.backend.asarray(state[k], dtype=self.dtype)

    def synchronize(self) -> None:
        self.backend.synchronize()

    def peak_memory_bytes(self) -> int | None:
        return self.backend.peak_memory_bytes()

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self._hparams)

    def num_parameters(self) -> int:
        return sum(int(v.size) for v in self.params.values())


class Workspace:
    """Preallocated buffers keyed by shape, so the hot loops allocate nothing per step."""

    def __init__(self) -> None:
        self._buffers: dict[tuple, Any] = {}

    def get(self, xp: Any, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        key = (name, shape, np.dtype(dtype).str, xp.__name__)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = xp.empty(shape, dtype=dtype)
        return buf
