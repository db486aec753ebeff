"""What the harness does to a dataset's arrays, identically for every model of a run.

A row sequence ``x`` of shape ``(N, T, F)`` is an image of T rows of ``W = F // C`` pixels with
``C`` values each (:attr:`Dataset.channels`): MNIST has C=1, CIFAR-10 C=3 (R, G, B side by side).

* **Standardisation**: ``x <- (x - mean_c) / std_c`` per channel c, with mean and std computed
  from the training rows only (never validation, never test), then applied to all three splits.
* **Augmentation**, training batches only, from a generator seeded by the pair's seed:
  a horizontal flip (the W pixels of every row reversed) with probability 1/2, and a translation
  by ``dy, dx`` uniform in ``[-shift, shift]`` pixels with zeros filling the border (the mean,
  once standardised).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqbench.types import Preprocessing


def as_images(x: np.ndarray, channels: int) -> np.ndarray:
    """View ``(N, T, F)`` rows as ``(N, T, W, C)`` images."""
    n, t, f = x.shape
    if channels < 1 or f % channels:
        raise ValueError(f"{f} features per step do not split into pixels of {channels} channel(s)")
    return x.reshape(n, t, f // channels, channels)


def channel_stats(x: np.ndarray, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of ``x`` (float64; a zero std becomes 1)."""
    img = as_images(x, channels)
    mean = np.zeros(channels)
    var = np.zeros(channels)
    for c in range(channels):  # one channel at a time: no float64 copy of the whole set
        values = img[..., c]
        mean[c] = values.mean(dtype=np.float64)
        var[c] = np.square(values - np.float32(mean[c]), dtype=np.float64).mean()
    std = np.sqrt(var)
    std[std == 0] = 1.0
    return mean, std


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray, channels: int) -> np.ndarray:
    """A new float32 array ``(x - mean) / std``, per channel."""
    out = as_images(x, channels).astype(np.float32)  # a copy: the dataset's arrays stay as loaded
    out -= mean.astype(np.float32)
    out /= std.astype(np.float32)
    return out.reshape(x.shape)


class Augmenter:
    """Random flips and shifts of training batches, deterministic for a seed."""

    def __init__(self, hflip: bool, shift: int, channels: int, seed: int) -> None:
        self.hflip, self.shift, self.channels = hflip, int(shift), channels
        self.rng = np.random.default_rng([seed, 0xA06])

    @property
    def active(self) -> bool:
        return self.hflip or self.shift > 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """An augmented copy of the batch ``x`` ``(B, T, F)``."""
        img = as_images(x, self.channels)
        b, t, w, _ = img.shape
        s = self.shift
        flip = self.rng.random(b) < 0.5 if self.hflip else np.zeros(b, bool)
        dy, dx = self.rng.integers(-s, s + 1, size=(2, b)) if s else np.zeros((2, b), np.int64)
        out = np.zeros_like(img)
        src = img.copy()
        src[flip] = src[flip, :, ::-1]
        # a shift by (dy, dx) copies the overlapping window; one slice copy per distinct shift
        for oy, ox in set(zip(dy.tolist(), dx.tolist(), strict=True)):
            sel = (dy == oy) & (dx == ox)
            out[sel, max(oy, 0) : t + min(oy, 0), max(ox, 0) : w + min(ox, 0)] = src[
                sel, max(-oy, 0) : t + min(-oy, 0), max(-ox, 0) : w + min(-ox, 0)
            ]
        return out.reshape(x.shape)


def plan(declared: Preprocessing, standardize: bool, augment: bool) -> Preprocessing:
    """What a run applies: the dataset's declaration less what the run turned off."""
    return Preprocessing(
        standardize=declared.standardize and standardize,
        hflip=declared.hflip and augment,
        shift=declared.shift if augment else 0,
    )


def record(p: Preprocessing, stats: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """The JSON record of what was applied, with the statistics used."""
    out: dict[str, Any] = {"standardize": p.standardize, "hflip": p.hflip, "shift": p.shift}
    if stats is not None:
        out["mean"] = [float(v) for v in stats[0]]
        out["std"] = [float(v) for v in stats[1]]
    return out
