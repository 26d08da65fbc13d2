"""Energy vs accuracy and Monte Carlo from trained weights (maxent._generative).

Oracles: a NumPy forward pass written here, energies summed pair by pair, the closed-form
relaxation of a sequential Metropolis chain of independent spins (J = 0), and the records'
own configurations re-tested.
"""

import math

import numpy as np
import pytest
import torch
from scipy.stats import chi2, norm

from weightscape.errors import ConfigError, DatasetError
from weightscape.maxent import (
    IsingModel,
    MCAccuracyConfig,
    energy_accuracy,
    layer_map,
    mc_accuracy,
    network_accuracy,
)
from weightscape.maxent import _samples as samples_mod

from .conftest import numpy_logits

ARCH = "4-3-3-2"  # LB 12, ITR 9, RB 6: N = 27


def _numpy_accuracy(sigma, arch, x, y):
    widths = [int(w) for w in arch.split("-")]
    return np.array([np.mean(numpy_logits(s, widths, x).argmax(1) == y) for s in sigma])


@pytest.fixture
def task():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 4))
    y = rng.integers(0, 2, size=40)
    return x, y


def test_network_accuracy_equals_plain_forward_pass(task, monkeypatch):
    x, y = task
    sigma = np.random.default_rng(0).choice([-1, 1], size=(11, 27)).astype(np.int8)
    want = _numpy_accuracy(sigma, ARCH, x, y)
    np.testing.assert_allclose(network_accuracy(sigma, ARCH, x, y), want, atol=0)
    # the forward pass's blocks do not change the numbers (2 networks per block here)
    monkeypatch.setattr(samples_mod, "DRAW_BLOCK_BYTES", 40 * 3 * 8 * 2)
    np.testing.assert_allclose(network_accuracy(sigma, ARCH, x, y), want, atol=0)


def test_network_accuracy_bad_input(task):
    x, y = task
    with pytest.raises(DatasetError, match=r"\[S, 27\]"):
        network_accuracy(np.ones((2, 26)), ARCH, x, y)
    with pytest.raises(DatasetError, match="-1 and \\+1"):
        network_accuracy(np.zeros((2, 27)), ARCH, x, y)
    with pytest.raises(DatasetError, match=r"x \[P, 4\]"):
        network_accuracy(np.ones((2, 27)), ARCH, x[:, :3], y)


def test_energy_accuracy_against_pairwise_sums():
    rng = np.random.default_rng(1)
    n, S = 7, 50
    model = IsingModel.random(n, coupling_std=0.4, field_std=0.3, seed=2)
    J, h = model.J.numpy(), model.h.numpy()
    sigma = rng.choice([-1, 1], size=(S, n))
    acc = rng.choice([0.5, 0.6, 0.75], size=S)
    want = np.array([
        -sum(J[i, j] * s[i] * s[j] for i in range(n) for j in range(i + 1, n)) - h @ s
        for s in sigma
    ]) / n  # fmt: skip
    res = energy_accuracy(model, sigma, acc)
    np.testing.assert_allclose(res.energy, want, rtol=0, atol=1e-13)
    # one row per distinct accuracy, its energies' mean and (population) spread
    assert list(res.table.accuracy) == [0.5, 0.6, 0.75]
    for row in res.table.itertuples():
        e = want[acc == row.accuracy]
        assert row.n == e.size
        assert row.energy_mean == pytest.approx(e.mean(), abs=1e-13)
        assert row.energy_std == pytest.approx(e.std(), abs=1e-13)
    assert res.table.n.sum() == S
    # bins of width 0.2: [0.4, 0.6) holds 0.5 only; [0.6, 0.8) holds 0.6 and 0.75
    binned = energy_accuracy(model, sigma, acc, bin_width=0.2)
    assert binned.table.n.tolist() == [(acc == 0.5).sum(), (acc > 0.55).sum()]
    np.testing.assert_allclose(binned.table.acc_lo, [0.4, 0.6], atol=1e-12)


