"""Oracles for batched ensembles: standalone torch.nn nets, autograd, init properties.

Tolerance 1e-12 (float64): padding adds exact zeros, but BLAS may sum in a different order for
different padded sizes, which moves results by a few ulps (~1e-16 relative), far below 1e-12.
"""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weightscape.errors import ConfigError
from weightscape.nets import Ensemble, MLPSpec, block_orthogonal_rows, mlp_forward

TOL = 1e-12
F64 = torch.float64

OPTION_GRID = list(
    itertools.product(
        [0, 1, 3],  # depth
        [True, False],  # bias
        ["relu", "tanh", "leaky_relu"],  # activation
        [False, True],  # fan_in_scale
        [1, 3],  # out_dim
    )
)


def _members(depth, bias, act, scale, out, init="normal"):
    kw = dict(bias=bias, activation=act, fan_in_scale=scale, out_dim=out, init=init)
    return [
        MLPSpec.uniform(6, depth, 9, **kw),
        MLPSpec.uniform(4, depth, 5, **kw),  # narrower input and width: padded
        MLPSpec(d_in=6, widths=tuple(range(3, 3 + depth)), **kw),  # non-uniform widths
    ]


def _random_biases(ens: Ensemble, seed=0):
    """Give every real bias a nonzero value so bias paths are exercised (padding stays zero)."""
    gen = torch.Generator().manual_seed(seed)
    masks = ens.param_masks()
    for p, m in zip(ens.params, masks, strict=True):
        if p.dim() == 2:
            p.copy_(torch.randn(p.shape, generator=gen, dtype=F64) * 0.3 * m)


@pytest.mark.parametrize("depth,bias,act,scale,out", OPTION_GRID)
def test_member_equals_standalone_module(depth, bias, act, scale, out):
    specs = _members(depth, bias, act, scale, out)
    ens = Ensemble.init(specs, [11, 12, 13])
    _random_biases(ens)
    gen = torch.Generator().manual_seed(1)
    xs = [torch.randn(17, s.d_in, generator=gen, dtype=F64) for s in specs]
    y = torch.randn(17, out, generator=gen, dtype=F64)
    X = ens.pad_inputs(xs)
    params = [p.clone().requires_grad_(True) for p in ens.params]
    f = ens.forward(X, params)
    loss = 0.5 * ((f - y) ** 2).sum()
    grads = torch.autograd.grad(loss, params)
    for m, s in enumerate(specs):
        net = ens.to_module(m)
        fm = net(xs[m])
        torch.testing.assert_close(f[m], fm, rtol=0, atol=TOL)
        lm = 0.5 * ((fm - y) ** 2).sum()
        gm = torch.autograd.grad(lm, list(net.parameters()))
        # ensemble gradients, unpadded, equal the standalone gradients
        for g_ens, g_ref in zip(ens.member_params(m, grads), gm, strict=True):
            torch.testing.assert_close(g_ens, g_ref, rtol=0, atol=TOL)
        torch.testing.assert_close(
            mlp_forward(ens.member_params(m), xs[m], s), fm, rtol=0, atol=TOL
        )
    # padded entries of the gradient are exactly zero
    for g, mask in zip(grads, ens.param_masks(), strict=True):
        assert torch.all(g[~mask] == 0)


@pytest.mark.parametrize("depth,bias,act,scale,out", OPTION_GRID)
def test_handwritten_backward_equals_autograd(depth, bias, act, scale, out):
    specs = _members(depth, bias, act, scale, out)
    ens = Ensemble.init(specs, [1, 2, 3])
    _random_biases(ens, seed=5)
    gen = torch.Generator().manual_seed(2)
    X = ens.pad_inputs([torch.randn(13, s.d_in, generator=gen, dtype=F64) for s in specs])
    dout = torch.randn(3, 13, out, generator=gen, dtype=F64)
    params = [p.clone().requires_grad_(True) for p in ens.params]
    ref = torch.autograd.grad((ens.forward(X, params) * dout).sum(), params)
    _, cache = ens.forward_cached(X)
    got = ens.backward(cache, dout)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=TOL)


def test_shared_inputs_path_equals_per_member_path():
    spec = MLPSpec.uniform(7, 2, 8, activation="tanh")
    ens = Ensemble.init(spec, [4, 5, 6, 7])
    _random_biases(ens)
    x = torch.randn(21, 7, dtype=F64)
    X = x.expand(4, 21, 7).contiguous()
    f_shared, c_shared = ens.forward_cached(x)
    f_member, c_member = ens.forward_cached(X)
    torch.testing.assert_close(f_shared, f_member, rtol=0, atol=TOL)
    dout = torch.randn_like(f_shared)
    for a, b in zip(ens.backward(c_shared, dout), ens.backward(c_member, dout), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=TOL)


