"""Batched Monte Carlo vs exact enumeration: one aggregate test over all moments (Hotelling T² on
independent per-chain means, which absorbs within-chain autocorrelation), a chi-square test of
configuration frequencies at N = 8 on independent chains, and bookkeeping checks."""

import numpy as np
import pytest
import torch
from scipy import stats

from weightscape.errors import ConfigError, DatasetError
from weightscape.maxent import (
    MetropolisConfig,
    MetropolisState,
    all_states,
    exact_distribution,
    exact_moments,
    metropolis_sample,
)

from .conftest import random_model

# Seeded runs cannot flake; the threshold only guards against a real discrepancy. A p-value below
# 1e-4 for a correct sampler would be a 1-in-10^4 accident of the fixed seed.
ALPHA = 1e-4


@pytest.mark.parametrize("rule", ["metropolis", "heat_bath"])
def test_all_moments_agree_with_exact_enumeration(rule):
    model = random_model(6, 0.4, 0.3, seed=3)
    ex = exact_moments(model)
    B, R = 1000, 20
    cfg = MetropolisConfig(n_chains=B, n_samples=R, burn_in=30, thin=2, rule=rule, seed=11)
    samples, _, _ = metropolis_sample(model, cfg)
    x = samples.reshape(R, B, 6).astype(float)
    iu = np.triu_indices(6, 1)
    feats = np.concatenate([x, x[..., iu[0]] * x[..., iu[1]]], axis=-1)  # [R, B, p]
    chain_means = feats.mean(0)  # [B, p]: independent across chains
    mu = np.concatenate([ex.m.numpy(), ex.C.numpy()[iu]])
    p = mu.size
    diff = chain_means.mean(0) - mu
    cov = np.cov(chain_means.T)
    t2 = B * diff @ np.linalg.solve(cov, diff)
    # Hotelling: T² (B - p) / (p (B - 1)) ~ F(p, B - p) for B independent mean vectors
    pval = stats.f.sf(t2 * (B - p) / (p * (B - 1)), p, B - p)
    assert pval > ALPHA, (t2, pval)


@pytest.mark.parametrize("rule", ["metropolis", "heat_bath"])
def test_configuration_frequencies_chi_square(rule):
    model = random_model(8, 0.2, 0.2, seed=5)
    p = exact_distribution(model).numpy()
    B = 40_000  # one record per chain: records are independent
    cfg = MetropolisConfig(n_chains=B, n_samples=1, burn_in=40, thin=1, rule=rule, seed=2)
    samples, _, _ = metropolis_sample(model, cfg)
    idx = ((samples > 0).astype(np.int64) << np.arange(8)).sum(1)  # state index of all_states
    counts = np.bincount(idx, minlength=256)
    expected = B * p
    assert expected.min() > 5  # chi-square approximation valid
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert stats.chi2.sf(chi2, 255) > ALPHA, chi2
    assert (all_states(8).numpy()[idx[:5]] == samples[:5]).all()


def test_energies_layout_and_reproducibility():
    model = random_model(10, 0.3, 0.3, seed=1)
    cfg = MetropolisConfig(n_chains=7, n_samples=5, burn_in=3, thin=2, seed=4)
    s1, st1, tr1 = metropolis_sample(model, cfg)
    s2, _, _ = metropolis_sample(model, cfg)
    assert s1.dtype == np.int8 and s1.shape == (35, 10)
    np.testing.assert_array_equal(s1, s2)  # same seed, same chains
    # trace energies are float64 energies of the records, row r*B + c = record r of chain c
    np.testing.assert_allclose(
        tr1.energies.reshape(-1), model.energy(s1).numpy(), rtol=0, atol=1e-12
    )
    assert tr1.energies.dtype == torch.float64 and tr1.sweeps == 3 + 5 * 2
    assert tr1.acceptance.shape == (13,) and 0 < float(tr1.acceptance.mean()) < 1
    np.testing.assert_array_equal(st1.sigma.numpy(), s1[-7:])
    # block size is a speed knob only: identical chains (random numbers drawn per sweep)
    s3, _, _ = metropolis_sample(
        model,
        MetropolisConfig(n_chains=7, n_samples=5, burn_in=3, thin=2, seed=4, block_size=3),
    )
    np.testing.assert_array_equal(s1, s3)


def test_continuation_from_state():
    model = random_model(5, 0.3, 0.3, seed=2)
    cfg = MetropolisConfig(n_chains=4, n_samples=2, burn_in=0, thin=1, seed=0)
    _, st, _ = metropolis_sample(model, cfg)
    s_cont, _, _ = metropolis_sample(model, cfg, state=st)
    whole, _, _ = metropolis_sample(
        model, MetropolisConfig(n_chains=4, n_samples=4, burn_in=0, thin=1, seed=0)
    )
    # continuing with the saved generator state reproduces the uninterrupted run
    np.testing.assert_array_equal(s_cont, whole[8:])
    with pytest.raises(DatasetError, match="n_chains"):
        metropolis_sample(model, cfg, state=MetropolisState(torch.ones(3, 5)))
    # a generator state saved on another device (a CUDA state has 16 bytes): one-line error
    foreign = MetropolisState(st.sigma, torch.zeros(16, dtype=torch.uint8))
    with pytest.raises(ConfigError, match=r"16 bytes\) is not a state of a cpu generator"):
        metropolis_sample(model, cfg, state=foreign)
    # without its generator state the chains continue from their spins with a fresh stream
    s_fresh, _, _ = metropolis_sample(model, cfg, state=MetropolisState(st.sigma))
    assert s_fresh.shape == s_cont.shape


def test_config_validation():
    with pytest.raises(ConfigError, match="rule"):
        MetropolisConfig(rule="gibbs")
    with pytest.raises(ConfigError, match="thin"):
        MetropolisConfig(thin=0)
    with pytest.raises(ConfigError, match="n_chains"):
        MetropolisConfig(n_chains=1.5)


@pytest.mark.parametrize("chains", [1, 3])
def test_sampler_leaves_the_callers_starting_state_alone(chains):
    # The sweeps update their spins in place; the caller's state.sigma (a tensor, or a float64
    # array torch would share) must not change, also for one chain, whose transpose is already
    # contiguous.
    model = random_model(8, 0.3, 0.3, seed=0)
    cfg = MetropolisConfig(n_chains=chains, n_samples=3, burn_in=2, thin=1, seed=0)
    for start in (torch.ones(chains, 8, dtype=torch.float64), np.ones((chains, 8))):
        metropolis_sample(model, cfg, MetropolisState(start))
        assert (np.asarray(start) == 1).all()
