"""Seeded model factories for the maxent tests (test cases are data)."""

import itertools
import math

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


# A tiny LR-net pipeline for the CLI tests: 20-6-12-10 (N = 120 + 72 + 120 = 312; 12 last hidden
# units: few tied logits), 2 runs × 1 epoch on 600 training points of the default data set.
LRNET_ARCH = "20-6-12-10"
LRNET_TRAIN = ["--arch", LRNET_ARCH, "--runs", "2", "--epochs", "1", "--P", "600",
               "--test-size", "300"]  # fmt: skip


def train_and_sample(root, draws: int):
    """``maxent train`` (seed 3) into ``root/tr`` and ``maxent sample`` (``draws`` per run,
    kept at accuracy ≥ 0.25) into ``root/sm``; returns ``root``."""
    from weightscape.cli import main

    assert main(["maxent", "train", *LRNET_TRAIN, "--seed", "3", "--out", str(root / "tr")]) == 0
    argv = ["maxent", "sample", str(root / "tr"), "--draws", str(draws), "--threshold", "0.25"]
    assert main([*argv, "--out", str(root / "sm")]) == 0
    return root


def numpy_logits(sigma, widths, x, leak: float = 0.1):
    """Plain forward pass of one binary net written in NumPy (the oracle of the library's):
    ``sigma`` ``[N]`` ±1 weights layer by layer (``[n_out, n_in]`` row-major), hidden
    ``LeakyReLU_leak(z) / sqrt(n_in)``, linear output; returns the logits ``[P, n_out]``."""
    a, start = x, 0
    for k in range(len(widths) - 1):
        n_in, n_out = widths[k], widths[k + 1]
        w = np.asarray(sigma[start : start + n_in * n_out]).reshape(n_out, n_in).astype(float)
        start += n_in * n_out
        z = a @ w.T
        a = z if k == len(widths) - 2 else np.where(z > 0, z, leak * z) / math.sqrt(n_in)
    return a
