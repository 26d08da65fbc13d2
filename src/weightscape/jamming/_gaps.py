"""Gap statistics near jamming: log-binned histograms and power-law exponents θ and γ.

Gaps ``Δ_μ = κ − y_μ f(x_μ)``. Near N* (study A):

.. math::

    P_+(Δ) \\sim Δ^{θ} \\ (Δ > 0), \\qquad P_-(Δ) \\sim |Δ|^{-γ} \\ (Δ < 0),

so the cumulative distributions of the small gaps go as ``Δ^{1+θ}`` and ``|Δ|^{1−γ}``. Both are
fitted on the CDF exponent ``a`` (``θ = a − 1``, ``γ = 1 − a``) over a window of small ``|Δ|``.

Window (default): ``x_min`` is the ``min_points``-th smallest ``|Δ|`` on the fitted side (the few
smallest gaps carry most of the relative noise of the empirical CDF), ``x_max = x_min · 10^decades``
with ``decades = 3`` (capped at the largest gap): the lowest three decades of the data. Pass
``x_min``/``x_max`` to choose it. With ``floor`` > 0 the window is chosen among the gaps
``|Δ| ≥ floor`` only, but the gaps below the floor keep their place in the empirical CDF:
``F(x)`` counts every gap ``≤ x``. That is right when the gaps below the floor belong to the same
population as those above it (a power law running through the floor, only measured to rounding
level there). When they are a separate population — *contacts* sitting at Δ = 0 up to the
dynamics' precision — drop them before the fit instead (what ``transition_stats`` does): then
the CDF of the rest is the right one. The two differ near the floor: for one population
``F = x^a``, fitting ``F(x) − F(floor)`` gives the log–log slope ``a / (1 − (floor/x)^a)``, much
larger than ``a`` when ``a`` is small (γ = 0.9 comes out as ≈ 0.27 two decades above the floor:
tests/jamming/test_gaps.py).

Estimators:

* ``method="cdf"`` (default, the spec's preferred log–log fit on the CDF): the sorted gaps
  ``x_(1) ≤ … ≤ x_(n)`` of the side are order statistics; for a power-law CDF ``F = A x^a`` in the
  window, ``E[ln x_(i)] = (ψ(i) − ψ(n+1) − ln A) / a`` exactly (ψ the digamma function; ``ψ(i) −
  ψ(n+1) = E[ln U_(i)]`` for uniform order statistics, ≈ ``ln(i/n)``). So ``ln x_(i)`` is regressed
  on the log empirical CDF ``ψ(i) − ψ(n+1)`` by least squares over the window and ``a = 1/slope``.
  Regressing this way round (the noisy quantity as the response) avoids the attenuation bias of
  regressing ``ln(i/n)`` on the noisy ``ln x_(i)``.
* ``method="mle"``: maximum likelihood of a power law truncated to the window, density
  ``a x^{a−1} / (x_max^a − x_min^a)`` on ``[x_min, x_max]`` (valid for any real ``a``).

Errors: bootstrap, seeded. With per-run gap arrays, whole runs are resampled (the gaps of one run
are correlated); with one pooled array (or fewer than 5 runs), single gaps are resampled. The
window is fixed by the full data; a replicate with fewer than 3 gaps in it has no estimate. When
more than ``max_failed`` (default 5 %) of the replicates have none, the error is undefined (nan):
the surviving replicates are those that drew the few runs holding the window's gaps, and their
spread says nothing about the estimate's (measured: a window filled by one run of six gave
"± 0.001" before this rule). ``n_boot_failed`` and ``n_runs_fit`` (runs with a gap in the window)
are reported either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from ..errors import ConfigError, NumericalError, check_choice, check_positive

__all__ = [
    "GAP_RANGE",
    "GapExponentFit",
    "GapHistogram",
    "fit_gamma",
    "fit_gap_exponent",
    "fit_theta",
    "gap_bins",
    "gap_histogram",
]

#: Range of ``|Δ|`` covered by the log-binned histograms (study A): 1e-9 to 1e4.
GAP_RANGE = (1e-9, 1e4)


def gap_bins(lo: float = GAP_RANGE[0], hi: float = GAP_RANGE[1], per_decade: int = 10):
    """Log-spaced bin edges ``[B + 1]`` from ``lo`` to ``hi`` with ``per_decade`` bins a decade."""
    check_positive("lo", lo)
    check_positive("hi", hi)
    check_positive("per_decade", per_decade, integer=True)
    if hi <= lo:
        raise ConfigError(f"hi={hi!r} must exceed lo={lo!r}")
    n_bins = max(1, round(per_decade * math.log10(hi / lo)))
    return np.logspace(math.log10(lo), math.log10(hi), n_bins + 1)


def _pool(delta) -> tuple[np.ndarray, list[np.ndarray]]:
    """Pooled 1-D float64 array and the list of per-run arrays."""
    if isinstance(delta, np.ndarray) and delta.ndim == 2:
        runs = [np.asarray(row, dtype=np.float64) for row in delta]  # [runs, P]: one run a row
    elif isinstance(delta, np.ndarray) or np.isscalar(delta):
        runs = [np.asarray(delta, dtype=np.float64).ravel()]
    else:
        runs = [np.asarray(d, dtype=np.float64).ravel() for d in delta]
        if not runs:
            raise ConfigError("no gaps given")
        # a flat sequence of numbers is one run, not many runs of one gap
        if all(r.size == 1 for r in runs) and not any(
            isinstance(d, np.ndarray | list | tuple) for d in delta
        ):
            runs = [np.concatenate(runs)]
    pooled = np.concatenate(runs)
    if not np.all(np.isfinite(pooled)):
        raise NumericalError("gaps contain non-finite values")
    return pooled, runs


# ------------------------------------------------------------------------------------------------
# histograms


@dataclass(frozen=True)
class GapHistogram:
    """Log-binned densities of the positive gaps and of ``|Δ|`` for the negative gaps.

    Densities are per unit ``|Δ|`` and normalised by the total number of gaps (all signs), so
    ``Σ density_pos · widths`` is the fraction of all gaps that are positive and inside the range
    (likewise for the negative side).

    Attributes:
        edges: ``[B + 1]`` bin edges (log-spaced).
        counts_pos, counts_neg: ``[B]`` counts of ``Δ > 0`` and of ``|Δ|`` with ``Δ < 0``.
        density_pos, density_neg: ``[B]`` ``counts / (n_total · widths)``.
        n_total: number of gaps; n_pos, n_neg, n_zero: by sign.
        n_pos_outside, n_neg_outside: gaps of each sign outside ``[edges[0], edges[-1]]``.
    """

    edges: np.ndarray
    counts_pos: np.ndarray
    counts_neg: np.ndarray
    density_pos: np.ndarray
    density_neg: np.ndarray
    n_total: int
    n_pos: int
    n_neg: int
    n_zero: int
    n_pos_outside: int
    n_neg_outside: int

    @property
    def centers(self) -> np.ndarray:
        """Geometric bin centres ``[B]``."""
        return np.sqrt(self.edges[1:] * self.edges[:-1])

    @property
    def widths(self) -> np.ndarray:
        return np.diff(self.edges)

    def to_frame(self) -> pd.DataFrame:
        """One row per bin: ``lo, hi, center, counts_pos, counts_neg, density_pos, density_neg``."""
        return pd.DataFrame(
            {
                "lo": self.edges[:-1],
                "hi": self.edges[1:],
                "center": self.centers,
                "counts_pos": self.counts_pos,
                "counts_neg": self.counts_neg,
                "density_pos": self.density_pos,
                "density_neg": self.density_neg,
            }
        )


def gap_histogram(
    delta,
    *,
    lo: float = GAP_RANGE[0],
    hi: float = GAP_RANGE[1],
    per_decade: int = 10,
) -> GapHistogram:
    """Histogram the gaps on log bins (positive side and ``|Δ|`` of the negative side).

    Args:
        delta: gaps: ``[P]``, ``[runs, P]``, or a sequence of per-run arrays (all pooled).
        lo, hi: range of ``|Δ|`` (default 1e-9 to 1e4).
        per_decade: bins per decade (default 10).

    Returns:
        A :class:`GapHistogram`.
    """
    edges = gap_bins(lo, hi, per_decade)
    d, _ = _pool(delta)
    pos, neg = d[d > 0], -d[d < 0]
    c_pos, _ = np.histogram(pos, edges)
    c_neg, _ = np.histogram(neg, edges)
    n = d.size
    norm = n * np.diff(edges) if n else np.ones(len(edges) - 1)
    return GapHistogram(
        edges=edges,
        counts_pos=c_pos,
        counts_neg=c_neg,
        density_pos=c_pos / norm,
        density_neg=c_neg / norm,
        n_total=int(n),
        n_pos=int(pos.size),
        n_neg=int(neg.size),
        n_zero=int(np.sum(d == 0)),
        n_pos_outside=int(pos.size - c_pos.sum()),
        n_neg_outside=int(neg.size - c_neg.sum()),
    )


# ------------------------------------------------------------------------------------------------
# exponent fits


@dataclass(frozen=True)
class GapExponentFit:
    """A power-law exponent of the small gaps.

    Attributes:
        exponent: θ (``side="pos"``) or γ (``side="neg"``).
        err: bootstrap standard deviation of the exponent (nan without bootstrap).
        interval: bootstrap percentile interval at ``level``.
        cdf_exponent: ``a``, the exponent of the CDF (``1 + θ`` or ``1 − γ``).
        side: ``"pos"`` (Δ > 0) or ``"neg"`` (|Δ| of Δ < 0).
        method: ``"cdf"`` or ``"mle"``.
        x_min, x_max: the fit window in ``|Δ|``.
        n_fit: gaps inside the window; n_side: gaps on that side in all (those below the
            floor included); n_below_floor: gaps on that side with ``|Δ| < floor``.
        n_boot, n_runs: bootstrap replicates; runs pooled.
        n_boot_failed: replicates with fewer than 3 gaps in the window (no estimate).
        n_runs_fit: runs with at least one gap in the window.
        resample: ``"runs"`` or ``"points"`` (what the bootstrap resampled).
        level: confidence level of ``interval``.
    """

    exponent: float
    err: float
    interval: tuple[float, float]
    cdf_exponent: float
    side: str
    method: str
    x_min: float
    x_max: float
    n_fit: int
    n_side: int
    n_below_floor: int
    n_boot: int
    n_runs: int
    resample: str
    level: float
    n_boot_failed: int = 0
    n_runs_fit: int = 0


def _side_values(d: np.ndarray, side: str) -> np.ndarray:
    return d[d > 0] if side == "pos" else -d[d < 0]


def _cdf_exponent(x_sorted: np.ndarray, x_min: float, x_max: float) -> float:
    """CDF exponent by regressing ``ln x_(i)`` on ``ψ(i) − ψ(n+1)`` inside the window."""
    n = x_sorted.size
    i0 = np.searchsorted(x_sorted, x_min, side="left")
    i1 = np.searchsorted(x_sorted, x_max, side="right")
    if i1 - i0 < 3:
        return math.nan
    ranks = np.arange(i0 + 1, i1 + 1, dtype=np.float64)
    log_cdf = special.digamma(ranks) - special.digamma(n + 1.0)
    log_x = np.log(x_sorted[i0:i1])
    # closed-form least-squares slope (np.polyfit's general lstsq costs 3x more per replicate)
    lc = log_cdf - log_cdf.mean()
    slope = float(np.dot(lc, log_x - log_x.mean()) / np.dot(lc, lc))
    return 1.0 / slope if slope > 0 else math.nan


def _mle_exponent(x: np.ndarray, x_min: float, x_max: float) -> float:
    """MLE of ``a`` for the density ``a x^{a−1} / (x_max^a − x_min^a)`` on ``[x_min, x_max]``.

    In ``u = ln(x / x_min) ∈ [0, r]``, ``r = ln(x_max / x_min)``, the density is
    ``a e^{a u} / (e^{a r} − 1)``: an exponential family whose log-partition is
    ``ln r + ln exprel(a r)`` (``exprel(z) = (e^z − 1)/z``, finite at z = 0), convex in ``a``, so
    the mean negative log-likelihood ``ln r + ln exprel(a r) − a ū`` has one minimum.
    """
    inside = x[(x >= x_min) & (x <= x_max)]
    if inside.size < 3:
        return math.nan
    r = math.log(x_max / x_min)
    ubar = float(np.mean(np.log(inside / x_min)))
    bound = 500.0 / r  # keeps exprel(a r) finite in float64

    def nll(a):
        return math.log(special.exprel(a * r)) - a * ubar

    res = optimize.minimize_scalar(
        nll, bounds=(-bound, bound), method="bounded", options={"xatol": 1e-10}
    )
    return float(res.x)


def _window(xs_sorted: np.ndarray, x_min, x_max, decades, min_points):
    if x_min is None:
        if xs_sorted.size < min_points:
            raise NumericalError(
                f"only {xs_sorted.size} gaps on this side; the default window needs "
                f"min_points={min_points}"
            )
        x_min = float(xs_sorted[min_points - 1])
    if x_max is None:
        # never past the largest gap: a window beyond the data would tell the truncated MLE
        # that the power law continues where no gaps were seen
        x_max = min(x_min * 10.0**decades, float(xs_sorted[-1]))
    if not 0 < x_min < x_max:
        raise ConfigError(
            f"fit window x_min={x_min!r}, x_max={x_max!r} must have 0 < x_min < x_max"
        )
    return float(x_min), float(x_max)


def fit_gap_exponent(
    delta,
    side: str,
    *,
    method: str = "cdf",
    x_min: float | None = None,
    x_max: float | None = None,
    decades: float = 3.0,
    min_points: int = 10,
    n_boot: int = 500,
    level: float = 0.68,
    resample: str = "auto",
    seed: int = 0,
    max_failed: float = 0.05,
    floor: float = 0.0,
) -> GapExponentFit:
    """Fit θ (``side="pos"``) or γ (``side="neg"``) on the small gaps.

    Args:
        delta: gaps: one 1-D array (pooled), a 2-D array ``[runs, P]``, or a sequence of per-run
            arrays ``[P_r]``; runs are pooled.
        side: ``"pos"`` for ``P+(Δ) ~ Δ^θ`` or ``"neg"`` for ``P−(Δ) ~ |Δ|^{−γ}``.
        method: ``"cdf"`` (default) or ``"mle"`` (see the module docstring).
        x_min, x_max: fit window in ``|Δ|`` (defaults: see the module docstring).
        decades: width of the default window in decades (default 3).
        min_points: the default ``x_min`` is the ``min_points``-th smallest gap, and the window
            must hold at least ``min_points`` gaps (default 10).
        n_boot: bootstrap replicates (0: no error).
        level: confidence level of the percentile interval (0.68 ≈ ±1σ).
        resample: ``"runs"``, ``"points"``, or ``"auto"`` (runs when ≥ 5 runs are given).
        seed: seed of the bootstrap generator.
        max_failed: largest fraction of bootstrap replicates allowed to have no estimate (fewer
            than 3 gaps in the window) before ``err`` and ``interval`` are reported as nan.
        floor: gaps with ``|Δ| < floor`` (rounding level) are never in the window, which is
            chosen among the gaps at or above it, but they still count in the empirical CDF:
            they are smaller than every gap in the window whatever their exact value. For one
            population running through the floor; for contacts at Δ = 0 drop them instead (see
            the module docstring).

    Returns:
        A :class:`GapExponentFit`.
    """
    check_choice("side", side, ("pos", "neg"))
    check_choice("method", method, ("cdf", "mle"))
    check_choice("resample", resample, ("auto", "runs", "points"))
    check_positive("decades", decades)
    check_positive("min_points", min_points, integer=True)
    check_positive("n_boot", n_boot, allow_zero=True, integer=True)
    if not isinstance(level, float | int) or not 0.0 < level < 1.0:
        raise ConfigError(f"level={level!r} must lie in (0, 1)")
    if not isinstance(max_failed, float | int) or not 0.0 <= max_failed < 1.0:
        raise ConfigError(f"max_failed={max_failed!r} must lie in [0, 1)")
    check_positive("floor", floor, allow_zero=True, finite=True)
    if x_min is not None and x_min < floor:
        raise ConfigError(
            f"x_min={x_min!r} lies below floor={floor!r}; the window starts at or above it"
        )
    pooled, runs = _pool(delta)
    if resample == "auto":
        resample = "runs" if len(runs) >= 5 else "points"
    if resample == "runs" and len(runs) < 2:
        raise ConfigError("resample='runs' needs a sequence of at least 2 per-run gap arrays")

    xs = np.sort(_side_values(pooled, side))
    n_below = int(np.searchsorted(xs, floor, side="left")) if floor > 0 else 0
    lo, hi = _window(xs[n_below:], x_min, x_max, decades, min_points)
    n_fit = int(np.sum((xs >= lo) & (xs <= hi)))
    if n_fit < min_points:
        raise NumericalError(
            f"only {n_fit} gaps in the fit window [{lo:.3g}, {hi:.3g}] (< min_points={min_points})"
        )

    def estimate(sorted_x):
        if method == "cdf":
            return _cdf_exponent(sorted_x, lo, hi)
        return _mle_exponent(sorted_x, lo, hi)

    a = estimate(xs)
    if not np.isfinite(a):
        raise NumericalError("the gap CDF does not grow over the fit window")

    def to_exp(a_val):
        return a_val - 1.0 if side == "pos" else 1.0 - a_val

    boot = np.full(n_boot, np.nan)
    rng = np.random.default_rng(seed)
    side_runs = [np.sort(_side_values(r, side)) for r in runs]
    for b in range(n_boot):
        if resample == "runs":
            pick = rng.integers(0, len(runs), len(runs))
            sample = np.sort(np.concatenate([side_runs[k] for k in pick]))
        else:
            sample = np.sort(xs[rng.integers(0, xs.size, xs.size)])
        boot[b] = estimate(sample)
    ok = np.isfinite(boot)
    n_failed = int(n_boot - ok.sum())
    if ok.sum() >= 2 and n_failed <= max_failed * n_boot:
        e = to_exp(boot[ok])
        q = 0.5 * (1.0 - level)
        err = float(np.std(e, ddof=1))
        interval = tuple(float(v) for v in np.quantile(e, [q, 1.0 - q]))
    else:
        err, interval = math.nan, (math.nan, math.nan)
    return GapExponentFit(
        exponent=float(to_exp(a)),
        err=err,
        interval=interval,
        cdf_exponent=float(a),
        side=side,
        method=method,
        x_min=lo,
        x_max=hi,
        n_fit=n_fit,
        n_side=int(xs.size),
        n_below_floor=n_below,
        n_boot=int(n_boot),
        n_runs=len(runs),
        resample=resample,
        level=float(level),
        n_boot_failed=n_failed,
        n_runs_fit=sum(bool(np.any((r >= lo) & (r <= hi))) for r in side_runs),
    )


def fit_theta(delta, **kwargs) -> GapExponentFit:
    """θ of ``P+(Δ) ~ Δ^θ`` (positive gaps, jammed side): :func:`fit_gap_exponent`, ``"pos"``."""
    return fit_gap_exponent(delta, "pos", **kwargs)


def fit_gamma(delta, **kwargs) -> GapExponentFit:
    """γ of ``P−(Δ) ~ |Δ|^{−γ}`` (negative gaps, SAT side): :func:`fit_gap_exponent`, ``"neg"``."""
    return fit_gap_exponent(delta, "neg", **kwargs)
