"""The training step's gradients (forward_cached/backward + closed-form dloss/df, L2, sample
masks) against autograd and central finite differences, float64."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weightscape.nets import Ensemble, MLPSpec
from weightscape.train import get_loss
from weightscape.train._loop import _Data, _make_evaluator

from ._cases import mixed_ensemble

# autograd runs the same algebra in another order: 1e-12 relative. Central differences with
# h = 1e-6 have truncation O(h²·L''') ~ 1e-12 and rounding O(ε/h) ~ 1e-10 absolute: 1e-6 relative
# (plus 1e-9 absolute for entries near zero).
TOL_AD = 1e-12
TOL_FD = 1e-6


def _objective(ens, params, x, y, w, loss, l2):
    out = ens.forward(x, params=params)
    val = loss(out, y, w)
    return val + 0.5 * l2 * sum((p * p).flatten(1).sum(1) for p in params)


def _problem(loss_name, seed=0):
    ens = mixed_ensemble()
    g = torch.Generator().manual_seed(seed)
    M, P = ens.M, 12
    xs = [torch.randn(P, s.d_in, generator=g, dtype=torch.float64) for s in ens.specs]
    x = ens.pad_inputs(xs)
    if loss_name in ("quadratic_hinge", "linear_hinge"):
        y = torch.randint(0, 2, (M, P), generator=g).double() * 2 - 1
    else:
        y = torch.randn(M, P, generator=g, dtype=torch.float64)
    w = (torch.rand(M, P, generator=g) > 0.3).double()
    # non-zero biases keep every pre-activation off the ReLU kink (with zero biases a point whose
    # first-layer units are all off sits exactly at z = 0, where finite differences are invalid)
    masks = ens.param_masks()
    for i in range(1, len(ens.params), 2):
        ens.params[i] += 0.1 * torch.randn(ens.params[i].shape, generator=g).double() * masks[i]
    return ens, x, y, w


def _check(ens, x, y, w, loss_name, l2, fd=True):
    loss = get_loss(loss_name)
    data = _Data(x, y, w, ens.M, torch.float64, "cpu", loss)
    ev = _make_evaluator(ens, loss, l2, data)
    _, obj, grads, _ = ev.value_grad(x, y, w)
    params = [p.clone().requires_grad_(True) for p in ens.params]
    ref_obj = _objective(ens, params, x, y, w, loss, l2)
    ref = torch.autograd.grad(ref_obj.sum(), params)
    torch.testing.assert_close(obj, ref_obj.detach(), rtol=TOL_AD, atol=0)
    for a, b in zip(grads, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=TOL_AD, atol=1e-15)
    if not fd:
        return
    masks = ens.param_masks()
    g = torch.Generator().manual_seed(1)
    h = 1e-6
    for i, (_p, mask) in enumerate(zip(ens.params, masks, strict=True)):
        real = mask.nonzero()
        for j in torch.randint(0, len(real), (4,), generator=g).tolist():
            idx = tuple(real[j].tolist())
            plus = [q.clone() for q in ens.params]
            minus = [q.clone() for q in ens.params]
            plus[i][idx] += h
            minus[i][idx] -= h
            m = idx[0]
            fp = _objective(ens, plus, x, y, w, loss, l2)[m]
            fm = _objective(ens, minus, x, y, w, loss, l2)[m]
            num = (fp - fm) / (2 * h)
            assert abs(num - grads[i][idx]) <= TOL_FD * abs(num) + 1e-9, (i, idx)


def test_gradients_quadratic_hinge_masks_l2():
    ens, x, y, w = _problem("quadratic_hinge")
    _check(ens, x, y, w, "quadratic_hinge", l2=1e-2)


def test_gradients_mse_masks():
    ens, x, y, w = _problem("mse")
    _check(ens, x, y, w, "mse", l2=0.0)


def test_gradients_cross_entropy_shared_inputs():
    specs = [MLPSpec(d_in=4, widths=(6,), out_dim=3), MLPSpec(d_in=4, widths=(9,), out_dim=3)]
    ens = Ensemble.init(specs, [0, 1])
    g = torch.Generator().manual_seed(2)
    x = torch.randn(10, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (10,), generator=g)
    _check(ens, x, y, None, "cross_entropy", l2=1e-3)


def test_padded_gradients_are_exactly_zero():
    ens, x, y, w = _problem("quadratic_hinge")
    loss = get_loss("quadratic_hinge")
    ev = _make_evaluator(ens, loss, 0.1, _Data(x, y, w, ens.M, torch.float64, "cpu", loss))
    grads = ev.value_grad(x, y, w)[2]
    for gr, mask in zip(grads, ens.param_masks(), strict=True):
        assert torch.all(gr[~mask] == 0)


@settings(derandomize=True, deadline=None, max_examples=20)
@given(
    depth=st.integers(0, 3),
    widths=st.lists(st.integers(1, 6), min_size=3, max_size=3),
    d=st.integers(1, 5),
    P=st.integers(1, 9),
    activation=st.sampled_from(["relu", "tanh", "leaky_relu"]),
    loss_name=st.sampled_from(["quadratic_hinge", "linear_hinge", "mse"]),
    l2=st.sampled_from([0.0, 1e-2]),
    seed=st.integers(0, 1000),
)
def test_gradients_property(depth, widths, d, P, activation, loss_name, l2, seed):
    specs = [
        MLPSpec(d_in=d, widths=tuple(widths[:depth]), activation=activation, init="normal"),
        MLPSpec(d_in=d, widths=tuple(w + 1 for w in widths[:depth]), activation=activation),
    ]
    ens = Ensemble.init(specs, [seed, seed + 1])
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(P, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (P,), generator=g).double() * 2 - 1
    w = (torch.rand(2, P, generator=g) > 0.4).double()
    _check(ens, x, y, w, loss_name, l2, fd=False)


def _generic(ens, loss, l2):
    from weightscape.train._loop import _Evaluator

    return _Evaluator(ens, loss, l2)


@settings(derandomize=True, deadline=None, max_examples=15)
@given(
    bias=st.booleans(),
    per_member=st.booleans(),
    activation=st.sampled_from(["relu", "tanh", "linear"]),
    depth=st.integers(0, 2),
    seed=st.integers(0, 100),
)
def test_fused_step_equals_generic_step(bias, per_member, activation, depth, seed):
    # the fused path (feature-major, folded biases) against Ensemble.forward_cached/backward:
    # same algebra, other summation order -> 1e-12 relative
    specs = [
        MLPSpec(d_in=4, widths=(5,) * depth, bias=bias, activation=activation),
        MLPSpec(d_in=3 if per_member else 4, widths=(7,) * depth, bias=bias, activation=activation),
    ]
    ens = Ensemble.init(specs, [seed, seed + 7])
    ref = Ensemble.init(specs, [seed, seed + 7])
    g = torch.Generator().manual_seed(seed)
    P = 11
    if per_member:
        x = ens.pad_inputs(
            [torch.randn(P, s.d_in, generator=g, dtype=torch.float64) for s in specs]
        )
    else:
        x = torch.randn(P, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (P,), generator=g).double() * 2 - 1
    loss = get_loss("quadratic_hinge", kappa=0.5)
    fused = _make_evaluator(ens, loss, 1e-3, _Data(x, y, None, 2, torch.float64, "cpu", loss))
    assert type(fused).__name__ == "FusedEnsembleStep"
    a = fused.value_grad(x, y, None)
    b = _generic(ref, loss, 1e-3).value_grad(x, y, None)
    torch.testing.assert_close(a[1], b[1], rtol=1e-12, atol=0)
    torch.testing.assert_close(a[3], b[3], rtol=1e-12, atol=1e-15)
    for u, v in zip(a[2], b[2], strict=True):
        torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-15)
    # the ensemble's params are views of the fused buffers, with unchanged values
    for p, q in zip(ens.params, ref.params, strict=True):
        assert torch.equal(p, q)
