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
    IsingModel,
    MetropolisConfig,
    PseudoLikelihood,
    PseudoLikelihoodConfig,
    all_states,
    binary_forward,
    coupling_table,
    exact_distribution,
    exact_moments,
    hidden_symmetry_defect,
    layer_map,
    metropolis_sample,
    parse_arch,
    permute_hidden_units,
    random_hidden_permutations,
    random_triplets,
    relabel_experiment,
    relabel_samples,
    sample_moments,
    symmetrised_moments,
    symmetrised_third_order,
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


# ------------------------------------------------ exact orbit averages of third-order moments


def _group(arch):
    """Every element of the hidden-unit permutation group of ``arch`` (lists of permutations)."""
    return [list(c) for c in itertools.product(*[_all_perms(h) for h in parse_arch(arch)[1:-1]])]


def _symmetric_model(arch, seed, coupling=0.4, field=0.4):
    """A random model made invariant by averaging J, h over the whole group (seeded)."""
    w = parse_arch(arch)
    n = sum(a * b for a, b in itertools.pairwise(w))
    rng = np.random.default_rng(seed)
    J0 = rng.normal(0, coupling, (n, n))
    h0 = rng.normal(0, field, n)
    idx = np.arange(n)
    J, h = np.zeros((n, n)), np.zeros(n)
    group = _group(arch)
    for g in group:
        p = permute_hidden_units(idx, arch, g)
        J += J0[np.ix_(p, p)] / len(group)
        h += h0[p] / len(group)
    return IsingModel.from_couplings(J, h)


@pytest.mark.parametrize("arch", ["2-3-3-2", "3-2-3", "2-3-2-2-2", "4-3"])
def test_symmetrised_third_order_equals_group_average(arch):
    """Oracle: relabel by every group element, pool, plain third-order moments — on the whole
    net (triplets spanning layers) and on each layer alone (``start``)."""
    w = parse_arch(arch)
    n = sum(a * b for a, b in itertools.pairwise(w))
    rng = np.random.default_rng(0)
    sigma = np.where(rng.random((30, n)) < 0.3 + 0.4 * rng.random(n), 1, -1).astype(np.int8)
    pooled = np.concatenate([permute_hidden_units(sigma, arch, g) for g in _group(arch)])
    trip = np.asarray(list(itertools.combinations(range(n), 3)))
    ref = sample_moments(pooled, triplets=trip).third.numpy()
    np.testing.assert_allclose(symmetrised_third_order(sigma, arch, trip).numpy(), ref,
                               atol=1e-13)  # fmt: skip
    for a, b in layer_map(arch).values():
        tl = np.asarray(list(itertools.combinations(range(b - a), 3)))
        if not len(tl):
            continue
        got = symmetrised_third_order(sigma[:, a:b], arch, tl, start=a).numpy()
        np.testing.assert_allclose(
            got, sample_moments(pooled[:, a:b], triplets=tl).third.numpy(), atol=1e-13
        )
        sl = symmetrised_moments(sigma[:, a:b], arch, start=a)  # a layer alone = the slice
        whole = symmetrised_moments(sigma, arch)
        np.testing.assert_allclose(sl.C.numpy(), whole.C.numpy()[a:b, a:b], atol=1e-13)
        np.testing.assert_allclose(sl.m.numpy(), whole.m.numpy()[a:b], atol=1e-13)


def _symmetric_itr_model():
    """The ITR layer of 2-4-4-2 alone (16 spins, both indices hidden: group S4 × S4), a seeded
    symmetric model with a sizeable third order (exact |κ| up to 0.013, spread 0.003)."""
    arch = "2-4-4-2"
    a, b = layer_map(arch)["ITR"]
    full = _symmetric_model(arch, seed=1, coupling=1.0, field=0.5)
    return arch, a, IsingModel.from_couplings(full.J.numpy()[a:b, a:b], full.h.numpy()[a:b])


