"""Why gap counts must be float64: a near-zero gap that float32 miscounts.

``N_Δ = #{Δ_μ > 0}`` decides SAT (``N_Δ = 0``) against jammed; near the end of a run many gaps sit
within ~1e-8 of zero, below float32's resolution at ``|y f| ≈ κ = 1`` (unit roundoff ``2^-24 ≈
6e-8``). Float32 then calls unsatisfied points satisfied (and the reverse), which is the origin of
the spurious ``N_Δ ∈ [1, 4]`` endings the authors saw in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PrecisionExample", "count_unsatisfied", "float32_gap_miscount_example"]


def count_unsatisfied(f, y, kappa: float = 1.0) -> int:
    """``N_Δ = #{κ − y_μ f_μ > 0}``, computed in the dtype of ``f`` (numpy arrays ``[P]``)."""
    f = np.asarray(f)
    dt = f.dtype if np.issubdtype(f.dtype, np.floating) else np.float64
    delta = dt.type(kappa) - np.asarray(y, dtype=dt) * f.astype(dt)
    return int(np.count_nonzero(delta > 0))


@dataclass(frozen=True)
class PrecisionExample:
    """A linear net's gaps evaluated in float64 and in float32.

    Attributes:
        w: ``[d]`` weights; x: ``[P, d]`` inputs; y: ``[P]`` labels (all float64).
        delta64: ``[P]`` gaps in float64; delta32: ``[P]`` the same in float32.
        n_delta64, n_delta32: unsatisfied counts in each precision.
    """

    w: np.ndarray
    x: np.ndarray
    y: np.ndarray
    delta64: np.ndarray
    delta32: np.ndarray
    n_delta64: int
    n_delta32: int


def float32_gap_miscount_example(eps: float = 1e-9) -> PrecisionExample:
    """A linear net ``f = w·x`` whose gaps ``κ − y f`` are ``+eps`` and ``−eps`` in float64.

    Point 1 has ``y f = 1 − eps`` (unsatisfied by ``eps``), point 2 has ``y f = 1 + eps``
    (satisfied by ``eps``). With ``eps ≪ 6e-8``, float32 rounds both products to exactly 1 and
    reports ``N_Δ = 0`` (a false SAT) where float64 reports ``N_Δ = 1``.
    """
    w = np.array([1.0 - eps, 1.0 + eps])
    x = np.eye(2)
    y = np.array([1.0, 1.0])
    f64 = x @ w
    delta64 = 1.0 - y * f64
    f32 = x.astype(np.float32) @ w.astype(np.float32)
    delta32 = np.float32(1.0) - y.astype(np.float32) * f32
    return PrecisionExample(
        w=w,
        x=x,
        y=y,
        delta64=delta64,
        delta32=delta32,
        n_delta64=count_unsatisfied(f64, y),
        n_delta32=count_unsatisfied(f32, y),
    )
