"""The random data set: seeding, exact label balance, Gaussian inputs, centring, normalisation."""

import numpy as np
import pytest
from scipy import stats

from weightscape.data import load
from weightscape.errors import DatasetError


def test_seeded_identical_and_seed_sensitive():
    a = load("random", P=50, d=7, seed=3, P_test=10)
    b = load("random", P=50, d=7, seed=3, P_test=10)
    c = load("random", P=50, d=7, seed=4, P_test=10)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x, c.x)
    # the generator is numpy's default_rng(seed): the training inputs are its first draws
    assert np.array_equal(a.x, np.random.default_rng(3).standard_normal((50, 7)))


def test_test_set_does_not_change_training_set():
    a = load("random", P=40, d=3, seed=1)
    b = load("random", P=40, d=3, seed=1, P_test=25)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and b.n_test == 25


@pytest.mark.parametrize(("P", "plus"), [(100, 50), (2, 1), (7, 4), (1, 1)])
def test_balanced_labels_exact(P, plus):
    ds = load("random", P=P, d=2, seed=9)
    assert ds.y.dtype == np.float64 and set(np.unique(ds.y)) <= {-1.0, 1.0}
    assert int(np.sum(ds.y == 1)) == plus and int(np.sum(ds.y == -1)) == P - plus


def test_balanced_labels_are_shuffled():
    y = load("random", P=1000, d=1, seed=0).y
    # a shuffled vector has ~P/2 sign changes between neighbours; sorted has 1
    assert np.sum(y[1:] != y[:-1]) > 400


def test_iid_labels_statistics():
    """Binomial(P, 1/2) count of +1: seeded, so deterministic; bound at 5 sigma."""
    P = 20000
    y = load("random", P=P, d=1, seed=11, labels="iid").y
    assert abs(np.sum(y == 1) - P / 2) < 5 * np.sqrt(P) / 2


def test_inputs_are_standard_gaussian():
    """One Kolmogorov-Smirnov test on all entries (seeded): p-value above 1e-3."""
    x = load("random", P=2000, d=5, seed=7).x
    assert stats.kstest(x.ravel(), "norm").pvalue > 1e-3
    # independent coordinates: sample covariance close to I (entries ~ 1/sqrt(P) = 0.022; 5 sigma)
    assert np.max(np.abs(np.cov(x.T) - np.eye(5))) < 5 / np.sqrt(2000)


def test_center_then_normalize():
    ds = load("random", P=300, d=11, seed=2, P_test=30, center=True)
    # exact algebra up to round-off: mean of O(1) entries over 300 rows, error ~ 1e-16 * sqrt(P)
    assert np.max(np.abs(ds.x.mean(axis=0))) < 1e-12
    ds = load("random", P=300, d=11, seed=2, P_test=30, center=True, normalize="sqrt_d")
    np.testing.assert_allclose(np.linalg.norm(ds.x, axis=1), np.sqrt(11), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(ds.x_test, axis=1), np.sqrt(11), rtol=0, atol=1e-12)
    names = [t["name"] for t in ds.provenance["transforms"]]
    assert names == ["center", "normalize"]


@pytest.mark.parametrize(
    ("opts", "match"),
    [
        ({"P": 0}, "P=0"),
        ({"P": -3}, "P=-3"),
        ({"P": 2.5}, "P=2.5"),
        ({"d": True}, "d=True"),
        ({"labels": "half"}, "labels"),
        ({"seed": -1}, "seed"),
        ({"P_test": -1}, "P_test"),
    ],
)
def test_bad_random_options(opts, match):
    with pytest.raises(DatasetError, match=match):
        load("random", **opts)
