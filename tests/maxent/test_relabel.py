"""Hidden-unit relabelling: the network function is unchanged (forward pass before/after), the
permutation acts consistently on both layers it touches, and the experiment relabels exactly
the requested fraction.

Oracles: the forward pass of the binary nets (``binary_forward``) before and after relabelling;
an explicit loop that builds the permuted weight matrices by index; exact invariants (the
multiset of each sample's weights, Σ_k m_{k,i} of the first layer); a seeded statistical test
that full relabelling makes the first layer's magnetisations independent of the hidden unit.
"""

import itertools

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError, DatasetError
from weightscape.maxent import (
    PseudoLikelihood,
    PseudoLikelihoodConfig,
    binary_forward,
    coupling_table,
    layer_map,
    parse_arch,
    permute_hidden_units,
    random_hidden_permutations,
    relabel_experiment,
    relabel_samples,
    symmetrised_moments,
)

ARCHS = ["6-4-5-3", "5-3-3", "4-3-4-2-3", "7-2"]


def _random_sigma(arch, S, seed):
    w = parse_arch(arch)
    n = sum(a * b for a, b in itertools.pairwise(w))
    return np.where(np.random.default_rng(seed).random((S, n)) < 0.5, 1, -1).astype(np.int8)


def _layers(sigma, arch):
    w = parse_arch(arch)
    S = sigma.shape[0]
    return [
        torch.as_tensor(sigma[:, a:b].astype(np.float64)).reshape(S, w[k + 1], w[k])
        for k, (a, b) in enumerate(layer_map(arch).values())
    ]


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_pass_unchanged(arch):
    sigma = _random_sigma(arch, 30, 0)
    perms = random_hidden_permutations(arch, 30, 1)
    out = permute_hidden_units(sigma, arch, perms)
    x = torch.as_tensor(np.random.default_rng(2).normal(size=(50, parse_arch(arch)[0])))
    before = binary_forward(_layers(sigma, arch), x)
    after = binary_forward(_layers(out, arch), x)
    torch.testing.assert_close(after, before, rtol=1e-12, atol=1e-12)
    if len(parse_arch(arch)) > 2:  # a real relabelling moved weights
        assert (out != sigma).any()
    else:  # no hidden layer: nothing to permute
        np.testing.assert_array_equal(out, sigma)


def test_matches_explicit_index_construction():
    arch = "3-4-5-2"
    sigma = _random_sigma(arch, 1, 3)[0]
    p0, p1 = np.array([2, 0, 3, 1]), np.array([4, 1, 0, 3, 2])
    out = permute_hidden_units(sigma, arch, [p0, p1])
    W0 = sigma[:12].reshape(4, 3)
    W1 = sigma[12:32].reshape(5, 4)
    W2 = sigma[32:].reshape(2, 5)
    E0 = np.array([[W0[p0[i], j] for j in range(3)] for i in range(4)])
    E1 = np.array([[W1[p1[i], p0[j]] for j in range(4)] for i in range(5)])
    E2 = np.array([[W2[i, p1[j]] for j in range(5)] for i in range(2)])
    np.testing.assert_array_equal(out, np.concatenate([E0.ravel(), E1.ravel(), E2.ravel()]))
    # the inverse permutations undo it
    back = permute_hidden_units(out, arch, [np.argsort(p0), np.argsort(p1)])
    np.testing.assert_array_equal(back, sigma)


def test_relabel_fraction_and_invariants():
    arch = "6-4-5-3"
    sigma = _random_sigma(arch, 200, 4)
    for f in (0.0, 0.3, 0.6, 0.9, 1.0):
        out, mask = relabel_samples(sigma, arch, f, seed=5)
        assert mask.sum() == round(f * 200)
        np.testing.assert_array_equal(out[~mask], sigma[~mask])
        # each sample's weights per layer are a rearrangement of its own
        for a, b in layer_map(arch).values():
            np.testing.assert_array_equal(out[:, a:b].sum(1), sigma[:, a:b].sum(1))
        # Σ_k m_{k,i} of the first layer is invariant (rows are permuted within a sample)
        m0 = sigma[:, :24].reshape(200, 4, 6).mean(0).sum(0)
        m1 = out[:, :24].reshape(200, 4, 6).mean(0).sum(0)
        np.testing.assert_allclose(m1, m0, atol=1e-12)
    # seeded: the same seed gives the same relabelling
    a, _ = relabel_samples(sigma, arch, 0.6, seed=7)
    b, _ = relabel_samples(sigma, arch, 0.6, seed=7)
    np.testing.assert_array_equal(a, b)


