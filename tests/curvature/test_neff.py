"""N_eff against analytic ranks."""

from __future__ import annotations

import torch

from weightscape.curvature import n_eff
from weightscape.nets import Ensemble, MLPSpec

from ._cases import make_case


def test_linear_model_reaches_full_rank_through_directional_rounds():
    """f = w·x + b: output gradients [x_μ, 1] span min(P, d+1) dimensions; directional
    derivatives add [u_μ, 0]; with P = 3 < d + 1 = 7 the rank grows 3 → 6 → 7 and stops."""
    params, spec, x, _ = make_case(0, "relu", d=6, P=3)
    r = n_eff((params, spec), x)
    assert r.n_eff == 7 == spec.n_params
    assert r.ranks == (3, 6, 7)


def test_deep_linear_net_has_rank_d():
    """f = W_L ... W_0 x (no bias) depends on θ only through w = W_L ... W_0 ∈ R^d, and the
    map θ → w has rank d at a generic point: N_eff = d."""
    spec = MLPSpec.uniform(5, 3, 4, activation="linear", bias=False, init="normal")
    ens = Ensemble.init(spec, [0])
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 5, generator=gen, dtype=torch.float64)
    r = n_eff(ens, x)[0]
    assert r.n_eff == 5 and r.member == 0


def test_relu_rank_is_bounded_by_rescaling_symmetry_and_saturates():
    """Every rescaling generator is orthogonal to all rows, so N_eff <= n_params − n_hidden; a
    generic one-hidden-layer ReLU net with rich data reaches that bound."""
    params, spec, x, _ = make_case(1, "relu", d=4, h=6, P=200, seed=1)
    r = n_eff((params, spec), x)
    assert r.n_eff == spec.n_params - spec.n_hidden_units
    assert r.ranks[-1] <= r.ranks[-2] or len(r.ranks) == 1


def test_tanh_has_no_continuous_symmetry():
    params, spec, x, _ = make_case(2, "tanh", d=4, h=5, P=60, seed=2)
    assert n_eff((params, spec), x).n_eff == spec.n_params