def test_member_init_independent_of_ensemble():
    a = MLPSpec.uniform(5, 2, 6)
    b = MLPSpec.uniform(9, 2, 12)
    alone = Ensemble.init([a], [42])
    mixed = Ensemble.init([b, a, b], [1, 42, 3])
    for p, q in zip(alone.member_params(0), mixed.member_params(1), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("n_out,n_in", [(3, 7), (7, 7), (12, 5), (31, 10)])
def test_block_orthogonal_rows(n_out, n_in):
    w = block_orthogonal_rows(n_out, n_in, torch.Generator().manual_seed(0), F64)
    np.testing.assert_allclose(torch.linalg.norm(w, dim=1), 1.0, atol=1e-13)
    for start in range(0, n_out, n_in):
        blk = w[start : start + n_in]
        torch.testing.assert_close(blk @ blk.T, torch.eye(len(blk), dtype=F64), atol=1e-13, rtol=0)
    if n_out > n_in:
        # torch.nn.init.orthogonal_ differs here: its rows have norm sqrt(n_in / n_out)
        ref = torch.empty(n_out, n_in, dtype=F64)
        torch.nn.init.orthogonal_(ref)
        assert torch.linalg.norm(ref, dim=1).max() < 0.99


def test_geiger_init_output_norm_and_zero_biases():
    spec = MLPSpec.uniform(10, 2, 20, output_norm=2.5)
    ens = Ensemble.init(spec, [3])
    w_out = ens.member_params(0)[-2]
    assert abs(torch.linalg.norm(w_out).item() - 2.5) < 1e-13
    assert all(torch.all(b == 0) for b in ens.member_params(0)[1::2])


def test_weight_counts_match_spec_examples():
    # the jamming spec: L=3, d=h=51 -> 7854; L=2, d=h=62 -> 7750; L=5, d=h=40 -> 8040
    assert MLPSpec.uniform(51, 3, 51).n_weights == 7854
    assert MLPSpec.uniform(62, 2, 62).n_weights == 7750
    assert MLPSpec.uniform(40, 5, 40).n_weights == 8040
    s = MLPSpec.uniform(10, 3, 7)
    assert s.n_params == s.n_weights + 3 * 7 + 1
    assert s.n_params == sum(p.numel() for p in Ensemble.init(s, 1).to_module(0).parameters())


def test_state_roundtrip():
    specs = _members(2, True, "relu", False, 1)
    ens = Ensemble.init(specs, [7, 8, 9])
    back = Ensemble.from_arrays(ens.specs_json(), ens.state_arrays())
    assert back.specs == ens.specs and back.seeds == ens.seeds
    for p, q in zip(ens.params, back.params, strict=True):
        assert torch.equal(p, q)


def test_select_repads():
    specs = _members(1, True, "relu", False, 1)
    ens = Ensemble.init(specs, [1, 2, 3])
    sub = ens.select([1])
    assert sub.max_sizes == specs[1].sizes
    x = torch.randn(5, specs[1].d_in, dtype=F64)
    torch.testing.assert_close(sub.forward(x)[0], ens.member_forward(1, x), rtol=0, atol=TOL)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(d_in=0),
        dict(d_in=3, widths=(4, -1)),
        dict(d_in=3, activation="sigmoid"),
        dict(d_in=3, init="xavier"),
        dict(d_in=3, out_dim=0),
        dict(d_in=3, bias="yes"),
    ],
)
def test_bad_specs_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        MLPSpec(**kwargs)


def test_mixed_activation_ensemble_rejected():
    with pytest.raises(ConfigError, match="share"):
        Ensemble.init([MLPSpec(3, (4,)), MLPSpec(3, (4,), activation="tanh")], [0, 1])


@settings(derandomize=True, deadline=None, max_examples=25)
@given(
    widths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    depth=st.integers(0, 3),
    seed=st.integers(0, 2**31),
)
def test_padding_is_exact_for_any_widths(widths, depth, seed):
    specs = [MLPSpec.uniform(3 + (w % 2), depth, w, init="normal") for w in widths]
    ens = Ensemble.init(specs, list(range(seed, seed + len(specs))))
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(4, s.d_in, generator=gen, dtype=F64) for s in specs]
    out = ens.forward(ens.pad_inputs(xs))
    for m in range(len(specs)):
        torch.testing.assert_close(out[m], ens.to_module(m)(xs[m]), rtol=0, atol=TOL)
