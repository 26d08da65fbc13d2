"""The depth-0 anchor: Cover's capacity and exact linear separability.

A linear classifier ``f = w·x`` (no hidden layer, no bias) with the weight norm free can reach any
margin κ > 0 iff the P points are linearly separable through the origin. For P points in general
position in N dimensions with random labels, the probability of separability is (Cover 1965)

.. math::

    C(P, N) = 2^{1-P} \\sum_{k=0}^{N-1} \\binom{P-1}{k}
            = \\Pr[\\mathrm{Bin}(P-1, \\tfrac12) \\le N-1],

so ``C(P ≤ N) = 1`` and ``C(2N, N) = 1/2``; the SAT/UNSAT transition sits at ``P = 2N``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from ..errors import ConfigError, NumericalError

__all__ = [
    "HardMargin",
    "cover_log_probability",
    "cover_probability",
    "hard_margin",
    "lp_max_margin",
    "lp_separable",
]


def _pn(P, N):
    P = np.asarray(P)
    N = np.asarray(N)
    if np.any(P < 1) or np.any(N < 1):
        raise ConfigError("Cover's capacity needs P >= 1 and N >= 1")
    if not (np.issubdtype(P.dtype, np.integer) and np.issubdtype(N.dtype, np.integer)):
        if np.any(P != np.round(P)) or np.any(N != np.round(N)):
            raise ConfigError("P and N must be integers")
    return P.astype(np.int64), N.astype(np.int64)


def cover_probability(P, N):
    """Cover's probability ``C(P, N)`` that P random dichotomies of N-dim points are separable.

    Computed as the binomial CDF (``scipy.stats.binom.cdf``: a regularised incomplete beta
    function, accurate without forming the huge binomial coefficients). Broadcasts over P and N.

    Args:
        P: number of points (int or array, ≥ 1).
        N: dimension = number of weights (int or array, ≥ 1).

    Returns:
        ``C(P, N)`` (float or array).

    Example:
        >>> float(cover_probability(20, 10))
        0.5
    """
    P, N = _pn(P, N)
    return stats.binom.cdf(N - 1, P - 1, 0.5)


def cover_log_probability(P, N):
    """``ln C(P, N)``, accurate deep in the UNSAT tail ``P ≫ 2N`` where ``C`` underflows.

    Where ``C ≥ 1e-250`` it is ``ln`` of :func:`cover_probability` (relative accuracy carries
    over); below, ``ln Σ_{k<N} binom(P−1, k) − (P−1) ln 2`` by ``logsumexp`` over ``gammaln``
    terms (there ``N − 1`` lies far below the mean ``(P−1)/2``, so the N terms are few and
    increasing). ``scipy.stats.binom.logcdf`` underflows to ``-inf`` in that tail.
    """
    P, N = _pn(P, N)
    P, N = np.broadcast_arrays(P, N)
    shape = P.shape
    P, N = P.ravel(), N.ravel()
    c = stats.binom.cdf(N - 1, P - 1, 0.5)
    out = np.log(np.maximum(c, 1e-300))
    for i in np.flatnonzero(c < 1e-250):
        k = np.arange(N[i])
        terms = special.gammaln(P[i]) - special.gammaln(k + 1) - special.gammaln(P[i] - k)
        out[i] = special.logsumexp(terms) - (P[i] - 1) * np.log(2.0)
    out = out.reshape(shape)
    return out if out.ndim else float(out)


def _signed(x, y) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.ndim != 2 or x.shape[0] != y.size:
        raise ConfigError(f"x must be [P, N] with P = len(y) = {y.size}, got {x.shape}")
    if not np.all(np.isin(y, (-1.0, 1.0))):
        raise ConfigError("labels y must be ±1")
    if not np.all(np.isfinite(x)):
        raise NumericalError("x contains non-finite values")
    return y[:, None] * x  # z_μ = y_μ x_μ, [P, N]


def lp_separable(x, y) -> bool:
    """Exact separability test: is there ``w`` with ``y_μ w·x_μ ≥ 1`` for every μ?

    A feasibility linear program solved by HiGHS (``scipy.optimize.linprog``); the margin 1 is no
    restriction since ``w`` is unbounded (any strictly separating ``w`` can be rescaled).

    Args:
        x: ``[P, N]`` inputs.
        y: ``[P]`` labels ±1.
    """
    z = _signed(x, y)
    P, N = z.shape
    res = optimize.linprog(
        np.zeros(N), A_ub=-z, b_ub=-np.ones(P), bounds=[(None, None)] * N, method="highs"
    )
    if res.status == 0:
        return True
    if res.status == 2:
        return False
    # HiGHS' presolve can end "model status Unknown" on this free-variable feasibility problem
    # for clearly non-separable data (seen at N = 50, P = 120). Fall back to the total-slack LP
    # min Σ s_μ s.t. z_μ·w + s_μ ≥ 1, s ≥ 0: always feasible and bounded; its optimum is 0 when
    # the data are separable and ≥ 1 otherwise (every w leaves some z_μ·w ≤ 0, so s_μ ≥ 1).
    return _slack_lp(z) < 0.5


def _slack_lp(z: np.ndarray) -> float:
    """Optimum of ``min Σ s_μ`` s.t. ``z_μ·w + s_μ ≥ 1``, ``s ≥ 0`` (0 iff separable, else ≥ 1)."""
    P, N = z.shape
    c = np.r_[np.zeros(N), np.ones(P)]
    A = np.hstack([-z, -np.eye(P)])
    bounds = [(None, None)] * N + [(0.0, None)] * P
    res = optimize.linprog(c, A_ub=A, b_ub=-np.ones(P), bounds=bounds, method="highs")
    if res.status != 0:
        raise NumericalError(f"separability LP failed: {res.message}")
    return float(res.fun)


def lp_max_margin(x, y) -> tuple[float, np.ndarray]:
    """Max-margin value with the ∞-norm: ``max t`` s.t. ``y_μ w·x_μ ≥ t``, ``|w_i| ≤ 1``.

    A linear program (HiGHS). ``t > 0`` iff the data are separable; ``t = 0`` otherwise (``w = 0``
    is always feasible). ``t`` is the margin measured in the dual (1-)norm of the inputs.

    Returns:
        ``(t, w)`` with ``w`` ``[N]`` the optimal weights.
    """
    z = _signed(x, y)
    P, N = z.shape
    # variables (w_1..w_N, t); minimise −t
    c = np.zeros(N + 1)
    c[-1] = -1.0
    A = np.hstack([-z, np.ones((P, 1))])  # t − z_μ·w ≤ 0
    res = optimize.linprog(
        c, A_ub=A, b_ub=np.zeros(P), bounds=[(-1.0, 1.0)] * N + [(None, None)], method="highs"
    )
    if res.status != 0:
        raise NumericalError(f"max-margin LP failed: {res.message}")
    return float(res.x[-1]), res.x[:N]


@dataclass(frozen=True)
class HardMargin:
    """Euclidean hard-margin classifier through the origin.

    Attributes:
        separable: whether ``y_μ w·x_μ ≥ 1`` is feasible.
        margin: ``1 / ‖w‖₂ = max_{‖u‖=1} min_μ y_μ u·x_μ`` (0 when not separable).
        w: ``[N]`` the minimum-norm ``w`` with ``y_μ w·x_μ ≥ 1`` (zeros when not separable).
    """

    separable: bool
    margin: float
    w: np.ndarray


def hard_margin(x, y, *, rtol: float = 1e-9) -> HardMargin:
    """Minimum-norm ``w`` with ``y_μ w·x_μ ≥ 1`` (the hard-margin SVM without bias).

    Solved exactly as a least-distance program by non-negative least squares (Lawson & Hanson,
    *Solving Least Squares Problems*, ch. 23; ``scipy.optimize.nnls``): with ``G = [z_μ]``
    ``[P, N]``
    and ``h = 1``, minimise ``‖E u − f‖`` over ``u ≥ 0`` for ``E = [Gᵀ; hᵀ]`` ``[N+1, P]`` and
    ``f = e_{N+1}``; the constraints are infeasible iff the residual ``r = E u − f`` vanishes,
    and otherwise ``w = −r_{1..N} / r_{N+1}``. Hand-written on top of ``nnls`` because scipy has no
    quadratic-programming solver.

    Args:
        x: ``[P, N]`` inputs.
        y: ``[P]`` labels ±1.
        rtol: the residual counts as zero (infeasible) when ``‖r‖ ≤ rtol``.
    """
    z = _signed(x, y)
    P, N = z.shape
    E = np.vstack([z.T, np.ones((1, P))])
    f = np.zeros(N + 1)
    f[-1] = 1.0
    u, _ = optimize.nnls(E, f, maxiter=50 * (P + N + 1))
    r = E @ u - f
    if np.linalg.norm(r) <= rtol or r[-1] >= 0:
        return HardMargin(False, 0.0, np.zeros(N))
    w = -r[:N] / r[-1]
    return HardMargin(True, float(1.0 / np.linalg.norm(w)), w)
