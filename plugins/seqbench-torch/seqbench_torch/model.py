"""A PyTorch recurrent classifier behind the :class:`seqbench.Model` interface.

``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (batch first, one layer, PyTorch's default initialisation)
and an ``nn.Linear`` head on the last step's output. The data is moved to the device once by
:meth:`to_device` and the harness indexes it there; nothing is copied back per step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from seqbench import Model

PREDICT_CHUNK = 4096
#: Rows x steps of one inference chunk: nn.RNN/LSTM/GRU return every step's output, (rows, T, H),
#: so long sequences (sMNIST: 784 steps) are evaluated in fewer rows at a time.
PREDICT_STEPS = PREDICT_CHUNK * 32


class RecurrentNet(nn.Module):
    """A recurrent layer and a linear head on its last time step (``readout="last"``) or on the
    mean of all its steps (``"mean"``)."""

    def __init__(self, cell: str, n_features: int, hidden: int, num_classes: int, readout: str = "last") -> None:
        super().__init__()
        if readout not in ("last", "mean"):
            raise ValueError(f"unknown readout {readout!r} (expected last or mean)")
        layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = layer(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)
        self.readout = readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # (B, T, H)
        return self.head(out.mean(dim=1) if self.readout == "mean" else out[:, -1])


def pick_device(device: str | None = None) -> torch.device:
    """``device`` (``"cuda"`` means the current CUDA device), else CUDA when there is one, else the CPU."""
    chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if chosen.type == "cuda" and chosen.index is None:
        chosen = torch.device("cuda", torch.cuda.current_device())
    return chosen


class TorchRecurrentClassifier(Model):
    """A :class:`RecurrentNet` trained by Adam, SGD or momentum SGD, with clipping and decay.

    The options mean what they mean for the from-scratch models: ``clip`` is the global L2
    norm of all gradients (0 disables), ``lr_decay`` multiplies the learning rate after each
    epoch (``lr_schedule="exp"``) or ``"cosine"`` anneals it to 0 over ``epochs``, ``momentum``
    is used by the ``momentum`` optimizer only, ``readout`` is the head's input (``"last"``
    step or ``"mean"`` of all steps).
    """

    def __init__(
        self,
        cell: str,
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
        readout: str = "last",
        dtype: str = "float32",
        device: str | None = None,
    ) -> None:
        self.torch_device = pick_device(device)
        self.dtype = getattr(torch, dtype)
        torch.manual_seed(seed)
        self.net = RecurrentNet(cell, n_features, hidden, num_classes, readout).to(self.torch_device, self.dtype)
        params = self.net.parameters()
        if optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr)
        elif optimizer in ("sgd", "momentum"):
            self.optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum if optimizer == "momentum" else 0.0)
        else:
            raise ValueError(f"unknown optimizer {optimizer!r} (expected one of adam, sgd, momentum)")
        if lr_schedule not in ("exp", "cosine"):
            raise ValueError(f"unknown lr_schedule {lr_schedule!r} (expected exp or cosine)")
        self.clip, self.lr_decay, self.lr_schedule = clip, lr_decay, lr_schedule
        self.epochs, self.base_lr = max(1, epochs), lr
        self.cuda = self.torch_device.type == "cuda"
        if self.cuda:
            self.device = f"{self.torch_device} ({torch.cuda.get_device_name(self.torch_device)})"
            torch.cuda.reset_peak_memory_stats(self.torch_device)
        else:
            self.device = str(self.torch_device)
        self._hparams = {
            "cell": cell, "n_features": n_features, "num_classes": num_classes, "hidden": hidden,
            "seed": seed, "optimizer": optimizer, "lr": lr, "momentum": momentum, "clip": clip,
            "lr_decay": lr_decay, "lr_schedule": lr_schedule, "epochs": epochs, "readout": readout, "dtype": dtype,
            "torch": torch.__version__,
            "cudnn": torch.backends.cudnn.version() if self.cuda else None,
        }

    def to_device(self, array: np.ndarray) -> torch.Tensor:
        """Integer arrays become long tensors (labels, indices), the rest the model's dtype."""
        dtype = torch.long if np.issubdtype(array.dtype, np.integer) else self.dtype
        return torch.as_tensor(array, dtype=dtype, device=self.torch_device)

    def _input(self, x: Any) -> torch.Tensor:
        return x if isinstance(x, torch.Tensor) else self.to_device(np.asarray(x))

    def train_batch(self, x: Any, y: Any) -> torch.Tensor:
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(self.net(self._input(x)), self._input(y))
        loss.backward()
        if self.clip > 0:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.clip)
        self.optimizer.step()
        return loss.detach()  # a 0-d device tensor: the harness converts once per epoch

    def epoch_end(self, epoch: int) -> None:
        for group in self.optimizer.param_groups:
            if self.lr_schedule == "cosine":
                group["lr"] = self.base_lr * 0.5 * (1 + math.cos(math.pi * min(epoch, self.epochs) / self.epochs))
            else:
                group["lr"] *= self.lr_decay

    @torch.inference_mode()
    def predict_proba(self, x: Any) -> np.ndarray:
        self.net.eval()
        x = self._input(x)
        rows = max(1, min(PREDICT_CHUNK, PREDICT_STEPS // max(1, x.shape[1])))
        out = [torch.softmax(self.net(x[i : i + rows]), dim=1) for i in range(0, x.shape[0], rows)]
        if not out:
            return np.zeros((0, self.net.head.out_features), np.float32)
        return torch.cat(out).cpu().numpy()

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.net.state_dict().items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self.net.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})

    def synchronize(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.torch_device)

    def peak_memory_bytes(self) -> int | None:
        return int(torch.cuda.max_memory_allocated(self.torch_device)) if self.cuda else None

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self._hparams)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())
