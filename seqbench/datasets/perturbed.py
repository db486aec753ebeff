"""MNIST with its test images perturbed, for how robust a model trained on MNIST is
(``seqbench eval RUN -d mnist-noise -d mnist-shift -d mnist-scrambled``).

* ``mnist-noise``: Gaussian noise of standard deviation :data:`NOISE_SIGMA` added to every pixel
  (in ``[0, 1]``), clipped back to ``[0, 1]``, from ``numpy.random.default_rng(NOISE_SEED)``.
* ``mnist-shift``: every image moved :data:`SHIFT` pixels right and :data:`SHIFT` down, the
  uncovered edge black.
* ``mnist-scrambled``: the 784 pixels of every image in psMNIST's fixed order
  (:func:`seqbench.datasets.sequential.permutation`), read as 28 rows of 28 again.

All three keep MNIST's shape, labels and class names, so a model trained on ``mnist`` can be
evaluated on them; they are registered with :meth:`seqbench.DatasetSpec.derive` (train and test
alike, so that they can be trained on too) and, being for evaluation, are not in ``--all``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seqbench.types import DatasetSpec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

NOISE_SIGMA = 0.3
NOISE_SEED = 0
SHIFT = 2


def gaussian_noise(
    train_x: np.ndarray, test_x: np.ndarray, *, sigma: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Both splits plus seeded N(0, sigma²) noise per pixel, clipped to [0, 1] (float32)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return tuple(np.clip(x + rng.normal(0.0, sigma, x.shape).astype(np.float32), 0.0, 1.0) for x in (train_x, test_x))


def shift(train_x: np.ndarray, test_x: np.ndarray, *, right: int, down: int) -> tuple[np.ndarray, np.ndarray]:
    """Both splits' images (rows ``(N, T, F)`` of one value a pixel) moved ``right`` and ``down``
    pixels (0 to the image's size), the uncovered edge 0."""
    import numpy as np

    def move(x: np.ndarray) -> np.ndarray:
        out = np.zeros_like(x)
        out[:, down:, right:] = x[:, : x.shape[1] - down, : x.shape[2] - right]
        return out

    return move(train_x), move(test_x)


def permuted(train_x: np.ndarray, test_x: np.ndarray, *, permutation_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Both splits' pixels in the fixed order of ``permutation_seed``, in the images' shape."""
    from seqbench.datasets.sequential import permutation

    order = permutation(train_x.shape[1] * train_x.shape[2], permutation_seed)

    def permute(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1)[:, order].reshape(x.shape)

    return permute(train_x), permute(test_x)


def specs() -> list[DatasetSpec]:
    """The perturbed MNISTs, ready to register."""
    from seqbench.datasets.sequential import PERMUTATION_SEED

    return [
        DatasetSpec.derive(
            "mnist-noise", "mnist", gaussian_noise, identity="gaussian-noise/v1",
            params={"sigma": NOISE_SIGMA, "seed": NOISE_SEED}, in_all=False,
            description=f"MNIST plus Gaussian noise (sigma {NOISE_SIGMA} on [0, 1] pixels, clipped), for robustness",
        ),
        DatasetSpec.derive(
            "mnist-shift", "mnist", shift, identity="shift/v1", params={"right": SHIFT, "down": SHIFT}, in_all=False,
            description=f"MNIST moved {SHIFT} pixels right and {SHIFT} down, for robustness",
        ),
        DatasetSpec.derive(
            "mnist-scrambled", "mnist", permuted, identity="permuted/v1",
            params={"permutation_seed": PERMUTATION_SEED}, in_all=False,
            description="MNIST's pixels in psMNIST's fixed order, as 28 rows of 28, for robustness",
        ),
    ]
