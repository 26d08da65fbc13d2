"""Analytic curves for the spherical H-spin glass, in the normalisation of :mod:`._model`.

All counts are returned as natural logarithms (they overflow: ``(H-1)^Lambda`` at Lambda = 120).
``lam`` is the number of spins Lambda, ``H`` the degree; ``u = L / Lambda`` the energy per weight.

Derivations (written out here because the normalisations are binding):

*Complex classes.* A generic order-H symmetric tensor in Lambda variables has
``((H-1)^Lambda - 1)/(H-2)`` eigenvector classes (Cartwright & Sturmfels, Linear Algebra Appl. 438,
942 (2013), Thm 5.5; Lambda for H = 2); the critical points of ``L`` on the sphere are exactly the
real eigenvectors (``grad L = mu w``), one class = ``{w, -w}``.

*Kac–Rice at finite Lambda.* With ``Cov(L(w), L(w')) = Lambda (w.w'/Lambda)^H`` one finds at any
point of the sphere: the tangent gradient is N(0, H I_{Lambda-1}); ``L`` is N(0, Lambda); the
tangent part of the Euclidean Hessian is a GOE of size ``n = Lambda - 1`` with off-diagonal
variance ``H(H-1)/Lambda`` (diagonal twice that), all three independent; the Riemannian Hessian is
that GOE minus ``H u I``. The Kac–Rice formula, the sphere's area
``2 pi^{Lambda/2} Lambda^{(Lambda-1)/2} / Gamma(Lambda/2)`` and the identity
``E|det(A_n - t)| = (Z_{n+1}/Z_n) e^{t^2/2} rho_{n+1}(t)`` (A_n a GOE with density
``∝ exp(-tr A^2/2)``, Z_n the Mehta–Selberg constant, rho_{n+1} the one-eigenvalue density of
GOE_{n+1} normalised to 1) give (Auffinger, Ben Arous & Černý, CPAM 66, 165 (2013), Thm 2.5 /
Fyodorov, PRL 92, 240601 (2004), in our variables)

.. math::
    E\\,\\mathrm{Crt}(B) = 2 \\sqrt{2/H}\\,(H-1)^{\\Lambda/2}
        \\int_{c B} e^{-x^2 (H-2)/(2H)} \\sigma_\\Lambda(x)\\, dx,
    \\qquad c = \\sqrt{\\Lambda H / (2(H-1))},

where ``sigma_Lambda`` is the GOE_Lambda eigenvalue density normalised to Lambda, ``B`` a set of
energies per weight, and Crt counts points (twice the classes). For the index-k points replace
``sigma_Lambda`` by the density of the (k+1)-th smallest eigenvalue of GOE_Lambda. The GOE density
is computed *exactly* from Mehta's finite-N formula (Random Matrices, 3rd ed., eq. 7.2.32; harmonic
oscillator functions), validated in the tests against Monte Carlo and exact small cases; the
ordered-eigenvalue densities (index-resolved counts) by Monte Carlo with a stated standard error.
Checks: H = 2 gives exactly 2 Lambda points; Lambda = 2 gives sqrt(3H - 2) classes.

*Complexity (Lambda -> infinity).* ABC 2013, Thms 2.5, 2.8 and eqs. (2.10)–(2.16): with
``E_inf = 2 sqrt((H-1)/H)`` and for ``u <= -E_inf``
``I_1(u) = -(u/E_inf^2) sqrt(u^2 - E_inf^2) - log(-u + sqrt(u^2 - E_inf^2)) + log E_inf``,
``Theta_{k,H}(u) = 1/2 log(H-1) - (H-2)/(4(H-1)) u^2 - (k+1) I_1(u)`` (critical points of index k
with energy below u), ``Theta_H(u)`` likewise with ``I_1`` once (all indices). ``-E_0`` is the zero
of ``Theta_{0,H}``; E_0 = 1.657 at H = 3.

*Hessian spectrum.* At a critical point of energy u the Riemannian Hessian is a GOE with semicircle
radius ``R = 2 sqrt(H(H-1))`` (finite Lambda: ``2 sqrt(H(H-1)(Lambda-1)/Lambda)``) shifted by
``-H u``; minima need ``-H u >= R``, i.e. ``u <= -E_inf``. The mean log-volume per tangent
direction of a minimum is ``v(u) = -1/2 ∫ log(x - H u) dsigma_R(x)
= -1/2 [log(R/2) + log s + 1/(2 s^2)]`` with ``-2Hu/R = s + 1/s`` (s >= 1), from the
semicircle's log-potential; ``dv/du = H / (R s)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import integrate, optimize
from scipy.special import gammaln

from ..errors import ConfigError, check_positive
from ._model import ParameterBudget, lam_for_budget

__all__ = [
    "IndexCounts",
    "analytic_table",
    "complexity",
    "complexity_by_index",
    "e_0",
    "e_inf",
    "goe_abs_det_mean",
    "goe_density",
    "hessian_semicircle_density",
    "hessian_semicircle_radius",
    "kac_rice_by_index",
    "kac_rice_log_mean",
    "log_complex_classes",
    "log_volume_curve",
    "log_volume_slope",
    "random_overlap_pdf",
]


def _check(lam: int, H: int) -> None:
    check_positive("lam", lam, integer=True)
    check_positive("H", H, integer=True)
    if lam < 2 or H < 2:
        raise ConfigError(f"lam={lam}, H={H}: need lam >= 2 and H >= 2")


# --------------------------------------------------------------------------------------------
# algebraic geometry
# --------------------------------------------------------------------------------------------
def log_complex_classes(lam: int, H: int) -> float:
    """``log(((H-1)^Lambda - 1)/(H-2))`` (``log Lambda`` at H = 2): complex eigenvector classes."""
    _check(lam, H)
    if H == 2:
        return math.log(lam)
    x = lam * math.log(H - 1)
    return x + math.log1p(-math.exp(-x)) - math.log(H - 2) if x > 0 else math.log(lam)


# --------------------------------------------------------------------------------------------
# GOE at finite size
# --------------------------------------------------------------------------------------------
def _hermite_functions(x: np.ndarray, n_max: int) -> np.ndarray:
    """Harmonic-oscillator functions ``phi_k = (2^k k! sqrt(pi))^{-1/2} H_k(x) e^{-x^2/2}``.

    Returns ``[n_max + 1, *x.shape]``.

    Stable three-term recurrence (hand-written: scipy's ``eval_hermite`` overflows past k ~ 150).
    """
    phi = np.empty((n_max + 1, *x.shape))
    phi[0] = np.pi**-0.25 * np.exp(-0.5 * x * x)
    if n_max >= 1:
        phi[1] = math.sqrt(2.0) * x * phi[0]
    for k in range(1, n_max):
        phi[k + 1] = math.sqrt(2.0 / (k + 1)) * x * phi[k] - math.sqrt(k / (k + 1)) * phi[k - 1]
    return phi


def _hermite_cumulative(x: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``I_k(x) = ∫_{-inf}^x phi_k`` and ``I_k(inf)`` for all k, from ``phi_k' = sqrt(k/2) phi_{k-1}
    - sqrt((k+1)/2) phi_{k+1}``: ``I_{k+1} = sqrt(k/(k+1)) I_{k-1} - sqrt(2/(k+1)) phi_k``."""
    from scipy.special import ndtr

    n_max = phi.shape[0] - 1
    cum = np.empty_like(phi)
    tot = np.empty(n_max + 1)
    cum[0] = np.pi**-0.25 * math.sqrt(2 * np.pi) * ndtr(x)
    tot[0] = np.pi**-0.25 * math.sqrt(2 * np.pi)
    if n_max >= 1:
        cum[1] = -math.sqrt(2.0) * phi[0]
        tot[1] = 0.0
    for k in range(1, n_max):
        cum[k + 1] = math.sqrt(k / (k + 1)) * cum[k - 1] - math.sqrt(2.0 / (k + 1)) * phi[k]
        tot[k + 1] = math.sqrt(k / (k + 1)) * tot[k - 1]
    return cum, tot


def goe_density(x, n: int) -> np.ndarray:
    """Exact eigenvalue density of the n x n GOE ``∝ exp(-tr A^2 / 2)``, normalised to n.

    (Off-diagonal variance 1/2, diagonal variance 1; semicircle edge ``sqrt(2n)``.) Mehta's formula

    .. math::
        \\sigma_n(x) = \\sum_{k<n} \\phi_k(x)^2
            + \\sqrt{n/2}\\,\\phi_{n-1}(x) \\int \\tfrac12 \\mathrm{sgn}(x-t)\\,\\phi_n(t)\\,dt
            + [n\\ \\mathrm{odd}]\\ \\phi_{n-1}(x) / \\int \\phi_{n-1}.

    Args:
        x: points, any shape.
        n: matrix size >= 1.

    Returns:
        ``sigma_n(x)``, same shape as ``x``.
    """
    check_positive("n", n, integer=True)
    x = np.asarray(x, dtype=np.float64)
    phi = _hermite_functions(x, n)
    cum, tot = _hermite_cumulative(x, phi)
    rho = (phi[:n] ** 2).sum(0)
    rho += math.sqrt(n / 2.0) * phi[n - 1] * (cum[n] - 0.5 * tot[n])
    if n % 2 == 1:
        rho += phi[n - 1] / tot[n - 1]
    return rho


def _log_z_ratio(n: int) -> float:
    """``log(Z_{n+1}/Z_n)`` with the Mehta–Selberg constant ``Z_n = ∫ prod|Δ| e^{-sum x^2/2}``.

    ``Z_n = (2 pi)^{n/2} prod_{j<=n} Γ(1 + j/2) / Γ(3/2)``.
    """
    return 0.5 * math.log(2 * math.pi) + gammaln(1 + (n + 1) / 2) - gammaln(1.5)


def goe_abs_det_mean(t, n: int) -> np.ndarray:
    """``log E|det(A_n - t)|`` for the n x n GOE ``∝ exp(-tr A^2/2)`` (exact; n = 0 gives 0).

    Uses ``E|det(A_n - t)| = (Z_{n+1}/Z_n) e^{t^2/2} sigma_{n+1}(t) / (n+1)``.
    """
    t = np.asarray(t, dtype=np.float64)
    if n == 0:
        return np.zeros_like(t)
    with np.errstate(divide="ignore"):
        return _log_z_ratio(n) + 0.5 * t * t + np.log(goe_density(t, n + 1)) - math.log(n + 1)


# --------------------------------------------------------------------------------------------
# Kac–Rice
# --------------------------------------------------------------------------------------------
def _kr_log_prefactor(lam: int, H: int) -> float:
    return math.log(2.0) + 0.5 * math.log(2.0 / H) + 0.5 * lam * math.log(H - 1)


def kac_rice_log_mean(
    lam: int,
    H: int,
    u_range: tuple[float, float] = (-math.inf, math.inf),
    *,
    per: str = "point",
) -> float:
    """Exact finite-Lambda ``log E[# critical points with u in u_range]`` (Kac–Rice, module doc).

    Args:
        lam, H: number of spins and degree.
        u_range: energies per weight ``(u_lo, u_hi)``.
        per: ``"point"`` (each of ±w counted) or ``"class"`` (half the points; full range only
            makes sense for odd H, but the halving is exact for any H over the full range).

    Returns:
        The natural log of the expected count (``-inf`` if zero).
    """
    _check(lam, H)
    if per not in ("point", "class"):
        raise ConfigError(f"per={per!r} is not allowed; choose 'point' or 'class'")
    lo, hi = u_range
    if not lo < hi:
        raise ConfigError(f"u_range={u_range} must have u_lo < u_hi")
    c = math.sqrt(lam * H / (2 * (H - 1)))
    edge = math.sqrt(2 * lam) + 12.0 + 3 * math.sqrt(lam)
    a, b = max(lo * c, -edge), min(hi * c, edge)
    if a >= b:
        return -math.inf
    k = (H - 2) / (2 * H)

    def f(x):
        return float(np.exp(-k * x * x) * goe_density(np.array(x), lam))

    # The density has ~lam bumps; quad with enough subintervals resolves them to ~1e-12.
    val, _ = integrate.quad(f, a, b, limit=max(200, 20 * lam), epsabs=0.0, epsrel=1e-11)
    if val <= 0:
        return -math.inf
    out = _kr_log_prefactor(lam, H) + math.log(val)
    return out - math.log(2.0) if per == "class" else out


@dataclass(frozen=True)
class IndexCounts:
    """Mean numbers of critical points by index (Monte Carlo over GOE_Lambda).

    Attributes:
        log_prefactor: ``log(2 sqrt(2/H) (H-1)^{Lambda/2})``.
        mean: ``[Lambda]`` expectation ``E[e^{-x^2 (H-2)/(2H)} 1{x in cB}]`` with x the
            (k+1)-th smallest GOE eigenvalue; the count of index-k points is
            ``exp(log_prefactor) * mean[k]``.
        stderr: ``[Lambda]`` Monte Carlo standard error of ``mean``.
        n_samples: GOE matrices drawn.
    """

    log_prefactor: float
    mean: np.ndarray
    stderr: np.ndarray
    n_samples: int

    @property
    def points(self) -> np.ndarray:
        """Expected number of index-k points, ``[Lambda]`` (may overflow to inf at huge Lambda)."""
        return math.exp(self.log_prefactor) * self.mean

    @property
    def points_stderr(self) -> np.ndarray:
        return math.exp(self.log_prefactor) * self.stderr


def kac_rice_by_index(
    lam: int,
    H: int,
    u_range: tuple[float, float] = (-math.inf, math.inf),
    *,
    n_samples: int = 200_000,
    seed: int = 0,
    batch: int = 20_000,
) -> IndexCounts:
    """Finite-Lambda mean number of critical points of each index (ABC 2013, Thm 2.5).

    ``E Crt_k(B) = 2 sqrt(2/H) (H-1)^{Lambda/2} E[exp(-x^2 (H-2)/(2H)) 1{x in cB}]``, ``x =
    lambda_{(k+1)}`` ``lambda_{(k+1)}`` the (k+1)-th smallest eigenvalue of GOE_Lambda (density
    ``∝ exp(-tr A^2/2)``); the expectation is estimated from ``n_samples`` seeded GOE draws.

    Returns:
        :class:`IndexCounts` (sum over k equals :func:`kac_rice_log_mean` within the error).
    """
    _check(lam, H)
    check_positive("n_samples", n_samples, integer=True)
    rng = np.random.default_rng(seed)
    c = math.sqrt(lam * H / (2 * (H - 1)))
    lo, hi = u_range
    k = (H - 2) / (2 * H)
    s1 = np.zeros(lam)
    s2 = np.zeros(lam)
    done = 0
    while done < n_samples:
        m = min(batch, n_samples - done)
        g = rng.standard_normal((m, lam, lam))
        a = (g + np.swapaxes(g, -1, -2)) / 2.0  # off-diagonal var 1/2, diagonal var 1
        ev = np.linalg.eigvalsh(a)
        val = np.exp(-k * ev * ev) * ((ev >= lo * c) & (ev <= hi * c))
        s1 += val.sum(0)
        s2 += (val * val).sum(0)
        done += m
    mean = s1 / n_samples
    var = np.maximum(s2 / n_samples - mean**2, 0.0)
    return IndexCounts(_kr_log_prefactor(lam, H), mean, np.sqrt(var / n_samples), n_samples)


# --------------------------------------------------------------------------------------------
# asymptotic complexity (ABC 2013)
# --------------------------------------------------------------------------------------------
def e_inf(H: int) -> float:
    """Threshold energy ``E_inf = 2 sqrt((H-1)/H)``: typical minima lie near ``u = -E_inf``."""
    check_positive("H", H, integer=True)
    return 2.0 * math.sqrt((H - 1) / H)


def _i1(u, H: int):
    ei = e_inf(H)
    u = np.asarray(u, dtype=np.float64)
    out = np.zeros_like(u)
    m = u < -ei
    r = np.sqrt(u[m] ** 2 - ei**2)
    out[m] = -(u[m] / ei**2) * r - np.log(-u[m] + r) + math.log(ei)
    return out


def complexity(u, H: int, *, cumulative: bool = True) -> np.ndarray:
    """Annealed complexity ``lim (1/Lambda) log E Crt`` of all critical points (ABC 2013).

    Args:
        u: energies per weight.
        H: degree.
        cumulative: ``True`` — points with energy ``<= u`` (``Theta_H``, flat at ``1/2 log(H-1)``
            for u >= 0); ``False`` — density of points at energy ``u`` (symmetric in u).
    """
    u = np.asarray(u, dtype=np.float64)
    base = 0.5 * math.log(H - 1) - (H - 2) / (4 * (H - 1)) * u * u
    if cumulative:
        out = base - _i1(u, H)
        return np.where(u >= 0, 0.5 * math.log(H - 1), out)
    return base - _i1(-np.abs(u), H)


def complexity_by_index(u, H: int, k: int = 0, *, cumulative: bool = True) -> np.ndarray:
    """Complexity of index-k critical points (ABC 2013, Thm 2.5), ``Theta_{k,H}(u)``.

    ``cumulative=True``: energy ``<= u`` (constant ``Theta_{k,H}(-E_inf)`` for ``u >= -E_inf``);
    ``False``: density at energy u, ``-inf`` for ``u > -E_inf`` at the exponential scale Lambda
    (a finite-k index needs the shift outside the bulk).
    """
    u = np.asarray(u, dtype=np.float64)
    ei = e_inf(H)
    uu = np.minimum(u, -ei) if cumulative else u
    out = 0.5 * math.log(H - 1) - (H - 2) / (4 * (H - 1)) * uu * uu - (k + 1) * _i1(uu, H)
    if not cumulative:
        out = np.where(u > -ei, -np.inf, out)
    return out


def e_0(H: int) -> float:
    """Ground-state energy ``E_0``: ``-E_0`` is the zero of ``Theta_{0,H}`` (ABC 2013, eq. 2.13).

    ``E_0 = E_inf = sqrt 2`` at H = 2; 1.657 at H = 3.
    """
    check_positive("H", H, integer=True)
    if H < 2:
        raise ConfigError(f"H={H} must be >= 2")
    ei = e_inf(H)
    if H == 2:
        return ei

    def f(u):
        return float(complexity_by_index(np.array(u), H, 0))

    lo = -ei - 1e-12
    hi = -ei - 1.0
    while f(hi) > 0:
        hi -= 1.0
    return -optimize.brentq(f, hi, lo, xtol=1e-14)


# --------------------------------------------------------------------------------------------
# Hessian spectrum and log-volume
# --------------------------------------------------------------------------------------------
def hessian_semicircle_radius(H: int, lam: int | None = None) -> float:
    """Semicircle radius of the Riemannian Hessian, ``2 sqrt(H(H-1))`` (times ``sqrt((lam-1)/lam)``
    at finite ``lam``)."""
    r = 2.0 * math.sqrt(H * (H - 1))
    return r if lam is None else r * math.sqrt((lam - 1) / lam)


def hessian_semicircle_density(x, u: float, H: int, lam: int | None = None) -> np.ndarray:
    """Density of Hessian eigenvalues at a critical point of energy u: semicircle of radius R
    centred at ``-H u``, normalised to 1."""
    r = hessian_semicircle_radius(H, lam)
    y = np.asarray(x, dtype=np.float64) + H * u
    return np.where(
        np.abs(y) < r, 2.0 / (np.pi * r * r) * np.sqrt(np.maximum(r * r - y * y, 0)), 0.0
    )


def _s_of(u, H, lam):
    r = hessian_semicircle_radius(H, lam)
    z = -2.0 * H * np.asarray(u, dtype=np.float64) / r
    if np.any(z < 2.0 - 1e-12):
        raise ConfigError(
            f"log-volume needs u <= -E_inf (= {-e_inf(H) if lam is None else -r / H:.4f}); "
            "above it a typical critical point is not a minimum"
        )
    z = np.maximum(z, 2.0)
    return r, (z + np.sqrt(z * z - 4.0)) / 2.0


def log_volume_curve(u, H: int, lam: int | None = None) -> np.ndarray:
    """Mean Hessian log-volume per tangent direction of a minimum at energy ``u <= -E_inf``.

    ``v(u) = -1/2 [log(R/2) + log s + 1/(2 s^2)]``, ``s + 1/s = -2 H u / R``. The total
    ``-1/2 sum log lambda_i`` over the Lambda - 1 directions is ``(Lambda - 1) v(u)`` to leading
    order.
    """
    r, s = _s_of(u, H, lam)
    return -0.5 * (math.log(r / 2.0) + np.log(s) + 0.5 / (s * s))


def log_volume_slope(u, H: int, lam: int | None = None) -> np.ndarray:
    """``dv/du = H / (R s)`` of :func:`log_volume_curve` (``sqrt(H/(H-1))/2`` at the threshold)."""
    r, s = _s_of(u, H, lam)
    return H / (r * s)


# --------------------------------------------------------------------------------------------
# overlaps
# --------------------------------------------------------------------------------------------
def random_overlap_pdf(q, lam: int) -> np.ndarray:
    """Density of ``q = x.y / (|x||y|)`` for independent uniform directions in R^lam:
    ``Γ(lam/2) / (sqrt(pi) Γ((lam-1)/2)) (1 - q^2)^{(lam-3)/2}`` (std ``1/sqrt(lam)``)."""
    _check(lam, 2)
    q = np.asarray(q, dtype=np.float64)
    logc = gammaln(lam / 2) - 0.5 * math.log(math.pi) - gammaln((lam - 1) / 2)
    inside = np.abs(q) < 1
    with np.errstate(divide="ignore"):
        val = np.exp(logc + 0.5 * (lam - 3) * np.log(np.where(inside, 1 - q * q, 1.0)))
    return np.where(inside, val, 0.0)


# --------------------------------------------------------------------------------------------
# tables vs depth at fixed budget
# --------------------------------------------------------------------------------------------
def analytic_table(
    n_params: int,
    depths: Sequence[int] = tuple(range(2, 16)),
    budget: ParameterBudget | None = None,
    *,
    minima_samples: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Counts and energies vs depth at a fixed parameter budget, one row per H.

    Columns: ``N, H, lam`` (``Lambda(N, H)`` under ``budget``); ``log_complex_classes``
    (Cartwright–Sturmfels); ``log_kr_classes`` (exact finite-Lambda Kac–Rice mean number of real
    classes); ``lam_theta0_threshold`` (``Lambda * Theta_{0,H}(-E_inf)``, the leading-order log
    mean number of minima); ``e_0, e_inf``; ``threshold_log_volume_slope`` (``dv/du`` at the
    threshold, ``sqrt(H/(H-1))/2``). With ``minima_samples > 0`` also ``log_kr_minima`` and
    ``log_kr_minima_se`` (log of the exact finite-Lambda mean number of minima, index-0 points,
    by :func:`kac_rice_by_index` with that many GOE samples, and its relative standard error).
    """
    rows = []
    for H in depths:
        lam = lam_for_budget(n_params, H, budget)
        rows.append(
            {
                "N": n_params,
                "H": H,
                "lam": lam,
                "log_complex_classes": log_complex_classes(lam, H),
                "log_kr_classes": kac_rice_log_mean(lam, H, per="class"),
                "lam_theta0_threshold": lam * float(complexity_by_index(-e_inf(H), H, 0)),
                "e_0": e_0(H),
                "e_inf": e_inf(H),
                "threshold_log_volume_slope": 0.5 * math.sqrt(H / (H - 1)),
            }
        )
        if minima_samples:
            ic = kac_rice_by_index(lam, H, n_samples=minima_samples, seed=seed)
            rows[-1]["log_kr_minima"] = ic.log_prefactor + math.log(ic.mean[0])
            rows[-1]["log_kr_minima_se"] = ic.stderr[0] / ic.mean[0]
    return pd.DataFrame(rows)
