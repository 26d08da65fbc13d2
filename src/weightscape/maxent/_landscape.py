"""Entropy landscape of an Ising model around reference configurations (Zou & Huang 2021, after
Huang & Kabashima 2014): the Bethe entropy of the configurations at distance ``d`` from ``σ*``.

The model is tilted towards a reference, ``h_i → h_i + x σ*_i``, and BP is solved for every
``x`` on a grid, sweeping in both directions with warm starts (messages of the previous ``x``).
With ``q = Σ_i σ*_i m_i / N`` the mean overlap,

.. math::

    d = \\frac{1 - q}{2}, \\qquad s(d) = -\\beta f + \\beta e, \\qquad e_0 = \\beta e + x q,

where ``-βf`` is the Bethe free entropy per spin of the tilted model, ``βe`` its energy per spin
(tilt included) and ``e_0`` the energy per spin of the untilted model. ``s(d)`` never exceeds the
binary entropy ``H(d) = -d ln d - (1-d) ln(1-d)`` for a genuine (exact) entropy; the gap
``H(d) - s(d)`` measures how far from "as random as possible" the model is around ``σ*``.

A broken (clustered) weight space shows as a discontinuous jump of ``d(x)`` and hysteresis
between the two sweep directions; both are detected here, and points where BP did not converge are
flagged (kept in the arrays, excluded from every summary).

Default conventions (the spec's; all arguments of :class:`LandscapeConfig`): messages start at 0
at the first ``x``; the first sweep starts at ``x = +3`` going down; damping 0.5; converged when
the largest message change of a damped step is below 1e-6; the mean gap is averaged over the
converged points of the downward sweep. Ours, not the spec's, and arguments too: extrapolated warm
starts (``predictor``) and the BP acceleration (``bp.accel``, adaptive damping then Anderson
mixing where convergence turns slow); both keep the fixed points and branches of the spec's
scheme (tested on planted two-cluster models).

Variants: :func:`iso_energy_landscape` (the inverse temperature β is adjusted at every ``x`` by a
secant search so that ``e_0`` stays at the reference's energy) and :func:`bp_fixed_points`
(coexisting BP fixed points from random initial messages).
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from ..config import Precision, resolve_precision
from ..errors import ConfigError, DatasetError, check_choice, check_positive, check_seed
from ._bethe import BETHE_DEFAULT_TOL, BetheConfig, _Kernel, _solve, _Workspace, bethe_solve
from ._model import IsingModel

__all__ = [
    "DIRECTIONS",
    "BPFixedPoints",
    "HysteresisScan",
    "IsoEnergyConfig",
    "IsoEnergyResult",
    "LandscapeConfig",
    "LandscapeResult",
    "LandscapeSummary",
    "binary_entropy",
    "bp_fixed_points",
    "entropy_landscape",
    "entropy_landscapes",
    "iso_energy_landscape",
    "refine_jump",
    "scan_hysteresis",
]

DIRECTIONS = ("down", "up")
INIT_MESSAGES = ("zero", "random")
PREDICTORS = ("previous", "linear", "quadratic", "cubic")
GAP_AVERAGES = ("down_converged", "up_converged", "all_converged")
# The grid must hold (x_max - x_min)/x_step steps up to this relative slack (round-off of 0.05).
GRID_SLACK = 1e-9
# BP iteration of the landscape sweeps (LandscapeConfig.bp): adaptive damping, Anderson mixing
# once convergence turns slow (see LandscapeConfig). Not used for random starts
# (bp_fixed_points): a secant method may also converge to a fixed point that BP itself cannot
# reach (unstable under the BP iteration), which would count as a spurious fixed point there.
LANDSCAPE_DEFAULT_ACCEL = "adaptive+anderson"
# Freed [b, N, N] message buffers a landscape sweep keeps for the next tilt's start (it takes
# one per tilt; reusing it avoids a fresh allocation's page faults, keeping more only holds
# memory).
MAX_SPARE_BUFFERS = 1


# Tilts per sweep allowed: the paper's grid has 121; 10^5 is far beyond any use (one BP solve
# each) and keeps the per-tilt arrays small (a step of 1e-9 asked for 45 GB).
MAX_TILTS = 100_000


def binary_entropy(d) -> np.ndarray:
    """``H(d) = -d ln d - (1-d) ln(1-d)`` (nats), with ``H(0) = H(1) = 0``; NaN outside [0, 1]."""
    d = np.asarray(d, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(d > 0, -d * np.log(np.where(d > 0, d, 1.0)), 0.0)
        b = np.where(d < 1, -(1 - d) * np.log(np.where(d < 1, 1 - d, 1.0)), 0.0)
    return np.where((d >= 0) & (d <= 1), a + b, np.nan)


class TiltGrid:
    """The tilt grid and sweep settings shared by the BP and Monte Carlo landscape configs
    (a mixin of frozen dataclasses with the fields ``x_min, x_max, x_step, first_sweep,
    both_directions, jump_threshold``)."""

    def _check_grid(self) -> None:
        for name in ("x_min", "x_max", "x_step"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError(f"{name}={v!r} must be a finite number")
        if not self.x_max > self.x_min:
            raise ConfigError(f"x_max={self.x_max!r} must exceed x_min={self.x_min!r}")
        check_positive("x_step", self.x_step)
        steps = (self.x_max - self.x_min) / self.x_step
        if steps + 1 > MAX_TILTS:
            raise ConfigError(
                f"x_min={self.x_min!r}, x_max={self.x_max!r}, x_step={self.x_step!r} make "
                f"{steps + 1:.3g} tilts; at most {MAX_TILTS:,} are allowed (widen x_step)"
            )
        if abs(steps - round(steps)) > GRID_SLACK * max(1.0, steps):
            raise ConfigError(
                f"x_step={self.x_step!r} does not divide x_max - x_min = "
                f"{self.x_max - self.x_min!r} into whole steps"
            )
        check_choice("first_sweep", self.first_sweep, DIRECTIONS)
        if self.jump_threshold is not None:
            check_positive("jump_threshold", self.jump_threshold)

    @property
    def grid(self) -> np.ndarray:
        """The tilts ``[K]`` in ascending order."""
        k = round((self.x_max - self.x_min) / self.x_step)
        return self.x_min + self.x_step * np.arange(k + 1)

    @property
    def jump(self) -> float:
        """The jump threshold in use (``jump_threshold`` or ``x_step``)."""
        return self.x_step if self.jump_threshold is None else float(self.jump_threshold)

    @property
    def sweeps(self) -> tuple[str, ...]:
        """Directions in the order they are swept."""
        other = "up" if self.first_sweep == "down" else "down"
        return (self.first_sweep, other) if self.both_directions else (self.first_sweep,)


@dataclass(frozen=True)
class LandscapeConfig(TiltGrid):
    """Settings of :func:`entropy_landscape`.

    Attributes:
        x_min, x_max, x_step: the tilt grid ``x_min, x_min + x_step, …, x_max`` (must fit an
            integer number of steps); default −3…3 step 0.05 (121 points).
        first_sweep: ``"down"`` (start at ``x_max``, the spec's default) or ``"up"``.
        both_directions: sweep back over the grid after the first sweep (warm-started from its
            last messages); without it only the first direction is computed.
        init_messages: messages at the first ``x``: ``"zero"`` (default) or ``"random"``
            (normal, std ``init_scale``, seeded by ``seed``; the authors used std 0.01).
        init_scale, seed: see ``init_messages``.
        predictor: warm start at the next ``x`` of a sweep: ``"previous"`` (the messages of the
            previous ``x``, the authors' scheme), ``"linear"`` (extrapolated from the previous
            two: start error ``O(Δx²)`` instead of ``O(Δx)``), ``"quadratic"`` (from three:
            ``O(Δx³)``; ≈ 1.8× fewer BP sweeps than ``"previous"`` at N = 200) or ``"cubic"``
            (default, from four: ``O(Δx⁴)``; 7-20% fewer sweeps than ``"quadratic"``: 17% on
            the N = 675 benchmark model, 7-20% on fitted shallow and layer models, 2-8% on
            planted two-cluster models; the same jumps and hysteresis flags on all of them).
            Extrapolations are clipped to [-1, 1] and restart at each sweep's first point; BP then
            converges to the fixed point continuing the current branch, as with ``"previous"``
            (checked on the planted two-cluster model, where both give the same jumps).
        bp: the BP solver's damping (0.5), tolerance (1e-6), criterion (``"max_change"``),
            acceleration, sweep limit. With adaptive damping the damping each reference had
            adapted to at one ``x`` is where it starts at the next (continuation, like the
            messages; ≈ 11% fewer sweeps at N = 675, same fixed points and tolerance). Default
            acceleration :data:`LANDSCAPE_DEFAULT_ACCEL` = ``"adaptive+anderson"``: adaptive
            damping, switching to safeguarded Anderson mixing for the rest of a tilt's solve
            once two sweeps in a row lowered the residual by less than 0.9× (a slow mode near a
            spinodal, or a residual that grows past one). It never switches on the N = 675
            benchmark model (the same 2210 sweeps and d as ``"adaptive"``); near spinodals it
            converges where adaptive damping stalls (its damping climbs to 0.95 and the drift
            off a vanished branch takes > 1000 sweeps), so jumps are not hidden by unconverged
            points: on planted two-cluster models and the fitted shallow model the jumps and
            hysteresis fall at the tilts of the authors' scheme (``accel="none"``,
            ``predictor="previous"``), d within 1e-5 of a 1e-11 solve.
        jump_threshold: ``|Δd|`` between neighbouring converged ``x`` above which a jump is
            reported; ``None`` (default) = ``x_step``, i.e. a slope ``|Δd/Δx| > 1``, twice the
            steepest slope of independent spins (``d = (1 - tanh x)/2``, slope ≤ ½).
        hysteresis_threshold: ``|d_down - d_up|`` above which the sweeps count as different
            (default 1e-3, far above the differences left by the BP tolerance).
        gap_average: which points the mean gap ``H(d) - s(d)`` averages: ``"down_converged"``
            (the spec's default), ``"up_converged"`` or ``"all_converged"``.
        batch_size: references solved together by the batched BP (``None`` = all).
        precision: dtype/device of the BP (float64 CPU by default).
    """

    x_min: float = -3.0
    x_max: float = 3.0
    x_step: float = 0.05
    first_sweep: str = "down"
    both_directions: bool = True
    init_messages: str = "zero"
    init_scale: float = 0.01
    seed: int = 0
    predictor: str = "cubic"
    bp: BetheConfig = field(
        default_factory=lambda: BetheConfig(tol=BETHE_DEFAULT_TOL, accel=LANDSCAPE_DEFAULT_ACCEL)
    )
    jump_threshold: float | None = None
    hysteresis_threshold: float = 1e-3
    gap_average: str = "down_converged"
    batch_size: int | None = None
    precision: Precision = field(default_factory=Precision)

    def __post_init__(self):
        resolve_precision(self.precision)  # a Precision, not e.g. the string "float32"
        self._check_grid()
        check_choice("init_messages", self.init_messages, INIT_MESSAGES)
        check_positive("init_scale", self.init_scale)
        check_choice("predictor", self.predictor, PREDICTORS)
        check_seed("seed", self.seed)
        if not isinstance(self.bp, BetheConfig):
            raise ConfigError(f"bp={self.bp!r} must be a BetheConfig")
        check_positive("hysteresis_threshold", self.hysteresis_threshold)
        check_choice("gap_average", self.gap_average, GAP_AVERAGES)
        if self.batch_size is not None:
            check_positive("batch_size", self.batch_size, integer=True)


@dataclass(frozen=True)
class LandscapeSummary:
    """Scalars of one landscape (all from converged points only; NaN where undefined).

    "The main sweep" is the downward one, or the upward one when only it was swept
    (``first_sweep="up", both_directions=False``). A step is the change of ``d`` between
    consecutive converged points of a sweep: where BP (or Monte Carlo) did not converge at the
    points between them, the step spans those points (a jump there is a jump all the same; its
    ``x`` pair is more than one grid step apart, and :func:`refine_jump` re-sweeps it).

    Attributes:
        d_at_zero: ``d`` at ``x = 0`` on the main sweep (NaN when 0 is not a grid point).
        max_jump: largest ``|Δd|`` between consecutive converged points of the main sweep.
        max_jump_x: ``(x_from, x_to)`` where it happens, in sweep order.
        n_jumps: steps of the main sweep with ``|Δd| > jump_threshold``.
        max_jump_up, max_jump_up_x: the same on the upward sweep.
        max_hysteresis: largest ``|d_down - d_up|`` over ``x`` converged in both sweeps.
        max_hysteresis_x: where.
        hysteresis_area: ``Σ_x |d_down - d_up| · x_step`` over those points (area between the
            two ``d(x)`` curves).
        mean_gap: mean of ``H(d) - s(d)`` over the points named by ``gap_average`` (the main
            sweep's when ``gap_average`` names a sweep that was not run).
        min_gap: smallest ``H(d) - s(d)`` over those points (negative: ``s`` above the bound).
        has_jump: ``max_jump > jump_threshold`` (the main sweep).
        has_hysteresis: ``max_hysteresis > hysteresis_threshold``.
        n_unconverged: points (both sweeps) where BP did not converge.
    """

    d_at_zero: float
    max_jump: float
    max_jump_x: tuple[float, float]
    n_jumps: int
    max_jump_up: float
    max_jump_up_x: tuple[float, float]
    max_hysteresis: float
    max_hysteresis_x: float
    hysteresis_area: float
    mean_gap: float
    min_gap: float
    has_jump: bool
    has_hysteresis: bool
    n_unconverged: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class LandscapeResult:
    """One reference's entropy landscape on both sweeps.

    Arrays are ``[2, K]``: row 0 is the downward sweep, row 1 the upward one (in
    :data:`DIRECTIONS` order, whatever the order swept), columns follow the ascending grid ``x``.
    A direction not swept is all-NaN (``converged`` False).

    Attributes:
        x: tilts ``[K]`` ascending.
        d, q: distance and overlap ``[2, K]``.
        s: Bethe entropy per spin of the tilted model ``[2, K]``.
        free_entropy: ``-βf`` ``[2, K]``.
        energy: ``βe`` (tilted model, tilt included) ``[2, K]``.
        e0: energy per spin of the untilted model ``βe + x q`` ``[2, K]``.
        converged: BP convergence flags ``[2, K]``.
        iterations: BP sweeps per point ``[2, K]``.
        reference: ``σ*`` ``[N]`` int8.
        config: the :class:`LandscapeConfig` used.
    """

    x: np.ndarray
    d: np.ndarray
    q: np.ndarray
    s: np.ndarray
    free_entropy: np.ndarray
    energy: np.ndarray
    e0: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    reference: np.ndarray
    config: LandscapeConfig

    @property
    def n_spins(self) -> int:
        return self.reference.shape[0]

    @property
    def bound(self) -> np.ndarray:
        """``H(d)`` ``[2, K]``."""
        return binary_entropy(self.d)

    @property
    def gap(self) -> np.ndarray:
        """``H(d) - s(d)`` ``[2, K]``."""
        return self.bound - self.s

    def to_frame(self):
        """Long table: one row per (direction, x) with columns ``direction, x, d, q, s, H, gap,
        free_entropy, beta_e, e0, converged, iterations`` (only swept directions)."""
        import pandas as pd

        rows = []
        for k, name in enumerate(DIRECTIONS):
            if name not in self.config.sweeps:
                continue
            rows.append(
                pd.DataFrame(
                    {
                        "direction": name,
                        "x": self.x,
                        "d": self.d[k],
                        "q": self.q[k],
                        "s": self.s[k],
                        "H": self.bound[k],
                        "gap": self.gap[k],
                        "free_entropy": self.free_entropy[k],
                        "beta_e": self.energy[k],
                        "e0": self.e0[k],
                        "converged": self.converged[k],
                        "iterations": self.iterations[k],
                    }
                )
            )
        return pd.concat(rows, ignore_index=True)

    def jumps(self, direction: str = "down") -> list[tuple[float, float, float]]:
        """Jumps ``(x_from, x_to, Δd)`` of one sweep, in sweep order, where ``|Δd|`` exceeds
        ``jump_threshold`` between consecutive converged points (a step across unconverged
        points spans them)."""
        check_choice("direction", direction, DIRECTIONS)
        k = DIRECTIONS.index(direction)
        steps = _steps(self.x, self.d[k], self.converged[k], direction)
        thr = self.config.jump
        return [(a, b, dd) for a, b, dd in steps if abs(dd) > thr]

    def summary(self) -> LandscapeSummary:
        cfg = self.config
        x, d, conv = self.x, self.d, self.converged
        # the downward sweep's numbers, or the upward one's when only it was swept
        main = "down" if "down" in cfg.sweeps else "up"
        km = DIRECTIONS.index(main)
        i0 = int(np.argmin(np.abs(x)))
        on_grid = abs(x[i0]) <= GRID_SLACK * cfg.x_step * max(1.0, len(x))
        d0 = float(d[km, i0]) if conv[km, i0] and on_grid else math.nan

        def biggest(direction):
            step = _largest_step(self, direction)
            if step is None:
                return math.nan, (math.nan, math.nan)
            a, b, dd = step
            return abs(dd), (a, b)

        jd, jdx = biggest(main)
        ju, jux = biggest("up")
        both = conv[0] & conv[1]
        if both.any():
            diff = np.abs(d[0] - d[1])
            diff_c = np.where(both, diff, -np.inf)
            ih = int(np.argmax(diff_c))
            hmax, hx = float(diff[ih]), float(x[ih])
            area = float(diff[both].sum() * cfg.x_step)
        else:
            hmax = hx = area = math.nan
        gap = self.gap
        average = cfg.gap_average
        if average != "all_converged" and average.removesuffix("_converged") not in cfg.sweeps:
            average = f"{main}_converged"  # the named sweep was not run: the one that was
        if average == "down_converged":
            sel = gap[0][conv[0]]
        elif average == "up_converged":
            sel = gap[1][conv[1]]
        else:
            sel = gap[conv]
        swept = np.array([name in cfg.sweeps for name in DIRECTIONS])
        return LandscapeSummary(
            d_at_zero=d0,
            max_jump=jd,
            max_jump_x=jdx,
            n_jumps=len(self.jumps(main)),
            max_jump_up=ju,
            max_jump_up_x=jux,
            max_hysteresis=hmax,
            max_hysteresis_x=hx,
            hysteresis_area=area,
            mean_gap=float(sel.mean()) if sel.size else math.nan,
            min_gap=float(sel.min()) if sel.size else math.nan,
            has_jump=bool(jd > cfg.jump),
            has_hysteresis=bool(hmax > cfg.hysteresis_threshold),
            n_unconverged=int((~conv[swept]).sum()),
        )


def _largest_step(result: LandscapeResult, direction: str):
    """``(x_from, x_to, Δd)`` of the largest ``|Δd|`` between consecutive converged points of
    one sweep (the first of equal ones), or ``None`` when the sweep has no such step."""
    k = DIRECTIONS.index(direction)
    steps = _steps(result.x, result.d[k], result.converged[k], direction)
    return max(steps, key=lambda t: abs(t[2])) if steps else None


def _steps(x, d, conv, direction):
    """``(x_from, x_to, d_to - d_from)`` between consecutive converged points in sweep order; a
    step across unconverged points spans them (dropping it would hide a jump where BP fails to
    converge, which is often where the branch it followed ends)."""
    order = np.arange(len(x))[::-1] if direction == "down" else np.arange(len(x))
    idx = [i for i in order if conv[i]]
    return [(float(x[a]), float(x[b]), float(d[b] - d[a])) for a, b in itertools.pairwise(idx)]


def _host(references) -> np.ndarray:
    """References (``.sigma`` of an object that has one, a tensor on any device, an array-like)
    as a host array."""
    sigma = getattr(references, "sigma", references)
    if isinstance(sigma, torch.Tensor):
        return sigma.detach().cpu().numpy()
    return np.asarray(sigma)


def _prepare(model: IsingModel, references, precision: Precision):
    dtype, device = precision.torch_dtype, precision.torch_device
    model = model.to(dtype=dtype, device=device)
    ref = torch.as_tensor(_host(references), dtype=dtype, device=device)
    if ref.ndim == 1:
        ref = ref[None, :]
    if ref.ndim != 2 or ref.shape[1] != model.n_spins:
        raise DatasetError(
            f"references have shape {tuple(ref.shape)}; expected [R, N] with N = {model.n_spins}"
        )
    if not bool(((ref == 1) | (ref == -1)).all()):
        raise DatasetError("references must contain only -1 and +1")
    return model, ref


def _prepare_one(model: IsingModel, reference, precision: Precision):
    """:func:`_prepare` for a single reference: ``(model, ref [1, N])``, or a one-line
    DatasetError when ``reference`` holds several rows."""
    model, ref = _prepare(model, reference, precision)
    if ref.shape[0] != 1:
        raise DatasetError(f"reference has {ref.shape[0]} rows; expected one σ* [N]")
    return model, ref


def _initial_messages(cfg: LandscapeConfig, b: int, n: int, dtype, device) -> torch.Tensor:
    """Starting messages ``[b, N, N]``: zeros, or one seeded random ``[N, N]`` draw shared by
    every reference, so that a reference's start (and the branch it follows) does not depend on
    its place in the batch, the batch size, or whether it is refined on its own."""
    if cfg.init_messages == "zero":
        return torch.zeros(b, n, n, dtype=dtype, device=device)
    g = torch.Generator(device="cpu").manual_seed(cfg.seed)
    M = cfg.init_scale * torch.randn(n, n, generator=g, dtype=torch.float64)
    M = M.clamp_(-1.0, 1.0).to(dtype=dtype, device=device)
    M.fill_diagonal_(0.0)
    return M.expand(b, n, n).clone()


def _extrapolate(history: list[torch.Tensor], out: torch.Tensor) -> torch.Tensor:
    """Polynomial extrapolation one step ahead from equally spaced solutions (newest first),
    written into ``out`` (a buffer that is not in ``history``)."""
    if len(history) == 1:
        return out.copy_(history[0])
    if len(history) == 2:
        torch.mul(history[0], 2.0, out=out).sub_(history[1])
    elif len(history) == 3:
        torch.sub(history[0], history[1], out=out).mul_(3.0).add_(history[2])
    else:  # 4 h0 - 6 h1 + 4 h2 - h3
        torch.sub(history[0], history[3], out=out, alpha=0.25).sub_(history[1], alpha=1.5)
        out.add_(history[2]).mul_(4.0)
    return out.clamp_(-1.0, 1.0)


def _sweep_batch(
    model: IsingModel, ref: torch.Tensor, cfg: LandscapeConfig, start=None, final=None
) -> dict:
    """Both sweeps for a batch of references ``ref`` ``[b, N]``; arrays ``[b, 2, K]``.

    ``start``: ``(messages [b, N, N], damping [b])`` to begin from instead of the configured
    initial messages and damping (to continue a sweep); ``final``: a list that receives the
    same pair at the end of the last sweep."""
    b, n = ref.shape
    x = cfg.grid
    K = len(x)
    out = {k: np.full((b, 2, K), np.nan) for k in ("d", "q", "s", "free_entropy", "energy", "e0")}
    out["converged"] = np.zeros((b, 2, K), dtype=bool)
    out["iterations"] = np.zeros((b, 2, K), dtype=np.int64)
    kern = _Kernel(model.J)  # tanh J and Σ ln cosh J once per landscape, not per tilt
    ws = _Workspace(b, n, model.dtype, model.device)
    depth = PREDICTORS.index(cfg.predictor) + 1
    spare: list[torch.Tensor] = []  # [b, N, N] buffers that nothing refers to any more
    # adaptive damping carried from x to x like the messages (continuation; the first solve of
    # the landscape starts at the configured damping)
    if start is None:
        M = _initial_messages(cfg, b, n, model.dtype, model.device)
        damping = np.full(b, float(cfg.bp.damping))
    else:
        M, damping = start[0].clone(), np.array(start[1], dtype=float)
    for direction in cfg.sweeps:
        row = DIRECTIONS.index(direction)
        order = range(K - 1, -1, -1) if direction == "down" else range(K)
        history = [M]  # solutions of this sweep, newest first (plus the starting messages)
        for k in order:
            xk = float(x[k])
            fields = model.h[None, :] + xk * ref
            # the start is written into a message buffer no longer in use (fresh [b, N, N]
            # allocations page-fault on every tilt)
            start = _extrapolate(history[:depth], spare.pop() if spare else torch.empty_like(M))
            M, res, _ = _solve(kern, ws, fields, cfg.bp, start, True, damping)
            kept = [M, *history[: depth - 1]] if k != order[0] else [M]
            spare.extend(t for t in [start, *history] if all(t is not u for u in kept))
            # one start buffer is taken per tilt, so MAX_SPARE_BUFFERS are all that is ever
            # used; keeping every freed one piled them up (the solve returns a fresh buffer
            # whenever its elements stop at different sweeps, one more per tilt: 6 GB at N = 675,
            # 9 references, 242 tilts of the maxent paper scale)
            del spare[MAX_SPARE_BUFFERS:]
            history = kept
            q = (ref * res.m).sum(1) / n
            qn = q.detach().cpu().to(torch.float64).numpy()
            out["q"][:, row, k] = qn
            out["d"][:, row, k] = 0.5 * (1.0 - qn)
            fe = res.free_entropy.detach().cpu().to(torch.float64).numpy()
            en = res.energy.detach().cpu().to(torch.float64).numpy()
            out["free_entropy"][:, row, k] = fe
            out["energy"][:, row, k] = en
            out["s"][:, row, k] = fe + en
            out["e0"][:, row, k] = en + xk * qn
            out["converged"][:, row, k] = res.converged.numpy()
            out["iterations"][:, row, k] = res.iterations.numpy()
    if final is not None:
        final.extend([M, damping])
    return out


def entropy_landscapes(
    model: IsingModel, references, config: LandscapeConfig = LandscapeConfig()
) -> list[LandscapeResult]:
    """Entropy landscapes of ``model`` around many references, solved together.

    All references of a batch share the BP sweeps (one batched solve per ``x``; each reference
    keeps its own messages and stops on its own criterion), which is what makes GPUs pay off.

    Args:
        model: the Ising model (``J`` ``[N, N]``, ``h`` ``[N]``).
        references: ``[R, N]`` ±1 (array, tensor, or :class:`References` ``.sigma``).
        config: grid, conventions, BP settings, batch size, precision.

    Returns:
        ``R`` :class:`LandscapeResult`, in the order of ``references``.
    """
    return _landscapes_in_batches(
        model, references, config, lambda m, chunk, _: _sweep_batch(m, chunk, config),
        LandscapeResult,
    )  # fmt: skip


def _landscapes_in_batches(model: IsingModel, references, config, sweep, result_cls) -> list:
    """The references (``[R, N]`` ±1, or an object with ``.sigma``) checked and swept in batches
    of ``config.batch_size``: ``sweep(model, chunk, start)`` returns arrays ``[b, 2, K]`` for the
    batch starting at reference ``start``; one ``result_cls`` per reference, in order. Shared by
    the BP and the Monte Carlo landscapes."""
    sigma = getattr(references, "sigma", references)
    model, ref = _prepare(model, sigma, config.precision)
    R = ref.shape[0]
    bs = config.batch_size or R
    results = []
    for a in range(0, R, bs):
        chunk = ref[a : a + bs]
        out = sweep(model, chunk, a)
        for i in range(chunk.shape[0]):
            results.append(
                result_cls(
                    x=config.grid,
                    **{k: v[i] for k, v in out.items()},
                    reference=chunk[i].cpu().numpy().astype(np.int8),
                    config=config,
                )
            )
    return results


def _one_reference(reference, many: str):
    """A single reference ``σ*`` ``[N]`` as a batch ``[1, N]``; ``many`` names the function to
    use for several (one-line error otherwise)."""
    ref = _host(reference)
    if ref.ndim != 1:
        raise DatasetError(f"reference has shape {ref.shape}; expected [N] (use {many} for many)")
    return ref[None, :]


def entropy_landscape(
    model: IsingModel, reference, config: LandscapeConfig = LandscapeConfig()
) -> LandscapeResult:
    """Entropy landscape of ``model`` around one reference ``σ*`` ``[N]`` (see module doc)."""
    return entropy_landscapes(model, _one_reference(reference, "entropy_landscapes"), config)[0]


def _fine_landscape(model, reference, config: LandscapeConfig, start) -> LandscapeResult:
    """:func:`entropy_landscape` of one reference, begun from ``start`` (messages, damping) when
    given (see :func:`_sweep_batch`)."""
    return _landscapes_in_batches(
        model, _one_reference(reference, "entropy_landscapes"), config,
        lambda m, chunk, _: _sweep_batch(m, chunk, config, start=start), LandscapeResult,
    )[0]  # fmt: skip


def _check_bp_landscape(cfg, name: str) -> None:
    if not isinstance(cfg, LandscapeConfig):
        raise ConfigError(
            f"{name} re-sweeps a BP landscape (entropy_landscape); this result was made with "
            f"{type(cfg).__name__}"
        )


def refine_jump(
    model: IsingModel,
    reference,
    result: LandscapeResult,
    *,
    factor: int = 8,
    direction: str = "down",
) -> dict:
    """Is the largest step of ``d(x)`` a discontinuity or a steep stretch of a smooth curve?

    The sweep of ``direction`` is redone from its first tilt with steps ``x_step / factor`` down
    (up) to the far end of its largest ``|Δd|`` step, warm-started as before (so it follows the
    same branch; a second sweep begins, as it did, from the first sweep's last messages), and
    the largest sub-step inside that interval is compared with the coarse step. A
    discontinuity keeps most of the change in one sub-step (ratio → 1 as the step shrinks); a
    smooth curve spreads it (ratio ≈ ``1/factor`` times the variation of the slope across the
    interval). A diagnostic beside the fixed-threshold rule of
    :meth:`LandscapeResult.summary`, not a replacement for it.

    Args:
        model: the untilted model; reference: ``σ*`` ``[N]`` the landscape was computed for.
        result: the coarse landscape (its config is reused).
        factor: sub-steps per coarse step (≥ 2).
        direction: ``"down"`` or ``"up"`` (must have been swept).

    Returns:
        dict: ``x_from``, ``x_to``, ``coarse_jump`` (``|Δd|`` of the coarse step),
        ``max_substep`` (largest change between neighbouring converged fine points inside the
        interval; BP may not converge at the spinodal itself, so such a change can span a few
        sub-steps: ``max_span``), ``ratio`` (``max_substep / coarse_jump``), ``n_substeps``
        (sub-steps covered, ``factor`` when the interval is converged at both ends),
        ``n_unconverged`` fine points, ``discontinuous`` (``ratio > 0.5``); NaN entries and
        False when the sweep has no converged step.
    """
    cfg = result.config
    _check_bp_landscape(cfg, "refine_jump")
    check_choice("direction", direction, DIRECTIONS)
    if direction not in cfg.sweeps:
        raise ConfigError(f"direction={direction!r} was not swept (sweeps: {cfg.sweeps})")
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ConfigError(f"factor={factor!r} must be an integer >= 2")
    step = _largest_step(result, direction)
    out = {"x_from": math.nan, "x_to": math.nan, "coarse_jump": math.nan,
           "max_substep": math.nan, "ratio": math.nan, "n_substeps": 0, "max_span": 0,
           "n_unconverged": 0, "discontinuous": False}  # fmt: skip
    if step is None:
        return out
    a, b, dd = step
    lo, hi = (b, cfg.x_max) if direction == "down" else (cfg.x_min, b)
    fine_cfg = replace(cfg, x_min=float(lo), x_max=float(hi), x_step=cfg.x_step / factor,
                       first_sweep=direction, both_directions=False)  # fmt: skip
    start = None
    if direction != cfg.sweeps[0]:
        # the second sweep began from the first sweep's last messages (and damping), not from
        # the initial ones: redo the first sweep on the coarse grid as the landscape did, so
        # the fine sweep starts on the same branch
        m_, r_ = _prepare_one(model, reference, cfg.precision)
        start = []
        _sweep_batch(m_, r_, replace(cfg, both_directions=False), final=start)
    fine = _fine_landscape(model, reference, fine_cfg, start)
    # changes between neighbouring *converged* fine points inside [b, a]: near a spinodal BP
    # may not converge at the point of the jump itself, and the change then spans it
    k = DIRECTIONS.index(direction)
    tol = 1e-9 * max(1.0, abs(a), abs(b))
    keep = fine.converged[k] & (fine.x >= min(a, b) - tol) & (fine.x <= max(a, b) + tol)
    idx = np.flatnonzero(keep)
    diffs = [(abs(float(fine.d[k][j] - fine.d[k][i])), int(j - i)) for i, j in
             itertools.pairwise(idx)]  # fmt: skip
    if not diffs:
        return out
    big, span = max(diffs)
    ratio = big / abs(dd) if dd != 0 else math.nan
    out.update(x_from=float(a), x_to=float(b), coarse_jump=float(abs(dd)), max_substep=big,
               ratio=float(ratio), n_substeps=sum(w for _, w in diffs), max_span=span,
               n_unconverged=int(factor + 1 - idx.size),
               discontinuous=bool(ratio > 0.5))  # fmt: skip
    return out


@dataclass(frozen=True, eq=False)
class HysteresisScan:
    """Both sweeps of a landscape redone with a finer tilt step inside windows (see
    :func:`scan_hysteresis`).

    Attributes:
        x: tilts ``[F]`` ascending: the coarse grid plus the fine points inside the windows.
        d: distance ``[2, F]`` (row 0 downward sweep, row 1 upward; :data:`DIRECTIONS`).
        converged: BP convergence ``[2, F]``.
        fine: ``[F]`` bool, True for points inside a window (spacing ``fine_step``).
        windows: the refined intervals ``[(x_lo, x_hi), …]`` ascending.
        fine_step: ``x_step / factor``.
        max_hysteresis: largest ``|d_down − d_up|`` over fine points converged on both sweeps
            (NaN when none is).
        max_hysteresis_x: where it is.
        hysteresis_range: ``(first x, last x)`` of the fine points whose ``|d_down − d_up|``
            exceeds the config's ``hysteresis_threshold`` (NaNs when none does): the
            coexistence window of the two branches, to within ``fine_step``.
        hysteresis: ``max_hysteresis > hysteresis_threshold``.
        largest_fine_step: largest ``|Δd|`` between neighbouring converged fine points of a
            window, per sweep ``(down, up)`` (a change across points where BP did not converge,
            e.g. at a spinodal, spans them).
        median_fine_step: median ``|Δd|`` over those steps of both sweeps (a smooth curve's
            largest step stays within a few times it; a discontinuity is many times larger).
        n_unconverged: points where BP did not converge (both sweeps).
    """

    x: np.ndarray
    d: np.ndarray
    converged: np.ndarray
    fine: np.ndarray
    windows: list
    fine_step: float
    max_hysteresis: float
    max_hysteresis_x: float
    hysteresis_range: tuple
    hysteresis: bool
    largest_fine_step: tuple
    median_fine_step: float
    n_unconverged: int

    def columns(self) -> dict:
        """Flat scalars for a table row: ``fine_hysteresis``, ``fine_has_hysteresis``,
        ``fine_hysteresis_from``/``_to`` (the coexistence range), ``fine_largest_step`` (both
        sweeps), ``fine_median_step``."""
        lo, hi = self.hysteresis_range
        return {
            "fine_hysteresis": self.max_hysteresis,
            "fine_has_hysteresis": self.hysteresis,
            "fine_hysteresis_from": lo,
            "fine_hysteresis_to": hi,
            # NaN only when neither sweep has a step (Python's max depends on where a NaN is)
            "fine_largest_step": float(np.nanmax(self.largest_fine_step))
            if not np.isnan(self.largest_fine_step).all()
            else math.nan,
            "fine_median_step": self.median_fine_step,
        }

    def to_dict(self) -> dict:
        """The scalar results (arrays left out), JSON-ready."""
        return {
            "windows": [list(w) for w in self.windows],
            "fine_step": self.fine_step,
            "max_hysteresis": self.max_hysteresis,
            "max_hysteresis_x": self.max_hysteresis_x,
            "hysteresis_range": list(self.hysteresis_range),
            "hysteresis": self.hysteresis,
            "largest_fine_step": list(self.largest_fine_step),
            "median_fine_step": self.median_fine_step,
            "n_unconverged": self.n_unconverged,
        }


def _scan_windows(result: LandscapeResult, margin: int) -> list[tuple[int, int]]:
    """Coarse index intervals ``[(i, j), …]`` (ascending; overlapping or touching ones merged)
    around the largest step of each sweep and the largest coarse hysteresis, widened by
    ``margin`` coarse steps."""
    x = result.x
    K = len(x)
    summ = result.summary()  # where the largest steps and hysteresis are (NaN: none)
    hx = summ.max_hysteresis_x
    centres = [summ.max_jump_x, summ.max_jump_up_x, (hx, hx)]
    spans = []
    for a, b in (c for c in centres if not math.isnan(c[0])):
        i = int(np.argmin(np.abs(x - min(a, b))))
        j = int(np.argmin(np.abs(x - max(a, b))))
        spans.append((max(0, i - margin), min(K - 1, j + margin)))
    merged: list[tuple[int, int]] = []
    for i, j in sorted(spans):
        # touching windows merge too: the coarse step between them is refined like the rest
        # (left apart, it would count as one "fine" step of a single window run)
        if merged and i <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], j))
        else:
            merged.append((i, j))
    return merged


def scan_hysteresis(
    model: IsingModel,
    reference,
    result: LandscapeResult,
    *,
    factor: int = 25,
    margin: int = 1,
) -> HysteresisScan:
    """Look for hysteresis that the coarse grid steps over: both sweeps redone with the tilt
    step ``x_step / factor`` inside windows around each sweep's largest step of ``d(x)`` and
    the largest coarse hysteresis.

    Two BP branches can coexist over a range of ``x`` narrower than the grid step (a small
    first-order jump of the Bethe model: each sweep jumps at its own spinodal). When no grid
    point falls in that range, both sweeps agree at every grid point and the coarse landscape
    shows a steep step but no hysteresis. Here the sweeps follow the same conventions as the
    landscape (first sweep from its first tilt with the configured initial messages, the
    second warm-started from the first's end, BP settings of ``result.config``), walking the
    coarse grid outside the windows and the fine grid inside them, so each sweep arrives at a
    window on the branch the coarse sweep was on. Warm starts are the previous point's messages
    (the authors' scheme; the predictors change sweeps, not branches).

    Args:
        model: the untilted model; reference: ``σ*`` ``[N]`` the landscape was computed for.
        result: the coarse landscape (both directions swept; its config is reused).
        factor: fine steps per coarse step (integer ≥ 2).
        margin: coarse steps added on each side of a window (integer ≥ 0).

    Returns:
        :class:`HysteresisScan`. Cost: one landscape plus ``2 (factor − 1)`` BP solves per
        coarse step inside the windows.
    """
    cfg = result.config
    _check_bp_landscape(cfg, "scan_hysteresis")
    if len(cfg.sweeps) != 2:
        raise ConfigError("scan_hysteresis needs a landscape swept in both directions")
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ConfigError(f"factor={factor!r} must be an integer >= 2")
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise ConfigError(f"margin={margin!r} must be an integer >= 0")
    model, ref = _prepare_one(model, reference, cfg.precision)
    n = model.n_spins
    xc = result.x
    wins = _scan_windows(result, margin)
    # the scan's grid: coarse points, plus factor − 1 fine points inside every window step
    pts, fine = [], []
    for k in range(len(xc)):
        pts.append(float(xc[k]))
        inside = any(i <= k <= j for i, j in wins)
        fine.append(inside)
        if k + 1 < len(xc) and any(i <= k and k + 1 <= j for i, j in wins):
            h = (xc[k + 1] - xc[k]) / factor
            pts.extend(float(xc[k] + s * h) for s in range(1, factor))
            fine.extend([True] * (factor - 1))
    x = np.asarray(pts)
    fine = np.asarray(fine)
    F = len(x)
    d = np.full((2, F), np.nan)
    conv = np.zeros((2, F), dtype=bool)
    M = _initial_messages(cfg, 1, n, model.dtype, model.device)
    for direction in cfg.sweeps:
        row = DIRECTIONS.index(direction)
        order = range(F - 1, -1, -1) if direction == "down" else range(F)
        for k in order:
            fields = model.h[None, :] + float(x[k]) * ref
            M, res, _ = bethe_solve(model, cfg.bp, M, fields=fields)
            q = float((ref[0] * res.m[0]).sum()) / n
            d[row, k] = 0.5 * (1.0 - q)
            conv[row, k] = bool(res.converged[0])
    both = conv[0] & conv[1] & fine
    if both.any():
        diff = np.where(both, np.abs(d[0] - d[1]), -np.inf)
        ih = int(np.argmax(diff))
        hmax, hx = float(diff[ih]), float(x[ih])
        over = np.flatnonzero(both & (np.abs(d[0] - d[1]) > cfg.hysteresis_threshold))
        rng = (float(x[over[0]]), float(x[over[-1]])) if over.size else (math.nan, math.nan)
    else:
        hmax = hx = math.nan
        rng = (math.nan, math.nan)
    # changes between neighbouring *converged* fine points of one window (BP may not converge
    # at a spinodal itself; the jump then spans it, as in refine_jump)
    run = np.cumsum(~fine)  # equal inside one window's contiguous run of fine points
    largest, all_steps = [], []
    for row in range(2):
        idx = np.flatnonzero(conv[row] & fine)
        steps = [abs(d[row, b] - d[row, a]) for a, b in itertools.pairwise(idx)
                 if run[a] == run[b]]  # fmt: skip
        all_steps.extend(steps)
        largest.append(float(max(steps)) if steps else math.nan)
    return HysteresisScan(
        x=x,
        d=d,
        converged=conv,
        fine=fine,
        windows=[(float(xc[i]), float(xc[j])) for i, j in wins],
        fine_step=float(cfg.x_step / factor),
        max_hysteresis=hmax,
        max_hysteresis_x=hx,
        hysteresis_range=rng,
        hysteresis=bool(hmax > cfg.hysteresis_threshold),
        largest_fine_step=tuple(largest),
        median_fine_step=float(np.median(all_steps)) if all_steps else math.nan,
        n_unconverged=int((~conv).sum()),
    )


# --------------------------------------------------------------------------- iso-energy


@dataclass(frozen=True)
class IsoEnergyConfig:
    """Settings of :func:`iso_energy_landscape`.

    Attributes:
        landscape: grid, first sweep direction, initial messages and BP settings (only the first
            direction is swept).
        target_energy: energy per spin ``e_0`` to hold (``None``: the reference's own energy
            ``E(σ*)/N`` under the model).
        beta0: inverse temperature where the search starts at the first ``x``; later ``x`` start
            from the previous solution.
        beta_step: second secant point ``β + beta_step``.
        energy_tol: ``|e_0(β) - target|`` accepted.
        max_secant: secant steps per ``x``.
        beta_bounds: ``(lo, hi)`` with ``0 < lo < hi``: the search may not leave it (a step
            beyond is clipped). Only positive temperatures: a target above the infinite-temperature
            energy cannot be held and is flagged unconverged.
    """

    landscape: LandscapeConfig = field(default_factory=lambda: LandscapeConfig(bp=BetheConfig()))
    target_energy: float | None = None
    beta0: float = 1.0
    beta_step: float = 0.05
    energy_tol: float = 1e-6
    max_secant: int = 50
    beta_bounds: tuple[float, float] = (1e-3, 50.0)

    def __post_init__(self):
        if not isinstance(self.landscape, LandscapeConfig):
            raise ConfigError(f"landscape={self.landscape!r} must be a LandscapeConfig")
        if self.target_energy is not None and (
            isinstance(self.target_energy, bool)
            or not isinstance(self.target_energy, int | float)
            or not math.isfinite(self.target_energy)
        ):
            raise ConfigError(f"target_energy={self.target_energy!r} must be a finite number")
        for name in ("beta0", "beta_step"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError(f"{name}={v!r} must be a finite number")
        if self.beta_step == 0:
            raise ConfigError("beta_step=0 must be nonzero")
        check_positive("energy_tol", self.energy_tol)
        check_positive("max_secant", self.max_secant, integer=True)
        lo, hi = self.beta_bounds
        if not 0 < lo < hi:
            raise ConfigError(f"beta_bounds={self.beta_bounds!r} must satisfy 0 < lo < hi")
        if not lo < self.beta0 < hi:
            raise ConfigError(f"beta0={self.beta0!r} must lie inside beta_bounds={(lo, hi)!r}")


@dataclass(frozen=True, eq=False)
class IsoEnergyResult:
    """Iso-energy landscape along one sweep (arrays ``[K]`` on the ascending grid).

    Attributes:
        x: tilts; beta: the inverse temperature found; d, q, s: as in
        :class:`LandscapeResult` (``s`` of the measure ``∝ exp(-βE(σ) + x σ*·σ)``); e0: energy
        per spin of the untilted model at β = 1 units (≈ ``target``); converged: BP converged
        and ``|e0 - target| ≤ energy_tol``; iterations: BP sweeps summed over the search;
        target: the energy held.
    """

    x: np.ndarray
    beta: np.ndarray
    d: np.ndarray
    q: np.ndarray
    s: np.ndarray
    e0: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    target: float
    direction: str

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            {
                "direction": self.direction,
                "x": self.x,
                "beta": self.beta,
                "d": self.d,
                "q": self.q,
                "s": self.s,
                "H": binary_entropy(self.d),
                "e0": self.e0,
                "converged": self.converged,
                "iterations": self.iterations,
            }
        )


class _IsoSolver:
    """``β ↦ e_0(β, x) - target`` by BP on ``(βJ, βh + xσ*)``; remembers the last solve."""

    def __init__(self, base: IsingModel, ref: torch.Tensor, x: float, target: float, bp):
        self.base, self.ref, self.x, self.target, self.bp = base, ref, x, target, bp
        self.iterations = 0
        self.last = None

    def __call__(self, beta: float, messages: torch.Tensor):
        base, n = self.base, self.base.n_spins
        mdl = IsingModel(beta * base.J, beta * base.h)
        fields = beta * base.h + self.x * self.ref
        M, res, _ = bethe_solve(mdl, self.bp, messages, fields=fields)
        q = float((self.ref[0] * res.m[0]).sum()) / n
        self.iterations += int(res.iterations[0])
        self.last = (res, q)
        return (float(res.energy[0]) + self.x * q) / beta - self.target, M


def iso_energy_landscape(
    model: IsingModel, reference, config: IsoEnergyConfig = IsoEnergyConfig()
) -> IsoEnergyResult:
    """Entropy landscape at fixed energy: for every ``x`` find β with ``e_0(β, x) = target``.

    The measure is ``P(σ) ∝ exp(-β E(σ) + x Σ_i σ*_i σ_i)`` (couplings ``βJ``, fields
    ``βh + xσ*``); with its Bethe ``βe`` (tilt included) and overlap ``q``, the untilted energy
    per spin in the model's units is ``e_0 = (βe + x q)/β``. β is found by the secant method
    (steps clipped to ``beta_bounds``), warm-starting BP from the previous solve.

    Args:
        model: the Ising model at β = 1.
        reference: ``σ*`` ``[N]``.
        config: see :class:`IsoEnergyConfig`.
    """
    lcfg = config.landscape
    base, ref = _prepare(model, _host(reference), lcfg.precision)
    if ref.shape[0] != 1:
        raise DatasetError("iso_energy_landscape takes one reference [N]")
    n = base.n_spins
    target = (
        float(base.energy(ref[0])) / n if config.target_energy is None else config.target_energy
    )
    x = lcfg.grid
    K = len(x)
    arrs = {k: np.full(K, np.nan) for k in ("beta", "d", "q", "s", "e0")}
    conv = np.zeros(K, dtype=bool)
    iters = np.zeros(K, dtype=np.int64)
    M = _initial_messages(lcfg, 1, n, base.dtype, base.device)
    lo, hi = config.beta_bounds
    beta = float(config.beta0)
    direction = lcfg.first_sweep
    order = range(K - 1, -1, -1) if direction == "down" else range(K)

    for k in order:
        xk = float(x[k])
        solve = _IsoSolver(base, ref, xk, target, lcfg.bp)
        b0 = beta
        f0, M0 = solve(b0, M)
        b1 = min(max(b0 + config.beta_step, lo), hi)
        f1, M1 = solve(b1, M0)
        for _ in range(config.max_secant):
            if abs(f1) <= config.energy_tol:
                break
            if not (math.isfinite(f0) and math.isfinite(f1)) or f1 == f0:
                break
            b2 = min(max(b1 - f1 * (b1 - b0) / (f1 - f0), lo), hi)
            if b2 == b1:
                break
            b0, f0 = b1, f1
            b1 = b2
            f1, M1 = solve(b1, M1)
        # tested after the loop too: the last secant step's solve is then checked as well
        ok = abs(f1) <= config.energy_tol
        res, q = solve.last
        M = M1
        if math.isfinite(f1):
            beta = b1
        arrs["beta"][k] = b1
        arrs["q"][k] = q
        arrs["d"][k] = 0.5 * (1.0 - q)
        arrs["s"][k] = float(res.entropy[0])
        arrs["e0"][k] = f1 + target
        conv[k] = ok and bool(res.converged[0])
        iters[k] = solve.iterations
    return IsoEnergyResult(
        x=x, converged=conv, iterations=iters, target=target, direction=direction, **arrs
    )


# --------------------------------------------------------------------------- BP fixed points


@dataclass(frozen=True, eq=False)
class BPFixedPoints:
    """Distinct BP fixed points found from random initial messages.

    Attributes:
        m: magnetisations of each distinct fixed point ``[P, N]`` (sorted by free entropy,
            largest first).
        free_entropy: ``-βf`` per spin ``[P]``.
        entropy: Bethe entropy per spin ``[P]``.
        counts: how many starts reached each ``[P]``.
        overlaps: ``q = σ*·m/N`` with the reference when one was given, else None ``[P]``.
        n_starts: starts run; n_converged: of which converged.
    """

    m: np.ndarray
    free_entropy: np.ndarray
    entropy: np.ndarray
    counts: np.ndarray
    overlaps: np.ndarray | None
    n_starts: int
    n_converged: int

    @property
    def n_fixed_points(self) -> int:
        return self.m.shape[0]


def _distinct(m: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy clustering of rows of ``m`` ``[S, N]`` by ``max|m_a - m_b| ≤ tol``.

    Returns ``(labels [S], representative rows [P])``."""
    reps: list[int] = []
    labels = np.empty(m.shape[0], dtype=np.int64)
    for i in range(m.shape[0]):
        for c, r in enumerate(reps):
            if np.max(np.abs(m[i] - m[r])) <= tol:
                labels[i] = c
                break
        else:
            labels[i] = len(reps)
            reps.append(i)
    return labels, np.asarray(reps, dtype=np.int64)


def _random_messages(b: int, n: int, scale: float, seed: int, dtype, device) -> torch.Tensor:
    """``[b, N, N]`` messages uniform in ``[-scale, scale]`` (clipped to [-1, 1]; float64 draws
    of a CPU generator seeded ``seed``), zero diagonal. Made in place: the same operations as
    ``scale · (2 r - 1)`` without its temporaries."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    M = torch.rand(b, n, n, generator=g, dtype=torch.float64)
    M = M.mul_(2.0).sub_(1.0).mul_(scale).clamp_(-1.0, 1.0).to(dtype=dtype, device=device)
    M.diagonal(dim1=1, dim2=2).zero_()
    return M


def bp_fixed_points(
    model: IsingModel,
    *,
    n_starts: int = 32,
    x: float = 0.0,
    reference=None,
    config: BetheConfig = BetheConfig(tol=1e-9),
    init_scale: float = 1.0,
    distinct_tol: float = 1e-4,
    seed: int = 0,
    precision: Precision = Precision(),
) -> BPFixedPoints:
    """Coexisting BP fixed points: solve from ``n_starts`` random initial messages at once.

    Messages start uniform in ``[-init_scale, init_scale]``; converged solutions whose
    magnetisations differ by at most ``distinct_tol`` (max norm) are one fixed point.

    Args:
        model: the Ising model.
        n_starts: random starts (one batched solve).
        x, reference: optional tilt ``h + x σ*`` (``reference`` ``[N]`` required when x ≠ 0).
        config: BP settings (tight tolerance by default so distinct points are resolvable;
            adaptive damping, no Anderson mixing: only fixed points the BP iteration reaches).
        init_scale, distinct_tol, seed, precision: see above.
    """
    check_positive("n_starts", n_starts, integer=True)
    check_positive("init_scale", init_scale)
    check_positive("distinct_tol", distinct_tol)
    precision = resolve_precision(precision)
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
        raise ConfigError(f"x={x!r} must be a finite number")
    dtype, device = precision.torch_dtype, precision.torch_device
    mdl = model.to(dtype=dtype, device=device)
    n = mdl.n_spins
    ref = None
    if reference is not None:
        ref = _prepare_one(mdl, reference, precision)[1][0]
    elif x != 0:
        raise ConfigError(f"x={x!r} needs a reference to tilt towards")
    h = mdl.h if ref is None else mdl.h + float(x) * ref
    # the random messages go straight into the solve, solved in place, and only the solve refers
    # to them (Python >= 3.11 moves call arguments into the callee's frame): it drops them once
    # it keeps part of the batch. bethe_solve would solve a copy while its argument stays alive:
    # two more [n_starts, N, N] arrays (0.23 GB each at 64 starts, N = 675)
    kern = _Kernel(mdl.J)
    _, res, _ = _solve(kern, _Workspace(n_starts, n, dtype, device), h.expand(n_starts, n),
                       config, _random_messages(n_starts, n, init_scale, int(seed), dtype, device),
                       True)  # fmt: skip
    conv = res.converged.numpy()
    m = res.m.detach().cpu().to(torch.float64).numpy()[conv]
    fe = res.free_entropy.detach().cpu().to(torch.float64).numpy()[conv]
    s = res.entropy.detach().cpu().to(torch.float64).numpy()[conv]
    if m.shape[0] == 0:
        empty = np.zeros((0, n))
        return BPFixedPoints(empty, np.zeros(0), np.zeros(0), np.zeros(0, np.int64), None,
                             n_starts, 0)  # fmt: skip
    labels, reps = _distinct(m, distinct_tol)
    counts = np.bincount(labels, minlength=len(reps))
    order = np.argsort(-fe[reps], kind="stable")
    reps, counts = reps[order], counts[order]
    overlaps = None
    if ref is not None:
        overlaps = m[reps] @ ref.detach().cpu().to(torch.float64).numpy() / n
    return BPFixedPoints(
        m=m[reps],
        free_entropy=fe[reps],
        entropy=s[reps],
        counts=counts,
        overlaps=overlaps,
        n_starts=n_starts,
        n_converged=int(conv.sum()),
    )
