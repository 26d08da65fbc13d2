"""Pseudo-likelihood inversion: one joint L-BFGS over ``(J, h)`` with a symmetric ``J``.

The objective (to minimise) is the mean negative sum of the per-spin conditional log-likelihoods,

.. math::

    \\mathcal{L}(J, h) = \\sum_s w_s \\sum_r \\log\\big(1 + e^{-2\\sigma^s_r F^s_r}\\big)
    + \\frac{\\lambda_2}{2}\\sum_{i<j} J_{ij}^2 + \\lambda_1 \\sum_{i<j} |J_{ij}|,
    \\qquad F^s_r = h_r + \\sum_{j \\ne r} J_{rj}\\sigma^s_j,

with ``w_s = 1/S`` (or normalised ``weights``). ``J`` is parametrised by its upper triangle, so each
coupling enters both conditionals it belongs to — the "symmetric" pseudo-likelihood, not the
average of ``N`` separate logistic regressions (ConIII's ``Pseudo`` does the latter; the two agree
within statistical noise). Fields are not penalised.

The L1 term is exact, not smoothed: ``J = J⁺ - J⁻`` with ``J^± ≥ 0`` and penalty
``λ₁ Σ (J⁺ + J⁻)``, a smooth bound-constrained problem that SciPy's L-BFGS-B solves directly.
Objective and gradient are computed in torch float64 (hand-written gradient, checked against
finite differences in the tests), streamed over sample chunks; SciPy's L-BFGS-B drives the steps.

Preconditioning (``precondition=True``, the default) is a fixed linear change of variables, so
the objective and its minimiser are unchanged. With centred fields ``h'_r = h_r + Σ_j J_rj m_j``
(``m`` the data magnetisations) the conditional's argument is ``F_r = h'_r + Σ_j J_rj (σ_j −
m_j)``, which decouples fields from couplings in the Hessian (the raw pair moments ``C_ij``
contain ``m_i m_j``; the connected ones are nearly diagonal at weak coupling). The Hessian is
then close to diagonal with entries ``a_r`` for ``h'_r`` and ``a_i v_j + a_j v_i`` for ``J_ij``,
where ``v_j = 1 − m_j²`` and ``a_r = ⟨4 p_r (1 − p_r)⟩`` is the mean curvature of spin ``r``'s
logistic loss at the start; each variable is scaled by the inverse square root of that entry
(floored at 0.3 × its mean over variables, :data:`PRECONDITION_FLOOR`), so L-BFGS sees a nearly
isotropic problem (5 instead of 65 iterations at the benchmark's weak coupling; with strong
couplings, where the start says little about the optimum, still a lower objective than the plain
parametrisation after the same number of iterations).

Without L1, small problems (≤ 300 parameters, ≤ 10^7 sample-parameter products) are polished by
Newton steps with the exact Hessian (torch autograd), as L-BFGS leaves ill-conditioned directions
unresolved once the objective stops decreasing in floating point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from ..errors import ConfigError, NumericalError, check_choice, check_positive
from ._fit import EVALUATE_CHOICES, InverseIsing, _Raw
from ._mean_field import _inverse_connected
from ._model import IsingModel
from ._moments import DEFAULT_CHUNK_ROWS, Moments, iter_chunks
from ._newton import NEWTON_MAX_PARAMS, newton_polish

__all__ = ["PseudoLikelihood", "PseudoLikelihoodConfig", "pseudo_likelihood_objective"]

# Keep all float64 sample chunks in memory (instead of re-converting every evaluation) up to this.
CACHE_BYTES = 1 << 30
# |m_i| is clipped to 1 - this for the independent-spin starting fields atanh(m_i).
START_CLIP = 1e-6
# Newton polishing only when samples × parameters stays below this (Hessian by autodiff).
NEWTON_MAX_WORK = 10**7
INITS = ("mean_field", "independent")
# Curvature estimates are floored at this fraction of their mean before scaling: the estimate is
# taken at the start, and spins that are nearly frozen there (curvature ~ 0) would otherwise get
# huge scales that mislead L-BFGS when the optimum lies far away (strong couplings). Chosen on
# weight samples of trained LR-nets (strong) and the benchmark's weak model: 0.3 gave the lowest
# objective after 150 iterations on the former and 5 iterations on the latter (0.1 / 1.0 / none:
# worse on one of the two).
PRECONDITION_FLOOR = 0.3
# A mean-field start with a coupling above this (near-singular noisy C) falls back to J = 0.
MF_INIT_MAX_COUPLING = 5.0


@dataclass(frozen=True)
class PseudoLikelihoodConfig:
    """Settings of :class:`PseudoLikelihood`.

    Attributes:
        l1: exact L1 penalty on the couplings (0 = none).
        l2: L2 penalty ``λ₂/2 Σ J²`` on the couplings (0 = none).
        max_iter: L-BFGS-B iterations.
        gtol: stop when the largest (projected) gradient entry is below this.
        ftol: stop when the relative objective decrease is below this.
        history: L-BFGS memory (pairs of vectors).
        newton_steps: Newton polishing steps after L-BFGS (0 = none; small problems, no L1).
        precondition: optimise in centred, diagonally scaled variables (the same objective and
            optimum; far fewer L-BFGS iterations, see below). ``False``: plain ``(h, J)``.
        init: starting point: ``"mean_field"`` (naive mean-field inversion of the data moments;
            falls back to ``"independent"`` when C is singular or the couplings exceed 5) or
            ``"independent"`` (``J = 0``, ``h = atanh m``). The objective is convex, so only the
            number of iterations depends on it (the mean-field start is ~50× closer at weak
            coupling).
        chunk_rows: samples per chunk in the objective.
        evaluate: how the report computes model moments.
    """

    l1: float = 0.0
    l2: float = 0.0
    max_iter: int = 1000
    gtol: float = 1e-8
    ftol: float = 1e-13
    history: int = 20
    newton_steps: int = 20
    precondition: bool = True
    init: str = "mean_field"
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    evaluate: str = "auto"

    def __post_init__(self):
        check_positive("l1", self.l1, allow_zero=True, finite=True)
        check_positive("l2", self.l2, allow_zero=True, finite=True)
        check_positive("max_iter", self.max_iter, integer=True)
        check_positive("gtol", self.gtol, finite=True)
        check_positive("ftol", self.ftol, allow_zero=True, finite=True)
        check_positive("history", self.history, integer=True)
        check_positive("newton_steps", self.newton_steps, integer=True, allow_zero=True)
        check_positive("chunk_rows", self.chunk_rows, integer=True)
        check_choice("evaluate", self.evaluate, EVALUATE_CHOICES)
        check_choice("init", self.init, INITS)
        if not isinstance(self.precondition, bool):
            raise ConfigError(f"precondition={self.precondition!r} must be True or False")


def _sym_from_upper(ju: torch.Tensor, n: int, iu) -> torch.Tensor:
    J = torch.zeros(n, n, dtype=ju.dtype, device=ju.device)
    J[iu[0], iu[1]] = ju
    return J + J.T


def pseudo_likelihood_objective(chunks, J: torch.Tensor, h: torch.Tensor):
    """Negative pseudo-log-likelihood (without penalties) and its gradient.

    Args:
        chunks: iterable of ``(x [s, N] float ±1, w [s])`` with weights summing to 1 overall.
        J: symmetric couplings ``[N, N]``, zero diagonal.
        h: fields ``[N]``.

    Returns:
        ``(value, grad_J [N, N] symmetric (d/dJ_ij for i<j on both triangles), grad_h [N])``.
    """
    n = h.shape[0]
    val = torch.zeros((), dtype=h.dtype, device=h.device)
    gJ = torch.zeros(n, n, dtype=h.dtype, device=h.device)
    gh = torch.zeros(n, dtype=h.dtype, device=h.device)
    for x, w in chunks:
        # In-place elementwise steps: one [s, N] buffer instead of five (allocation of large
        # temporaries costs as much as the arithmetic here).
        z = torch.addmm(h, x, J).mul_(x).mul_(-2.0)  # z = -2 σ_r F_r, [s, N]
        val += w @ torch.nn.functional.softplus(z).sum(1)
        G = z.sigmoid_().mul_(x).mul_((-2.0 * w)[:, None])  # d value / d F
        gh += G.sum(0)
        gJ.addmm_(x.T, G)
    gJ = gJ + gJ.T
    gJ.fill_diagonal_(0.0)
    return val, gJ, gh


class PseudoLikelihood(InverseIsing):
    """Symmetric pseudo-likelihood maximisation (full batch, L-BFGS-B, optional exact L1 / L2)."""

    name = "pseudo_likelihood"
    config_class = PseudoLikelihoodConfig
    needs_samples = True

    def _fit(self, moments: Moments, samples, weights) -> _Raw:
        return _pl_minimise(self.config, moments, samples, weights)


def _pl_chunks(cfg: PseudoLikelihoodConfig, moments: Moments, samples, weights):
    """``(generator factory, cached list or None)`` of the float sample chunks."""
    n = moments.n_spins
    gen = lambda: iter_chunks(  # noqa: E731
        samples, weights, chunk_rows=cfg.chunk_rows, dtype=moments.m.dtype, device=moments.m.device
    )
    return gen, (list(gen()) if samples.shape[0] * n * 8 <= CACHE_BYTES else None)


def _pl_minimise(
    cfg: PseudoLikelihoodConfig,
    moments: Moments,
    samples,
    weights,
    *,
    active: torch.Tensor | None = None,
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
    data=None,
) -> _Raw:
    """Minimise the penalised negative pseudo-log-likelihood.

    ``active`` (indices into the upper triangle ``triu_indices(N, N, 1)``, ``None`` = all) lists
    the couplings that are free; the others are held at exactly 0 (decimation). ``start`` =
    ``(h [N], upper-triangle J [N(N-1)/2])`` replaces the configured ``init`` (a warm start; only
    its active entries are used). ``data``: the ``_pl_chunks`` pair, to reuse a cache.
    """
    n = moments.n_spins
    dtype, device = moments.m.dtype, moments.m.device
    iu = torch.triu_indices(n, n, 1, device=device)
    if active is not None:
        iu = iu[:, active]
    P = iu.shape[1]
    S = samples.shape[0]
    gen, chunks = _pl_chunks(cfg, moments, samples, weights) if data is None else data
    m0 = moments.m.clamp(-1 + START_CLIP, 1 - START_CLIP)
    h0 = torch.atanh(m0)
    j0 = torch.zeros(P, dtype=dtype, device=device)
    init = "independent"
    if start is not None:
        h0 = start[0].to(dtype=dtype, device=device).clone()
        j0 = start[1].to(dtype=dtype, device=device)
        j0 = (j0 if active is None else j0[active]).clone()
        init = "warm"
    elif cfg.init == "mean_field" and P > 0:  # one spin has no couplings to start
        try:
            _, A = _inverse_connected(moments, 0.0)
            jmf = -A[iu[0], iu[1]]
            if torch.isfinite(jmf).all() and float(jmf.abs().max()) <= MF_INIT_MAX_COUPLING:
                j0 = jmf
                h0 = h0 - _sym_from_upper(j0, n, iu) @ moments.m
                init = "mean_field"
        except NumericalError:
            pass
    use_l1 = cfg.l1 > 0
    history: list[float] = []
    # The change of variables (identity when not preconditioning): h = s_h u_h − J m,
    # J_ij = s_J u_ij (see the module docstring).
    mvec = moments.m if cfg.precondition else torch.zeros_like(moments.m)
    if cfg.precondition:
        J0 = _sym_from_upper(j0, n, iu)
        a = torch.zeros(n, dtype=dtype, device=device)
        for x, w in chunks if chunks is not None else gen():
            q = torch.sigmoid(-2.0 * x * torch.addmm(h0, x, J0))
            a += w @ (4.0 * q * (1.0 - q))
        v = 1.0 - moments.m.pow(2)
        s_h = a.clamp_min(PRECONDITION_FLOOR * float(a.mean())).clamp_min(1e-12).rsqrt()
        dJ = a[iu[0]] * v[iu[1]] + a[iu[1]] * v[iu[0]] + cfg.l2
        s_J = dJ.clamp_min(PRECONDITION_FLOOR * float(dJ.mean())).clamp_min(1e-12).rsqrt()
    else:
        s_h = torch.ones(n, dtype=dtype, device=device)
        s_J = torch.ones(P, dtype=dtype, device=device)
    hc0 = h0 + _sym_from_upper(j0, n, iu) @ mvec  # centred fields h'
    u_h0, u_j0 = (hc0 / s_h).cpu().numpy(), (j0 / s_J).cpu().numpy()

    def unpack(theta: np.ndarray):
        t = torch.from_numpy(theta).to(dtype=dtype, device=device)
        ju = (t[n : n + P] - t[n + P :] if use_l1 else t[n:]) * s_J
        h = t[:n] * s_h - _sym_from_upper(ju, n, iu) @ mvec
        return h, ju

    def fun(theta: np.ndarray):
        h, ju = unpack(theta)
        J = _sym_from_upper(ju, n, iu)
        val, gJ, gh = pseudo_likelihood_objective(chunks if chunks is not None else gen(), J, h)
        # chain rule of h = h' − J m: dL/dJ_ij |_{h'} = dL/dJ_ij − gh_i m_j − gh_j m_i
        gju = gJ[iu[0], iu[1]] - gh[iu[0]] * mvec[iu[1]] - gh[iu[1]] * mvec[iu[0]]
        if cfg.l2 > 0:
            val = val + 0.5 * cfg.l2 * (ju @ ju)
            gju = gju + cfg.l2 * ju
        if use_l1:
            jpm = torch.from_numpy(theta[n:]).to(dtype=dtype, device=device) * torch.cat([s_J, s_J])
            val = val + cfg.l1 * jpm.sum()
            grad = torch.cat([gh * s_h, (gju + cfg.l1) * s_J, (-gju + cfg.l1) * s_J])
        else:
            grad = torch.cat([gh * s_h, gju * s_J])
        v = float(val)
        if not np.isfinite(v):
            raise NumericalError("pseudo-likelihood became non-finite during L-BFGS")
        history.append(v)
        return v, grad.detach().cpu().numpy().astype(np.float64)

    if use_l1:
        theta0 = np.concatenate([u_h0, np.maximum(u_j0, 0.0), np.maximum(-u_j0, 0.0)])
        bounds = [(None, None)] * n + [(0.0, None)] * (2 * P)
    else:
        theta0 = np.concatenate([u_h0, u_j0])
        bounds = None
    res = scipy.optimize.minimize(
        fun,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={
            "maxiter": cfg.max_iter,
            "gtol": cfg.gtol,
            "ftol": cfg.ftol,
            "maxcor": cfg.history,
            "maxfun": 4 * cfg.max_iter,
        },
    )
    h, ju = unpack(np.asarray(res.x, dtype=np.float64))
    newton, gmax = 0, float("nan")
    if (
        cfg.newton_steps > 0
        and not use_l1
        and chunks is not None
        and n + P <= NEWTON_MAX_PARAMS
        and S * (n + P) <= NEWTON_MAX_WORK
    ):

        def objective(th):
            Jt = torch.zeros(n, n, dtype=dtype, device=device).index_put((iu[0], iu[1]), th[n:])
            Jt = Jt + Jt.T
            val = sum(
                w @ torch.nn.functional.softplus(-2.0 * x * torch.addmm(th[:n], x, Jt)).sum(1)
                for x, w in chunks
            )
            return val + 0.5 * cfg.l2 * (th[n:] @ th[n:])

        theta, newton, gmax = newton_polish(objective, torch.cat([h, ju]), cfg.newton_steps)
        h, ju = theta[:n], theta[n:]
        if newton:  # the objective of the returned model, not of L-BFGS's last point
            history.append(float(objective(theta)))
    model = IsingModel(_sym_from_upper(ju, n, iu), h.clone())
    return _Raw(
        model,
        iterations=int(res.nit),
        converged=bool(res.success) or gmax < 1e-10,
        history=history,
        message=str(res.message),
        extras={
            "evaluations": int(res.nfev),
            "objective": history[-1] if newton else float(res.fun),
            "newton_steps": newton,
            "newton_max_grad": gmax,
            "init": init,
        },
    )
