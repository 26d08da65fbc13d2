"""kink_report: oracles are a numpy forward pass with finite differences on each side of a kink
built by hand, and the closed-form minimum over one segment."""

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError
from weightscape.jamming import kink_report
from weightscape.nets import MLPSpec


def _np_loss(theta, x, y, d, h, kappa=1.0):
    """Quadratic hinge loss of a one-hidden-layer relu net, plain numpy (the oracle)."""
    W0 = theta[: h * d].reshape(h, d)
    b0 = theta[h * d : h * d + h]
    w1 = theta[h * d + h : h * d + 2 * h]
    b1 = theta[-1]
    f = np.maximum(x @ W0.T + b0, 0.0) @ w1 + b1
    return float(np.mean(0.5 * np.maximum(kappa - y * f, 0.0) ** 2))


def _fd_grad(theta, x, y, d, h, step=1e-8):
    g = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = step
        g[i] = (_np_loss(theta + e, x, y, d, h) - _np_loss(theta - e, x, y, d, h)) / (2 * step)
    return g


def _one_layer(seed=3, d=3, h=4, P=6):
    """A one-hidden-layer net with entry (point 0, unit 0) exactly on its kink, every point
    unsatisfied (|f| < 1), every other |z| > 1e-3."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((P, d))
    y = np.where(rng.standard_normal(P) > 0, 1.0, -1.0)
    W0 = rng.standard_normal((h, d))
    b0 = rng.standard_normal(h) * 0.3
    b0[0] = -(W0[0] @ x[0])
    w1 = rng.standard_normal(h) * 0.2
    b1 = np.array([0.05])
    theta = np.concatenate([W0.ravel(), b0, w1, b1])
    z = x @ W0.T + b0
    assert abs(z[0, 0]) < 1e-15
    others = np.abs(z).ravel()[1:]
    assert others.min() > 1e-3
    spec = MLPSpec(d_in=d, widths=(h,))
    return theta, spec, x, y, d, h


def test_jump_equals_one_sided_fd_gradient_difference():
    theta, spec, x, y, d, h = _one_layer()
    rep = kink_report(torch.tensor(theta), spec, x, y, pin_tol=1e-6)
    assert rep.n_pinned == 1 and rep.n_coupled == 0 and rep.exact
    assert rep.counts == (1, 1, 1)
    # move z_00 to +-delta along its normal (z is linear in the first layer's weights)
    n = np.zeros_like(theta)
    n[:d] = x[0]  # dz/dW0[0, :]
    n[h * d] = 1.0  # dz/db0[0]
    delta = 1e-6
    up = theta + delta * n / (n @ n)
    lo = theta - delta * n / (n @ n)
    g_up, g_lo = _fd_grad(up, x, y, d, h), _fd_grad(lo, x, y, d, h)
    jump = rep.jumps[0]
    assert np.linalg.norm(jump) > 1e-2  # a real kink: the point is unsatisfied, w1[0] != 0
    np.testing.assert_allclose(jump, g_up - g_lo, atol=1e-5)
    # the reported gradient is the lower piece's (relu'(0) = 0)
    np.testing.assert_allclose(rep.grad, g_lo, atol=1e-5)
    assert rep.grad_norm == pytest.approx(np.linalg.norm(g_lo), abs=1e-5)
    # one segment: s = min over alpha in [0, 1] of |g + alpha J| in closed form
    g = rep.grad
    a = np.clip(-(g @ jump) / (jump @ jump), 0.0, 1.0)
    assert rep.stationarity == pytest.approx(np.linalg.norm(g + a * jump), rel=1e-10)
    assert rep.alpha[0] == pytest.approx(a, abs=1e-10)
    assert rep.tangent_grad <= rep.stationarity + 1e-12 <= rep.grad_norm + 2e-12
    # loss is the true value
    assert rep.loss == pytest.approx(_np_loss(theta, x, y, d, h), rel=1e-12)
    assert rep.n_unsat == x.shape[0]


def test_nothing_pinned_gives_gradient_norm():
    theta, spec, x, y, d, h = _one_layer()
    theta = theta.copy()
    theta[h * d] += 0.5  # move unit 0's bias: z_00 = 0.5, no entry near its kink
    rep = kink_report(torch.tensor(theta), spec, x, y, pin_tol=1e-6)
    assert rep.n_pinned == 0 and rep.counts == (0, 0, 0)
    assert rep.stationarity == rep.grad_norm
    assert rep.tangent_grad == rep.grad_norm
    np.testing.assert_allclose(rep.grad, _fd_grad(theta, x, y, d, h), atol=1e-6)


def test_pinned_within_tolerance_only():
    """A pre-activation at 1e-7 is counted at 1e-6 but not 1e-8, and pinned only when
    pin_tol exceeds it; pinning can only lower s."""
    theta, spec, x, y, d, h = _one_layer()
    theta = theta.copy()
    theta[h * d] += 1e-7
    tight = kink_report(torch.tensor(theta), spec, x, y, pin_tol=1e-8)
    loose = kink_report(torch.tensor(theta), spec, x, y, pin_tol=1e-6)
    assert tight.counts == (1, 0, 0) == loose.counts
    assert tight.n_pinned == 0 and loose.n_pinned == 1
    assert loose.max_pinned_z == pytest.approx(1e-7, rel=1e-6)
    # the unpinned report's gradient is the upper piece's (z > 0): lower + jump, up to O(z)
    np.testing.assert_allclose(tight.grad, loose.grad + loose.jumps[0], atol=1e-9)
    assert loose.stationarity <= tight.stationarity + 1e-15


def test_coupled_point_counted():
    """A two-layer net with one point pinned in both layers is reported as coupled."""
    rng = np.random.default_rng(0)
    d, h, P = 3, 3, 4
    x = rng.standard_normal((P, d))
    y = np.array([1.0, -1.0, 1.0, -1.0])
    W0, b0 = rng.standard_normal((h, d)), rng.standard_normal(h) * 0.1
    b0[0] = -(W0[0] @ x[0])
    a1 = np.maximum(x @ W0.T + b0, 0.0)
    W1, b1 = rng.standard_normal((h, h)), rng.standard_normal(h) * 0.1
    b1[1] = -(W1[1] @ a1[0])
    w2, b2 = rng.standard_normal(h) * 0.2, np.zeros(1)
    theta = np.concatenate([W0.ravel(), b0, W1.ravel(), b1, w2, b2])
    spec = MLPSpec(d_in=d, widths=(h, h))
    rep = kink_report(torch.tensor(theta), spec, x, y, pin_tol=1e-9)
    assert rep.n_pinned == 2 and rep.n_coupled == 1 and not rep.exact


def test_bad_input():
    theta, spec, x, y, d, h = _one_layer()
    with pytest.raises(ConfigError, match="activation"):
        kink_report(torch.tensor(theta), MLPSpec(d_in=d, widths=(h,), activation="tanh"), x, y)
    with pytest.raises(ConfigError, match="pin_tol"):
        kink_report(torch.tensor(theta), spec, x, y, pin_tol=0.0)
