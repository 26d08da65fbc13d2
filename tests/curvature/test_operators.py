"""Matrix-free operators against the dense split and against curvlinops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weightscape.curvature import (
    DenseOperator,
    GGNOperator,
    HessianOperator,
    ResidualOperator,
    hessian_split,
)
from weightscape.errors import ConfigError
from weightscape.nets import Ensemble, MLPSpec

from ._cases import TOL_EXACT, make_case, rel_err


@pytest.mark.parametrize("loss", ["quadratic_hinge", "mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_operators_equal_dense_parts(activation, loss):
    out_dim = 3 if loss == "cross_entropy" else 1
    params, spec, x, y = make_case(2, activation, loss=loss, out_dim=out_dim, seed=1)
    s = hessian_split((params, spec), x, y, loss)
    model = (params, spec)
    for op, M in (
        (HessianOperator(model, x, y, loss), s.H),
        (GGNOperator(model, x, y, loss), s.H0),
        (ResidualOperator(model, x, y, loss), s.Hp),
    ):
        assert op.shape == (spec.n_params, spec.n_params)
        assert rel_err(op.to_dense(chunk=7), M) < TOL_EXACT


def test_matvec_accepts_vectors_blocks_and_numpy():
    params, spec, x, y = make_case(1, "tanh", seed=2)
    op = HessianOperator((params, spec), x, y, l2=0.1, memory_budget=1)  # 1 column per vmap
    H = hessian_split((params, spec), x, y, l2=0.1).H
    gen = torch.Generator().manual_seed(0)
    V = torch.randn(spec.n_params, 3, generator=gen, dtype=torch.float64)
    assert rel_err(op @ V, H @ V) < TOL_EXACT
    assert rel_err(op @ V[:, 0], H @ V[:, 0]) < TOL_EXACT
    out = op.matvec(V.numpy())
    assert isinstance(out, np.ndarray) and np.allclose(out, (H @ V).numpy(), rtol=0, atol=1e-13)
    sp = op.to_scipy()
    assert np.allclose(sp.matvec(V[:, 1].numpy()), (H @ V[:, 1]).numpy(), rtol=0, atol=1e-13)


def test_ensemble_member_operator():
    spec = MLPSpec.uniform(3, 2, 4, init="normal")
    ens = Ensemble.init(spec, 3)
    _, _, x, y = make_case(2, "relu")
    s = hessian_split(ens, x, y, members=[2])[0]
    op = HessianOperator(ens, x, y, member=2)
    assert rel_err(op.to_dense(), s.H) < TOL_EXACT
    with pytest.raises(ConfigError, match="member"):
        HessianOperator(ens, x, y)
    with pytest.raises(ConfigError, match="member"):
        HessianOperator((ens.member_params(0), spec), x, y, member=0)


def test_dense_operator_and_bad_vectors():
    A = torch.eye(3, dtype=torch.float64)
    op = DenseOperator(A)
    with pytest.raises(ConfigError, match="expected"):
        op @ torch.ones(4, dtype=torch.float64)
    with pytest.raises(ConfigError, match="square"):
        DenseOperator(torch.ones(2, 3))


def test_hvp_matches_curvlinops_on_mse_net():
    """Peer check: curvlinops' HessianLinearOperator on the same net as a torch.nn module.

    curvlinops differentiates ``MSELoss(reduction="sum") = Σ_μ (f_μ − t_μ)²``, which is 2P times
    our mean of ½ (f − t)².
    """
    curvlinops = pytest.importorskip("curvlinops")
    spec = MLPSpec.uniform(4, 2, 5, activation="tanh")
    ens = Ensemble.init(spec, [3])
    gen = torch.Generator().manual_seed(4)
    P = 20
    x = torch.randn(P, 4, generator=gen, dtype=torch.float64)
    t = torch.randn(P, 1, generator=gen, dtype=torch.float64)
    module = ens.to_module(0)
    params = [p for p in module.parameters()]
    peer = curvlinops.HessianLinearOperator(
        module, torch.nn.MSELoss(reduction="sum"), params, [(x, t)], check_deterministic=False
    )
    v = torch.randn(spec.n_params, generator=gen, dtype=torch.float64)
    ours = HessianOperator(ens, x, t, "mse") @ v
    theirs = peer @ v  # curvlinops >= 2 operators act on torch tensors
    assert rel_err(ours * 2 * P, theirs.reshape(-1)) < TOL_EXACT
