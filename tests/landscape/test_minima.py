"""Oracles for batched GD restarts and the reusable analysis helpers: the H = 2 ground state
(eigh), agreement with exhaustive enumeration, hand-computable clustering/overlap/fit cases."""

import math

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError
from weightscape.landscape import (
    DescentConfig,
    EnumerationConfig,
    SpinGlass,
    capture_recapture,
    descend,
    distinct_points,
    enumerate_stationary,
    fit_line,
    pairwise_overlaps,
    random_sphere_points,
    summarize_minima,
)


def test_h2_gd_finds_the_ground_state():
    lam = 8
    m = SpinGlass.sample(lam, 2, 2, seed=4)
    w0 = random_sphere_points((2, 20), lam, generator=torch.Generator().manual_seed(0))
    res = descend(m, w0, DescentConfig(grad_tol=1e-10))
    # oracle: the lowest eigenvalue of the symmetrised matrix (L = lam^{-1/2} w^T S w)
    for d, r in enumerate(res):
        c = m.coefficients[d].numpy()
        s = np.zeros((lam, lam))
        p = 0
        for i in range(lam):
            for j in range(i, lam):
                s[i, j] = s[j, i] = c[p] if i == j else c[p] / 2
                p += 1
        lo = np.linalg.eigvalsh(s)[0] / math.sqrt(lam)
        assert r.converged.all() and np.all(r.index == 0)
        assert np.allclose(r.energy, lo, atol=1e-12)
        summ = summarize_minima(r)
        assert summ.n_distinct == 1 and summ.best_fraction == 1.0  # ±v_1 identified (even H)
        assert r.grad_norm.max() < 1e-10


def test_gd_minima_are_enumerated_minima():
    lam, H = 5, 3
    m = SpinGlass.sample(lam, H, 1, seed=9)
    enum = enumerate_stationary(m, EnumerationConfig(n_starts=400, seed=0))[0]
    w0 = random_sphere_points((1, 64), lam, generator=torch.Generator().manual_seed(1))
    r = descend(m, w0, DescentConfig(grad_tol=1e-9))[0]
    assert r.converged.all() and r.grad_norm.max() < 1e-9
    mins = enum.points[enum.index == 0]
    # odd H: representatives have L <= 0; minima all have u < 0, so they are representatives
    summ = summarize_minima(r)
    enum_lv = -0.5 * np.log(enum.hessian_eigs[enum.index == 0]).sum(1)
    for k in range(summ.n_distinct):
        p = r.points[r.is_minimum][summ.clusters.representatives[k]]
        dist = np.linalg.norm(mins - p, axis=1)
        assert dist.min() < 1e-7  # every GD minimum is one of the enumerated index-0 classes
        # same Hessian log-volume as the enumerated class (independent Newton solve)
        assert abs(summ.log_volume[k] - enum_lv[dist.argmin()]) < 1e-8
    assert summ.n_distinct <= len(mins)
    # the lowest enumerated minimum energy bounds all GD energies from below
    assert r.energy.min() >= enum.energy[enum.index == 0].min() - 1e-12


def test_gd_matches_between_batched_and_single_restarts():
    lam, H = 10, 4
    m = SpinGlass.sample(lam, H, 1, seed=2)
    w0 = random_sphere_points((1, 6), lam, generator=torch.Generator().manual_seed(2))
    cfg = DescentConfig(grad_tol=1e-9, polish_steps=0, hessian=False)
    batched = descend(m, w0, cfg)[0]
    for b in range(6):
        single = descend(m, w0[:, b : b + 1], cfg)[0]
        # same iterations on the same start: identical end point up to summation order
        assert np.allclose(single.points[0], batched.points[b], atol=1e-10)
        assert single.steps[0] == batched.steps[b]


def test_descent_config_validation():
    with pytest.raises(ConfigError):
        DescentConfig(step=-1.0)
    with pytest.raises(ConfigError):
        DescentConfig(max_steps=0)
    r = descend(
        SpinGlass.sample(4, 3), random_sphere_points((1, 2), 4), DescentConfig(max_steps=1)
    )[0]
    assert not r.converged.any() and np.all(r.steps == 1)


def test_distinct_points_known_clusters():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((5, 7)) * 3
    labels = rng.integers(0, 5, 200)
    signs = rng.choice([-1, 1], 200)
    pts = centers[labels] + 1e-9 * rng.standard_normal((200, 7))
    cl = distinct_points(pts, 1e-6)
    assert cl.n_clusters == len(set(labels))
    # same partition as the truth
    assert len(set(zip(cl.labels, labels, strict=True))) == cl.n_clusters
    assert cl.counts.sum() == 200
    cl2 = distinct_points(pts * signs[:, None], 1e-6, sign_symmetric=True, chunk=17)
    assert cl2.n_clusters == cl.n_clusters
    rep_pts = (pts * signs[:, None])[cl2.representatives[cl2.labels]]
    assert np.allclose(rep_pts * cl2.signs[:, None], pts * signs[:, None], atol=1e-7)
    assert distinct_points(pts * signs[:, None], 1e-6).n_clusters > cl.n_clusters


def test_overlaps_and_fit_line():
    x = np.array([[1.0, 0, 0, 0], [0, 2, 0, 0], [1, 1, 1, 1]]) * 2
    q = pairwise_overlaps(x)
    assert np.allclose(q, [0.0, 4 / 4, 8 / 4])  # x_a . x_b / P with P = 4
    assert np.allclose(pairwise_overlaps(-x[:2], norm=1.0, absolute=True), [0.0])
    xs = np.linspace(-2, -1.5, 10)
    f = fit_line(xs, 2 * xs + 1)
    assert math.isclose(f.slope, 2, rel_tol=1e-12) and abs(f.intercept - 1) < 1e-12
    with pytest.raises(ConfigError):
        fit_line([1, 2], [1, 2])


def test_capture_recapture_hand_values():
    a = np.array([3, 1, 0, 2])
    b = np.array([2, 0, 1, 1])
    est = capture_recapture(a, b, a + b)
    # n1 = 3, n2 = 3, m = 2 -> (4 * 4)/3 - 1; f1 = #{hits == 1} = 2 (classes 2, 3... ) etc.
    assert est["observed"] == 4
    assert math.isclose(est["chapman"], 16 / 3 - 1)
    f1 = int(((a + b) == 1).sum())
    f2 = int(((a + b) == 2).sum())
    assert math.isclose(est["chao1"], 4 + f1 * (f1 - 1) / (2 * (f2 + 1)))
