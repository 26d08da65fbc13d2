"""PCA against scikit-learn (the oracle), and the on-disk cache."""

import json

import numpy as np
import pytest
from sklearn.decomposition import PCA

from weightscape.data import _pca as pca_mod
from weightscape.data import fit_pca, load, pca_project
from weightscape.errors import DatasetError

# Data with a well-separated spectrum: eigenvector errors are ~ eps * lambda_max / gap ~ 1e-14,
# so 1e-10 is a safe bound for components, projections and whitened projections alike.
TOL = 1e-10


def _data(n, D, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.geomspace(10.0, 0.1, D)
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    return rng.standard_normal((n, D)) * scales @ q.T + rng.standard_normal(D)


def _align(a, b):
    """Flip the columns of ``a`` to the signs of ``b`` (PCA components are defined up to sign)."""
    s = np.sign(np.sum(a * b, axis=0))
    return a * s


@pytest.mark.parametrize(("n", "D", "solver"), [(40, 12, "svd"), (300, 12, "eigh"), (9, 20, "svd")])
@pytest.mark.parametrize("k", [1, 5])
def test_pca_equals_sklearn(n, D, solver, k):
    x = _data(n, D)
    fit = fit_pca(x, k)
    assert fit.solver == solver
    ref = PCA(n_components=k, svd_solver="full").fit(x)
    ref_w = PCA(n_components=k, svd_solver="full", whiten=True).fit(x)
    comps = _align(fit.components.T, ref.components_.T).T
    np.testing.assert_allclose(comps, ref.components_, atol=TOL, rtol=0)
    np.testing.assert_allclose(fit.explained_variance, ref.explained_variance_, rtol=TOL)
    np.testing.assert_allclose(fit.mean, ref.mean_, atol=TOL, rtol=0)
    xnew = _data(17, D, seed=1)
    for whiten, r in ((False, ref), (True, ref_w)):
        z = fit.transform(xnew, whiten=whiten)
        np.testing.assert_allclose(_align(z, r.transform(xnew)), r.transform(xnew), atol=TOL)


def test_both_solvers_agree_and_signs_are_fixed():
    x = _data(500, 8)
    a, b = fit_pca(x, 6, solver="svd"), fit_pca(x, 6, solver="eigh")
    # same deterministic sign convention (largest |entry| positive): no alignment needed
    np.testing.assert_allclose(a.components, b.components, atol=TOL)
    idx = np.argmax(np.abs(a.components), axis=1)
    assert np.all(a.components[np.arange(6), idx] > 0)


def test_whitened_projection_has_unit_covariance_on_fit_points():
    x = _data(200, 10)
    z = fit_pca(x, 4).transform(x, whiten=True)
    # exact algebra: the sample covariance (denominator n-1) of whitened scores is the identity
    np.testing.assert_allclose(np.cov(z.T), np.eye(4), atol=1e-12)


@pytest.mark.parametrize("k", [0, 13, 2.0, True])
def test_bad_k(k):
    with pytest.raises(DatasetError, match="pca="):
        fit_pca(_data(40, 12), k)


def test_rank_deficient_data_raises():
    x = np.repeat(_data(30, 2), 3, axis=1)  # 6 columns spanning 2 directions
    with pytest.raises(DatasetError, match="fewer than 3"):
        fit_pca(x, 3)


def test_cache_hit_is_identical(tmp_path, monkeypatch):
    x = _data(300, 12)
    key = {"source": "test"}
    fresh, info1 = pca_mod.fit_pca_cached(x, 4, key, tmp_path)
    assert not info1["cache_hit"]
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted([f"{info1['cache_key']}.npz", f"{info1['cache_key']}.json"])
    assert json.loads((tmp_path / f"{info1['cache_key']}.json").read_text())["k"] == 4

    def boom(*a, **k):
        raise AssertionError("refitted instead of reading the cache")

    monkeypatch.setattr(pca_mod, "fit_pca", boom)
    cached, info2 = pca_mod.fit_pca_cached(x, 4, key, tmp_path)
    assert info2["cache_hit"] and info2["cache_key"] == info1["cache_key"]
    for name in ("mean", "components", "explained_variance"):
        assert np.array_equal(getattr(cached, name), getattr(fresh, name))  # bitwise
    # other data (same key data, different content) must not hit this entry
    with pytest.raises(AssertionError, match="refitted"):
        pca_mod.fit_pca_cached(x + 1e-3, 4, key, tmp_path)


def test_damaged_cache_entry_is_refitted(tmp_path):
    x = _data(100, 6)
    fit, info = pca_mod.fit_pca_cached(x, 3, {}, tmp_path)
    (tmp_path / f"{info['cache_key']}.npz").write_bytes(b"garbage")
    again, info2 = pca_mod.fit_pca_cached(x, 3, {}, tmp_path)
    assert not info2["cache_hit"]
    assert np.array_equal(again.components, fit.components)


def test_load_twice_hits_cache_and_is_identical(tmp_path, monkeypatch):
    opts = dict(P=400, d=30, seed=2, P_test=50, pca=5, whiten=True, cache_dir=tmp_path)
    first = load("random", **opts)
    monkeypatch.setattr(pca_mod, "fit_pca", lambda *a, **k: pytest.fail("cache missed"))
    second = load("random", **opts)
    assert np.array_equal(first.x, second.x) and np.array_equal(first.x_test, second.x_test)
    assert first.provenance == second.provenance
    assert len(list(tmp_path.glob("*.npz"))) == 1


def test_load_pca_equals_sklearn_on_selected_points():
    """pca_fit="all": fitted on every digit image, applied to the selected training rows."""
    plain = load("digits", train_size=300, test_size=100, seed=4)
    for fit in ("all", "train"):
        ds = load("digits", train_size=300, test_size=100, seed=4, pca=6, pca_fit=fit)
        base = load("digits").x if fit == "all" else plain.x
        ref = PCA(n_components=6, svd_solver="full").fit(base)
        z = ref.transform(plain.x)
        np.testing.assert_allclose(_align(ds.x, z), z, atol=TOL)
        zt = ref.transform(plain.x_test)
        np.testing.assert_allclose(_align(ds.x_test, zt), zt, atol=TOL)
        (rec,) = [t for t in ds.provenance["transforms"] if t["name"] == "pca_project"]
        assert rec["n_fit"] == (1797 if fit == "all" else 300) and rec["fit"] == fit


def test_pca_project_standalone_fit_all(tmp_path):
    ds = load("random", P=60, d=8, P_test=40, seed=5)
    out = pca_project(ds, 3, fit="all", cache=False)
    ref = PCA(n_components=3, svd_solver="full").fit(np.concatenate([ds.x, ds.x_test]))
    np.testing.assert_allclose(_align(out.x, ref.transform(ds.x)), ref.transform(ds.x), atol=TOL)
    rec = out.provenance["transforms"][-1]
    assert rec["name"] == "pca_project" and rec["n_fit"] == 100 and "cache_key" not in rec