def test_energy_accuracy_correlations():
    # accuracy a strictly decreasing function of energy: rank correlation exactly -1
    model = IsingModel.from_couplings(np.zeros((5, 5)), np.linspace(0.1, 0.5, 5))
    sigma = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 1, -1], [1, 1, 1, -1, -1], [-1, -1, -1, -1, -1]])
    res = energy_accuracy(model, sigma, [0.9, 0.8, 0.7, 0.2])
    assert res.spearman == pytest.approx(-1.0)
    assert res.pearson < -0.9
    assert res.to_dict()["n_samples"] == 4


def test_energy_accuracy_bad_input():
    model = IsingModel.zeros(3)
    with pytest.raises(DatasetError, match="one per sample"):
        energy_accuracy(model, np.ones((4, 3)), [0.5] * 3)
    with pytest.raises(DatasetError, match=r"\[0, 1\]"):
        energy_accuracy(model, np.ones((2, 3)), [0.5, 1.5])
    with pytest.raises(DatasetError, match=r"\[S, 3\]"):
        energy_accuracy(model, np.ones((2, 4)), [0.5, 0.5])
    with pytest.raises(ConfigError, match="bin_width"):
        energy_accuracy(model, np.ones((2, 3)), [0.5, 0.5], bin_width=0.0)


