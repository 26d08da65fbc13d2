"""TAP free-energy landscape: many random starts of the TAP equations, the free energies of the
fixed points reached, and how many distinct fixed points there are.

Standard TAP (Thouless–Anderson–Palmer; second order of the Plefka expansion, Onsager reaction
term with ``(1 - m_i²)(1 - m_j²)``) for ``P(σ) ∝ exp(Σ_{i<j} J_ij σ_iσ_j + Σ_i h_i σ_i)``:

.. math::

    -\\beta F_{TAP}(m) = \\sum_i \\mathcal H(m_i) + \\sum_i h_i m_i + \\sum_{i<j} J_{ij} m_i m_j
        + \\tfrac12 \\sum_{i<j} J_{ij}^2 (1 - m_i^2)(1 - m_j^2),

    \\mathcal H(m) = -\\tfrac{1+m}{2}\\ln\\tfrac{1+m}{2} - \\tfrac{1-m}{2}\\ln\\tfrac{1-m}{2},

whose stationary points solve

.. math::

    m_i = \\tanh\\Big(h_i + \\sum_j J_{ij} m_j - m_i \\sum_j J_{ij}^2 (1 - m_j^2)\\Big).

The free energy reported is ``βf = βF_TAP / N`` per spin (so ``-βf`` approximates ``ln Z / N``).
Starts are solved together (``[S, N]`` matrix products), by damped parallel iteration
(``m ← d m + (1-d) tanh(…)``); a start that has not converged after ``max_iter`` sweeps is flagged,
not counted. The authors found one peak of the free-energy histogram for deep networks and two for
the shallow one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import Precision, resolve_precision
from ..errors import ConfigError, DatasetError, check_positive, check_seed
from ._bp import check_damping
from ._landscape import _distinct
from ._model import IsingModel

__all__ = ["TAPConfig", "TAPLandscape", "tap_free_energy", "tap_landscape", "tap_solve"]

# m is kept inside (-1, 1) by this margin before the entropy term is evaluated (log(0) guard).
M_GUARD = 1e-15


@dataclass(frozen=True)
class TAPConfig:
    """Settings of :func:`tap_landscape`.

    Attributes:
        n_starts: random starts, ``m_i`` uniform in ``(-1, 1)`` (the spec: ~2000).
        damping: fraction of the old ``m`` kept per sweep.
        tol: converged when ``max_i |tanh(…) - m_i| < tol``.
        max_iter: sweeps.
        distinct_tol: two fixed points are the same when ``max_i |m_a - m_b| ≤ distinct_tol``.
        seed: of the starts.
        precision: dtype/device.
    """

    n_starts: int = 2000
    damping: float = 0.5
    tol: float = 1e-10
    max_iter: int = 5000
    distinct_tol: float = 1e-5
    seed: int = 0
    precision: Precision = field(default_factory=Precision)

    def __post_init__(self):
        resolve_precision(self.precision)  # a Precision, not e.g. the string "float32"
        check_positive("n_starts", self.n_starts, integer=True)
        check_damping(self.damping)
        check_positive("tol", self.tol, finite=True)
        check_positive("max_iter", self.max_iter, integer=True)
        check_positive("distinct_tol", self.distinct_tol, finite=True)
        check_seed("seed", self.seed)


def _entropy(m: torch.Tensor) -> torch.Tensor:
    p = (0.5 * (1.0 + m)).clamp(M_GUARD, 1.0)
    q = (0.5 * (1.0 - m)).clamp(M_GUARD, 1.0)
    return -(torch.xlogy(p, p) + torch.xlogy(q, q))


def tap_free_energy(model: IsingModel, m: torch.Tensor) -> torch.Tensor:
    """TAP free energy per spin ``βf_TAP(m) = βF_TAP / N`` (see module doc).

    Args:
        model: couplings ``J`` ``[N, N]`` and fields ``h`` ``[N]``.
        m: magnetisations ``[..., N]`` in ``[-1, 1]``.

    Returns:
        ``[...]`` (differentiable in ``m``).
    """
    J, h = model.J, model.h
    m = torch.as_tensor(m, dtype=J.dtype, device=J.device)
    if m.shape[-1] != model.n_spins:
        raise DatasetError(f"m has {m.shape[-1]} spins in its last axis; the model has N = "
                           f"{model.n_spins}")  # fmt: skip
    v = 1.0 - m * m
    neg_f = (
        _entropy(m).sum(-1)
        + m @ h
        + 0.5 * ((m @ J) * m).sum(-1)
        + 0.25 * ((v @ (J * J)) * v).sum(-1)
    )
    return -neg_f / model.n_spins


def tap_solve(
    model: IsingModel, m0: torch.Tensor, config: TAPConfig = TAPConfig()
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Iterate the TAP equations from starts ``m0`` ``[S, N]`` (damped, parallel).

    Returns:
        ``(m [S, N], converged [S] bool, iterations [S] int64)``; each start stops on its own.
    """
    J, h = model.J, model.h
    J2 = J * J
    m = torch.as_tensor(m0, dtype=J.dtype, device=J.device).clone()
    if m.ndim != 2 or m.shape[1] != model.n_spins:
        raise DatasetError(f"m0 has shape {tuple(m.shape)}; expected [S, N = {model.n_spins}]")
    S = m.shape[0]
    d = float(config.damping)
    conv = torch.zeros(S, dtype=torch.bool, device=m.device)
    iters = torch.zeros(S, dtype=torch.int64, device=m.device)
    active = torch.arange(S, device=m.device)
    for _ in range(config.max_iter):
        ma = m[active]
        onsager = (1.0 - ma * ma) @ J2  # [a, N]: Σ_j J_ij² (1 - m_j²)
        new = torch.tanh(h + ma @ J - ma * onsager)
        res = (new - ma).abs().amax(1)
        if not bool(torch.isfinite(res).all()):
            raise ConfigError("TAP iteration became non-finite; check J and h for huge values")
        iters[active] += 1
        m[active] = d * ma + (1.0 - d) * new
        done = res < config.tol
        conv[active[done]] = True
        active = active[~done]
        if active.numel() == 0:
            break
    return m, conv, iters


