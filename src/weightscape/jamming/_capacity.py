"""N*(P) = P / c, and whether c = P/N* depends on depth.

The claim of study A: N* grows linearly with P, and for random data ``c = P/N*`` does not depend
on depth. :func:`fit_capacity` fits ``N* = s P`` (``s = 1/c``) by weighted least squares through the
origin; :func:`depth_independence` tests the per-depth ``c`` values against their weighted mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ConfigError, NumericalError

__all__ = [
    "CapacityFit",
    "DepthTest",
    "depth_independence",
    "fit_capacity",
    "fit_capacity_by_depth",
]


@dataclass(frozen=True)
class CapacityFit:
    """Weighted least-squares fit ``N* = P / c`` through the origin.

    Attributes:
        c: ``P / N*`` (points per weight at the transition).
        c_err: standard error of ``c`` (from that of ``s = 1/c``: ``σ_c = σ_s / s²``).
        s: slope ``N*/P`` and s_err its standard error ``(Σ w_i P_i²)^{-1/2}``.
        r2: weighted coefficient of determination, ``1 − Σ w (N − sP)² / Σ w (N − N̄_w)²``
            (``N̄_w`` the weighted mean of N*).
        chi2: ``Σ w_i (N_i − s P_i)²`` with ``w_i = 1/σ_i²``; dof = n − 1; p_value its upper tail.
        n_points: number of (P, N*) points.
    """

    c: float
    c_err: float
    s: float
    s_err: float
    r2: float
    chi2: float
    dof: int
    p_value: float
    n_points: int


def fit_capacity(P, nstar, nstar_err=None) -> CapacityFit:
    """Fit ``N* = P / c`` by weighted least squares through the origin.

    .. math::

        \\hat s = \\frac{\\sum_i w_i P_i N^*_i}{\\sum_i w_i P_i^2}, \\qquad
        \\sigma_s^2 = \\frac{1}{\\sum_i w_i P_i^2}, \\qquad w_i = \\sigma_i^{-2}.

    Args:
        P: ``[n]`` numbers of training points.
        nstar: ``[n]`` N* at each P.
        nstar_err: ``[n]`` standard errors of N* (default: all 1, i.e. ordinary least squares,
            and then ``s_err`` is rescaled by ``√(χ²/dof)`` since the errors are unknown).

    Returns:
        A :class:`CapacityFit`.
    """
    P = np.asarray(P, dtype=float).ravel()
    N = np.asarray(nstar, dtype=float).ravel()
    if P.shape != N.shape or P.size < 1:
        raise ConfigError(f"P and nstar must have the same non-zero length, got {P.size}, {N.size}")
    known = nstar_err is not None
    sig = np.ones_like(N) if not known else np.asarray(nstar_err, dtype=float).ravel()
    if sig.shape != N.shape:
        raise ConfigError("nstar_err must have the same length as nstar")
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(N)) and np.all(np.isfinite(sig))):
        raise NumericalError("P, nstar and nstar_err must be finite")
    if np.any(sig <= 0) or np.any(P <= 0):
        raise ConfigError("P and nstar_err must be positive")
    w = 1.0 / sig**2
    sxx = np.sum(w * P * P)
    s = float(np.sum(w * P * N) / sxx)
    resid = N - s * P
    chi2 = float(np.sum(w * resid**2))
    dof = P.size - 1
    s_err = math.sqrt(1.0 / sxx)
    if not known:
        s_err *= math.sqrt(chi2 / dof) if dof > 0 else math.nan
    nbar = np.sum(w * N) / np.sum(w)
    ss_tot = float(np.sum(w * (N - nbar) ** 2))
    r2 = 1.0 - chi2 / ss_tot if ss_tot > 0 else math.nan
    p_value = float(stats.chi2.sf(chi2, dof)) if (known and dof > 0) else math.nan
    if s <= 0:
        raise NumericalError(f"fitted slope N*/P = {s:.3g} is not positive")
    return CapacityFit(
        c=1.0 / s,
        c_err=s_err / s**2,
        s=s,
        s_err=s_err,
        r2=float(r2),
        chi2=chi2,
        dof=dof,
        p_value=p_value,
        n_points=int(P.size),
    )


@dataclass(frozen=True)
class DepthTest:
    """Chi-square test that the per-depth c values share one value.

    Attributes:
        c_mean: inverse-variance weighted mean of c; c_mean_err its standard error.
        chi2: ``Σ_k (c_k − c̄)² / σ_k²``; dof = (number of depths) − 1.
        p_value: ``P[χ²_dof ≥ chi2]`` (small: c depends on depth).
        table: one row per depth: ``depth, c, c_err, pull`` (``pull = (c − c̄)/σ``).
    """

    c_mean: float
    c_mean_err: float
    chi2: float
    dof: int
    p_value: float
    table: pd.DataFrame


def depth_independence(c, c_err, depth=None) -> DepthTest:
    """Test whether the per-depth values ``c_k ± σ_k`` are consistent with one common value.

    Args:
        c: ``[K]`` ``P/N*`` per depth.
        c_err: ``[K]`` their standard errors.
        depth: ``[K]`` depth labels (default ``0..K-1``).

    Returns:
        A :class:`DepthTest`.
    """
    c = np.asarray(c, dtype=float).ravel()
    sig = np.asarray(c_err, dtype=float).ravel()
    if c.shape != sig.shape or c.size < 2:
        raise ConfigError("c and c_err need the same length, at least 2 depths")
    if np.any(~np.isfinite(sig)) or np.any(sig <= 0) or np.any(~np.isfinite(c)):
        raise ConfigError("c must be finite and c_err finite and positive")
    depth = np.arange(c.size) if depth is None else np.asarray(depth).ravel()
    w = 1.0 / sig**2
    cbar = float(np.sum(w * c) / np.sum(w))
    pull = (c - cbar) / sig
    chi2 = float(np.sum(pull**2))
    dof = c.size - 1
    table = pd.DataFrame({"depth": depth, "c": c, "c_err": sig, "pull": pull})
    return DepthTest(
        c_mean=cbar,
        c_mean_err=float(1.0 / math.sqrt(np.sum(w))),
        chi2=chi2,
        dof=dof,
        p_value=float(stats.chi2.sf(chi2, dof)),
        table=table,
    )


def fit_capacity_by_depth(table: pd.DataFrame) -> tuple[dict, DepthTest]:
    """Fit ``c`` per depth and test depth independence.

    Args:
        table: columns ``depth``, ``P``, ``nstar``, ``nstar_err`` (one row per (depth, P)).

    Returns:
        ``({depth: CapacityFit}, DepthTest)``.
    """
    missing = {"depth", "P", "nstar", "nstar_err"} - set(table.columns)
    if missing:
        raise ConfigError(f"table lacks columns {sorted(missing)}")
    fits = {
        dep: fit_capacity(g["P"], g["nstar"], g["nstar_err"])
        for dep, g in table.groupby("depth", sort=True)
    }
    deps = list(fits)
    test = depth_independence([fits[d].c for d in deps], [fits[d].c_err for d in deps], depth=deps)
    return fits, test
