"""Dense Hessians and the GGN/residual split against independent oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import jacrev

from weightscape.curvature import (
    dense_hessian,
    flatten_params,
    hessian_split,
    hinge_hessian_split,
    per_sample_jacobian,
    spectrum_counts,
    unflatten_params,
)
from weightscape.errors import ConfigError
from weightscape.nets import Ensemble, MLPSpec, mlp_forward

from ._cases import (
    GRID,
    GRID_IDS,
    TOL_EXACT,
    TOL_FD,
    autograd_rows_hessian,
    fd_hessian,
    flat_grad,
    make_case,
    rel_err,
)

KAPPA = 0.5  # the hinge margin where a test does not choose its own


def half_margin(params, spec, x, y):
    """A margin leaving about half of the points unsatisfied (the median of y f, floored)."""
    yf = y * mlp_forward(params, x, spec)[:, 0]
    return max(float(yf.median()), 0.0) + 1e-3


@pytest.mark.parametrize(("depth", "activation"), GRID, ids=GRID_IDS)
def test_hessian_matches_finite_differences(depth, activation):
    params, spec, x, y = make_case(depth, activation)
    kappa = half_margin(params, spec, x, y)
    s = hinge_hessian_split((params, spec), x, y, kappa=kappa)
    H_fd = fd_hessian(params, spec, x, y, kappa=kappa)
    assert 0 < s.n_unsat < x.shape[0]
    assert rel_err(s.H, H_fd) < TOL_FD


@pytest.mark.parametrize(("depth", "activation"), GRID, ids=GRID_IDS)
def test_hessian_matches_autograd_rows(depth, activation):
    params, spec, x, y = make_case(depth, activation, fan_in_scale=depth == 2, seed=3)
    H_ref = autograd_rows_hessian(params, spec, x, y, kappa=KAPPA)
    s = hinge_hessian_split((params, spec), x, y, kappa=KAPPA)
    assert rel_err(s.H, H_ref) < TOL_EXACT
    assert rel_err(dense_hessian((params, spec), x, y, kappa=KAPPA), H_ref) < TOL_EXACT


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("depth", "activation"), GRID, ids=GRID_IDS)
def test_structured_split_equals_autodiff_split(depth, activation, bias):
    """The layer-structured H0/Hp (few GEMMs) equal the generic torch.func ones, part by part."""
    params, spec, x, y = make_case(depth, activation, bias=bias, fan_in_scale=True, seed=5)
    a = hinge_hessian_split((params, spec), x, y, kappa=KAPPA, method="autodiff")
    s = hinge_hessian_split((params, spec), x, y, kappa=KAPPA, method="structured")
    for name in ("H0", "Hp", "H"):
        assert rel_err(getattr(s, name), getattr(a, name)) < TOL_EXACT, name


@pytest.mark.parametrize(
    ("loss", "out_dim"), [("mse", 1), ("mse", 3), ("cross_entropy", 3), ("linear_hinge", 1)]
)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_other_losses_split_sums_to_full_hessian(loss, out_dim, activation):
    params, spec, x, y = make_case(2, activation, out_dim=out_dim, loss=loss, seed=7)
    kw = {"kappa": KAPPA} if "hinge" in loss else {}
    s = hessian_split((params, spec), x, y, loss, **kw)
    a = hessian_split((params, spec), x, y, loss, method="autodiff", **kw)
    H_ref = autograd_rows_hessian(params, spec, x, y, loss=loss, kappa=KAPPA)
    assert rel_err(s.H, H_ref) < TOL_EXACT
    assert rel_err(s.H0, a.H0) < TOL_EXACT
    assert rel_err(s.Hp, a.Hp) < TOL_EXACT
    if loss == "linear_hinge":  # ℓ is piecewise linear in f: no Gauss–Newton part
        assert torch.count_nonzero(s.H0) == 0


def test_linear_model_quadratic_loss_has_known_hessian():
    """Depth 0, MSE: H = (1/P) Σ x̃ x̃ᵀ with x̃ = [x, 1] (bias last), and Hp = 0 exactly."""
    params, spec, x, y = make_case(0, "relu", d=5, P=30, loss="mse")
    s = hessian_split((params, spec), x, y, "mse")
    xt = torch.cat([x, torch.ones(30, 1, dtype=x.dtype)], 1)
    assert rel_err(s.H, xt.T @ xt / 30) < TOL_EXACT
    assert torch.count_nonzero(s.Hp) == 0


def test_linear_model_hinge_hessian_counts_only_unsatisfied_points():
    params, spec, x, y = make_case(0, "relu", d=5, P=40)
    s = hinge_hessian_split((params, spec), x, y, kappa=KAPPA)
    gap = KAPPA - y * mlp_forward(params, x, spec)[:, 0]
    xt = torch.cat([x, torch.ones(40, 1, dtype=x.dtype)], 1)[gap > 0]
    assert s.n_unsat == int((gap > 0).sum())
    assert rel_err(s.H, xt.T @ xt / 40) < TOL_EXACT


def test_deep_linear_net_saddle_has_known_spectrum():
    """f = w2ᵀ W1 x (linear, no bias) at θ = 0 with MSE targets t: J = 0 and
    H = [[0, I_h ⊗ cᵀ], [I_h ⊗ c, 0]] with c = −(1/P) Σ t_μ x_μ, so the spectrum is ±|c| (h times
    each) and 0 (h d − h times)."""
    d, h, P = 4, 3, 20
    spec = MLPSpec(d_in=d, widths=(h,), activation="linear", bias=False, init="normal")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(P, d, generator=gen, dtype=torch.float64)
    t = torch.randn(P, generator=gen, dtype=torch.float64)
    params = [torch.zeros(h, d, dtype=torch.float64), torch.zeros(1, h, dtype=torch.float64)]
    s = hessian_split((params, spec), x, t, "mse")
    c = -(t[:, None] * x).mean(0)
    n = torch.linalg.vector_norm(c)
    expected = torch.cat([-n.repeat(h), torch.zeros(h * d - h, dtype=x.dtype), n.repeat(h)])
    assert torch.allclose(s.eigs_H, expected, rtol=0, atol=1e-14)
    assert torch.count_nonzero(s.H0) == 0
    # one layer deeper the loss is cubic in θ around 0: the Hessian vanishes exactly
    spec3 = MLPSpec(d_in=d, widths=(h, h), activation="linear", bias=False, init="normal")
    p3 = [torch.zeros(h, d), torch.zeros(h, h), torch.zeros(1, h)]
    s3 = hessian_split(([p.double() for p in p3], spec3), x, t, "mse")
    assert torch.count_nonzero(s3.H) == 0


def test_h0_is_psd_with_rank_at_most_n_unsat():
    params, spec, x, y = make_case(2, "relu", d=6, h=8, P=40, seed=2)
    kappa = 0.1  # few unsatisfied points: N_Δ < N, so the Gram route is used
    s = hinge_hessian_split((params, spec), x, y, kappa=kappa)
    assert 0 < s.n_unsat < spec.n_params
    c = spectrum_counts(s.eigs_H0)
    assert c.negative == 0
    assert c.positive <= s.n_unsat
    # the Gram-matrix spectrum equals a dense eigendecomposition of H0
    dense = torch.linalg.eigvalsh(s.H0)
    assert torch.allclose(s.eigs_H0, dense, rtol=0, atol=1e-12 * float(dense.abs().max()))
    # eigenvectors option: V diag(λ) Vᵀ reproduces each matrix
    v = hinge_hessian_split((params, spec), x, y, kappa=kappa, eigenvectors=True)
    for name in ("H0", "Hp", "H"):
        e, V = getattr(v, f"eigs_{name}"), getattr(v, f"vecs_{name}")
        assert rel_err(V @ torch.diag(e) @ V.T, getattr(v, name)) < TOL_EXACT


def test_hessian_is_exactly_zero_without_unsatisfied_points():
    params, spec, x, _ = make_case(3, "relu", seed=4)
    y = torch.sign(mlp_forward(params, x, spec)[:, 0])  # every y f > 0 = κ: all Δ < 0
    s = hinge_hessian_split((params, spec), x, y, kappa=0.0)
    assert s.n_unsat == 0 and s.loss_value == 0.0
    for name in ("H0", "Hp", "H"):
        assert torch.count_nonzero(getattr(s, name)) == 0
        assert spectrum_counts(getattr(s, f"eigs_{name}")).zero == spec.n_params


def _rescaling_generators(spec, theta):
    """For each hidden unit: D θ with D = +1 on its incoming weights and bias, −1 on its outgoing
    weights (the generator of f(θ) invariance under w_in → c w_in, w_out → w_out / c)."""
    from weightscape.curvature import unflatten_params

    gens = []
    for l in range(1, spec.depth + 1):
        for k in range(spec.sizes[l]):
            D = [torch.zeros_like(p) for p in unflatten_params(theta, spec)]
            step = 2 if spec.bias else 1
            D[(l - 1) * step][k, :] = 1.0
            if spec.bias:
                D[(l - 1) * step + 1][k] = 1.0
            D[l * step][:, k] = -1.0
            gens.append(flatten_params(D))
    return torch.stack(gens)  # [n_hidden, N]


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_rescaling_symmetry_identity_at_any_point(activation):
    """Differentiating ∇L(θ)·Dθ = 0 gives H (Dθ) = −D ∇L exactly, at every point."""
    params, spec, x, y = make_case(3, activation, P=30, seed=6)
    theta = flatten_params(params)
    s = hinge_hessian_split((params, spec), x, y, kappa=KAPPA)
    g = flat_grad(theta, spec, x, y, kappa=KAPPA)
    D = _rescaling_generators(spec, theta)
    lhs = (D * theta).matmul(s.H)  # rows: (D_k θ)ᵀ H
    rhs = -(D * g)
    assert float((lhs - rhs).abs().max()) < TOL_EXACT * float(s.H.abs().max())


def test_trained_relu_minimum_has_rescaling_zero_modes():
    """A teacher–student ReLU net trained to its minimum has at least one zero mode per hidden
    neuron, and the rescaling generators are null vectors of H.

    The minimiser is full-batch Gauss–Newton (least squares by ``lstsq`` on a ``torch.func``
    Jacobian, independent of the code under test): it converges quadratically to the zero-loss
    minimum, where L-BFGS stalls near |∇L| ~ 1e-7 on this ill-conditioned problem.
    """
    d, h, P = 4, 5, 80
    spec = MLPSpec.uniform(d, 2, h, init="normal")
    # biases 0.5: no sample has a whole layer of dead units (that would put it on a kink)
    teacher = [p + 0.5 if p.dim() == 1 else p for p in Ensemble.init(spec, [11]).member_params(0)]
    gen = torch.Generator().manual_seed(12)
    x = torch.randn(P, d, generator=gen, dtype=torch.float64)
    t = mlp_forward(teacher, x, spec)[:, 0]
    theta = flatten_params(teacher) + 1e-2 * torch.randn(
        spec.n_params, generator=gen, dtype=torch.float64
    )

    def residual(th):
        return mlp_forward(unflatten_params(th, spec), x, spec)[:, 0] - t

    for _ in range(10):
        J = jacrev(residual)(theta)
        step = torch.linalg.lstsq(J, residual(theta)[:, None], driver="gelsd").solution[:, 0]
        theta = theta - step
    grad_norm = float(torch.linalg.vector_norm(flat_grad(theta, spec, x, t, loss="mse")))
    assert grad_norm < 1e-12  # a minimum to this precision; zero modes sit at O(|∇L|)
    params = [p.clone() for p in unflatten_params(theta, spec)]
    s = hessian_split((params, spec), x, t, "mse")
    assert s.counts["H"].zero >= spec.n_hidden_units
    assert s.counts["H"].negative == 0
    D = _rescaling_generators(spec, theta) * theta
    D = D / torch.linalg.vector_norm(D, dim=1, keepdim=True)
    assert float((D @ s.H).abs().max()) < 1e-9 * float(s.eigs_H[-1])


def test_ensemble_members_match_standalone_nets():
    specs = [MLPSpec.uniform(3, 2, 4, init="normal"), MLPSpec(d_in=5, widths=(6, 3), init="normal")]
    ens = Ensemble.init(specs, [0, 1])
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(12, s.d_in, generator=gen, dtype=torch.float64) for s in specs]
    y = torch.randint(0, 2, (2, 12), generator=gen).to(torch.float64) * 2 - 1
    out = hinge_hessian_split(ens, ens.pad_inputs(xs), y, kappa=KAPPA)
    assert [o.member for o in out] == [0, 1]
    for m in range(2):
        ref = hinge_hessian_split((ens.member_params(m), specs[m]), xs[m], y[m], kappa=KAPPA)
        assert torch.equal(out[m].H, ref.H)
    only = hinge_hessian_split(ens, ens.pad_inputs(xs), y, kappa=KAPPA, members=[1])
    assert len(only) == 1 and torch.equal(only[0].H, out[1].H)


def test_memory_budget_chunks_do_not_change_the_result():
    params, spec, x, y = make_case(3, "tanh", P=25, seed=8)
    full = hinge_hessian_split((params, spec), x, y, kappa=KAPPA)
    tiny = hinge_hessian_split((params, spec), x, y, kappa=KAPPA, memory_budget=1)  # 1 sample
    auto = hinge_hessian_split(
        (params, spec), x, y, kappa=KAPPA, memory_budget=1, method="autodiff"
    )  # 1 basis vector per HVP batch
    assert rel_err(tiny.H, full.H) < TOL_EXACT
    assert rel_err(auto.H, full.H) < TOL_EXACT


def test_per_sample_jacobian_matches_autograd():
    params, spec, x, _ = make_case(2, "tanh", out_dim=2, loss="mse", seed=9)
    J = per_sample_jacobian((params, spec), x)
    Ja = per_sample_jacobian((params, spec), x, method="autodiff")
    ps = [p.clone().requires_grad_(True) for p in params]
    f = mlp_forward(ps, x, spec)
    row = torch.autograd.grad(f[3, 1], ps)
    ref = torch.cat([r.reshape(-1) for r in row])
    assert J.shape == (x.shape[0], 2, spec.n_params)
    assert rel_err(J[3, 1], ref) < TOL_EXACT
    assert rel_err(J, Ja) < TOL_EXACT


def test_l2_term_shifts_h_only():
    params, spec, x, y = make_case(1, "relu", seed=10)
    a = hinge_hessian_split((params, spec), x, y, kappa=KAPPA)
    b = hinge_hessian_split((params, spec), x, y, kappa=KAPPA, l2=0.25)
    assert torch.equal(a.H0, b.H0)
    assert np.allclose(b.eigs_H.numpy(), a.eigs_H.numpy() + 0.25, atol=1e-13)


def test_summary_is_json_ready():
    import json

    params, spec, x, y = make_case(1, "relu", seed=10)
    s = hinge_hessian_split((params, spec), x, y, kappa=KAPPA).summary()
    back = json.loads(json.dumps(s))
    assert back["n_params"] == spec.n_params
    assert back["H"]["zero"] + back["H"]["negative"] + back["H"]["positive"] == spec.n_params


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "fast"}, "method"),
        ({"memory_budget": 0}, "memory_budget"),
        ({"memory_budget": 1.5}, "memory_budget"),
        ({"l2": -1.0}, "l2"),
        ({"members": [0]}, "members"),
    ],
)
def test_bad_options_raise_config_error(kwargs, match):
    params, spec, x, y = make_case(1, "relu")
    with pytest.raises(ConfigError, match=match):
        hinge_hessian_split((params, spec), x, y, **kwargs)


def test_bad_inputs_raise_config_error():
    params, spec, x, y = make_case(1, "relu")
    with pytest.raises(ConfigError, match="inputs"):
        hinge_hessian_split((params, spec), x[:, :2], y)
    with pytest.raises(ConfigError, match="shapes"):
        hinge_hessian_split(([*params[:-1], params[0]], spec), x, y)
    with pytest.raises(ConfigError, match="not supported"):
        hinge_hessian_split(params, x, y)
    ens = Ensemble.init(spec, 2)
    with pytest.raises(ConfigError, match="out of range"):
        hinge_hessian_split(ens, x, y, members=[5])
    with pytest.raises(ConfigError, match="loss"):
        hessian_split((params, spec), x, y, "hinge")
