"""Belief propagation for a dense pairwise Ising model (all ``N(N-1)`` cavity messages at once).

Messages are cavity magnetisations ``m_{i→j}`` (spin ``i``'s magnetisation with spin ``j`` removed),
stored as an ``[N, N]`` matrix ``M[i, j] = m_{i→j}`` (diagonal unused, kept 0). With
``t_{ij} = tanh J_{ij}`` and ``u_{k→i} = atanh(t_{ki} m_{k→i})`` (the cavity field spin ``k`` sends
to ``i``), one synchronous BP step is

.. math::

    H_i = h_i + \\sum_{k \\ne i} u_{k→i}, \\qquad
    m_{i→j} \\leftarrow \\tanh\\big(H_i - u_{j→i}\\big),

followed by damping ``M ← d·M_old + (1-d)·M_new``. At the fixed point
``m_i = tanh H_i`` and the Bethe pair moments are

.. math::

    C_{ij} = \\frac{t_{ij} + m_{i→j} m_{j→i}}{1 + t_{ij} m_{i→j} m_{j→i}}.

Every step costs ``O(N²)`` and runs in the model's dtype/device (float64 by default). Fields may
carry a tilt: pass ``model.tilted(x, σ*)`` (shares ``J``) to solve the tilted model, and warm-start
from the previous messages. Design after PGMax: a frozen config, explicit state (the messages) in
and out, and the per-iteration residual returned as a trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError, NumericalError, check_positive
from ._model import IsingModel

__all__ = [
    "BP_DEFAULT_DAMPING",
    "BP_DEFAULT_MAX_ITER",
    "BP_DEFAULT_TOL",
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


@dataclass(frozen=True)
class BPConfig:
    """Settings of :func:`bp_solve`.

    Attributes:
        damping: fraction ``d ∈ [0, 1)`` of the old message kept at each step.
        tol: converged when the fixed-point residual ``max_ij |M_new - M_old|`` (undamped update
            minus current messages) falls below ``tol``.
        max_iter: maximum number of synchronous sweeps over all messages.
    """

    damping: float = BP_DEFAULT_DAMPING
    tol: float = BP_DEFAULT_TOL
    max_iter: int = BP_DEFAULT_MAX_ITER

    def __post_init__(self):
        if isinstance(self.damping, bool) or not isinstance(self.damping, int | float):
            raise ConfigError(f"damping={self.damping!r} must be a number in [0, 1)")
        if not 0.0 <= self.damping < 1.0:
            raise ConfigError(f"damping={self.damping!r} must lie in [0, 1)")
        check_positive("tol", self.tol)
        check_positive("max_iter", self.max_iter, integer=True)


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


def bp_solve(
    model: IsingModel, config: BPConfig = BPConfig(), messages: torch.Tensor | None = None
) -> tuple[torch.Tensor, BPResult, torch.Tensor]:
    """Run damped synchronous BP on the complete graph of ``model``.

    Args:
        model: couplings ``J`` ``[N, N]`` and fields ``h`` ``[N]`` (fields may include a tilt).
        config: damping, tolerance, maximum sweeps.
        messages: warm start ``[N, N]`` (``M[i, j] = m_{i→j}``); ``None`` starts from 0.

    Returns:
        ``(messages, result, trace)``: final messages ``[N, N]``, :class:`BPResult`, and the
        residual ``max_ij |update(M) - M|`` of every sweep ``[iterations]`` (float64, CPU).
        ``result`` is computed from the final messages (after the last damped step).

    Raises:
        NumericalError: when messages become non-finite.
    """
    n = model.n_spins
    tJ = torch.tanh(model.J)
    h = model.h
    if messages is None:
        M = torch.zeros(n, n, dtype=model.dtype, device=model.device)
    else:
        M = torch.as_tensor(messages, dtype=model.dtype, device=model.device).clone()
        if M.shape != (n, n):
            raise ConfigError(f"messages have shape {tuple(M.shape)}; expected [N, N] = [{n}, {n}]")
        M.fill_diagonal_(0.0)
    d = float(config.damping)
    residuals = []
    converged = False
    for _ in range(config.max_iter):
        new, _H = _update(tJ, h, M)
        res = float((new - M).abs().max()) if n > 1 else 0.0
        residuals.append(res)
        if res != res:  # NaN
            raise NumericalError("BP messages became NaN; check J and h for huge values")
        M = new if d == 0.0 else d * M + (1.0 - d) * new
        if res < config.tol:
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
