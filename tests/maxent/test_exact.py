"""Exact enumeration vs brute-force loops and closed forms."""

import math

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError
from weightscape.maxent import (
    IsingModel,
    all_states,
    exact_distribution,
    exact_log_partition,
    exact_moments,
)

from .conftest import brute_force, random_model

# Identities of float64 sums over <= 2^6 states: round-off ~1e-15; 1e-12 leaves a wide margin.
TOL = 1e-12


@pytest.mark.parametrize("n,seed", [(1, 0), (2, 1), (4, 2), (6, 3)])
def test_matches_brute_force_loops(n, seed):
    model = random_model(n, 0.7, 0.5, seed=seed)
    logz, m, C, T = brute_force(model.J.numpy(), model.h.numpy())
    mom = exact_moments(model, triplets="all")
    assert abs(float(exact_log_partition(model)) - logz) < TOL
    np.testing.assert_allclose(mom.m.numpy(), m, atol=TOL)
    np.testing.assert_allclose(mom.C.numpy(), C, atol=TOL)
    np.testing.assert_allclose(mom.third.numpy(), T, atol=TOL)


def test_independent_spins():
    h = torch.tensor([0.3, -1.2, 2.0, 0.0], dtype=torch.float64)
    model = IsingModel(torch.zeros(4, 4, dtype=torch.float64), h)
    mom = exact_moments(model, triplets="all")
    np.testing.assert_allclose(mom.m, torch.tanh(h), atol=TOL)
    np.testing.assert_allclose(mom.connected, torch.diag(1 - torch.tanh(h) ** 2), atol=TOL)
    # third cumulant of one ±1 spin: -2 m (1 - m²); zero across distinct spins
    T = mom.third.numpy()
    m = np.tanh(h.numpy())
    for i in range(4):
        assert abs(T[i, i, i] + 2 * m[i] * (1 - m[i] ** 2)) < TOL
    T[np.arange(4), np.arange(4), np.arange(4)] = 0
    assert np.abs(T).max() < TOL
    assert abs(float(exact_log_partition(model)) - float(torch.log(2 * torch.cosh(h)).sum())) < TOL


def test_two_spins_closed_form():
    Jv, h1, h2 = 0.8, 0.3, -0.5
    model = IsingModel.from_couplings([[0, Jv], [Jv, 0]], [h1, h2])
    a, b = math.exp(Jv) * math.cosh(h1 + h2), math.exp(-Jv) * math.cosh(h1 - h2)
    Z = 2 * (a + b)
    m1 = (math.exp(Jv) * math.sinh(h1 + h2) + math.exp(-Jv) * math.sinh(h1 - h2)) / (a + b)
    m2 = (math.exp(Jv) * math.sinh(h1 + h2) - math.exp(-Jv) * math.sinh(h1 - h2)) / (a + b)
    C12 = (a - b) / (a + b)
    mom = exact_moments(model)
    assert abs(float(exact_log_partition(model)) - math.log(Z)) < TOL
    np.testing.assert_allclose(mom.m.numpy(), [m1, m2], atol=TOL)
    assert abs(float(mom.C[0, 1]) - C12) < TOL


def test_distribution_and_states_are_consistent():
    model = random_model(5, 0.5, 0.5, seed=4)
    X = all_states(5)
    p = exact_distribution(model)
    assert X.shape == (32, 5) and X.dtype == torch.int8
    assert len({tuple(r) for r in X.tolist()}) == 32
    assert abs(float(p.sum()) - 1) < TOL
    # p(σ) ∝ exp(-E(σ)) with the model's own energy
    logp = -model.energy(X) - exact_log_partition(model)
    np.testing.assert_allclose(p.log(), logp, atol=TOL)
    # triplet subset equals entries of the full tensor
    trip = np.array([[0, 1, 2], [1, 3, 4], [2, 2, 0]])
    full = exact_moments(model, triplets="all").third
    sub = exact_moments(model, triplets=trip).third
    np.testing.assert_allclose(sub, full[trip[:, 0], trip[:, 1], trip[:, 2]], atol=TOL)


def test_refuses_too_many_spins():
    with pytest.raises(ConfigError, match="N <= 24"):
        exact_moments(IsingModel.zeros(25))
