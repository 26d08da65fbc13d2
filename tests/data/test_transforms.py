"""Transforms: class subset, parity, balance, split, centre, normalise — each against a direct
computation on the rows, plus derandomized hypothesis properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightscape.data import (
    Dataset,
    balance_classes,
    center,
    load,
    normalize,
    parity_labels,
    split_train_test,
)
from weightscape.errors import DatasetError

HYP = settings(derandomize=True, deadline=None, max_examples=40)


def _rows(x):
    """Multiset of the rows of x (as bytes), to compare point sets exactly."""
    return sorted(r.tobytes() for r in x)


def _toy(n=60, n_test=20, K=4, d=3, seed=0, counts=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n) if counts is None else np.repeat(np.arange(K), counts)
    yt = rng.integers(0, K, n_test)
    return Dataset(
        x=rng.standard_normal((len(y), d)),
        y=y.astype(np.int64),
        x_test=rng.standard_normal((n_test, d)),
        y_test=yt.astype(np.int64),
        task="multiclass",
        name="toy",
        classes=[f"c{k}" for k in range(K)],
        class_ids=list(range(10, 10 + K)),
    )


# -- subset / parity ----------------------------------------------------------------------------


def test_subset_classes_against_masks():
    raw = load("digits")
    ds = load("digits", classes=[7, 2, 9])
    assert ds.classes == ("7", "2", "9") and ds.class_ids == (7, 2, 9)
    for new, old in enumerate((7, 2, 9)):
        # the rows labelled `new` are exactly the source rows of digit `old`, in order
        assert np.array_equal(ds.x[ds.y == new], raw.x[raw.y == old])
    assert ds.P == int(np.isin(raw.y, [7, 2, 9]).sum())


def test_subset_by_name_and_errors():
    ds = load("iris", classes=["virginica", "setosa"])
    assert ds.classes == ("virginica", "setosa") and ds.P == 100
    with pytest.raises(DatasetError, match="not in iris"):
        load("iris", classes=[5])
    with pytest.raises(DatasetError, match="twice"):
        load("iris", classes=[1, 1])
    with pytest.raises(DatasetError, match="multiclass"):
        load("random", classes=[0])


def test_parity_labels():
    raw = load("digits")
    ds = load("digits", parity=True)
    assert ds.task == "binary" and ds.classes == ("even", "odd") and ds.y.dtype == np.float64
    np.testing.assert_array_equal(ds.y, np.where(raw.y % 2 == 1, 1.0, -1.0))
    # after a subset, parity follows the source digit, not the new label id
    sub = load("digits", classes=[3, 4], parity=True)
    raw34 = raw.y[np.isin(raw.y, [3, 4])]
    np.testing.assert_array_equal(sub.y, np.where(raw34 == 3, 1.0, -1.0))
    with pytest.raises(DatasetError, match="multiclass"):
        load("diabetes", parity=True)


def test_parity_uses_class_ids_of_toy():
    ds = parity_labels(_toy(K=3))  # class ids 10, 11, 12: even, odd, even
    base = _toy(K=3)
    np.testing.assert_array_equal(ds.y, np.where(base.y == 1, 1.0, -1.0))
    np.testing.assert_array_equal(ds.y_test, np.where(base.y_test == 1, 1.0, -1.0))


# -- balance ------------------------------------------------------------------------------------


def test_balance_counts_and_rows():
    base = _toy(counts=[5, 9, 3, 7])
    ds = balance_classes(base, seed=1)
    assert np.array_equal(np.bincount(ds.y), [3, 3, 3, 3])
    # the kept rows are source rows of the same class, in the source order
    pos = [np.flatnonzero((base.x == row).all(axis=1))[0] for row in ds.x]
    assert pos == sorted(pos) and np.array_equal(base.y[pos], ds.y)
    assert np.all(np.bincount(ds.y_test) == np.bincount(base.y_test).min())
    assert ds.provenance["transforms"][-1]["dropped_train"] == 24 - 12
    again = balance_classes(base, seed=1)
    assert np.array_equal(again.x, ds.x)  # seeded


def test_balance_errors():
    with pytest.raises(DatasetError, match="no point"):
        balance_classes(_toy(counts=[5, 0, 3, 7]))
    with pytest.raises(DatasetError, match="regression"):
        load("diabetes", balance=True)


# -- split --------------------------------------------------------------------------------------


def test_given_split_draws_from_each_part():
    base = _toy(n=80, n_test=30)
    ds = split_train_test(base, train_size=20, test_size=10, seed=3)
    assert set(_rows(ds.x)) <= set(_rows(base.x))
    assert set(_rows(ds.x_test)) <= set(_rows(base.x_test))
    assert ds.P == 20 and ds.n_test == 10
    keep = split_train_test(base, train_size=20, seed=3)
    assert np.array_equal(keep.x_test, base.x_test)  # a part without a size is kept as is


def test_pooled_split_partitions_the_pool():
    base = _toy(n=80, n_test=30)
    ds = split_train_test(base, train_size=50, mode="pooled", seed=3)
    assert ds.P == 50 and ds.n_test == 60
    assert _rows(np.concatenate([ds.x, ds.x_test])) == _rows(np.concatenate([base.x, base.x_test]))
    # labels travel with their rows
    lut = {r.tobytes(): c for r, c in zip(base.x, base.y, strict=True)}
    lut |= {r.tobytes(): c for r, c in zip(base.x_test, base.y_test, strict=True)}
    assert all(lut[r.tobytes()] == c for r, c in zip(ds.x_test, ds.y_test, strict=True))


def test_split_errors():
    base = _toy(n=10, n_test=5)
    with pytest.raises(DatasetError, match="exceeds"):
        split_train_test(base, train_size=11)
    with pytest.raises(DatasetError, match="exceed"):
        split_train_test(base, train_size=10, test_size=6, mode="pooled")
    with pytest.raises(DatasetError, match="split"):
        split_train_test(base, mode="random")
    with pytest.raises(DatasetError, match="train_size"):
        load("iris", train_size=0)


def test_geiger_preset_on_mnist_sample():
    ds = load("mnist-sample", preset="geiger2019-pca10", train_size=1000, test_size=500, seed=1)
    assert ds.task == "binary" and ds.d == 10 and ds.P == 1000 and ds.n_test == 500
    assert int(np.sum(ds.y == 1)) == 500  # balanced, stratified split: exactly P/2 per class
    assert int(np.sum(ds.y_test == 1)) == 250
    np.testing.assert_allclose(np.linalg.norm(ds.x, axis=1), np.sqrt(10), atol=1e-12)
    assert not set(_rows(ds.x)) & set(_rows(ds.x_test))
    names = [t["name"] for t in ds.provenance["transforms"]]
    # pca_fit="all": projected right after the (absent) class subset, before the row selection
    assert names == [
        "pca_project",
        "parity_labels",
        "balance_classes",
        "split_train_test",
        "center",
        "normalize",
    ]
    pca = ds.provenance["transforms"][0]
    assert pca["whiten"] and pca["fit"] == "all" and pca["n_fit"] == 5000


def test_zou_preset_on_mnist_sample():
    ds = load("mnist-sample", preset="zou2021-pca20", train_size=800, test_size=200, seed=2)
    assert ds.task == "multiclass" and ds.d == 20 and len(ds.classes) == 10
    assert ds.y.dtype == np.int64
    # centred on the training images (fit "train"), projected, not whitened
    assert np.max(np.abs(ds.x.mean(axis=0))) < 1e-12
    var = ds.x.var(axis=0, ddof=1)
    assert np.all(np.diff(var) < 0) and var[0] > 2  # decreasing raw variances, not unit


def test_preset_overrides_and_errors():
    # whiten=False reuses the cached fit of the test above (the fit does not depend on whiten)
    ds = load("mnist-sample", preset="geiger2019-pca10", whiten=False, train_size=100)
    assert ds.d == 10 and ds.provenance["preset_overrides"] == ["whiten"]
    assert ds.provenance["options"]["whiten"] is False
    with pytest.raises(DatasetError, match="preset"):
        load("mnist-sample", preset="geiger2019")
    with pytest.raises(DatasetError, match="multiclass"):
        load("random", preset="geiger2019-pca10")


# -- hypothesis properties ----------------------------------------------------------------------


@HYP
@given(
    P=st.integers(1, 30),
    d=st.integers(1, 6),
    seed=st.integers(0, 2**31),
    centre=st.booleans(),
)
def test_normalize_gives_sqrt_d_norms(P, d, seed, centre):
    ds = load("random", P=P, d=d, seed=seed, P_test=3)
    if centre and P > 1:
        ds = center(ds)
    out = normalize(ds)
    # sqrt(d) * x / |x|: one rounding per operation, ~1e-15 relative
    np.testing.assert_allclose(np.linalg.norm(out.x, axis=1), np.sqrt(d), atol=1e-12, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(out.x_test, axis=1), np.sqrt(d), atol=1e-12)
    # direction unchanged: out.x is a positive multiple of ds.x, row by row
    cos = np.sum(out.x * ds.x, axis=1) / (np.linalg.norm(ds.x, axis=1) * np.sqrt(d))
    np.testing.assert_allclose(cos, 1.0, atol=1e-12)


@HYP
@given(
    n=st.integers(2, 40),
    n_test=st.integers(0, 20),
    train_frac=st.floats(0.0, 1.0),
    test_frac=st.floats(0.0, 1.0),
    mode=st.sampled_from(["given", "pooled"]),
    stratify=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_split_sizes_and_disjointness(n, n_test, train_frac, test_frac, mode, stratify, seed):
    base = load("random", P=n, d=3, seed=seed, P_test=n_test, labels="iid")
    pooled = mode == "pooled" or n_test == 0
    avail_train = n + n_test if pooled else n
    P = max(1, int(train_frac * avail_train))
    avail_test = (n + n_test - P) if pooled else n_test
    T = int(test_frac * avail_test)
    ds = split_train_test(base, P, T, mode=mode, stratify=stratify, seed=seed)
    assert ds.P == P and ds.n_test == T
    pool = set(_rows(base.x)) | (set(_rows(base.x_test)) if n_test else set())
    assert set(_rows(ds.x)) <= pool
    if T:
        assert set(_rows(ds.x_test)) <= pool
        assert not set(_rows(ds.x)) & set(_rows(ds.x_test))
    if stratify:
        ypool = np.concatenate([base.y, base.y_test]) if pooled and n_test else base.y
        npos, nneg = int(np.sum(ypool > 0)), int(np.sum(ypool < 0))
        m = min(npos, nneg)
        # round-robin (class -1 first): alternate while both classes last, then the majority
        if P <= 2 * m:
            expect = P // 2
        else:
            expect = npos if npos == m else P - nneg
        assert int(np.sum(ds.y > 0)) == expect


@HYP
@given(
    counts=st.lists(st.integers(1, 12), min_size=2, max_size=5),
    seed=st.integers(0, 1000),
    P_frac=st.floats(0.0, 1.0),
)
def test_balance_then_stratified_split_is_exactly_balanced(counts, seed, P_frac):
    K = len(counts)
    ds = balance_classes(_toy(counts=counts, K=K), seed=seed)
    m = min(counts)
    assert np.array_equal(np.bincount(ds.y, minlength=K), [m] * K)
    P = max(1, int(P_frac * m * K))
    out = split_train_test(ds, P, mode="pooled", stratify=True, seed=seed)
    c = np.bincount(out.y, minlength=K)
    assert c.max() - c.min() <= 1 and c.sum() == P
    if P % K == 0:
        assert np.all(c == P // K)
