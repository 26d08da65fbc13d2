"""Seeded model factories for the maxent tests (test cases are data)."""

import itertools

import numpy as np
import pytest

from weightscape.maxent import IsingModel


def random_model(n, coupling_std, field_std=0.3, seed=0, field_mean=0.0):
    return IsingModel.random(
        n, coupling_std=coupling_std, field_std=field_std, field_mean=field_mean, seed=seed
    )


def brute_force(J, h):
    """log Z, m, C and third-order connected moments by explicit loops over states (numpy)."""
    J, h = np.asarray(J), np.asarray(h)
    n = len(h)
    states, logw = [], []
    for s in itertools.product([-1, 1], repeat=n):
        s = np.array(s, dtype=float)
        e = sum(J[i, j] * s[i] * s[j] for i in range(n) for j in range(i + 1, n)) + h @ s
        states.append(s)
        logw.append(e)
    states, logw = np.array(states), np.array(logw)
    logz = np.log(np.sum(np.exp(logw)))
    p = np.exp(logw - logz)
    m = p @ states
    C = np.einsum("s,si,sj->ij", p, states, states)
    d = states - m
    T = np.einsum("s,si,sj,sk->ijk", p, d, d, d)
    return logz, m, C, T


def tree_model(n, seed, coupling=0.8, field=0.5):
    """Random tree (each node i > 0 attached to a random earlier node), couplings on edges only."""
    rng = np.random.default_rng(seed)
    J = np.zeros((n, n))
    edges = []
    for i in range(1, n):
        p = int(rng.integers(0, i))
        J[i, p] = J[p, i] = rng.normal(0, coupling)
        edges.append((p, i))
    h = rng.normal(0, field, n)
    return IsingModel.from_couplings(J, h), edges


@pytest.fixture
def small_model():
    return random_model(6, 0.4, 0.3, seed=3)
