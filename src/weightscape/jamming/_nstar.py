"""The jamming point N*: logistic fit of the jammed fraction against log N, bootstrap error.

Definition (study A): at fixed data, P and depth, N* is the number of weights N at which the
fraction of seeds that end jammed crosses 1/2. The fraction is modelled as

.. math::

    p_{\\rm jam}(N) = \\sigma\\big(a + b\\,(\\ln N - \\bar x)\\big),
    \\qquad \\sigma(z) = \\frac{1}{1 + e^{-z}},

with ``x̄`` the mean of ``ln N`` over the runs (for conditioning), fitted by maximum likelihood over
the decided runs (binomial per distinct N). Then ``ln N* = x̄ − a/b`` and ``b`` (the slope, per unit
of ``ln N``) is negative when larger nets are easier to fit. Runs classified ``"undecided"`` (still
relaxing at the budget) or ``"trap"`` (the dead-unit trap, not jamming) are excluded and counted.

When the outcomes are (quasi-)separated in N the likelihood has no maximum (the slope runs off to
infinity); N* is then only bracketed by the data and is returned as the geometric midpoint of the
bracket, with the bracket as its interval and ``method="separated"``.

The error comes from a stratified bootstrap over seeds: runs are resampled with replacement within
each N (seeded), and the estimate is recomputed on every replicate (a separated replicate
contributes its bracket midpoint).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from ..errors import ConfigError, NumericalError, check_positive

__all__ = [
    "OUTCOMES",
    "BudgetCheck",
    "NStarResult",
    "budget_check",
    "fit_nstar",
    "logistic_jammed_fraction",
]

#: Run outcome labels (see :func:`weightscape.jamming.classify_run`). ``"sat"`` and ``"jammed"``
#: are decided; ``"undecided"`` and ``"trap"`` are excluded from the fit and counted.
OUTCOMES = ("sat", "jammed", "undecided", "trap")


@dataclass(frozen=True)
class NStarResult:
    """Estimate of the jamming point.

    Attributes:
        nstar: N* (number of weights, biases excluded); ``nan`` when all decided runs share one
            outcome (``method`` ``"all_jammed"`` / ``"all_sat"``: N* lies outside the sweep).
        err: standard error of N* (in units of N): half the range of the central 68.27 % of
            the bootstrap replicates (σ for a normal bootstrap distribution, robust to the
            replicates whose logistic slope is nearly 0); for ``"separated"`` data the
            half-width of the bracket.
        interval: ``(lo, hi)``: bootstrap percentile interval at ``level``; for ``"separated"``
            the bracket; for ``"all_jammed"`` ``(max N, inf)``, for ``"all_sat"`` ``(0, min N)``.
        log_err: bootstrap error of ``ln N*`` (``nan`` unless ``method == "logistic"``).
        slope: fitted ``d logit(p_jam) / d ln N`` (``±inf`` for separated data, ``nan`` when
            undefined).
        level: confidence level of ``interval``.
        table: one row per distinct N: ``n``, ``log_n``, ``n_runs`` (decided), ``n_jammed``,
            ``frac_jammed``, ``frac_se`` (binomial standard error), ``n_undecided``, ``n_trap``,
            ``fitted`` (the logistic at that N; ``nan`` if not fitted).
        n_undecided: runs excluded as undecided (all N).
        n_trap: runs excluded as dead-unit traps (all N).
        method: ``"logistic"``, ``"separated"``, ``"all_jammed"`` or ``"all_sat"``.
        n_boot: bootstrap replicates used (0 when no bootstrap was run).
        n_boot_failed: replicates where N* was undefined (all one outcome); left out of the error.
    """

    nstar: float
    err: float
    interval: tuple[float, float]
    log_err: float
    slope: float
    level: float
    table: pd.DataFrame
    n_undecided: int
    n_trap: int
    method: str
    n_boot: int
    n_boot_failed: int

    @property
    def flagged(self) -> bool:
        """True when N* is not a logistic-fit estimate (separated or out-of-range data)."""
        return self.method != "logistic"


def logistic_jammed_fraction(n, nstar: float, slope: float) -> np.ndarray:
    """The model ``p_jam(N) = σ(slope · (ln N − ln N*))``; ``slope < 0`` for a jamming curve."""
    return special.expit(slope * (np.log(np.asarray(n, dtype=float)) - math.log(nstar)))


# ------------------------------------------------------------------------------------------------
# input handling


def _encode_outcomes(outcome) -> np.ndarray:
    """Map outcomes to codes: 0 sat, 1 jammed, 2 undecided, 3 trap."""
    arr = np.asarray(outcome)
    if arr.dtype == bool:
        return arr.astype(np.int8)
    if arr.dtype.kind in "iu":
        if not np.isin(arr, (0, 1)).all():
            raise ConfigError("integer outcomes must be 0 (sat) or 1 (jammed)")
        return arr.astype(np.int8)
    codes = np.empty(arr.shape, dtype=np.int8)
    for i, val in enumerate(arr.ravel()):
        if isinstance(val, bool | np.bool_):
            codes.flat[i] = int(val)
            continue
        if val not in OUTCOMES:
            raise ConfigError(f"outcome={val!r} is not allowed; choose one of {list(OUTCOMES)}")
        codes.flat[i] = OUTCOMES.index(val)
    return codes


def _group(x: np.ndarray, codes: np.ndarray):
    """Per distinct x: (xs, decided runs, jammed counts, undecided, trap)."""
    xs, inv = np.unique(x, return_inverse=True)
    k = len(xs)
    n_runs = np.bincount(inv, weights=(codes <= 1), minlength=k).astype(int)
    n_jam = np.bincount(inv, weights=(codes == 1), minlength=k).astype(int)
    n_und = np.bincount(inv, weights=(codes == 2), minlength=k).astype(int)
    n_trap = np.bincount(inv, weights=(codes == 3), minlength=k).astype(int)
    return xs, n_runs, n_jam, n_und, n_trap


# ------------------------------------------------------------------------------------------------
# the estimator on grouped data


def _separation_bracket(xs, n_runs, n_jam):
    """Bracket ``(lo, hi)`` in x when the data are (quasi-)separated, else ``None``.

    Separated (jammed at small N, SAT at large N): every N below some N_m is all jammed, every N
    above is all SAT, and at most one N_m is mixed. The jammed fraction of such data is a step
    that crosses 1/2 between the largest N with fraction > 1/2 and the smallest N with
    fraction < 1/2 (at a mixed N with fraction exactly 1/2, the bracket is its two neighbours and
    the estimate is N_m itself). Separation the other way round (jammed at large N) is treated
    in the same way, mirrored.
    """
    keep = n_runs > 0
    xs, n_runs, n_jam = xs[keep], n_runs[keep], n_jam[keep]
    frac = n_jam / n_runs
    for f in (frac, 1.0 - frac):  # decreasing jammed fraction, then increasing
        mixed = (f > 0) & (f < 1)
        if mixed.sum() > 1:
            continue
        # the sequence must be 1, ..., 1, [mixed], 0, ..., 0
        if np.any(np.diff(f) > 0):
            continue
        above = np.flatnonzero(f > 0.5)
        below = np.flatnonzero(f < 0.5)
        half = np.flatnonzero(f == 0.5)
        lo = xs[above[-1]] if len(above) else -np.inf
        hi = xs[below[0]] if len(below) else np.inf
        if len(half):
            return lo, hi, xs[half[0]]
        mid = 0.5 * (lo + hi) if np.isfinite(lo) and np.isfinite(hi) else np.nan
        return lo, hi, mid
    return None


def _nll_and_grad(theta, x, n_runs, n_jam):
    a, b = theta
    z = a + b * x
    # binomial negative log-likelihood: Σ n log(1 + e^z) − k z (stable through logaddexp)
    nll = np.sum(n_runs * np.logaddexp(0.0, z) - n_jam * z)
    r = n_runs * special.expit(z) - n_jam
    return nll, np.array([r.sum(), (r * x).sum()])


def _nll_hess(theta, x, n_runs, n_jam):
    a, b = theta
    p = special.expit(a + b * x)
    w = n_runs * p * (1.0 - p)
    return np.array([[w.sum(), (w * x).sum()], [(w * x).sum(), (w * x * x).sum()]])


def _logistic_mle(x, n_runs, n_jam):
    """MLE (a, b) of σ(a + b x) on binomial counts (x centred); trust-region Newton."""
    frac = n_jam.sum() / n_runs.sum()
    a0 = special.logit(np.clip(frac, 0.01, 0.99))
    res = optimize.minimize(
        _nll_and_grad,
        x0=np.array([a0, 0.0]),
        args=(x, n_runs, n_jam),
        jac=True,
        hess=_nll_hess,
        method="trust-exact",
        options={"gtol": 1e-10, "maxiter": 500},
    )
    if not np.all(np.isfinite(res.x)):
        raise NumericalError("logistic fit of the jammed fraction did not converge")
    return res.x


def _estimate(xs, n_runs, n_jam):
    """(log N*, slope, method, bracket) from grouped counts; x = ln N."""
    keep = n_runs > 0
    xs, n_runs, n_jam = xs[keep], n_runs[keep], n_jam[keep]
    if len(xs) == 0:
        raise NumericalError("no decided runs: cannot estimate N*")
    if n_jam.sum() == n_runs.sum():
        return math.nan, math.nan, "all_jammed", (xs.max(), math.inf)
    if n_jam.sum() == 0:
        return math.nan, math.nan, "all_sat", (-math.inf, xs.min())
    sep = _separation_bracket(xs, n_runs, n_jam)
    if sep is not None:
        lo, hi, mid = sep
        decreasing = n_jam[0] / n_runs[0] >= n_jam[-1] / n_runs[-1]
        return mid, (-math.inf if decreasing else math.inf), "separated", (lo, hi)
    center = float(np.average(xs, weights=n_runs))
    a, b = _logistic_mle(xs - center, n_runs, n_jam)
    if b == 0.0:
        raise NumericalError("logistic fit of the jammed fraction has zero slope: N* undefined")
    return center - a / b, b, "logistic", None


# ------------------------------------------------------------------------------------------------
# public entry point


def fit_nstar(
    n,
    outcome,
    *,
    log_n: bool = False,
    n_boot: int = 1000,
    level: float = 0.68,
    seed: int = 0,
) -> NStarResult:
    """Estimate N* from per-run outcomes.

    Args:
        n: ``[R]`` number of weights of each run (or ``ln N`` with ``log_n=True``).
        outcome: ``[R]`` per-run outcome: booleans (True = jammed), 0/1, or labels from
            :data:`OUTCOMES` (``"undecided"`` and ``"trap"`` runs are excluded and counted).
        log_n: ``n`` holds natural logarithms of N.
        n_boot: bootstrap replicates (0 disables the bootstrap: ``err`` and ``interval`` are nan).
        level: confidence level of the percentile ``interval`` (0.68 ≈ ±1σ).
        seed: seed of the bootstrap generator.

    Returns:
        An :class:`NStarResult`.

    Example:
        >>> import numpy as np
        >>> n = np.repeat([100, 200, 400, 800], 4)
        >>> jam = np.array([1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0], bool)
        >>> r = fit_nstar(n, jam, n_boot=0)
        >>> r.method, round(r.nstar)
        ('logistic', 283)
    """
    check_positive("n_boot", n_boot, allow_zero=True, integer=True)
    if not isinstance(level, float | int) or not 0.0 < level < 1.0:
        raise ConfigError(f"level={level!r} must lie in (0, 1)")
    x = np.asarray(n, dtype=float).ravel()
    codes = _encode_outcomes(outcome).ravel()
    if x.shape != codes.shape:
        raise ConfigError(f"n has {x.size} runs but outcome has {codes.size}")
    if not np.all(np.isfinite(x)):
        raise ConfigError("n must be finite")
    if not log_n and np.any(~(x > 0)):
        raise ConfigError("n must be positive (numbers of weights)")
    # group on the values as given (so the table shows the caller's N exactly), then take logs
    ns, n_runs, n_jam, n_und, n_trap = _group(x, codes)
    xs = ns if log_n else np.log(ns)
    ns = np.exp(ns) if log_n else ns
    if not log_n:
        x = np.log(x)
    log_star, slope, method, bracket = _estimate(xs, n_runs, n_jam)

    fitted = np.full(len(xs), np.nan)
    if method == "logistic":
        fitted = special.expit(slope * (xs - log_star))
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(n_runs > 0, n_jam / np.maximum(n_runs, 1), np.nan)
        frac_se = np.sqrt(frac * (1 - frac) / n_runs)
    table = pd.DataFrame(
        {
            "n": ns,
            "log_n": xs,
            "n_runs": n_runs,
            "n_jammed": n_jam,
            "frac_jammed": frac,
            "frac_se": frac_se,
            "n_undecided": n_und,
            "n_trap": n_trap,
            "fitted": fitted,
        }
    )
    common = dict(
        level=float(level),
        table=table,
        n_undecided=int(n_und.sum()),
        n_trap=int(n_trap.sum()),
        method=method,
    )
    if method in ("all_jammed", "all_sat"):
        lo, hi = bracket
        return NStarResult(
            nstar=math.nan,
            err=math.nan,
            interval=(math.exp(lo) if np.isfinite(lo) else 0.0, math.exp(hi)),
            log_err=math.nan,
            slope=math.nan,
            n_boot=0,
            n_boot_failed=0,
            **common,
        )
    if method == "separated":
        # A stratified bootstrap of completely separated data reproduces the same bracket, so
        # the bracket itself is the error. N* is the bracket's geometric midpoint (or the mixed
        # N whose jammed fraction is exactly 1/2; nan if the bracket is open on one side).
        lo, hi = math.exp(bracket[0]), math.exp(bracket[1])
        return NStarResult(
            nstar=math.exp(log_star) if np.isfinite(log_star) else math.nan,
            err=0.5 * (hi - lo),
            interval=(lo, hi),
            log_err=math.nan,
            slope=float(slope),
            n_boot=0,
            n_boot_failed=0,
            **common,
        )

    # logistic: stratified bootstrap over seeds (runs resampled within each N)
    boot = _bootstrap(x, codes, n_boot, seed)
    ok = np.isfinite(boot)
    n_ok = int(ok.sum())
    if n_ok >= 2:
        q = 0.5 * (1.0 - level)
        lo, hi = np.quantile(np.exp(boot[ok]), [q, 1.0 - q])
        # σ-equivalent errors from the central 68.27 % of the replicates (equal to the standard
        # deviation for a normal bootstrap distribution), not the standard deviation itself: a
        # replicate whose logistic slope is nearly 0 puts N* at e^{±1000} and would make the
        # standard deviation (once measured: ± 2e38 at N* ≈ 500) dominate every χ² it enters
        err = _half_sigma_range(np.exp(boot[ok]))
        log_err = _half_sigma_range(boot[ok])
    else:
        lo = hi = err = log_err = math.nan
    return NStarResult(
        nstar=math.exp(log_star),
        err=err,
        interval=(float(lo), float(hi)),
        log_err=log_err,
        slope=float(slope),
        n_boot=int(n_boot),
        n_boot_failed=int(n_boot - n_ok),
        **common,
    )


def _logistic_newton_batch(x, n_runs, n_jam, max_iter: int = 100, tol: float = 1e-10):
    """MLE ``(a, b)`` of ``σ(a + b x)`` for R count vectors at once (damped Newton).

    Hand-written instead of calling ``scipy.optimize.minimize`` R times because the bootstrap
    needs ~1000 two-parameter fits: one vectorised Newton iteration serves all replicates (a
    python-level ``minimize`` call per replicate costs ~10 ms). Each step is halved until the
    negative log-likelihood does not increase (the likelihood is concave, so this converges).
    Checked against the scipy fit in the tests.

    Args:
        x: ``[K]`` centred ``ln N``; n_runs: ``[K]`` runs per N; n_jam: ``[R, K]`` jammed counts.

    Returns:
        ``[R, 2]`` estimates (nan where Newton failed to converge).
    """
    R = n_jam.shape[0]
    frac = n_jam.sum(1) / n_runs.sum()
    theta = np.stack([special.logit(np.clip(frac, 0.01, 0.99)), np.zeros(R)], axis=1)

    def nll(th):
        z = th[:, :1] + th[:, 1:] * x[None, :]
        return np.sum(n_runs * np.logaddexp(0.0, z) - n_jam * z, axis=1)

    f = nll(theta)
    done = np.zeros(R, dtype=bool)
    for _ in range(max_iter):
        z = theta[:, :1] + theta[:, 1:] * x[None, :]
        p = special.expit(z)
        r = n_runs * p - n_jam  # [R, K]
        g = np.stack([r.sum(1), (r * x).sum(1)], axis=1)
        w = n_runs * p * (1 - p)
        h00, h01, h11 = w.sum(1), (w * x).sum(1), (w * x * x).sum(1)
        det = h00 * h11 - h01**2
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.stack([(h11 * g[:, 0] - h01 * g[:, 1]), (h00 * g[:, 1] - h01 * g[:, 0])], 1)
            step = step / det[:, None]
        step[done | ~np.isfinite(step).all(1)] = 0.0
        t = np.ones(R)
        for _ in range(40):
            f_new = nll(theta - t[:, None] * step)
            bad = ~(f_new <= f + 1e-12 * np.abs(f))
            if not bad.any():
                break
            t[bad] *= 0.5
        theta = theta - t[:, None] * step
        f = nll(theta)
        done |= np.max(np.abs(t[:, None] * step), axis=1) < tol
        if done.all():
            break
    theta[~done] = np.nan
    return theta


_SIGMA_Q = float(special.ndtr(-1.0))  # 0.1587: the quantiles at ±1σ of a normal


def _half_sigma_range(values: np.ndarray) -> float:
    """Half the distance between the 15.87 % and 84.13 % quantiles (σ for a normal sample)."""
    lo, hi = np.quantile(values, [_SIGMA_Q, 1.0 - _SIGMA_Q])
    return float(0.5 * (hi - lo))


def _bootstrap(x, codes, n_boot, seed) -> np.ndarray:
    """``[n_boot]`` bootstrap replicates of ln N* (nan where undefined)."""
    rng = np.random.default_rng(seed)
    out = np.full(n_boot, np.nan)
    if n_boot == 0:
        return out
    decided = codes <= 1
    xs, inv = np.unique(x[decided], return_inverse=True)
    jam = codes[decided] == 1
    sizes = np.bincount(inv, minlength=len(xs))
    p = np.bincount(inv, weights=jam, minlength=len(xs)) / np.maximum(sizes, 1)
    # Resampling runs with replacement within an N is a binomial draw of the jammed count with
    # that N's observed fraction; drawing the counts directly is the same distribution.
    counts = rng.binomial(sizes[None, :], p[None, :], size=(n_boot, len(xs)))
    fit_rows = []
    for r in range(n_boot):
        c = counts[r]
        if c.sum() in (0, sizes.sum()):
            continue  # all one outcome: N* undefined
        sep = _separation_bracket(xs, sizes, c)
        if sep is not None:
            out[r] = sep[2]
        else:
            fit_rows.append(r)
    if fit_rows:
        center = float(np.average(xs, weights=sizes))
        theta = _logistic_newton_batch(xs - center, sizes, counts[fit_rows])
        with np.errstate(divide="ignore", invalid="ignore"):
            out[fit_rows] = np.where(theta[:, 1] != 0, center - theta[:, 0] / theta[:, 1], np.nan)
    return out


@dataclass(frozen=True)
class BudgetCheck:
    """Does doubling the step budget move N* by less than its error?

    Attributes:
        shift: ``N*_long − N*_short``.
        err: the error it is compared with: ``hypot(err_short, err_long)`` (both estimates
            carry sampling error; for separated data the bracket half-widths).
        stable: ``|shift| < err``.
    """

    shift: float
    err: float
    stable: bool


def budget_check(short: NStarResult, long: NStarResult) -> BudgetCheck:
    """Compare N* from a budget with N* from twice that budget (study A's convergence check).

    Args:
        short: N* at the base budget.
        long: N* at the doubled budget (same seeds and sizes).
    """
    shift = long.nstar - short.nstar
    err = math.hypot(short.err, long.err)
    return BudgetCheck(float(shift), float(err), bool(abs(shift) < err))
