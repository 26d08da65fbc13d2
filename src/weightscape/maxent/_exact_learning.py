"""Exact Boltzmann learning for small N: maximum likelihood with moments from full enumeration.

The negative log-likelihood per sample of data with moments ``(m̂, Ĉ)`` is convex,

.. math::

    \\mathcal{L}(J, h) = \\log Z(J, h) - \\sum_i h_i \\hat m_i - \\sum_{i<j} J_{ij} \\hat C_{ij}
    + \\frac{\\lambda_2}{2} \\sum_{i<j} J_{ij}^2,

with gradient ``∂L/∂h_i = m_i - m̂_i`` and ``∂L/∂J_ij = C_ij - Ĉ_ij + λ₂ J_ij`` (model minus data
moments); model moments come from enumerating all ``2^N`` states. SciPy's L-BFGS-B minimises it,
and a few Newton steps with the exact Hessian (the covariance of the features ``σ_i``, ``σ_iσ_j``)
polish the result for small problems (≤ 300 parameters and 2^N·parameters ≤ 2^26, e.g. N ≤ 16),
so that ill-conditioned directions are resolved to round-off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from ..errors import ConfigError, check_choice, check_positive
from ._exact import all_states
from ._fit import EVALUATE_CHOICES, InverseIsing, _Raw, moment_error
from ._model import IsingModel
from ._moments import Moments
from ._newton import NEWTON_MAX_PARAMS, newton_polish

__all__ = ["ExactBoltzmann", "ExactBoltzmannConfig"]

# All 2^N states are kept as a float64 [2^N, N] matrix: 160 MB at N = 20.
EXACT_LEARNING_MAX_SPINS = 20
# |m_i| is clipped to 1 - this for the independent-spin starting fields atanh(m_i).
START_CLIP = 1e-6
# Newton polishing builds a [2^N, N(N+1)/2] feature matrix: only up to this many entries (512 MB).
NEWTON_MAX_ENTRIES = 1 << 26


@dataclass(frozen=True)
class ExactBoltzmannConfig:
    """Settings of :class:`ExactBoltzmann`.

    Attributes:
        l2: L2 penalty ``λ₂/2 Σ_{i<j} J²`` (0 = pure maximum likelihood).
        max_iter: L-BFGS-B iterations.
        gtol: stop when the largest gradient entry (a moment mismatch) is below this.
        ftol: stop when the relative objective decrease is below this.
        newton_steps: Newton polishing steps after L-BFGS (0 = none; only for ≤ 300 parameters).
        evaluate: kept for a uniform interface; the report always uses exact moments.
    """

    l2: float = 0.0
    max_iter: int = 2000
    gtol: float = 1e-10
    ftol: float = 1e-15
    newton_steps: int = 20
    evaluate: str = "exact"

    def __post_init__(self):
        check_positive("l2", self.l2, allow_zero=True, finite=True)
        check_positive("max_iter", self.max_iter, integer=True)
        check_positive("gtol", self.gtol, finite=True)
        check_positive("ftol", self.ftol, allow_zero=True, finite=True)
        check_positive("newton_steps", self.newton_steps, integer=True, allow_zero=True)
        check_choice("evaluate", self.evaluate, EVALUATE_CHOICES)


class ExactBoltzmann(InverseIsing):
    """Boltzmann learning with exact enumeration (``N ≤ 20``), L-BFGS on the convex likelihood."""

    name = "exact"
    config_class = ExactBoltzmannConfig

    def _fit(self, moments: Moments, samples, weights) -> _Raw:
        cfg = self.config
        n = moments.n_spins
        if n > EXACT_LEARNING_MAX_SPINS:
            raise ConfigError(
                f"exact Boltzmann learning needs N <= {EXACT_LEARNING_MAX_SPINS} (got N = {n}); "
                "use BoltzmannBP or PseudoLikelihood"
            )
        dtype, device = moments.m.dtype, moments.m.device
        X = all_states(n, dtype=dtype, device=device)  # [2^N, N]
        iu = torch.triu_indices(n, n, 1, device=device)
        P = iu.shape[1]
        m_d, C_d = moments.m, moments.C[iu[0], iu[1]]
        history: list[float] = []
        last = {}

        def fun(theta: np.ndarray):
            t = torch.from_numpy(theta).to(dtype=dtype, device=device)
            h, ju = t[:n], t[n:]
            J = torch.zeros(n, n, dtype=dtype, device=device)
            J[iu[0], iu[1]] = ju
            J = J + J.T
            logw = X @ h + 0.5 * ((X @ J) * X).sum(1)  # no [2^N, P] feature matrix
            log_z = torch.logsumexp(logw, 0)
            p = torch.exp(logw - log_z)
            m = p @ X
            C = (X * p[:, None]).T @ X
            Cu = C[iu[0], iu[1]]
            val = log_z - h @ m_d - ju @ C_d + 0.5 * cfg.l2 * (ju @ ju)
            grad = torch.cat([m - m_d, Cu - C_d + cfg.l2 * ju])
            last.update(m=m, C=C)
            history.append(float(val))
            return float(val), grad.cpu().numpy().astype(np.float64)

        m0 = m_d.clamp(-1 + START_CLIP, 1 - START_CLIP)
        theta0 = np.concatenate([torch.atanh(m0).cpu().numpy(), np.zeros(P)])
        res = scipy.optimize.minimize(
            fun,
            theta0,
            jac=True,
            method="L-BFGS-B",
            options={
                "maxiter": cfg.max_iter,
                "gtol": cfg.gtol,
                "ftol": cfg.ftol,
                "maxcor": 20,
                "maxfun": 4 * cfg.max_iter,
            },
        )
        theta = torch.as_tensor(res.x, dtype=dtype, device=device)
        newton, gmax = 0, float("nan")
        if (
            cfg.newton_steps > 0
            and n + P <= NEWTON_MAX_PARAMS
            and (n + P) << n <= NEWTON_MAX_ENTRIES
        ):
            phi = torch.cat([X, X[:, iu[0]] * X[:, iu[1]]], 1)  # features [2^N, n + P]
            mu = torch.cat([m_d, C_d])

            def nll(th):
                return torch.logsumexp(phi @ th, 0) - th @ mu + 0.5 * cfg.l2 * (th[n:] @ th[n:])

            theta, newton, gmax = newton_polish(nll, theta, cfg.newton_steps)
        model = IsingModel.from_vector(theta[:n], theta[n:])
        # moments (and objective) at the returned point: after Newton steps it is not L-BFGS's
        objective, _ = fun(theta.cpu().numpy().astype(np.float64))
        if not newton:
            history.pop()
        err = moment_error(last["m"], last["C"], moments)
        return _Raw(
            model,
            iterations=int(res.nit),
            converged=bool(res.success) or gmax < 1e-10,
            history=history,
            message=str(res.message),
            extras={
                "evaluations": int(res.nfev),
                "objective": objective,
                "newton_steps": newton,
                "newton_max_grad": gmax,
            },
            errors=(*err, "exact"),
        )
