"""Summaries of a spectrum: signed counts with a stated zero tolerance, and the log-volume."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..errors import ConfigError, NumericalError, check_positive

__all__ = ["DEFAULT_RTOL", "SpectrumCounts", "log_volume", "spectrum_counts"]

#: Default relative zero tolerance of :func:`spectrum_counts`: an eigenvalue with
#: ``|λ| <= 1e-9 · max|λ|`` counts as zero. A float64 dense eigensolver is accurate to about
#: ``N ε max|λ|`` (≈ 6e-13 relative at N = 2.8k), and at a trained minimum the symmetry (zero) modes
#: sit at ``O(|∇L|)``; 1e-9 separates both from the genuinely small eigenvalues seen in practice.
#: Pass your own ``rtol`` when the gradient at the point is not that small.
DEFAULT_RTOL = 1e-9


@dataclass(frozen=True)
class SpectrumCounts:
    """Numbers of negative, zero and positive eigenvalues.

    Attributes:
        negative: ``#{λ < −tol}``.
        zero: ``#{|λ| <= tol}``.
        positive: ``#{λ > tol}``.
        tol: the absolute threshold used, ``max(atol, rtol · max|λ|)``.
    """

    negative: int
    zero: int
    positive: int
    tol: float

    def to_dict(self) -> dict:
        return asdict(self)


def _as_numpy(eigs) -> np.ndarray:
    if isinstance(eigs, torch.Tensor):
        eigs = eigs.detach().cpu().numpy()
    a = np.asarray(eigs, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise NumericalError("the spectrum contains non-finite values")
    return a


def spectrum_counts(eigs, rtol: float = DEFAULT_RTOL, atol: float = 0.0) -> SpectrumCounts:
    """Count negative, zero and positive eigenvalues.

    An eigenvalue is zero when ``|λ| <= tol = max(atol, rtol · max_i |λ_i|)``. A spectrum that is
    exactly zero (the Hessian of a member with no unsatisfied gap) has ``tol = atol`` and counts
    all its eigenvalues as zero.

    Args:
        eigs: eigenvalues ``[N]`` (numpy or torch).
        rtol: relative tolerance (see :data:`DEFAULT_RTOL`).
        atol: absolute floor of the tolerance.
    """
    check_positive("rtol", rtol, allow_zero=True)
    check_positive("atol", atol, allow_zero=True)
    a = _as_numpy(eigs)
    scale = float(np.abs(a).max()) if a.size else 0.0
    tol = max(float(atol), float(rtol) * scale)
    neg = int((a < -tol).sum())
    pos = int((a > tol).sum())
    return SpectrumCounts(negative=neg, zero=int(a.size - neg - pos), positive=pos, tol=tol)


def log_volume(eigs, cutoff: float) -> float:
    """Log-volume of the basin in the stiff directions.

    .. math::

        V = -\\tfrac12 \\sum_{λ_i > \\mathrm{cutoff}} \\log λ_i

    (natural log; the Gaussian-basin volume up to constants, counting only eigenvalues above the
    cutoff, which must be > 0).
    """
    if isinstance(cutoff, bool) or not isinstance(cutoff, int | float) or not cutoff > 0:
        raise ConfigError(f"cutoff={cutoff!r} must be a number > 0")
    a = _as_numpy(eigs)
    keep = a[a > cutoff]
    return float(-0.5 * np.log(keep).sum())
