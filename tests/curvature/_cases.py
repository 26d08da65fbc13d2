"""Seeded test cases of the curvature tests (readable ids) and the oracles they share.

Tolerances (float64), each with its reason:
- ``TOL_EXACT = 1e-11`` relative to max|H|: two exact evaluations of the same Hessian differ only by
  rounding (≲ 1e-15 per operation, summed over ≲ 1e3 terms).
- ``TOL_FD = 1e-6`` relative: central differences of the gradient with step 1e-5 have truncation
  error ~ h²|∇³L| ≈ 1e-10 and rounding ~ ε|∇L|/h ≈ 1e-11; 1e-6 leaves a wide margin while still
  catching any wrong block (errors of order 1).
"""

from __future__ import annotations

import itertools

import torch

from weightscape.nets import Ensemble, MLPSpec, mlp_forward
from weightscape.train.losses import get_loss

TOL_EXACT = 1e-11
TOL_FD = 1e-6
ACTIVATIONS = ("relu", "tanh", "leaky_relu", "linear")
DEPTHS = (0, 1, 2, 3)


def make_case(
    depth=2,
    activation="relu",
    *,
    bias=True,
    fan_in_scale=False,
    d=3,
    h=4,
    P=10,
    out_dim=1,
    loss="quadratic_hinge",
    seed=0,
):
    """``(params, spec, x, y)`` of one small net (normal init, Gaussian inputs)."""
    spec = MLPSpec.uniform(
        d,
        depth,
        h,
        activation=activation,
        bias=bias,
        fan_in_scale=fan_in_scale,
        init="normal",
        out_dim=out_dim,
    )
    params = Ensemble.init(spec, [seed]).member_params(0)
    if bias:  # nonzero biases so their blocks are exercised
        gen = torch.Generator().manual_seed(seed + 100)
        params = [
            p + 0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype) if p.dim() == 1 else p
            for p in params
        ]
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(P, d, generator=gen, dtype=torch.float64)
    if loss == "cross_entropy":
        y = torch.randint(0, out_dim, (P,), generator=gen)
    elif loss == "mse":
        y = torch.randn(P, out_dim, generator=gen, dtype=torch.float64)
        y = y[:, 0] if out_dim == 1 else y
    else:
        y = torch.randint(0, 2, (P,), generator=gen).to(torch.float64) * 2 - 1
    return params, spec, x, y


def case_id(depth, activation):
    return f"{activation}-depth{depth}"


GRID = [(dp, a) for a, dp in itertools.product(ACTIVATIONS, DEPTHS)]
GRID_IDS = [case_id(*c) for c in GRID]


def loss_fn(params, spec, x, y, loss="quadratic_hinge", kappa=0.5):
    lossobj = get_loss(loss, **({"kappa": kappa} if "hinge" in loss else {}))
    return lossobj.per_sample(mlp_forward(params, x, spec), y).mean()


def flat_grad(theta, spec, x, y, loss="quadratic_hinge", kappa=0.5):
    """∇L at θ by plain autograd, ``[N]``."""
    from weightscape.curvature import unflatten_params

    th = theta.detach().clone().requires_grad_(True)
    L = loss_fn(unflatten_params(th, spec), spec, x, y, loss, kappa)
    return torch.autograd.grad(L, th)[0]


def autograd_rows_hessian(params, spec, x, y, loss="quadratic_hinge", kappa=0.5):
    """The Hessian row by row with double backward (the authors' way), ``[N, N]``."""
    ps = [p.detach().clone().requires_grad_(True) for p in params]
    L = loss_fn(ps, spec, x, y, loss, kappa)
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(L, ps, create_graph=True)])
    rows = []
    for i in range(g.numel()):
        r = torch.autograd.grad(g[i], ps, retain_graph=True, materialize_grads=True)
        rows.append(torch.cat([t.reshape(-1) for t in r]))
    return torch.stack(rows)


def fd_hessian(params, spec, x, y, loss="quadratic_hinge", kappa=0.5, step=1e-5):
    """Central finite differences of the autograd gradient, symmetrised, ``[N, N]``."""
    from weightscape.curvature import flatten_params

    theta = flatten_params(params)
    cols = []
    for i in range(theta.numel()):
        e = torch.zeros_like(theta)
        e[i] = step
        gp = flat_grad(theta + e, spec, x, y, loss, kappa)
        gm = flat_grad(theta - e, spec, x, y, loss, kappa)
        cols.append((gp - gm) / (2 * step))
    H = torch.stack(cols, 1)
    return 0.5 * (H + H.T)


def rel_err(A, B):
    return float((A - B).abs().max() / max(float(B.abs().max()), 1e-300))