@pytest.mark.parametrize("rule", ["metropolis", "heat_bath"])
def test_mc_accuracy_relaxation_of_independent_spins(task, rule):
    """J = 0: each spin is a two-state chain visited once per sweep, flipped with probability
    a from +1 and b from -1 — Metropolis a = min(1, e^{-2h}), b = min(1, e^{2h}); heat bath
    a = 1/(1 + e^{2h}), b = 1/(1 + e^{-2h}) (a + b = 1: one visit forgets the start) — so
    E[σ_i(t)] = tanh h_i + (1 - a_i - b_i)^t (σ*_i - tanh h_i).
    Statistic: at sweeps 1 and 2, the per-spin means over R independent chains are independent
    across spins: one chi-square over the N spins per record, Bonferroni over the two records
    and the two starting points (total false-alarm rate 1e-6; seeded)."""
    x, y = task
    N, R = 27, 3000
    rng = np.random.default_rng(5)
    h = rng.uniform(0.2, 1.0, N) * rng.choice([-1, 1], N)
    model = IsingModel.from_couplings(np.zeros((N, N)), h)
    starts = np.stack([rng.choice([-1, 1], N), np.sign(h)]).astype(np.int8)  # random; aligned
    starts = np.repeat(starts, R // 2, axis=0)
    tr = mc_accuracy(model, starts, ARCH, x, y, MCAccuracyConfig(sweeps=2, rule=rule, seed=11))
    if rule == "metropolis":
        a, b = np.minimum(1, np.exp(-2 * h)), np.minimum(1, np.exp(2 * h))
    else:
        a, b = 1 / (1 + np.exp(2 * h)), 1 / (1 + np.exp(-2 * h))
    lam, m_eq = 1 - a - b, np.tanh(h)
    p_values = []
    for half in (slice(0, R // 2), slice(R // 2, R)):
        s0 = starts[half][0].astype(float)
        for t in (1, 2):
            mean_t = m_eq + lam**t * (s0 - m_eq)
            got = tr.sigma[t, half].astype(float).mean(0)
            var = np.maximum(1 - mean_t**2, 1e-12) / (R // 2)
            p_values.append(chi2.sf(((got - mean_t) ** 2 / var).sum(), df=N))
    assert min(p_values) > 1e-6 / len(p_values), p_values
    # the overlap is the records' own q = σ · σ* / N
    q = (tr.sigma.astype(float) * starts[None].astype(float)).mean(-1)
    np.testing.assert_allclose(tr.overlap, q, atol=0)
    assert np.all(tr.overlap[0] == 1.0)
    # its mean follows the same closed form (a check of the table's columns)
    s0 = starts[0].astype(float)
    want = (s0 * (m_eq + lam * (s0 - m_eq))).mean()
    got = tr.table().overlap_mean.iloc[1]
    se = math.sqrt((1 - (m_eq + lam * (s0 - m_eq)) ** 2).sum() / N**2 / (R // 2))
    assert abs(tr.overlap[1, : R // 2].mean() - want) < norm.isf(1e-7) * se
    assert tr.table().d_mean.iloc[1] == pytest.approx((1 - got) / 2)


def test_mc_accuracy_records_are_tested_networks(task):
    """Every record's accuracy and energy are those of its own configuration; with a span,
    the weights outside it stay at the start."""
    x, y = task
    layers = layer_map(ARCH)
    a, b = layers["ITR"]
    rng = np.random.default_rng(7)
    model = IsingModel.random(b - a, coupling_std=0.3, field_std=0.2, seed=4)
    starts = rng.choice([-1, 1], size=(5, 27)).astype(np.int8)
    cfg = MCAccuracyConfig(sweeps=6, record_every=2, seed=1)
    tr = mc_accuracy(model, starts, ARCH, x, y, cfg, span=(a, b))
    assert tr.sigma.shape == (4, 5, b - a)
    np.testing.assert_array_equal(tr.sweeps, [0, 2, 4, 6])
    np.testing.assert_array_equal(tr.sigma[0], starts[:, a:b])
    for t in range(4):
        nets = starts.copy()
        nets[:, a:b] = tr.sigma[t]
        np.testing.assert_allclose(tr.accuracy[t], _numpy_accuracy(nets, ARCH, x, y), atol=0)
        e = model.energy(torch.as_tensor(tr.sigma[t])).numpy() / (b - a)
        np.testing.assert_allclose(tr.energy[t], e, rtol=0, atol=1e-12)
    assert tr.acceptance.shape == (6,)
    assert not np.array_equal(tr.sigma[-1], tr.sigma[0])  # the chains moved
    s = tr.summary()
    assert s["span"] == [a, b] and s["sweep_first"] == 2 and s["sweeps"] == 6
    assert s["accuracy_mean_start"] == pytest.approx(tr.accuracy[0].mean())


def test_mc_accuracy_bad_input(task):
    x, y = task
    starts = np.ones((2, 27), dtype=np.int8)
    with pytest.raises(DatasetError, match="moves 9"):
        mc_accuracy(IsingModel.zeros(8), starts, ARCH, x, y, span=(12, 21))
    with pytest.raises(ConfigError, match="span"):
        mc_accuracy(IsingModel.zeros(8), starts, ARCH, x, y, span=(21, 30))
    with pytest.raises(DatasetError, match=r"\[S, 27\]"):
        mc_accuracy(IsingModel.zeros(27), starts[:, :20], ARCH, x, y)
    with pytest.raises(ConfigError, match="divide"):
        MCAccuracyConfig(sweeps=10, record_every=3)
    with pytest.raises(ConfigError, match="rule"):
        MCAccuracyConfig(rule="glauber")
    with pytest.raises(ConfigError, match="sweeps"):
        MCAccuracyConfig(sweeps=0)


def test_tilted_walk_equilibrium_of_independent_spins(task):
    """J = 0 and heat bath: one visit draws each spin from its conditional, so after one sweep
    chain r holds E[σ_i] = tanh(h_i + x σ*_ri) exactly (the tilted product measure). One
    chi-square over the spins per (start, tilt), Bonferroni over the 4 of them (1e-6)."""
    x, y = task
    N, R = 27, 4000
    rng = np.random.default_rng(8)
    h = rng.normal(0, 0.5, N)
    model = IsingModel.from_couplings(np.zeros((N, N)), h)
    s_a, s_b = rng.choice([-1, 1], N), rng.choice([-1, 1], N)
    starts = np.concatenate([np.tile(s_a, (R // 2, 1)), np.tile(s_b, (R // 2, 1))]).astype(np.int8)
    p_values = []
    for k, tilt in enumerate((0.7, -1.5)):
        tr = mc_accuracy(
            model, starts, ARCH, x, y, MCAccuracyConfig(sweeps=1, seed=20 + k), tilt=tilt
        )
        assert tr.tilt == tilt and tr.summary()["tilt"] == tilt
        for half, s0 in ((slice(0, R // 2), s_a), (slice(R // 2, R), s_b)):
            want = np.tanh(h + tilt * s0)
            got = tr.sigma[1, half].astype(float).mean(0)
            stat = ((got - want) ** 2 / ((1 - want**2) / (R // 2))).sum()
            p_values.append(chi2.sf(stat, df=N))
        # energies are the untilted model's
        e = model.energy(torch.as_tensor(tr.sigma[1])).numpy() / N
        np.testing.assert_allclose(tr.energy[1], e, rtol=0, atol=1e-12)
    assert min(p_values) > 1e-6 / len(p_values), p_values


def test_per_chain_fields_equal_to_the_model_fields_change_nothing():
    from weightscape.maxent import MetropolisConfig, metropolis_sample

    model = IsingModel.random(12, coupling_std=0.4, field_std=0.3, seed=1)
    cfg = MetropolisConfig(n_chains=6, n_samples=5, burn_in=3, thin=2, seed=4)
    a, _, ta = metropolis_sample(model, cfg)
    fields = model.h[None, :].repeat(6, 1)
    b, _, tb = metropolis_sample(model, cfg, fields=fields)
    np.testing.assert_array_equal(a, b)
    torch.testing.assert_close(ta.energies, tb.energies, rtol=0, atol=1e-12)
    with pytest.raises(DatasetError, match=r"\[n_chains, N\] = \[6, 12\]"):
        metropolis_sample(model, cfg, fields=fields[:5])


def test_tilt_must_be_finite(task):
    x, y = task
    with pytest.raises(ConfigError, match="tilt"):
        mc_accuracy(IsingModel.zeros(27), np.ones((2, 27)), ARCH, x, y, tilt=float("nan"))


# --- random-site dynamics (order="random_site"): the paper's walks, recorded within a sweep ---


@pytest.mark.parametrize("rule", ["metropolis", "heat_bath"])
def test_random_site_relaxation_of_independent_spins(task, rule):
    """J = 0, one uniformly random site per step: spin i is visited with probability 1/n per
    step, so E[σ_i(t)] = tanh h_i + (1 - (a_i + b_i)/n)^t (σ*_i - tanh h_i) with the per-visit
    flip probabilities a, b of the rule (see the sweep test). One chi-square over the N spins
    per (record, start), Bonferroni over the 4 of them (1e-6 in all). Spins of one chain are
    slightly dependent through the shared site draws (visit counts correlate as -1/(n-1));
    the test ignores that: it is far below what the 1e-6 threshold could notice."""
    x, y = task
    N, R = 27, 3000
    rng = np.random.default_rng(6)
    h = rng.uniform(0.2, 1.0, N) * rng.choice([-1, 1], N)
    model = IsingModel.from_couplings(np.zeros((N, N)), h)
    starts = np.stack([rng.choice([-1, 1], N), np.sign(h)]).astype(np.int8)
    starts = np.repeat(starts, R // 2, axis=0)
    cfg = MCAccuracyConfig(sweeps=2, rule=rule, seed=12, order="random_site", record_every_steps=9)
    tr = mc_accuracy(model, starts, ARCH, x, y, cfg)
    np.testing.assert_array_equal(tr.steps, np.arange(7) * 9)
    np.testing.assert_allclose(tr.sweeps, np.arange(7) * 9 / N)
    if rule == "metropolis":
        a, b = np.minimum(1, np.exp(-2 * h)), np.minimum(1, np.exp(2 * h))
    else:
        a, b = 1 / (1 + np.exp(2 * h)), 1 / (1 + np.exp(-2 * h))
    lam, m_eq = 1 - (a + b) / N, np.tanh(h)
    p_values = []
    for half in (slice(0, R // 2), slice(R // 2, R)):
        s0 = starts[half][0].astype(float)
        for rec in (1, 3):
            mean_t = m_eq + lam ** tr.steps[rec] * (s0 - m_eq)
            got = tr.sigma[rec, half].astype(float).mean(0)
            var = np.maximum(1 - mean_t**2, 1e-12) / (R // 2)
            p_values.append(chi2.sf(((got - mean_t) ** 2 / var).sum(), df=N))
    assert min(p_values) > 1e-6 / len(p_values), p_values
    # sweep-order relaxation after the same number of steps is different (one whole visit per
    # sweep): the test above would reject it at the first record
    lam_sweep = 1 - a - b
    assert np.abs(lam_sweep - lam**N).max() > 0.1


@pytest.mark.parametrize("rule", ["metropolis", "heat_bath"])
def test_random_site_walk_reaches_the_exact_distribution(rule):
    """Many independent chains of a 5-spin model with couplings, after 200 sweeps' worth of
    random-site steps: configuration frequencies against exact enumeration (chi-square over
    the 32 states, Bonferroni over the two rules: 1e-6 in all); the same seed gives the same
    chains."""
    from weightscape.maxent import all_states, exact_distribution, random_site_walk

    model = IsingModel.random(5, coupling_std=0.5, field_std=0.3, seed=8)
    R = 12_000
    start = np.random.default_rng(0).choice([-1, 1], size=(R, 5)).astype(np.int8)
    rec, acc = random_site_walk(model, start, n_records=1, steps_per_record=1000, rule=rule, seed=3)
    assert rec.shape == (1, R, 5) and acc.shape == (1,) and 0 < acc[0] < 1
    p = exact_distribution(model).numpy()
    states = all_states(5).numpy()
    code = {tuple(s): k for k, s in enumerate(states)}
    counts = np.bincount([code[tuple(s)] for s in rec[0]], minlength=32)
    expected = R * p / p.sum()
    assert expected.min() > 5
    stat = ((counts - expected) ** 2 / expected).sum()
    assert chi2.sf(stat, df=31) > 1e-6 / 2, stat
    again, _ = random_site_walk(model, start, n_records=1, steps_per_record=1000, rule=rule, seed=3)
    np.testing.assert_array_equal(again, rec)


def test_random_site_records_within_a_sweep(task):
    """Records every 3 steps of a 9-spin layer: between two records a chain changes at most 3
    weights, only inside the span; every record is tested as its own network."""
    x, y = task
    a, b = layer_map(ARCH)["ITR"]
    rng = np.random.default_rng(9)
    model = IsingModel.random(b - a, coupling_std=0.3, field_std=0.2, seed=5)
    starts = rng.choice([-1, 1], size=(6, 27)).astype(np.int8)
    cfg = MCAccuracyConfig(sweeps=2, order="random_site", record_every_steps=3, seed=2)
    tr = mc_accuracy(model, starts, ARCH, x, y, cfg, span=(a, b))
    assert tr.sigma.shape == (7, 6, b - a) and tr.acceptance.shape == (6,)
    np.testing.assert_allclose(tr.sweeps, np.arange(7) / 3)
    changed = (tr.sigma[1:] != tr.sigma[:-1]).sum(-1)
    assert changed.max() <= 3 and changed.sum() > 0
    for t in (0, 3, 6):
        nets = starts.copy()
        nets[:, a:b] = tr.sigma[t]
        np.testing.assert_allclose(tr.accuracy[t], _numpy_accuracy(nets, ARCH, x, y), atol=0)
    s = tr.summary()
    assert s["step_first"] == 3 and s["sweep_first"] == pytest.approx(1 / 3) and s["sweeps"] == 2
    assert list(tr.table().step) == [0, 3, 6, 9, 12, 15, 18]
    # records per sweep (no record_every_steps): the same schedule as order="sweep"
    cfg = MCAccuracyConfig(sweeps=4, record_every=2, order="random_site", seed=2)
    tr = mc_accuracy(model, starts, ARCH, x, y, cfg, span=(a, b))
    np.testing.assert_array_equal(tr.sweeps, [0, 2, 4])
    np.testing.assert_array_equal(tr.steps, [0, 18, 36])


def test_random_site_bad_settings(task):
    x, y = task
    with pytest.raises(ConfigError, match="needs order='random_site'"):
        MCAccuracyConfig(record_every_steps=3)
    with pytest.raises(ConfigError, match="order='diagonal' is not allowed"):
        MCAccuracyConfig(order="diagonal")
    with pytest.raises(ConfigError, match="record_every_steps"):
        MCAccuracyConfig(order="random_site", record_every_steps=0)
    cfg = MCAccuracyConfig(sweeps=1, order="random_site", record_every_steps=4)
    with pytest.raises(ConfigError, match=r"must divide sweeps · n = 1 · 27"):
        mc_accuracy(IsingModel.zeros(27), np.ones((2, 27), dtype=np.int8), ARCH, x, y, cfg)
