"""The pixel-by-pixel tasks of the sequence-model literature, derived from the row datasets.

* ``smnist``: MNIST one pixel a step, row-major (step ``28 r + c`` is pixel ``(r, c)``): ``(784, 1)``.
* ``psmnist``: the same sequence in one fixed random order of the 784 positions,
  ``numpy.random.default_rng(PERMUTATION_SEED).permutation(784)``: the same on every machine
  (NumPy's ``Generator`` streams are stable) and part of the dataset's fingerprint.
* ``scifar10``: CIFAR-10 one pixel a step, row-major over the 32 x 32 pixels, the pixel's
  R, G, B as the step's 3 values: ``(1024, 3)``.
* ``fashion-smnist``: Fashion-MNIST as ``smnist``.

They are registered with :meth:`seqbench.DatasetSpec.derive`, as a plugin would register them
(registering imports nothing heavy: NumPy is imported when a dataset is loaded).
Preprocessing: the MNISTs declare none, as their sources. ``scifar10`` declares per-channel
standardisation only: the source's flips and shifts move pixels within rows of an image, which
a sequence of pixels no longer has (the literature's sCIFAR is trained without augmentation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seqbench.types import DatasetSpec, Preprocessing

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: The seed of psMNIST's permutation (``numpy.random.default_rng(PERMUTATION_SEED).permutation(784)``).
PERMUTATION_SEED = 0


def pixels(train_x: np.ndarray, test_x: np.ndarray, *, channels: int = 1,
           permutation_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(N, T, F)`` of pixels of ``channels`` values as one pixel a step,
    ``(N, T * F / channels, channels)``, row-major; in the fixed order of ``permutation_seed`` when given."""
    train, test = (x.reshape(len(x), -1, channels) for x in (train_x, test_x))
    if permutation_seed is not None:
        order = permutation(train.shape[1], permutation_seed)
        train, test = train[:, order], test[:, order]
    return train, test


def permutation(length: int, seed: int = PERMUTATION_SEED) -> np.ndarray:
    """The fixed order of ``length`` positions for ``seed``: the same on every machine."""
    import numpy as np

    return np.random.default_rng(seed).permutation(length)


def specs() -> list[DatasetSpec]:
    """The derived pixel-sequence datasets, ready to register; a run includes them when it
    names them (hours a pair on a CPU), not in ``--all``."""
    return [
        DatasetSpec.derive(
            "smnist", "mnist", pixels, identity="pixels/v1",
            description="sequential MNIST: one pixel a step, row-major, 784 steps x 1 value",
            in_all=False,
        ),
        DatasetSpec.derive(
            "psmnist", "mnist", pixels, identity="pixels/v1", params={"permutation_seed": PERMUTATION_SEED},
            description=f"permuted sequential MNIST: the 784 pixels in one fixed random order "
                        f"(numpy default_rng({PERMUTATION_SEED}).permutation(784)), 784 steps x 1 value",
            in_all=False,
        ),
        DatasetSpec.derive(
            "scifar10", "cifar10", pixels, identity="pixels/v1", params={"channels": 3},
            preprocessing=Preprocessing(standardize=True),
            description="sequential CIFAR-10: one pixel a step, row-major over the 32x32 pixels, "
                        "1024 steps x 3 values (R, G, B); standardised, not augmented",
            in_all=False,
        ),
        DatasetSpec.derive(
            "fashion-smnist", "fashion-mnist", pixels, identity="pixels/v1",
            description="sequential Fashion-MNIST: one pixel a step, row-major, 784 steps x 1 value",
            in_all=False,
        ),
    ]
