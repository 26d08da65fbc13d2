"""Naive mean-field and TAP inversion: closed-form couplings from the inverse connected moments.

With ``χ = C - m mᵀ`` (connected correlations, diagonal ``1 - m²``) and ``A = χ^{-1}``:

* naive mean field (Kappen & Rodríguez 1998):
  :math:`J_{ij} = -A_{ij}`, :math:`h_i = \\operatorname{atanh} m_i - \\sum_j J_{ij} m_j`;
* TAP (Tanaka 1998; Kappen & Rodríguez 1998): :math:`-A_{ij} = J_{ij} + 2 J_{ij}^2 m_i m_j`,
  solved as

  .. math:: J_{ij} = \\frac{-1 + \\sqrt{1 - 8 m_i m_j A_{ij}}}{4 m_i m_j}

  (the root that tends to ``-A_ij`` as ``m_i m_j → 0``), and
  :math:`h_i = \\operatorname{atanh} m_i - \\sum_j J_{ij} m_j + m_i \\sum_j J_{ij}^2 (1 - m_j^2)`.

Both are expansions in the coupling strength: for couplings of scale β the naive couplings are off
by ``O(β²)`` (the Onsager term ``2 J² m_i m_j``), TAP's by ``O(β³)``. Where the TAP discriminant is
negative it is clamped at 0, which gives :math:`J_{ij} = -1/(4 m_i m_j)`, the coupling that
leaves the smallest residual of the quadratic (pairs counted in ``extras["clamped"]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import NumericalError, check_choice, check_positive
from ._fit import EVALUATE_CHOICES, InverseIsing, _Raw
from ._model import IsingModel
from ._moments import Moments

__all__ = ["MeanFieldConfig", "MeanFieldInversion", "TAPInversion"]

# |m_i| must stay below 1 - this for atanh(m_i) and an invertible χ.
MAGNETISATION_GUARD = 1e-12


@dataclass(frozen=True)
class MeanFieldConfig:
    """Settings of :class:`MeanFieldInversion` and :class:`TAPInversion`.

    Attributes:
        ridge: added to the diagonal of ``χ`` before inversion (0 = none; use for noisy data).
        evaluate: how the report computes model moments (``"auto"``, ``"exact"``, ``"bp"``,
            ``"none"``).
    """

    ridge: float = 0.0
    evaluate: str = "auto"

    def __post_init__(self):
        check_positive("ridge", self.ridge, allow_zero=True, finite=True)
        check_choice("evaluate", self.evaluate, EVALUATE_CHOICES)


def _inverse_connected(moments: Moments, ridge: float) -> tuple[torch.Tensor, torch.Tensor]:
    m = moments.m
    if float(m.abs().max()) >= 1.0 - MAGNETISATION_GUARD:
        raise NumericalError(
            "a magnetisation is ±1 (a frozen spin); mean-field inversion needs |m_i| < 1",
            hint="drop frozen spins or fit with pseudo-likelihood + L2",
        )
    chi = moments.connected + ridge * torch.eye(moments.n_spins, dtype=m.dtype, device=m.device)
    try:
        A = torch.linalg.inv(chi)
    except RuntimeError:
        raise NumericalError(
            "the connected correlation matrix is singular", hint="set ridge > 0"
        ) from None
    return m, 0.5 * (A + A.T)


class MeanFieldInversion(InverseIsing):
    """Naive mean-field inversion ``J = -(C - mmᵀ)^{-1}`` (off-diagonal)."""

    name = "mean_field"
    config_class = MeanFieldConfig

    def _fit(self, moments, samples, weights) -> _Raw:
        m, A = _inverse_connected(moments, self.config.ridge)
        J = -A
        J.fill_diagonal_(0.0)
        h = torch.atanh(m) - J @ m
        return _Raw(IsingModel(J, h), iterations=1, converged=True)


class TAPInversion(InverseIsing):
    """TAP inversion: naive mean field plus the Onsager reaction term."""

    name = "tap"
    config_class = MeanFieldConfig

    def _fit(self, moments, samples, weights) -> _Raw:
        m, A = _inverse_connected(moments, self.config.ridge)
        mm = torch.outer(m, m)
        disc = 1.0 - 8.0 * mm * A
        off_diagonal = ~torch.eye(len(m), dtype=torch.bool, device=m.device)
        negative = disc < 0
        clamped = int((negative & off_diagonal).sum()) // 2
        # (-1 + sqrt(1 - 8 mm A)) / (4 mm) == -2A / (1 + sqrt(1 - 8 mm A)) for disc >= 0: the
        # second form has no 0/0 at m_i m_j = 0 and equals -A there. The two forms part where
        # disc < 0, and the clamp is of the first: disc = 0 gives J = -1/(4 mm), the vertex of
        # 2 mm J² + J + A (the J that leaves the smallest residual). disc < 0 needs mm A > 1/8,
        # so mm != 0 there.
        safe_mm = torch.where(negative, mm, torch.ones_like(mm))
        J = torch.where(
            negative, -0.25 / safe_mm, -2.0 * A / (1.0 + torch.sqrt(disc.clamp_min(0.0)))
        )
        J.fill_diagonal_(0.0)
        J = 0.5 * (J + J.T)
        h = torch.atanh(m) - J @ m + m * ((J**2) @ (1.0 - m**2))
        return _Raw(IsingModel(J, h), iterations=1, converged=True, extras={"clamped": clamped})