def test_symmetrised_third_order_of_symmetric_model_is_exact():
    """A group-invariant model: the orbit average of its exact distribution (all 2^16 states
    weighted by their probabilities) is its exact third-order moments (exact enumeration)."""
    arch, a, model = _symmetric_itr_model()
    assert hidden_symmetry_defect(model, arch, start=a) < 1e-12
    trip = random_triplets(model.n_spins, 300, seed=4)
    exact = exact_moments(model, triplets=trip).third.numpy()
    assert np.abs(exact).max() > 0.01  # a non-trivial third order
    states = all_states(model.n_spins).numpy()
    p = exact_distribution(model).numpy()
    got = symmetrised_third_order(states, arch, trip, start=a, weights=p).numpy()
    np.testing.assert_allclose(got, exact, atol=1e-12)


def test_symmetrised_third_order_of_monte_carlo_samples():
    """Seeded statistical test: 10^4 Metropolis records (200 independent chains) of the
    symmetric ITR model. The plain estimate's standard error is ≈ 1/√10^4 = 0.01, three times
    the spread of the exact moments (so its r with them is low); the orbit average over the
    576 relabellings must be within 0.005 of the exact moments on every triplet, with an RMS
    error below a quarter of the plain estimate's (measured: 0.0007 vs 0.0098)."""
    arch, a, model = _symmetric_itr_model()
    trip = random_triplets(model.n_spins, 300, seed=4)
    exact = exact_moments(model, triplets=trip).third.numpy()
    cfg = MetropolisConfig(n_chains=200, n_samples=50, burn_in=200, thin=5, seed=5)
    x, _, _ = metropolis_sample(model, cfg)
    plain = sample_moments(x, triplets=trip).third.numpy()
    orbit = symmetrised_third_order(x, arch, trip, start=a).numpy()
    err_plain = np.sqrt(np.mean((plain - exact) ** 2))
    err_orbit = np.sqrt(np.mean((orbit - exact) ** 2))
    assert np.abs(orbit - exact).max() < 0.005
    assert err_orbit < 0.25 * err_plain
    assert np.corrcoef(orbit, exact)[0, 1] > 0.9


def test_hidden_symmetry_defect():
    arch = "2-3-2-2"
    model = _symmetric_model(arch, seed=6)
    assert hidden_symmetry_defect(model, arch) < 1e-12
    # invariant under swapping hidden units 0 and 1 of the first hidden layer only: the
    # n-cycle generator still sees the asymmetry of unit 2
    J, h = model.J.numpy().copy(), model.h.numpy().copy()
    h[4:6] += 0.25  # LB weights (unit 2, inputs 0 and 1)
    assert hidden_symmetry_defect(IsingModel(torch.as_tensor(J), torch.as_tensor(h)),
                                  arch) == pytest.approx(0.25)  # fmt: skip
    # one layer's model alone (ITR of 2-3-2-2 starts at spin 6)
    a, b = layer_map(arch)["ITR"]
    sub = IsingModel.from_couplings(model.J.numpy()[a:b, a:b], model.h.numpy()[a:b])
    assert hidden_symmetry_defect(sub, arch, start=a) < 1e-12
    assert hidden_symmetry_defect(sub, arch, start=np.int64(a)) < 1e-12  # numpy ints too
    with pytest.raises(ConfigError, match="layer boundary"):
        hidden_symmetry_defect(sub, arch, start=1)
    with pytest.raises(DatasetError, match="whole layers"):
        symmetrised_third_order(np.ones((3, 5)), arch, [[0, 1, 2]], start=a)


def test_symmetrised_third_order_checks_its_samples():
    # the same checks as sample_moments: ±1 entries, S >= 1, weights one per sample and not
    # all zero (0/1 samples gave a silently wrong number, zero weights NaN, S = 0 a division
    # by zero)
    arch = "2-3-2"
    trip = np.array([[0, 1, 2]])
    good = np.ones((4, 12), dtype=np.int8)
    for samples, kw, match in [
        (np.zeros((4, 12), dtype=np.int8), {}, "only -1 and \\+1"),
        (good[:0], {}, "S >= 1"),
        (good, {"weights": np.zeros(4)}, "all zero"),
        (good, {"weights": np.ones((2, 2))}, "weights must be"),
    ]:
        with pytest.raises(DatasetError, match=match):
            symmetrised_third_order(samples, arch, trip, **kw)
