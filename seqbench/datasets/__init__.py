"""The built-in datasets (MNIST, Fashion-MNIST, CIFAR-10) as row sequences.

Layout of a data directory (``--data-dir``, else ``SEQBENCH_DATA_DIR``, else
``$XDG_CACHE_HOME/seqbench`` or ``~/.cache/seqbench``)::

    mnist/           train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
                     t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
                     (uncompressed files, without ``.gz``, are accepted too)
    fashion-mnist/   the same four files (else /usr/share/datasets/fashion-mnist/, Debian's
                     ``dataset-fashion-mnist``)
    cifar10/         cifar-10-python.tar.gz, or the extracted cifar-10-batches-py/

Every load validates the files and computes a fingerprint, ``"sha256:<hex>"`` of the
decompressed content of the files used, concatenated in a fixed order: for MNIST-format data
what ``zcat train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz
t10k-labels-idx1-ubyte.gz | sha256sum`` prints; for CIFAR-10 ``data_batch_1`` to ``_5``,
``test_batch``, ``batches.meta``. It identifies the data however it was compressed.

Modules: :mod:`.paths` (where), :mod:`.catalog` (what, with download sources and checksums),
:mod:`.download` (verified fetching), :mod:`.idx`, :mod:`.mnist` and :mod:`.cifar` (reading
and validating), :mod:`.loader` (load, locate, fetch). Importing this package, the catalog or
the download module does not import NumPy; the readers do.
"""

from seqbench.datasets.errors import DataError
from seqbench.datasets.paths import resolve_data_dir

__all__ = ["DataError", "resolve_data_dir"]
