"""Entropy landscape by Monte Carlo: the tilt sweep of :mod:`._landscape` with the model's own
(Boltzmann) averages instead of Bethe's, for models where BP does not converge.

The model is tilted towards a reference, ``h_i → h_i + x σ*_i``, and persistent heat-bath chains
(:func:`~weightscape.maxent.metropolis_sample`) are carried along the grid in both directions,
each ``x`` starting from the chains of the previous one, the Monte Carlo analogue of BP's warm
start. At each ``x`` the chains relax for ``sweeps_per_x - measure_sweeps`` sweeps and are
recorded for the last ``measure_sweeps``; ``d = (1 - q)/2`` and the energy are averaged per chain,
then over the chains of a reference (standard error from the spread between chains, which are
independent, so autocorrelation within a chain does not bias it).

Hysteresis here means *broken ergodicity on the time scale of the sweep*: the downward chains,
which came from ``σ*``'s side, and the upward ones, which came from the other side, still sit in
different states at the same ``x``. It is counted only where ``|d_down - d_up|`` exceeds both a
threshold and ``z`` standard errors (:class:`MCLandscapeConfig`), so Monte Carlo noise is not read
as a loop. A point whose chains still drift (the mean ``d`` of the first and second half of the
recorded sweeps differ by more than ``stationarity_tol`` and ``z`` standard errors) is flagged
unconverged and left out of every summary, as BP's unconverged points are.

Entropy (thermodynamic integration; exact in the limit of many chains and a fine grid, unlike
Bethe's): with ``φ(x) = ln Z(x) / N`` of the tilted model, ``dφ/dx = q``. Each sweep's first tilt
``x_0`` is reached by annealing from ``β = 0`` (``ln Z = N ln 2``) to ``β = 1`` at fixed tilt,
``φ(x_0) = ln 2 + ∫_0^1 ⟨-E_x⟩_β dβ / N`` (Simpson's rule over ``anneal_steps`` values of ``β``);
along the sweep ``φ`` is integrated with the trapezoid rule over the measured ``q``. Then, as in
the Bethe landscape, ``βe = ⟨E_x⟩ / N`` (tilt included), ``s = φ + βe`` and ``e_0 = βe + x q``.
On a branch that a sweep follows past its equilibrium (a hysteresis loop), the integral is that of
the metastable branch; across a jump of the chains it is not a free-energy difference, so ``s``
right after a jump carries an error of the order of the jump's irreversible work.

Why hand-written: no peer library sweeps a tilted Ising model with persistent chains; the chains
themselves are :func:`~weightscape.maxent.metropolis_sample`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy.integrate import simpson

from ..config import Precision, resolve_precision
from ..errors import ConfigError, check_choice, check_positive, check_seed
from ._landscape import (
    DIRECTIONS,
    GAP_AVERAGES,
    LandscapeResult,
    LandscapeSummary,
    TiltGrid,
    _landscapes_in_batches,
    _one_reference,
)
from ._metropolis import RULES, MetropolisConfig, MetropolisState, metropolis_sample
from ._model import IsingModel

__all__ = [
    "CONFIRM_FACTOR",
    "HysteresisCheck",
    "MCLandscapeConfig",
    "MCLandscapeResult",
    "confirm_hysteresis",
    "mc_entropy_landscape",
    "mc_entropy_landscapes",
]


@dataclass(frozen=True)
class MCLandscapeConfig(TiltGrid):
    """Settings of :func:`mc_entropy_landscape`.

    Attributes:
        x_min, x_max, x_step, first_sweep, both_directions, jump_threshold, gap_average: as in
            :class:`~weightscape.maxent.LandscapeConfig`, but the default step is 0.1 (61 tilts:
            each costs ``sweeps_per_x`` sweeps of every chain).
        n_chains: chains per reference (the standard errors scale as ``1/√n_chains``).
        sweeps_per_x: sweeps at each tilt (relaxation plus records).
        measure_sweeps: the last sweeps of each tilt that are recorded (one record per sweep);
            must be even (its two halves are compared for stationarity) and < ``sweeps_per_x``.
        rule: ``"heat_bath"`` (default) or ``"metropolis"`` single-spin updates.
        entropy: compute ``s``, ``-βf`` by thermodynamic integration (two anneals at the sweeps'
            first tilts); without it those arrays are NaN and the chains start at ``σ*`` (first
            sweep downward) or ``-σ*`` (upward).
        anneal_steps: values of ``β`` after 0 in each anneal (even, for Simpson's rule).
        anneal_sweeps: sweeps at each ``β`` (the second half recorded; even).
        hysteresis_threshold: ``|d_down - d_up|`` must exceed this (default 0.02)...
        z: ...and ``z`` standard errors of the difference (default 5: one-sided false-alarm
            rate ≈ 3e-7 per tilt) to count as hysteresis; ``z`` is also the stationarity test's.
        stationarity_tol: smallest drift of the mean ``d`` between the two halves of the
            records that flags a point unconverged (default 0.01).
        seed: seeds the chains (the whole landscape is deterministic under it).
        batch_size: references run together (``None`` = all; ``n_chains`` chains each).
        precision: dtype/device of the chains (float64 CPU by default).

    The defaults (0.02, ``z = 5``) were set after the `small` seed-0 maxent models, where the
    deep layers' differences stayed ≤ 0.011 and the matched shallow model's reached 0.127.
    """

    x_min: float = -3.0
    x_max: float = 3.0
    x_step: float = 0.1
    first_sweep: str = "down"
    both_directions: bool = True
    n_chains: int = 64
    sweeps_per_x: int = 100
    measure_sweeps: int = 50
    rule: str = "heat_bath"
    entropy: bool = True
    anneal_steps: int = 40
    anneal_sweeps: int = 20
    jump_threshold: float | None = None
    hysteresis_threshold: float = 0.02
    z: float = 5.0
    stationarity_tol: float = 0.01
    gap_average: str = "down_converged"
    seed: int = 0
    batch_size: int | None = None
    precision: Precision = field(default_factory=Precision)

    def __post_init__(self):
        resolve_precision(self.precision)  # a Precision, not e.g. the string "float32"
        self._check_grid()
        for name in ("n_chains", "sweeps_per_x", "measure_sweeps", "anneal_steps", "anneal_sweeps"):
            check_positive(name, getattr(self, name), integer=True)
        if self.n_chains < 2:
            raise ConfigError(f"n_chains={self.n_chains!r} must be >= 2 (errors between chains)")
        if self.measure_sweeps >= self.sweeps_per_x:
            raise ConfigError(
                f"measure_sweeps={self.measure_sweeps!r} must be < sweeps_per_x="
                f"{self.sweeps_per_x!r} (the rest relaxes the chains at each tilt)"
            )
        for name in ("measure_sweeps", "anneal_steps", "anneal_sweeps"):
            if getattr(self, name) % 2:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be even")
        check_choice("rule", self.rule, RULES)
        check_positive("hysteresis_threshold", self.hysteresis_threshold, finite=True)
        check_positive("z", self.z, finite=True)
        check_positive("stationarity_tol", self.stationarity_tol, finite=True)
        check_choice("gap_average", self.gap_average, GAP_AVERAGES)
        check_seed("seed", self.seed)
        if self.batch_size is not None:
            check_positive("batch_size", self.batch_size, integer=True)
        if not isinstance(self.entropy, bool) or not isinstance(self.both_directions, bool):
            raise ConfigError("entropy and both_directions must be True or False")


@dataclass(frozen=True, eq=False)
class MCLandscapeResult(LandscapeResult):
    """One reference's Monte Carlo landscape; the arrays of
    :class:`~weightscape.maxent.LandscapeResult` (``[2, K]``, row 0 downward) plus:

    Attributes:
        d_se: standard error of ``d`` between chains ``[2, K]``.
        converged: the stationarity flags (see module doc), not BP's.
        iterations: sweeps per tilt ``[2, K]``.
    """

    d_se: np.ndarray = None  # type: ignore[assignment]  (always given; a default for dataclasses)

    def significant_hysteresis(self) -> np.ndarray:
        """``[K]`` True where both sweeps are stationary and ``|d_down - d_up|`` exceeds both
        ``hysteresis_threshold`` and ``z`` standard errors of the difference."""
        cfg = self.config
        both = self.converged[0] & self.converged[1]
        diff = np.abs(self.d[0] - self.d[1])
        se = np.sqrt(self.d_se[0] ** 2 + self.d_se[1] ** 2)
        with np.errstate(invalid="ignore"):
            return both & (diff > cfg.hysteresis_threshold) & (diff > cfg.z * se)

    def summary(self) -> LandscapeSummary:
        """As :meth:`LandscapeResult.summary`, but ``has_hysteresis`` needs a significant
        difference (:meth:`significant_hysteresis`), not only one above the threshold."""
        base = super().summary()
        return replace(base, has_hysteresis=bool(self.significant_hysteresis().any()))

    def to_frame(self):
        """:meth:`LandscapeResult.to_frame` with a ``d_se`` column."""
        frame = super().to_frame()
        rows = [DIRECTIONS.index(name) for name in frame["direction"]]
        cols = np.concatenate([np.arange(len(self.x))] * len(set(frame["direction"])))
        frame["d_se"] = self.d_se[rows, cols]
        return frame


def _per_reference(values: torch.Tensor, R: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-chain values ``[R * C]`` (chains of reference ``r`` contiguous) → mean and standard
    error over each reference's chains, ``[R]`` each."""
    v = values.reshape(R, -1).to(torch.float64)
    mean = v.mean(1)
    se = v.std(1, unbiased=True) / math.sqrt(v.shape[1])
    return mean.cpu().numpy(), se.cpu().numpy()


class _Chains:
    """The chains of one batch of references: ``R × n_chains`` chains, reference ``r``'s chains
    contiguous, tilted fields per chain, one generator stream carried from call to call."""

    def __init__(self, model: IsingModel, ref: torch.Tensor, cfg: MCLandscapeConfig):
        self.model, self.cfg = model, cfg
        self.R, self.n = ref.shape
        self.C = cfg.n_chains
        self.ref = ref.repeat_interleave(self.C, 0)  # [B, N]
        self.B = self.R * self.C
        self.state: MetropolisState | None = None
        self.calls = 0

    def _run(self, model, fields, burn_in, records) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance the chains; the records ``[records, B, N]`` and their energies under
        ``model`` with ``fields`` ``[records, B]`` (float64, from the sampler's trace)."""
        cfg = self.cfg
        mc = MetropolisConfig(
            n_chains=self.B,
            n_samples=records,
            burn_in=burn_in,
            thin=1,
            rule=cfg.rule,
            seed=cfg.seed * 1_000_003 + self.calls,
            precision=cfg.precision,
        )
        self.calls += 1
        samples, self.state, trace = metropolis_sample(model, mc, self.state, fields=fields)
        s = torch.as_tensor(samples.reshape(records, self.B, self.n), dtype=fields.dtype,
                            device=fields.device)  # fmt: skip
        return s, trace.energies

    def fields(self, x: float) -> torch.Tensor:
        return self.model.h[None, :] + x * self.ref

    def anneal(self, x: float) -> float | np.ndarray:
        """Fresh chains annealed from ``β = 0`` to 1 at tilt ``x``; returns ``φ(x)`` ``[R]``."""
        cfg = self.cfg
        self.state = None
        f = self.fields(x)
        betas = np.linspace(0.0, 1.0, cfg.anneal_steps + 1)
        u = np.zeros((self.R, len(betas)))  # ⟨-E_x⟩_β / N; exactly 0 at β = 0 (uniform spins)
        half = cfg.anneal_sweeps // 2
        for k, beta in enumerate(betas[1:], start=1):
            scaled = IsingModel(beta * self.model.J, beta * self.model.h)
            _, e_beta = self._run(scaled, beta * f, cfg.anneal_sweeps - half, half)
            minus_e = -e_beta / beta  # the sampler's energies are β E_x; [records, B]
            u[:, k] = _per_reference(minus_e.mean(0) / self.n, self.R)[0]
        return math.log(2.0) + simpson(u, x=betas, axis=1)

    def start_at_reference(self, sign: float) -> None:
        sig = (sign * self.ref).to(torch.int8).cpu()
        self.state = MetropolisState(sig)

    def measure(self, x: float) -> dict[str, np.ndarray]:
        """Relax and record at tilt ``x``; per-reference ``q, d, d_se, energy`` and the
        stationarity flag."""
        cfg = self.cfg
        f = self.fields(x)
        s, energies = self._run(  # [M, B, N], [M, B]
            self.model, f, cfg.sweeps_per_x - cfg.measure_sweeps, cfg.measure_sweeps
        )
        q = (s * self.ref[None]).sum(-1) / self.n  # [M, B]
        e = energies / self.n
        half = cfg.measure_sweeps // 2
        q_mean, q_se = _per_reference(q.mean(0), self.R)
        drift, drift_se = _per_reference(0.5 * (q[half:].mean(0) - q[:half].mean(0)), self.R)
        d_drift = np.abs(drift)  # d = (1 - q)/2: a drift of q/2 is one of d
        stationary = ~((d_drift > cfg.stationarity_tol) & (d_drift > cfg.z * drift_se))
        return {
            "q": q_mean,
            "d": 0.5 * (1.0 - q_mean),
            "d_se": 0.5 * q_se,
            "energy": _per_reference(e.mean(0), self.R)[0],
            "converged": stationary,
        }


def _sweep_batch(model: IsingModel, ref: torch.Tensor, cfg: MCLandscapeConfig) -> dict:
    """Both sweeps for a batch of references ``ref`` ``[R, N]``; arrays ``[R, 2, K]``."""
    R = ref.shape[0]
    x = cfg.grid
    K = len(x)
    names = ("d", "d_se", "q", "s", "free_entropy", "energy", "e0")
    out = {k: np.full((R, 2, K), np.nan) for k in names}
    out["converged"] = np.zeros((R, 2, K), dtype=bool)
    out["iterations"] = np.zeros((R, 2, K), dtype=np.int64)
    chains = _Chains(model, ref, cfg)
    for n_sweep, direction in enumerate(cfg.sweeps):
        row = DIRECTIONS.index(direction)
        order = list(range(K - 1, -1, -1) if direction == "down" else range(K))
        x0 = float(x[order[0]])
        phi = None
        if cfg.entropy:
            if n_sweep == 0:
                phi = chains.anneal(x0)  # the anneal's chains start the sweep
            else:
                # the second sweep continues the first one's chains (the warm start of the
                # spec's convention); its anchor comes from a separate anneal
                kept = chains.state
                phi = chains.anneal(x0)
                chains.state = kept
        elif n_sweep == 0:
            # the downward sweep comes from σ*'s side, the upward one from the other side
            chains.start_at_reference(1.0 if direction == "down" else -1.0)
        prev = None
        for k in order:
            xk = float(x[k])
            m = chains.measure(xk)
            if phi is not None and prev is not None:
                phi = phi + 0.5 * (xk - prev[0]) * (m["q"] + prev[1])
            prev = (xk, m["q"])
            for name in ("d", "d_se", "q", "energy", "converged"):
                out[name][:, row, k] = m[name]
            out["e0"][:, row, k] = m["energy"] + xk * m["q"]
            out["iterations"][:, row, k] = cfg.sweeps_per_x
            if phi is not None:
                out["free_entropy"][:, row, k] = phi
                out["s"][:, row, k] = phi + m["energy"]
    return out


def mc_entropy_landscapes(
    model: IsingModel, references, config: MCLandscapeConfig = MCLandscapeConfig()
) -> list[MCLandscapeResult]:
    """Monte Carlo entropy landscapes of ``model`` around many references (see module doc).

    Args:
        model: the Ising model (``J`` ``[N, N]``, ``h`` ``[N]``).
        references: ``[R, N]`` ±1 (array, tensor, or :class:`References` ``.sigma``).
        config: grid, chains, schedule, hysteresis test, precision.

    Returns:
        ``R`` :class:`MCLandscapeResult`, in the order of ``references``.

    Cost: ``2 · (K · sweeps_per_x + anneal_steps · anneal_sweeps)`` sweeps of
    ``R · n_chains`` chains, each ``O(N²)`` per chain (K tilts).

    The chains of one batch draw from one random stream, so a reference's landscape depends,
    at the level of the Monte Carlo noise, on the other references of its batch and on
    ``batch_size``; the same call (same references, config) reproduces it exactly. (The BP
    landscapes have no such dependence.)
    """

    def sweep(m, chunk, start):
        # each batch after the first: a seed mixed from (seed, first reference's index), so
        # that no batch repeats the stream of another seed's (seed + start did: batch 2 of seed
        # 0 was batch 1 of seed 1)
        if not start:
            return _sweep_batch(m, chunk, config)
        mixed = int(np.random.SeedSequence([config.seed, start]).generate_state(1)[0])
        return _sweep_batch(m, chunk, replace(config, seed=mixed))

    return _landscapes_in_batches(model, references, config, sweep, MCLandscapeResult)


def mc_entropy_landscape(
    model: IsingModel, reference, config: MCLandscapeConfig = MCLandscapeConfig()
) -> MCLandscapeResult:
    """Monte Carlo entropy landscape of ``model`` around one reference ``σ*`` ``[N]``."""
    ref = _one_reference(reference, "mc_entropy_landscapes")
    return mc_entropy_landscapes(model, ref, config)[0]


#: :func:`confirm_hysteresis`'s default multiplier of the sweeps per tilt.
CONFIRM_FACTOR = 4


@dataclass(frozen=True, eq=False)
class HysteresisCheck:
    """Whether a Monte Carlo hysteresis loop persists with slower sweeps
    (:func:`confirm_hysteresis`).

    Attributes:
        persists: the re-sweep still has significant hysteresis (False when there was none).
        window: ``(x_min, x_max)`` re-swept (NaN when nothing was re-swept).
        sweeps_per_x: sweeps per tilt of the re-sweep.
        max_hysteresis: largest ``|d_down - d_up|`` of the re-sweep (NaN: not re-swept).
        n_significant: its tilts with significant hysteresis.
        result: the re-sweep (``None``: not re-swept).
    """

    persists: bool
    window: tuple[float, float]
    sweeps_per_x: int
    max_hysteresis: float
    n_significant: int
    result: MCLandscapeResult | None

    def columns(self) -> dict:
        """Flat values for a table row (``confirm_*``)."""
        return {
            "confirm_persists": self.persists,
            "confirm_x_min": self.window[0],
            "confirm_x_max": self.window[1],
            "confirm_sweeps_per_x": self.sweeps_per_x,
            "confirm_max_hysteresis": self.max_hysteresis,
            "confirm_n_significant": self.n_significant,
        }


def confirm_hysteresis(
    model: IsingModel,
    reference,
    result: MCLandscapeResult,
    *,
    factor: int = CONFIRM_FACTOR,
    margin: float = 0.5,
) -> HysteresisCheck:
    """Re-sweep the tilts where ``result`` has significant hysteresis with ``factor``× the
    sweeps per tilt: a loop of two states (a barrier the chains do not cross) persists, a lag of
    slow chains behind a steep ``d(x)`` shrinks as the sweeps grow and drops below the test.

    The window is the span of the significant tilts widened by ``margin`` on each side (within
    the grid, at least two tilts); it is swept both ways with the same test, chains starting at
    ``σ*`` (downward) and ``-σ*`` (upward) at its ends, seed ``config.seed + 1``; no entropy.

    Args:
        model: the model of ``result``.
        reference: its ``σ*`` ``[N]``.
        result: a two-direction :class:`MCLandscapeResult`.
        factor: sweeps-per-tilt multiplier (integer ≥ 2).
        margin: widening of the window on each side (tilt units, ≥ 0).

    Returns:
        :class:`HysteresisCheck` (``persists`` False, nothing run, without significant
        hysteresis in ``result``).
    """
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ConfigError(f"factor={factor!r} must be an integer >= 2")
    check_positive("margin", margin, allow_zero=True, finite=True)
    cfg = result.config
    if not isinstance(result, MCLandscapeResult) or len(cfg.sweeps) != 2:
        raise ConfigError("confirm_hysteresis needs a two-direction MCLandscapeResult")
    sig = result.significant_hysteresis()
    sweeps = cfg.sweeps_per_x * factor
    if not sig.any():
        return HysteresisCheck(False, (math.nan, math.nan), sweeps, math.nan, 0, None)
    x = result.x
    idx = np.flatnonzero(sig)
    pad = round(margin / cfg.x_step)
    lo, hi = max(0, idx[0] - pad), min(len(x) - 1, idx[-1] + pad)
    if hi == lo:  # a one-tilt window: take a neighbour
        lo, hi = (lo - 1, hi) if hi == len(x) - 1 else (lo, hi + 1)
    sub = replace(
        cfg, x_min=float(x[lo]), x_max=float(x[hi]), sweeps_per_x=sweeps,
        measure_sweeps=cfg.measure_sweeps * factor, entropy=False, first_sweep="down",
        seed=cfg.seed + 1, batch_size=None,
    )  # fmt: skip
    redo = mc_entropy_landscape(model, reference, sub)
    n_sig = int(redo.significant_hysteresis().sum())
    return HysteresisCheck(
        persists=n_sig > 0,
        window=(float(x[lo]), float(x[hi])),
        sweeps_per_x=sweeps,
        max_hysteresis=redo.summary().max_hysteresis,
        n_significant=n_sig,
        result=redo,
    )