@dataclass(frozen=True, eq=False)
class TAPLandscape:
    """TAP fixed points from many random starts.

    Attributes:
        free_energy: ``βf`` per spin of every converged start ``[S_conv]``.
        m: their magnetisations ``[S_conv, N]``.
        labels: the distinct fixed point each converged start reached ``[S_conv]``.
        fixed_points: distinct fixed points ``[P, N]`` (sorted by free energy, lowest first).
        fixed_point_free_energy: ``[P]``; counts: starts per fixed point ``[P]``.
        n_starts, n_converged: starts run and converged.
    """

    free_energy: np.ndarray
    m: np.ndarray
    labels: np.ndarray
    fixed_points: np.ndarray
    fixed_point_free_energy: np.ndarray
    counts: np.ndarray
    n_starts: int
    n_converged: int

    @property
    def n_fixed_points(self) -> int:
        return self.fixed_points.shape[0]

    def histogram(self, bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """``(counts [bins], edges [bins + 1])`` of the converged starts' free energies.

        When all free energies coincide (to 1e-9 relative, e.g. symmetric clusters) the range is
        widened to ±1e-6 around them so that the bins stay finite.
        """
        return np.histogram(self.free_energy, bins=bins, range=_hist_range(self.free_energy))


def _hist_range(f: np.ndarray) -> tuple[float, float] | None:
    if f.size == 0:
        return None
    lo, hi = float(f.min()), float(f.max())
    scale = max(1.0, abs(lo), abs(hi))
    if hi - lo < 1e-9 * scale:
        return lo - 1e-6 * scale, hi + 1e-6 * scale
    return lo, hi


def tap_landscape(model: IsingModel, config: TAPConfig = TAPConfig()) -> TAPLandscape:
    """Solve TAP from ``n_starts`` uniform random starts: free energies, distinct fixed points."""
    dtype, device = config.precision.torch_dtype, config.precision.torch_device
    mdl = model.to(dtype=dtype, device=device)
    g = torch.Generator(device="cpu").manual_seed(config.seed)
    m0 = 2.0 * torch.rand(config.n_starts, mdl.n_spins, generator=g, dtype=torch.float64) - 1.0
    m, conv, _ = tap_solve(mdl, m0.to(dtype=dtype, device=device), config)
    conv_np = conv.cpu().numpy()
    mc = m[conv]
    f = tap_free_energy(mdl, mc).detach().cpu().to(torch.float64).numpy()
    mn = mc.detach().cpu().to(torch.float64).numpy()
    if mn.shape[0] == 0:
        n = mdl.n_spins
        return TAPLandscape(np.zeros(0), np.zeros((0, n)), np.zeros(0, np.int64),
                            np.zeros((0, n)), np.zeros(0), np.zeros(0, np.int64),
                            config.n_starts, 0)  # fmt: skip
    labels, reps = _distinct(mn, config.distinct_tol)
    counts = np.bincount(labels, minlength=len(reps))
    order = np.argsort(f[reps], kind="stable")
    relabel = np.empty_like(order)
    relabel[order] = np.arange(len(order))
    return TAPLandscape(
        free_energy=f,
        m=mn,
        labels=relabel[labels],
        fixed_points=mn[reps[order]],
        fixed_point_free_energy=f[reps[order]],
        counts=counts[order],
        n_starts=config.n_starts,
        n_converged=int(conv_np.sum()),
    )