def test_full_relabelling_makes_first_layer_unit_independent():
    # hidden unit 0 has all incoming weights +1, the others random: a strongly unit-dependent m.
    arch, S = "5-4-3", 20_000
    sigma = _random_sigma(arch, S, 6)
    sigma[:, :5] = 1
    m_before = sigma[:, :20].reshape(S, 4, 5).mean(0)
    assert (m_before[0] == 1).all()
    out, _ = relabel_samples(sigma, arch, 1.0, seed=8)
    m = out[:, :20].reshape(S, 4, 5).mean(0)  # [k, i]
    # after relabelling, unit k holds old unit 0 with probability 1/4: E m_{k,i} = 1/4 for all k;
    # Var σ = 1 - m² ≤ 1 so the standard error is ≤ 1/sqrt(S) = 0.007; 5 sigma = 0.035
    np.testing.assert_allclose(m, 0.25, atol=0.035)


def test_experiment_table_and_zero_fraction_reference():
    arch = "6-3-3-4"
    sigma = _random_sigma(arch, 300, 9)
    pl = PseudoLikelihood(PseudoLikelihoodConfig(l2=1e-2, newton_steps=0, evaluate="none"))
    res = relabel_experiment(sigma, arch, (0.0, 0.5), method=pl, seed=1)
    t = res.table
    assert list(t.layer) == ["LB", "ITR", "RB"] * 2
    assert list(t.n_relabelled) == [0] * 3 + [150] * 3
    # fraction 0 is the plain fit of the unrelabelled samples
    for name, (a, b) in layer_map(arch).items():
        model, _ = pl.fit(sigma[:, a:b])
        row = t[(t.fraction == 0.0) & (t.layer == name)].iloc[0]
        ref = coupling_table(model, {name: (0, b - a)}).iloc[0]
        assert row.J_std == pytest.approx(ref.J_std, rel=1e-10)
        assert row.h_std == pytest.approx(ref.h_std, rel=1e-10)
    assert set(res.models) == {(f, n) for f in (0.0, 0.5) for n in ("LB", "ITR", "RB")}


def test_bad_inputs():
    arch = "6-4-5-3"
    sigma = _random_sigma(arch, 10, 0)
    with pytest.raises(ConfigError, match="fraction"):
        relabel_samples(sigma, arch, 1.5)
    with pytest.raises(DatasetError, match="needs"):
        relabel_samples(sigma[:, :-1], arch, 0.5)
    with pytest.raises(ConfigError, match="reordering"):
        permute_hidden_units(sigma, arch, [np.array([0, 0, 1, 2]), np.arange(5)])
    with pytest.raises(ConfigError, match="hidden layer"):
        permute_hidden_units(sigma, arch, [np.arange(4)])
    with pytest.raises(ConfigError, match="MID"):
        relabel_experiment(sigma, arch, (0.3,), layers=["MID"])


def _all_perms(k):
    return [np.array(p) for p in itertools.permutations(range(k))]


@pytest.mark.parametrize("arch", ["2-3-2-2", "3-2-3", "2-2-2-2-2"])
def test_symmetrised_moments_equal_group_average(arch):
    """Oracle: relabel the samples by every element of the group, pool, take moments."""
    sigma = _random_sigma(arch, 40, 11)
    sigma[:, 0] = 1  # some structure so that symmetrisation changes something
    hidden = parse_arch(arch)[1:-1]
    ms, Cs = [], []
    for combo in itertools.product(*[_all_perms(h) for h in hidden]):
        x = permute_hidden_units(sigma, arch, list(combo)).astype(float)
        ms.append(x.mean(0))
        Cs.append(x.T @ x / len(x))
    sym = symmetrised_moments(sigma, arch)
    np.testing.assert_allclose(sym.m.numpy(), np.mean(ms, 0), atol=1e-12)
    np.testing.assert_allclose(sym.C.numpy(), np.mean(Cs, 0), atol=1e-12)
    # invariant under relabelling the data, and the first layer's m depends on the input only
    relab, _ = relabel_samples(sigma, arch, 1.0, seed=2)
    np.testing.assert_allclose(symmetrised_moments(relab, arch).m.numpy(), sym.m.numpy(),
                               atol=1e-12)  # fmt: skip
    w = parse_arch(arch)
    m0 = sym.m.numpy()[: w[0] * w[1]].reshape(w[1], w[0])
    np.testing.assert_allclose(m0, np.broadcast_to(m0[0], m0.shape), atol=1e-12)
