"""Dense BP: exact on trees and for independent spins; damping/warm start keep the fixed point."""

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError
from weightscape.maxent import BPConfig, IsingModel, bp_solve, exact_moments

from .conftest import random_model, tree_model

# BP converged to residual 1e-13 on a tree: marginals exact to ~1e-12 (messages to round-off).
TREE_TOL = 1e-10
TIGHT = BPConfig(damping=0.0, tol=1e-13, max_iter=500)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_on_trees(seed):
    model, edges = tree_model(10, seed)
    _, res, trace = bp_solve(model, TIGHT)
    ex = exact_moments(model)
    assert res.converged and trace[-1] < 1e-13
    np.testing.assert_allclose(res.m, ex.m, atol=TREE_TOL)
    for i, j in edges:
        assert abs(float(res.C[i, j] - ex.C[i, j])) < TREE_TOL
        assert float(res.C[i, j]) == float(res.C[j, i])
    # Undamped BP on a tree converges in at most diameter + 1 sweeps (< N + 1).
    assert res.iterations <= 11


def test_independent_spins_and_shapes():
    h = torch.tensor([0.1, -0.7, 1.5], dtype=torch.float64)
    model = IsingModel(torch.zeros(3, 3, dtype=torch.float64), h)
    msgs, res, trace = bp_solve(model, TIGHT)
    assert msgs.shape == (3, 3) and res.C.shape == (3, 3) and trace.dtype == torch.float64
    np.testing.assert_allclose(res.m, torch.tanh(h), atol=1e-15)
    np.testing.assert_allclose(res.connected - torch.diag(1 - torch.tanh(h) ** 2), 0, atol=1e-15)


def test_damping_and_warm_start_share_the_fixed_point():
    model = random_model(12, 0.1, 0.5, seed=4)
    m0, r0, _ = bp_solve(model, TIGHT)
    m1, r1, _ = bp_solve(model, BPConfig(damping=0.5, tol=1e-13, max_iter=2000))
    assert r0.converged and r1.converged
    # both at residual < 1e-13 of the same contraction: messages agree to ~1e-12.
    np.testing.assert_allclose(m1, m0, atol=1e-11)
    np.testing.assert_allclose(r1.C, r0.C, atol=1e-11)
    # damping 0.5 halves each step: it needs more sweeps than undamped BP
    assert r1.iterations > r0.iterations
    _, r2, t2 = bp_solve(model, TIGHT, messages=m0)
    assert r2.iterations == 1 and t2[0] < 1e-13
    # the tilted model solved from the untilted messages
    ref = torch.ones(12, dtype=torch.float64)
    _, rt, _ = bp_solve(model.tilted(0.3, ref), TIGHT, messages=m0)
    _, rt0, _ = bp_solve(model.tilted(0.3, ref), TIGHT)
    np.testing.assert_allclose(rt.m, rt0.m, atol=1e-11)
    assert float((rt.m - r0.m).min()) > 0  # a positive tilt raises every magnetisation


def test_weak_coupling_error_is_second_order():
    """On a dense graph BP misses loop corrections: C_ij error O(β²) for couplings of scale β."""
    errs = []
    betas = [0.025, 0.05, 0.1]
    for b in betas:
        model = random_model(8, b, 0.3, seed=5, field_mean=0.4)
        _, res, _ = bp_solve(model, TIGHT)
        ex = exact_moments(model)
        errs.append(float((res.C - ex.C).abs().max()))
    slope = np.polyfit(np.log(betas), np.log(errs), 1)[0]
    # expected slope 2 (first neglected term ∝ Σ_k J_ik J_kj); ±0.3 covers higher-order terms
    assert 1.7 < slope < 2.3, (slope, errs)


def test_config_validation_and_bad_messages():
    with pytest.raises(ConfigError, match="damping"):
        BPConfig(damping=1.0)
    with pytest.raises(ConfigError, match="tol"):
        BPConfig(tol=0)
    with pytest.raises(ConfigError, match="max_iter"):
        BPConfig(max_iter=2.5)
    with pytest.raises(ConfigError, match="messages"):
        bp_solve(IsingModel.zeros(3), messages=torch.zeros(2, 2))
