"""The built-in datasets, with their download sources and published checksums.

Checksums are those published with the files and used by well-kept loaders: torchvision's
MD5s for MNIST (same files on the ossci-datasets and CVDF mirrors), Fashion-MNIST (Zalando's
site) and CIFAR-10 (University of Toronto); Keras's SHA-256s for its copy of Fashion-MNIST.
"""

from __future__ import annotations

from pathlib import Path

from seqbench.datasets.base import DatasetDef, Resource, Source
from seqbench.types import Preprocessing

#: The four IDX files of an MNIST-format dataset, in fingerprint order.
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

FASHION_ZALANDO = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_KERAS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
_FASHION_SHA256 = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

#: The team's CIFAR-10 development copy (its test images drawn from the official training set,
#: pixels from a JPEG copy: see the shared data README); recognised by its fingerprint, which
#: every run on it records, so that reports label its figures, old runs included.
CIFAR10_DEV_FINGERPRINT = "sha256:3ec83040d825faa04536def5f3638f42753f9c6403ecd7d70b350ddcef1b803b"
CIFAR10_DEV_LABEL = "CIFAR-10 dev split"

DATASETS: dict[str, DatasetDef] = {
    "mnist": DatasetDef(
        name="mnist",
        description="MNIST handwritten digits: 60,000/10,000 images, 28 rows of 28 pixels",
        subdir="mnist",
        format="idx",
        counts=(60_000, 10_000),
        class_names=tuple(str(d) for d in range(10)),
        resources=tuple(
            Resource(f, tuple(Source(m + f, f"md5:{_MNIST_MD5[f]}") for m in MNIST_MIRRORS))
            for f in IDX_FILES
        ),
    ),
    "fashion-mnist": DatasetDef(
        name="fashion-mnist",
        description="Fashion-MNIST clothing (Zalando): 60,000/10,000 images, 28 rows of 28 pixels",
        subdir="fashion-mnist",
        format="idx",
        counts=(60_000, 10_000),
        class_names=FASHION_CLASSES,
        resources=tuple(
            Resource(
                f,
                (
                    Source(FASHION_ZALANDO + f, f"md5:{_FASHION_MD5[f]}"),
                    Source(FASHION_KERAS + f, f"sha256:{_FASHION_SHA256[f]}"),
                ),
            )
            for f in IDX_FILES
        ),
        system_dirs=(DEBIAN_FASHION_DIR,),
        system_hint=f"or install Debian's dataset-fashion-mnist package ({DEBIAN_FASHION_DIR}/)",
    ),
    "cifar10": DatasetDef(
        name="cifar10",
        description="CIFAR-10 colour images: 50,000/10,000, 32 rows of 32 pixels x 3 colours (F=96)",
        subdir="cifar10",
        format="cifar",
        counts=(50_000, 10_000),
        resources=(Resource("cifar-10-python.tar.gz", (Source(CIFAR10_URL, f"md5:{CIFAR10_MD5}"),)),),
        channels=3,
        # chosen on validation accuracy (results/cifar10-dev-tuning/)
        preprocessing=Preprocessing(standardize=True, hflip=True, shift=2),
        provenance=((CIFAR10_DEV_FINGERPRINT, CIFAR10_DEV_LABEL),),
    ),
}
