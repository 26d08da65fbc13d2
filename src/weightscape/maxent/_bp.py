"""Belief propagation for a dense pairwise Ising model (all ``N(N-1)`` cavity messages at once).

Messages are cavity magnetisations ``m_{i→j}`` (spin ``i``'s magnetisation with spin ``j`` removed),
stored as an ``[N, N]`` matrix ``M[i, j] = m_{i→j}`` (diagonal unused, kept 0). With
``t_{ij} = tanh J_{ij}`` and ``u_{k→i} = atanh(t_{ki} m_{k→i})`` (the cavity field spin ``k`` sends
to ``i``), one synchronous BP step is

.. math::

    H_i = h_i + \\sum_{k \\ne i} u_{k→i}, \\qquad
    m_{i→j} \\leftarrow \\tanh\\big(H_i - u_{j→i}\\big),

followed by damping ``M ← d·M_old + (1-d)·M_new`` (``accel="none"``, the default) or by
safeguarded Anderson mixing (``accel="anderson"``, :class:`AndersonMixer`). At the fixed point
``m_i = tanh H_i`` and the Bethe pair moments are

.. math::

    C_{ij} = \\frac{t_{ij} + m_{i→j} m_{j→i}}{1 + t_{ij} m_{i→j} m_{j→i}}.

Every step costs ``O(N²)`` and runs in the model's dtype/device (float64 by default). Fields may
carry a tilt: pass ``model.tilted(x, σ*)`` (shares ``J``) to solve the tilted model, and warm-start
from the previous messages. Design after PGMax: a frozen config, explicit state (the messages) in
and out, and the per-iteration residual returned as a trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, NumericalError, check_choice, check_positive
from ._model import IsingModel

__all__ = [
    "BP_DEFAULT_DAMPING",
    "BP_DEFAULT_MAX_ITER",
    "BP_DEFAULT_TOL",
    "CRITERIA",
    "BPConfig",
    "BPResult",
    "bp_solve",
]

# Defaults: the paper's BP settings for Boltzmann learning (tolerance 1e-4, 1000 sweeps) and its
# landscape damping (new = ½ old + ½ update).
BP_DEFAULT_DAMPING = 0.5
BP_DEFAULT_TOL = 1e-4
BP_DEFAULT_MAX_ITER = 1000
# Numerical guard: |tanh(J) m| is clipped to 1 - ATANH_GUARD before atanh (cavity fields stay
# finite, ≤ 18.4, when a message saturates at ±1 in floating point).
ATANH_GUARD = 1e-16
# Guard on the denominator 1 + t m m of the pair moment (it vanishes only when t = ∓1 and both
# messages saturate, a degenerate case).
PAIR_DENOM_GUARD = 1e-300
# Iteration schemes of bp_solve: fixed damping, or safeguarded Anderson mixing.
BP_ACCELERATIONS = ("none", "anderson")
# Convergence criteria (shared with the landscape's batched solver, BetheConfig), with
# R = F(M) - M the undamped update minus the current messages ([N, N], diagonal 0):
# "max_residual" max|R|; "max_change" (1 - d) max|R|, the largest change of a damped step;
# "mean_change" (1 - d) mean|R| over the N² entries, the authors' learning script's test.
CRITERIA = ("max_change", "max_residual", "mean_change")
# Anderson mixing: differences kept (the brief's "small history") and the Tikhonov term of its
# least-squares problem, relative to the Gram matrix's mean diagonal (keeps nearly collinear
# differences from producing huge coefficients).
ANDERSON_DEFAULT_HISTORY = 3
ANDERSON_REGULARISATION = 1e-10
# Safeguard of Anderson mixing: after a sweep whose residual grew, this many damped steps that
# lower the residual come before mixing resumes (one is not enough: alternating mixed and damped
# steps can climb for ever near a spinodal, seen on a fitted model of the maxent study).
ANDERSON_COOLDOWN = 3
# ... and after this many restarts in one solve an element keeps the damped step for good: past a
# spinodal the branch's fixed point is gone (or unstable), the damped iteration must drift away
# from it (slowly: growth factor ≈ 1 per sweep) and mixed steps, which seek fixed points whatever
# their stability, would keep pulling it back (seen on a fitted model: 785 restarts, no escape).
ANDERSON_MAX_RESTARTS = 10


@dataclass(frozen=True)
class BPConfig:
    """Settings of :func:`bp_solve`.

    Attributes:
        damping: fraction ``d ∈ [0, 1)`` of the old message kept at each step.
        tol: converged when the criterion falls below ``tol``.
        max_iter: maximum number of synchronous sweeps over all messages.
        criterion: one of :data:`CRITERIA` (default ``"max_residual"``: the fixed-point residual
            ``max_ij |F(M) - M|``, undamped update minus current messages); ``"mean_change"``
            with ``damping=0`` is the authors' learning script's test (mean message change).
        accel: ``"none"`` (default: the damped step) or ``"anderson"`` (safeguarded Anderson
            mixing of the undamped update with ``history`` differences, see
            :class:`AndersonMixer`; same fixed points, ``damping`` is then its fallback step).
        history: differences Anderson mixing keeps (``accel="anderson"`` only).
    """

    damping: float = BP_DEFAULT_DAMPING
    tol: float = BP_DEFAULT_TOL
    max_iter: int = BP_DEFAULT_MAX_ITER
    accel: str = "none"
    history: int = ANDERSON_DEFAULT_HISTORY
    criterion: str = "max_residual"

    def __post_init__(self):
        check_damping(self.damping)
        check_positive("tol", self.tol, finite=True)  # inf: every point "converged" at once
        check_positive("max_iter", self.max_iter, integer=True)
        check_choice("accel", self.accel, BP_ACCELERATIONS)
        check_choice("criterion", self.criterion, CRITERIA)
        check_positive("history", self.history, integer=True)


def check_damping(damping) -> None:
    """A damping ``d`` (fraction of the old message kept per step) must be a number in [0, 1)."""
    if isinstance(damping, bool) or not isinstance(damping, int | float):
        raise ConfigError(f"damping={damping!r} must be a number in [0, 1)")
    if not 0.0 <= damping < 1.0:
        raise ConfigError(f"damping={damping!r} must lie in [0, 1)")


class AndersonMixer:
    """Safeguarded Anderson mixing (type II, "DIIS") of a fixed-point map, batched.

    For ``B`` independent iterations ``M ← F(M)`` on vectors of length ``L`` (messages flattened),
    with residuals ``r = F(M) - M``: keep the last ``history`` differences ``ΔR_j = r_j - r_{j-1}``
    and ``ΔF_j = F(M_j) - F(M_{j-1})``, find ``γ = argmin ‖r - ΔR γ‖₂`` (Tikhonov-regularised
    normal equations, ``history × history``, Gram matrix updated by one row per step) and step to
    ``F(M) - ΔF γ`` (without history: to ``F(M)``). On a linear map this is GMRES over the last
    ``history`` differences; on any map a fixed point of the mixed iteration has ``r = 0``, i.e.
    the fixed points are those of plain BP.

    Safeguard, per batch element: a sweep whose residual norm ``‖r‖₂`` exceeds the previous
    sweep's drops that element's history and takes the damped step ``M + (1-d) r`` instead
    (``d``: the configured damping); mixing resumes only after ``ANDERSON_COOLDOWN`` damped
    steps that lowered the residual (differences are collected meanwhile). Mixing so never
    compounds a growing residual (e.g. near a spinodal, where the current branch's fixed point
    loses stability): there the iteration is the damped one. After ``ANDERSON_MAX_RESTARTS``
    restarts an element takes damped steps only (the plain damped iteration, which drifts away
    from an unstable or vanished fixed point as BP without mixing would).

    Mixed steps are clipped to ``bounds`` (default ``[-1, 1]``, where messages live: an
    extrapolated message beyond ±1 would make ``atanh(tanh J · m)`` undefined); ``None`` turns
    clipping off. A clipped fixed point is still one of ``F`` (the residual is computed there).

    Memory: ``2·history + 2`` buffers ``[B, L]``. Cost per step: about ``2·history + 8`` passes
    over ``[B, L]`` (differences, dot products, the combination) besides the BP sweep.
    """

    def __init__(self, b: int, size: int, history: int, dtype, device, bounds=(-1.0, 1.0)):
        self.m = int(history)
        self.bounds = bounds
        # buffers start uninitialised: a column is read only once ``filled``, r_prev / f_prev
        # once ``started`` (Gram entries of unfilled columns are overwritten when they fill)
        self.dR = torch.empty(b, self.m, size, dtype=dtype, device=device)
        self.dF = torch.empty(b, self.m, size, dtype=dtype, device=device)
        self.r_prev = torch.empty(b, size, dtype=dtype, device=device)
        self.f_prev = torch.empty(b, size, dtype=dtype, device=device)
        self.gram = np.zeros((b, self.m, self.m))  # ⟨ΔR_i, ΔR_j⟩ of the filled columns
        self.filled = np.zeros((b, self.m), dtype=bool)
        self.prev_norm = np.full(b, math.inf)
        self.started = np.zeros(b, dtype=bool)  # r_prev / f_prev hold a previous sweep
        self.head = 0
        self.restarts = np.zeros(b, dtype=np.int64)  # safeguard fallbacks per element
        self.cool = np.zeros(b, dtype=np.int64)  # damped steps still to take before mixing

    def keep(self, rows: torch.Tensor, keep: np.ndarray) -> None:
        """Keep only the batch elements ``keep`` (bool ``[b]``; ``rows``: their indices)."""
        self.dR, self.dF = self.dR[rows], self.dF[rows]
        self.r_prev, self.f_prev = self.r_prev[rows], self.f_prev[rows]
        self.gram, self.filled = self.gram[keep], self.filled[keep]
        self.prev_norm, self.started = self.prev_norm[keep], self.started[keep]
        self.restarts, self.cool = self.restarts[keep], self.cool[keep]

    def reset(self, rows: np.ndarray) -> None:
        """Forget everything about the elements ``rows`` (bool ``[b]``): they start afresh."""
        self.filled[rows] = False
        self.started[rows] = False
        self.cool[rows] = 0
        self.restarts[rows] = 0
        self.prev_norm[rows] = math.inf

    def step(self, M: torch.Tensor, r: torch.Tensor, norms: np.ndarray, damping, frozen):
        """One mixing step: ``M`` ``[b, L]`` updated in place from its residual ``r`` ``[b, L]``.

        Args:
            norms: ``‖r‖₂`` per element ``[b]`` (host).
            damping: the fallback step is ``M + (1 - damping) r`` (a float, or ``[b]``).
            frozen: bool ``[b]``: elements that take the damped step without mixing (e.g. the
                last step of an element that has converged).

        Returns:
            bool ``[b]``: elements that took the damped step (frozen, residual grew, cooling
            down after a restart, or given up mixing).
        """
        grew = self.started & ~frozen & (norms > self.prev_norm)
        self.restarts[grew] += 1
        fallback = grew | frozen | (self.cool > 0) | (self.restarts >= ANDERSON_MAX_RESTARTS)
        self.cool = np.where(grew, ANDERSON_COOLDOWN, np.maximum(self.cool - 1, 0))
        given_up = self.restarts >= ANDERSON_MAX_RESTARTS
        new = self.started & ~grew & ~frozen & ~given_up  # a difference to store
        h = self.head
        self.filled[grew] = False  # restart: these elements forget their history
        self.filled[:, h] = False
        if new.any():
            torch.sub(r, self.r_prev, out=self.dR[:, h])
            torch.add(M, r, out=self.dF[:, h]).sub_(self.f_prev)  # F(M) - F(M_prev)
            self.filled[:, h] = new
        self.head = (h + 1) % self.m
        self.r_prev.copy_(r)
        torch.add(M, r, out=self.f_prev)
        self.started[:] = True
        self.prev_norm = np.asarray(norms, dtype=np.float64).copy()
        mix = np.flatnonzero(~fallback & self.filled.any(1))
        # the new Gram row ⟨ΔR_h, ΔR_j⟩ of every element that stored a difference, mixing now
        # or not (one cooling down after a restart collects differences and mixes with them
        # later), and ⟨ΔR_j, r⟩ of the mixing ones; one host copy for all
        rows_new = np.flatnonzero(new)
        if rows_new.size or mix.size:
            dots = [torch.mv(self.dR[e], self.dR[e, h]) for e in rows_new]
            dots += [torch.mv(self.dR[e], r[e]) for e in mix]
            host = torch.stack(dots).to(torch.float64).cpu().numpy()
            for k, e in enumerate(rows_new):
                self.gram[e, h, :] = self.gram[e, :, h] = host[k]
            rhs = host[len(rows_new) :]
        beta = np.where(fallback, 1.0 - damping, 1.0)
        M.addcmul_(r, torch.from_numpy(beta).to(dtype=M.dtype, device=M.device)[:, None])
        for k, e in enumerate(mix):  # M = F(M) - ΔF γ
            cols = np.flatnonzero(self.filled[e])
            G = self.gram[e][np.ix_(cols, cols)]
            reg = ANDERSON_REGULARISATION * max(float(np.trace(G)) / len(cols), 1e-300)
            gamma = np.linalg.solve(G + reg * np.eye(len(cols)), rhs[k][cols])
            for c, g in zip(cols, gamma, strict=True):
                M[e].add_(self.dF[e, c], alpha=-float(g))
        if mix.size and self.bounds is not None:  # a mixed step may leave the domain of F
            M.clamp_(*self.bounds)
        return fallback


@dataclass(frozen=True, eq=False)
class BPResult:
    """Marginals at the final messages.

    Attributes:
        m: magnetisations ``tanh H_i`` ``[N]``.
        C: Bethe pair moments ``⟨σ_iσ_j⟩`` ``[N, N]`` (diagonal 1).
        fields: total effective fields ``H_i`` ``[N]`` (``m = tanh H``).
        converged: whether the residual fell below ``tol``.
        iterations: sweeps done.
        residual: last residual (``trace[-1]``).
    """

    m: torch.Tensor
    C: torch.Tensor
    fields: torch.Tensor
    converged: bool
    iterations: int
    residual: float

    @property
    def connected(self) -> torch.Tensor:
        """``C_ij - m_i m_j`` ``[N, N]``."""
        return self.C - torch.outer(self.m, self.m)


def cavity_fields(tanh_J: torch.Tensor, messages: torch.Tensor) -> torch.Tensor:
    """``U[k, i] = u_{k→i} = atanh(tanh J_ki · m_{k→i})`` ``[N, N]`` (zero diagonal)."""
    x = (tanh_J * messages).clamp(-1.0 + ATANH_GUARD, 1.0 - ATANH_GUARD)
    U = torch.atanh(x)
    return U.fill_diagonal_(0.0)


def _update(tanh_J: torch.Tensor, h: torch.Tensor, M: torch.Tensor):
    U = cavity_fields(tanh_J, M)
    H = h + U.sum(0)
    new = torch.tanh(H[:, None] - U.T)
    new.fill_diagonal_(0.0)
    return new, H


def pair_moments(tanh_J: torch.Tensor, messages: torch.Tensor) -> torch.Tensor:
    """Bethe pair moments ``C_ij = (t + m_{i→j}m_{j→i}) / (1 + t m_{i→j}m_{j→i})`` ``[N, N]``."""
    mm = messages * messages.T
    num = tanh_J + mm
    den = (1.0 + tanh_J * mm).clamp_min(PAIR_DENOM_GUARD)
    C = num / den
    return C.fill_diagonal_(1.0)


# Round-off allowed on warm-start messages beyond ±1: BP's own messages (tanh of a sum, the
# damped mix of two of them) can sit an ulp outside, and are handed back as warm starts.
MESSAGE_TOL = 1e-6


def check_messages(M: torch.Tensor) -> None:
    """Warm-start messages are cavity magnetisations: finite and within [-1, 1] up to
    :data:`MESSAGE_TOL` (one-line ``ConfigError`` otherwise; a message of 3 or inf is not a
    state BP can start from). Clamps ``M`` into [-1, 1] in place."""
    bad = ~torch.isfinite(M) | (M.abs() > 1.0 + MESSAGE_TOL)
    if bool(bad.any()):
        v = float(M[bad][0])
        raise ConfigError(
            f"messages must be finite and within [-1, 1] (cavity magnetisations); found {v!r}"
        )
    M.clamp_(-1.0, 1.0)


def bp_solve(
    model: IsingModel, config: BPConfig = BPConfig(), messages: torch.Tensor | None = None
) -> tuple[torch.Tensor, BPResult, torch.Tensor]:
    """Run damped synchronous BP on the complete graph of ``model``.

    Args:
        model: couplings ``J`` ``[N, N]`` and fields ``h`` ``[N]`` (fields may include a tilt).
        config: damping, tolerance, maximum sweeps, acceleration.
        messages: warm start ``[N, N]`` (``M[i, j] = m_{i→j}``); ``None`` starts from 0.

    Returns:
        ``(messages, result, trace)``: final messages ``[N, N]``, :class:`BPResult`, and the
        convergence criterion (``config.criterion``; by default the residual
        ``max_ij |update(M) - M|``) of every sweep ``[iterations]`` (float64, CPU).
        ``result`` is computed from the final messages (after the last damped step; with
        ``accel="anderson"`` the converged sweep also ends with the damped step).

    Raises:
        NumericalError: when messages become non-finite.
    """
    n = model.n_spins
    tJ = torch.tanh(model.J)
    h = model.h
    if messages is None:
        M = torch.zeros(n, n, dtype=model.dtype, device=model.device)
    else:
        M = torch.as_tensor(messages, dtype=model.dtype, device=model.device)
        M = M.clone(memory_format=torch.contiguous_format)  # Anderson mixing updates a flat view
        if M.shape != (n, n):
            raise ConfigError(f"messages have shape {tuple(M.shape)}; expected [N, N] = [{n}, {n}]")
        M.fill_diagonal_(0.0)
        check_messages(M)
    d = float(config.damping)
    mean = config.criterion == "mean_change"
    scale = 1.0 if config.criterion == "max_residual" else 1.0 - d
    residuals = []
    converged = False
    mixer = None
    if config.accel == "anderson":
        mixer = AndersonMixer(1, n * n, config.history, M.dtype, M.device)
    for _ in range(config.max_iter):
        new, _H = _update(tJ, h, M)
        if n > 1:
            R = (new - M).abs()
            res = float(R.mean() if mean else R.max()) * scale
        else:
            res = 0.0
        residuals.append(res)
        if res != res:  # NaN
            raise NumericalError("BP messages became NaN; check J and h for huge values")
        done = res < config.tol
        if mixer is None or n < 2:
            M = new if d == 0.0 else d * M + (1.0 - d) * new
        else:  # the last step (converged) is the damped one, as without mixing
            r = (new - M).reshape(1, -1)
            norm = np.array([float(torch.linalg.vector_norm(r))])
            mixer.step(M.view(1, -1), r, norm, d, np.array([done]))
        if done:
            converged = True
            break
    U = cavity_fields(tJ, M)
    H = h + U.sum(0)
    result = BPResult(
        m=torch.tanh(H),
        C=pair_moments(tJ, M),
        fields=H,
        converged=converged,
        iterations=len(residuals),
        residual=residuals[-1] if residuals else 0.0,
    )
    return M, result, torch.tensor(residuals, dtype=torch.float64)
