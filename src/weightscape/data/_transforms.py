r"""Transforms of a :class:`Dataset`; each returns a new data set and appends a record (its name,
options and seed) to ``provenance["transforms"]``.

:func:`weightscape.data.load` applies them in this fixed order (each only when asked):

1. :func:`subset_classes` — keep some classes (``classes=[...]``), relabel ``0..K-1``;
2. :func:`pca_project` with ``pca_fit="all"`` — PCA fitted on every point (train and test) of
   the selected classes, so the fit does not depend on seeds or sizes (one cache entry);
3. :func:`parity_labels` — digit parity as a binary label (even −1, odd +1);
4. :func:`balance_classes` — subsample every class to the smallest count (train and test each);
5. :func:`split_train_test` — seeded selection of ``train_size`` / ``test_size`` points, from the
   given train and test sets, or from their pool ("pooled": first P train, the rest test);
6. :func:`pca_project` with ``pca_fit="train"`` — PCA fitted on the final training points;
7. :func:`center` — subtract the mean of the training inputs (train and test);
8. :func:`normalize` — rescale every input to norm :math:`\sqrt{d}`.

The projection acts row by row, so projecting before steps 3-5 (step 2) gives the rows that
projecting after them would; it only makes the selection work on ``k`` columns instead of
``D``. Centring comes after PCA so that a whitened, centred, normalised set is exactly the
jamming protocol's (PCA itself centres on its fit points, which need not be the training
points).
Random streams: a transform with ``seed`` draws from ``numpy.random.default_rng([stage, seed])``
with a fixed ``stage`` per transform, so two transforms never share a stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ._dataset import Dataset
from ._pca import PCAFit, fit_pca_cached
from ._sources import check_choice, check_int

__all__ = [
    "NORMALIZE_MODES",
    "SPLIT_MODES",
    "balance_classes",
    "center",
    "normalize",
    "parity_labels",
    "pca_project",
    "split_train_test",
    "subset_classes",
]

SPLIT_MODES = ("given", "pooled")
NORMALIZE_MODES = ("sqrt_d",)
_STAGE_BALANCE, _STAGE_SPLIT = 1, 2


def _rng(stage: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([stage, seed])


def _label_ids(ds: Dataset, y: np.ndarray) -> np.ndarray:
    """Class index of each label: 0/1 for binary (−1/+1), the id for multiclass."""
    if ds.task == "regression":
        raise DatasetError(f"{ds.name} is a regression set: it has no classes to balance/stratify")
    return (y > 0).astype(np.int64) if ds.task == "binary" else y


def _n_classes(ds: Dataset) -> int:
    return 2 if ds.task == "binary" else len(ds.classes)


# -- labels -------------------------------------------------------------------------------------


def subset_classes(ds: Dataset, classes: Sequence[int | str]) -> Dataset:
    """Keep the points of the listed classes; class ``classes[i]`` becomes label ``i``.

    Args:
        ds: a multiclass data set.
        classes: source class ids (e.g. digits ``[3, 5]``) or class names, at least one, no
            repeats.
    """
    if ds.task != "multiclass" or ds.class_ids is None:
        raise DatasetError(f"classes=... needs a multiclass data set; {ds.name} is {ds.task}")
    if isinstance(classes, str | bytes) or not isinstance(classes, Sequence) or not classes:
        raise DatasetError(f"classes={classes!r} must be a non-empty list of class ids or names")
    pos = []
    for c in classes:
        if isinstance(c, int | np.integer) and not isinstance(c, bool) and c in ds.class_ids:
            pos.append(ds.class_ids.index(int(c)))
        elif isinstance(c, str) and c in ds.classes:
            pos.append(ds.classes.index(c))
        else:
            raise DatasetError(
                f"class {c!r} is not in {ds.name}; allowed ids {list(ds.class_ids)} "
                f"or names {list(ds.classes)}"
            )
    if len(set(pos)) != len(pos):
        raise DatasetError(f"classes={list(classes)!r} lists a class twice")
    lut = np.full(len(ds.classes), -1, dtype=np.int64)
    lut[pos] = np.arange(len(pos))

    def sel(x, y):
        if x is None:
            return None, None
        new = lut[y]
        keep = new >= 0
        return x[keep], new[keep]

    x, y = sel(ds.x, ds.y)
    xt, yt = sel(ds.x_test, ds.y_test)
    record = {"name": "subset_classes", "class_ids": [ds.class_ids[p] for p in pos]}
    return ds.with_transform(
        record,
        x=x,
        y=y,
        x_test=xt,
        y_test=yt,
        classes=tuple(ds.classes[p] for p in pos),
        class_ids=tuple(ds.class_ids[p] for p in pos),
    )


def parity_labels(ds: Dataset) -> Dataset:
    """Binary labels from the parity of the source class id: even −1, odd +1.

    Args:
        ds: a multiclass data set with integer class ids (digits; Fashion-MNIST's ids 0..9).
    """
    if ds.task != "multiclass" or ds.class_ids is None:
        raise DatasetError(f"parity=True needs a multiclass data set; {ds.name} is {ds.task}")
    odd = np.asarray(ds.class_ids, dtype=np.int64) % 2 == 1

    def lab(y):
        return None if y is None else np.where(odd[y], 1.0, -1.0)

    record = {"name": "parity_labels", "rule": "class id even -> -1, odd -> +1"}
    return ds.with_transform(
        record,
        y=lab(ds.y),
        y_test=lab(ds.y_test),
        task="binary",
        classes=("even", "odd"),
        class_ids=None,
    )


def _balanced_indices(ids: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    counts = np.bincount(ids, minlength=n_classes)
    m = int(counts.min())
    keep = [rng.choice(np.flatnonzero(ids == c), size=m, replace=False) for c in range(n_classes)]
    return np.sort(np.concatenate(keep))  # keep the points' original order


def balance_classes(ds: Dataset, seed: int = 0) -> Dataset:
    """Subsample every class to the size of the smallest one, in train and test separately.

    The kept points of each class are a uniform random subset (seeded); their original order
    is kept.

    Raises:
        DatasetError: a regression set, or a class without any point.
    """
    seed = check_int("seed", seed, 0)
    rng = _rng(_STAGE_BALANCE, seed)
    K = _n_classes(ds)
    record = {"name": "balance_classes", "seed": seed, "rng": f"default_rng([1, {seed}])"}
    changes = {}
    for part, xs, ys in (("train", ds.x, ds.y), ("test", ds.x_test, ds.y_test)):
        if xs is None:
            continue
        ids = _label_ids(ds, ys)
        counts = np.bincount(ids, minlength=K)
        if counts.min() == 0:
            empty = [ds.classes[c] for c in np.flatnonzero(counts == 0)]
            raise DatasetError(f"cannot balance the {part} set of {ds.name}: no point of {empty}")
        keep = _balanced_indices(ids, K, rng)
        suffix = "" if part == "train" else "_test"
        changes[f"x{suffix}"], changes[f"y{suffix}"] = xs[keep], ys[keep]
        record[f"per_class_{part}"] = int(counts.min())
        record[f"dropped_{part}"] = int(len(ids) - len(keep))
    return ds.with_transform(record, **changes)


# -- split --------------------------------------------------------------------------------------


def _order(ids: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random order of ``n`` points; stratified (classes interleaved round-robin) if ``ids``."""
    perm = rng.permutation(n)
    if ids is None:
        return perm
    yp = ids[perm]
    rank = np.empty(n, dtype=np.int64)
    for c in np.unique(yp):
        where = np.flatnonzero(yp == c)
        rank[where] = np.arange(len(where))
    # round r holds the r-th point of every class (classes in id order): any prefix has class
    # counts that differ by at most one while every class still has points.
    return perm[np.lexsort((yp, rank))]


def _take(n: int, size: int | None, what: str, name: str) -> int:
    if size is None:
        return n
    if size > n:
        raise DatasetError(f"{what}={size} exceeds the {n} points available in {name}")
    return size


def split_train_test(
    ds: Dataset,
    train_size: int | None = None,
    test_size: int | None = None,
    mode: str = "given",
    stratify: bool = False,
    seed: int = 0,
) -> Dataset:
    """Seeded choice of the training and test points.

    ``mode="given"`` and the set has a test part: ``train_size`` points are drawn from the
    training part and ``test_size`` from the test part (a part whose size is None is kept as
    is, unshuffled). Otherwise (``mode="pooled"``, the jamming protocol, or no test part): the
    training and test parts are pooled and put in a seeded random order; the first
    ``train_size`` points are the training set and the next ``test_size`` (default: all the
    rest) the test set. ``train_size`` defaults to all points not used by ``test_size``.

    Args:
        ds: the data set.
        train_size: number of training points P (>= 1) or None.
        test_size: number of test points (>= 0; 0: no test set) or None.
        mode: ``"given"`` or ``"pooled"``.
        stratify: make class counts as equal as possible (differ by at most one; exactly equal
            when the classes divide the size and the set is balanced).
        seed: seed of the random order.
    """
    check_choice("split", mode, SPLIT_MODES)
    if train_size is not None:
        train_size = check_int("train_size", train_size, 1)
    if test_size is not None:
        test_size = check_int("test_size", test_size, 0)
    seed = check_int("seed", seed, 0)
    rng = _rng(_STAGE_SPLIT, seed)

    def pick(xs, ys, size, what):
        n = len(ys)
        size = _take(n, size, what, ds.name)
        ids = _label_ids(ds, ys) if stratify else None
        idx = _order(ids, n, rng)[:size]
        idx = idx[rng.permutation(size)]  # undo the round-robin pattern of a stratified order
        return xs[idx], ys[idx]

    record = {
        "name": "split_train_test",
        "mode": mode,
        "train_size": train_size,
        "test_size": test_size,
        "stratify": bool(stratify),
        "seed": seed,
        "rng": f"default_rng([2, {seed}])",
    }
    if mode == "given" and ds.x_test is not None:
        x, y, xt, yt = ds.x, ds.y, ds.x_test, ds.y_test
        if train_size is not None:
            x, y = pick(ds.x, ds.y, train_size, "train_size")
        if test_size is not None:
            xt, yt = pick(ds.x_test, ds.y_test, test_size, "test_size")
        record["pooled"] = False
    else:
        if ds.x_test is not None:
            xs = np.concatenate([ds.x, ds.x_test])
            ys = np.concatenate([ds.y, ds.y_test])
        else:
            xs, ys = ds.x, ds.y
        n = len(ys)
        if test_size is not None and test_size > n - (1 if train_size is None else train_size):
            raise DatasetError(
                f"train_size={train_size} + test_size={test_size} exceed the {n} points "
                f"available in {ds.name}"
            )
        ntr = _take(n, train_size, "train_size", ds.name) if train_size else n - (test_size or 0)
        nte = test_size if test_size is not None else n - ntr
        ids = _label_ids(ds, ys) if stratify else None
        order = _order(ids, n, rng)
        tr, te = order[:ntr], order[ntr : ntr + nte]
        tr, te = tr[rng.permutation(len(tr))], te[rng.permutation(len(te))]
        x, y = xs[tr], ys[tr]
        xt, yt = (xs[te], ys[te]) if nte > 0 else (None, None)
        record["pooled"] = True
    if xt is not None and len(yt) == 0:
        xt, yt = None, None
    record["P"], record["n_test"] = len(y), 0 if yt is None else len(yt)
    return ds.with_transform(record, x=x, y=y, x_test=xt, y_test=yt)


# -- inputs -------------------------------------------------------------------------------------


def pca_project(
    ds: Dataset,
    k: int,
    whiten: bool = False,
    fit: str = "train",
    cache_dir: str | Path | None = None,
    cache: bool = True,
    fitted: PCAFit | None = None,
) -> Dataset:
    r"""Project the inputs on ``k`` principal components (see :mod:`weightscape.data._pca`).

    .. math:: z = (x - \bar x_\mathrm{fit})\, V_k \;[\,/\sqrt{\mathrm{var}_k}\ \text{if whiten}]

    Args:
        ds: the data set, inputs ``[P, D]``.
        k: number of components.
        whiten: divide each component by its standard deviation on the fit points.
        fit: ``"train"`` (fit on the training inputs) or ``"all"`` (training and test inputs).
        cache_dir: folder of the PCA cache (default ``~/.cache/weightscape/pca``).
        cache: use the on-disk cache.
        fitted: a fit made beforehand (then ``fit`` only labels the record).

    Returns:
        The data set with inputs ``[P, k]`` (and test inputs ``[P_test, k]``).
    """
    check_choice("pca_fit", fit, ("train", "all"))
    if not isinstance(whiten, bool):
        raise DatasetError(f"whiten={whiten!r} must be true or false")
    record = {"name": "pca_project", "k": k, "whiten": whiten, "fit": fit}
    if fitted is None:
        xfit = [ds.x, ds.x_test] if fit == "all" and ds.x_test is not None else [ds.x]
        if cache:
            key = {
                "source": ds.provenance.get("source"),
                "transforms": ds.provenance.get("transforms", []),
                "fit": fit,
            }
            fitted, _ = fit_pca_cached(xfit, k, key, cache_dir)
        else:
            from ._pca import fit_pca

            fitted = fit_pca(np.concatenate(xfit), k)
    elif fitted.k != k or fitted.mean.shape != (ds.d,):
        raise DatasetError(f"the given PCA fit has k={fitted.k}, D={fitted.mean.shape[0]}")
    if fitted.cache_key is not None:
        record["cache_key"] = fitted.cache_key
    record.update(
        n_fit=fitted.n_fit,
        solver=fitted.solver,
        explained_variance=[float(v) for v in fitted.explained_variance],
    )
    xt = None if ds.x_test is None else fitted.transform(ds.x_test, whiten)
    return ds.with_transform(record, x=fitted.transform(ds.x, whiten), x_test=xt)


def center(ds: Dataset) -> Dataset:
    """Subtract the empirical mean of the training inputs from the training and test inputs.

    Afterwards ``x.mean(0) == 0`` up to round-off.
    """
    if ds.P == 0:
        raise DatasetError("cannot centre an empty training set")
    mean = ds.x.mean(axis=0)
    xt = None if ds.x_test is None else ds.x_test - mean
    record = {"name": "center", "over": "training inputs", "mean_norm": float(np.linalg.norm(mean))}
    return ds.with_transform(record, x=ds.x - mean, x_test=xt)


def normalize(ds: Dataset, mode: str = "sqrt_d") -> Dataset:
    r"""Rescale each input (train and test) to Euclidean norm :math:`\sqrt{d}`.

    .. math:: x_\mu \leftarrow \sqrt{d}\, x_\mu / \lVert x_\mu \rVert

    Raises:
        DatasetError: an input of norm zero.
    """
    check_choice("normalize", mode, NORMALIZE_MODES)
    target = np.sqrt(ds.d)

    def scale(x, part):
        if x is None:
            return None
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise DatasetError(f"normalize: {part} input {int(np.argmin(norms))} has norm 0")
        return x * (target / norms)

    record = {"name": "normalize", "mode": mode, "norm": float(target)}
    return ds.with_transform(record, x=scale(ds.x, "train"), x_test=scale(ds.x_test, "test"))
