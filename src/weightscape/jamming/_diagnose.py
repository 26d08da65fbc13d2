"""Classifying a run's ending: SAT, jammed, undecided, or the dead-unit trap.

Rules (study A):

* **SAT**: ``N_Δ = 0`` exactly at the last measurement (a global minimum, loss exactly 0).
* **trap** (not jamming): ``N_Δ > 0`` but small (``N_Δ ≤ trap_fraction · N``, default 0.1 N),
  the gradient is zero (``‖∇L‖ ≤ grad_tol``), and every unsatisfied point has some hidden layer
  whose units are all off (ReLU output 0), so its output is a constant the weights cannot move.
* **jammed**: ``N_Δ > 0`` at the budget and the run has stopped relaxing, by the plateau rule of
  :class:`PlateauRule` (``N_Δ`` and the loss no longer falling over the last window).
* **undecided**: anything else with ``N_Δ > 0`` (still relaxing at the budget). Undecided runs
  are reported, never counted as jammed.

The plateau rule is a pure function of the recent history of ``(step, loss, N_Δ)``, so the training
loop can also use it online as a stop rule (:func:`is_decided`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, check_positive

__all__ = [
    "DeadUnitReport",
    "PlateauRule",
    "PlateauStatus",
    "RunClass",
    "classify_run",
    "dead_unit_report",
    "dead_unit_report_ensemble",
    "is_decided",
    "plateau_status",
]


# ------------------------------------------------------------------------------------------------
# plateau rule


@dataclass(frozen=True)
class PlateauRule:
    """When a run with ``N_Δ > 0`` counts as no longer relaxing.

    The window is the last factor ``window_factor`` of the run's time: measurements at steps
    ``t ≥ t_last / window_factor`` (a fixed fraction of log-time, which suits both evenly and
    log-spaced measurement schedules: with the default 2, the last half of the run). Over the
    window:

    * ``N_Δ`` drop: ``max_window(N_Δ) − N_Δ(t_last) ≤ max(ndelta_atol, ndelta_rtol · N_Δ(t_last))``
      (the largest value in the window, not the first, so an up-and-down excursion still counts
      as a fall);
    * loss drop: ``max_window(L) − L(t_last) ≤ loss_rtol · L(t_last)``;
    * the window holds at least ``min_points`` measurements and ``t_last ≥ min_step``.

    A run is never called jammed while ``N_Δ`` still falls by more than
    ``max(ndelta_atol, ndelta_rtol · N_Δ)`` over the window, nor while the loss falls by more than
    ``loss_rtol`` (relative) over it.

    Attributes:
        window_factor: the window is ``[t_last / window_factor, t_last]`` (> 1).
        ndelta_rtol: relative tolerance on the fall of ``N_Δ`` (default 1 %).
        ndelta_atol: absolute tolerance on the fall of ``N_Δ`` in points (default 0: any fall of
            more than ``ndelta_rtol · N_Δ`` points keeps the run undecided).
        loss_rtol: relative tolerance on the fall of the loss (default 5 %).
        min_points: minimum measurements in the window (default 5).
        min_step: no decision before this step (default 0).
    """

    window_factor: float = 2.0
    ndelta_rtol: float = 0.01
    ndelta_atol: float = 0.0
    loss_rtol: float = 0.05
    min_points: int = 5
    min_step: int = 0

    def __post_init__(self):
        check_positive("window_factor", self.window_factor)
        if self.window_factor <= 1.0:
            raise ConfigError(f"window_factor={self.window_factor!r} must be > 1")
        check_positive("ndelta_rtol", self.ndelta_rtol, allow_zero=True)
        check_positive("ndelta_atol", self.ndelta_atol, allow_zero=True)
        check_positive("loss_rtol", self.loss_rtol, allow_zero=True)
        check_positive("min_points", self.min_points, integer=True)
        check_positive("min_step", self.min_step, allow_zero=True, integer=True)


@dataclass(frozen=True)
class PlateauStatus:
    """Outcome of the plateau rule on a history.

    Attributes:
        decided: True when the run is SAT (``N_Δ = 0``) or on a plateau.
        sat: True when ``N_Δ = 0`` at the last measurement.
        plateau: True when ``N_Δ > 0`` and both falls are within tolerance.
        ndelta_drop: ``max_window(N_Δ) − N_Δ(t_last)`` (points).
        loss_drop: ``(max_window(L) − L(t_last)) / L(t_last)`` (relative;
            inf if L(t_last) = 0 < max).
        n_window: measurements in the window.
        reason: one line saying why.
    """

    decided: bool
    sat: bool
    plateau: bool
    ndelta_drop: float
    loss_drop: float
    n_window: int
    reason: str


def _history(step, loss, n_delta):
    step = np.asarray(step, dtype=float).ravel()
    loss = np.asarray(loss, dtype=float).ravel()
    n_delta = np.asarray(n_delta, dtype=float).ravel()
    if not (step.shape == loss.shape == n_delta.shape):
        raise ConfigError(
            f"step, loss and n_delta must have the same length, got "
            f"{step.size}, {loss.size}, {n_delta.size}"
        )
    if step.size == 0:
        raise ConfigError("the history is empty")
    if np.any(np.diff(step) <= 0):
        raise ConfigError("steps must be strictly increasing")
    return step, loss, n_delta


def plateau_status(step, loss, n_delta, rule: PlateauRule | None = None) -> PlateauStatus:
    """Apply the plateau rule to a run's history.

    Args:
        step: ``[T]`` strictly increasing step numbers of the measurements.
        loss: ``[T]`` training loss at those steps.
        n_delta: ``[T]`` number of unsatisfied points ``N_Δ`` at those steps.
        rule: the thresholds (default :class:`PlateauRule()`).

    Returns:
        A :class:`PlateauStatus`.
    """
    rule = PlateauRule() if rule is None else rule
    step, loss, n_delta = _history(step, loss, n_delta)
    t_last, nd_last, l_last = step[-1], n_delta[-1], loss[-1]
    win = step >= t_last / rule.window_factor
    n_win = int(win.sum())
    nd_drop = float(n_delta[win].max() - nd_last)
    l_max = float(loss[win].max())
    if l_last > 0:
        l_drop = (l_max - l_last) / l_last
    else:
        l_drop = 0.0 if l_max <= 0 else math.inf
    if nd_last == 0:
        return PlateauStatus(True, True, False, nd_drop, l_drop, n_win, "sat: N_Δ = 0")
    if t_last < rule.min_step:
        reason = f"step {t_last:g} < min_step {rule.min_step}"
    elif n_win < rule.min_points:
        reason = f"only {n_win} measurements in the window (< {rule.min_points})"
    elif nd_drop > max(rule.ndelta_atol, rule.ndelta_rtol * nd_last):
        reason = f"N_Δ still falling: dropped {nd_drop:g} over the window"
    elif l_drop > rule.loss_rtol:
        reason = f"loss still falling: dropped {l_drop:.3g} (relative) over the window"
    else:
        return PlateauStatus(
            True, False, True, nd_drop, l_drop, n_win, "plateau: N_Δ and loss stopped falling"
        )
    return PlateauStatus(False, False, False, nd_drop, l_drop, n_win, reason)


def is_decided(step, loss, n_delta, rule: PlateauRule | None = None) -> bool:
    """Online stop rule: True once the run is SAT or on a plateau (see :func:`plateau_status`)."""
    return plateau_status(step, loss, n_delta, rule).decided


# ------------------------------------------------------------------------------------------------
# dead-unit trap


@dataclass(frozen=True)
class DeadUnitReport:
    """Which unsatisfied points have a hidden layer that is entirely off.

    Attributes:
        dead_layers: ``[P_unsat, L]`` bool: layer l has every unit off on unsatisfied point i.
        point_dead: ``[P_unsat]`` bool: some hidden layer is entirely off on the point.
        n_unsatisfied: ``P_unsat``.
        all_dead: True when ``P_unsat > 0`` and every unsatisfied point has a dead layer.
    """

    dead_layers: np.ndarray
    point_dead: np.ndarray
    n_unsatisfied: int
    all_dead: bool


def dead_unit_report(
    activations: Sequence[np.ndarray],
    unsatisfied: np.ndarray,
    unit_masks: Sequence[np.ndarray] | None = None,
) -> DeadUnitReport:
    """Check the dead-unit trap from one net's hidden activations.

    Args:
        activations: per hidden layer, the post-activation values ``[P, h_l]``; a unit is off on
            a point when its output is exactly 0 (for ReLU: pre-activation ``z ≤ 0``, where the
            derivative is 0 too).
        unsatisfied: ``[P]`` bool mask of the unsatisfied points (``Δ > 0``).
        unit_masks: per layer, ``[h_l]`` bool mask of the real units (for zero-padded layers; padded
            units are ignored). Default: all units real.

    Returns:
        A :class:`DeadUnitReport`.
    """
    unsat = np.asarray(unsatisfied, dtype=bool).ravel()
    cols = []
    for l, a in enumerate(activations):
        a = np.asarray(a)
        if a.ndim != 2 or a.shape[0] != unsat.size:
            raise ConfigError(f"activations[{l}] must be [P={unsat.size}, h], got {a.shape}")
        if unit_masks is not None:
            a = a[:, np.asarray(unit_masks[l], dtype=bool)]
        cols.append(np.all(a[unsat] == 0, axis=1))
    dead = np.stack(cols, axis=1) if cols else np.zeros((int(unsat.sum()), 0), dtype=bool)
    point_dead = dead.any(axis=1)
    n_unsat = int(unsat.sum())
    return DeadUnitReport(dead, point_dead, n_unsat, bool(n_unsat > 0 and point_dead.all()))


def dead_unit_report_ensemble(
    ensemble, x, y, member: int, kappa: float = 1.0, gap_tol: float = 0.0
) -> DeadUnitReport:
    """:func:`dead_unit_report` for member ``member`` of a :class:`weightscape.nets.Ensemble`.

    Args:
        ensemble: the ensemble (scalar output).
        x: inputs ``[P, d]`` shared by the members, or ``[M, P, d_max]``.
        y: labels ±1, ``[P]`` or ``[M, P]``.
        member: which member.
        kappa: margin κ of the gaps ``Δ = κ − y f``.
        gap_tol: a point is unsatisfied when ``Δ > gap_tol`` (default 0). Re-evaluating a
            trained net in another operation order leaves gaps of a SAT-at-the-boundary point at
            ±1e-15; a positive ``gap_tol`` keeps those out of the trap test.
    """
    import torch

    x = torch.as_tensor(x, dtype=ensemble.dtype, device=ensemble.device)
    with torch.no_grad():
        out, (acts, _) = ensemble.forward_cached(x)
        yy = torch.as_tensor(y, dtype=out.dtype, device=out.device)
        yy = yy[member] if yy.dim() == 2 else yy
        delta = kappa - yy * out[member, :, 0]
        unsat = (delta > gap_tol).cpu().numpy()
        hidden = [a[member].cpu().numpy() for a in acts[1:]]
        masks = [m[member].cpu().numpy() for m in ensemble.unit_masks[1:-1]]
    return dead_unit_report(hidden, unsat, masks)


# ------------------------------------------------------------------------------------------------
# classification


@dataclass(frozen=True)
class RunClass:
    """A run's classified ending.

    Attributes:
        label: ``"sat"``, ``"jammed"``, ``"undecided"`` or ``"trap"``.
        n_delta: final ``N_Δ``.
        n_weights: N.
        ndelta_frac: ``N_Δ / N``.
        reason: one line saying why.
        plateau: the plateau rule's status on the history (None when not needed).
    """

    label: str
    n_delta: int
    n_weights: int
    ndelta_frac: float
    reason: str
    plateau: PlateauStatus | None = None


def classify_run(
    step,
    loss,
    n_delta,
    n_weights: int,
    *,
    grad_norm: float | None = None,
    dead_units: DeadUnitReport | bool | None = None,
    rule: PlateauRule | None = None,
    trap_fraction: float = 0.1,
    grad_tol: float = 0.0,
) -> RunClass:
    """Classify a run from its history and final state.

    Args:
        step, loss, n_delta: ``[T]`` the run's measurement history (last entry = final state).
        n_weights: N, the number of weights (biases excluded).
        grad_norm: final ``‖∇L‖`` (any norm); needed for the trap test.
        dead_units: a :class:`DeadUnitReport` (or its ``all_dead`` flag) of the final net.
        rule: plateau thresholds (default :class:`PlateauRule()`).
        trap_fraction: a trap has ``N_Δ ≤ trap_fraction · N`` (default 0.1; jammed runs sit at
            ``N_Δ / N`` of order 0.5).
        grad_tol: the gradient counts as zero when ``grad_norm ≤ grad_tol`` (default 0: exactly
            zero, which is what a dead layer gives in float64).

    Returns:
        A :class:`RunClass`.
    """
    check_positive("n_weights", int(n_weights), integer=True)
    check_positive("trap_fraction", trap_fraction)
    check_positive("grad_tol", grad_tol, allow_zero=True)
    status = plateau_status(step, loss, n_delta, rule)
    nd = int(np.asarray(n_delta).ravel()[-1])
    frac = nd / n_weights
    if status.sat:
        return RunClass("sat", 0, int(n_weights), 0.0, "N_Δ = 0", status)
    all_dead = dead_units.all_dead if isinstance(dead_units, DeadUnitReport) else dead_units
    if (
        grad_norm is not None
        and grad_norm <= grad_tol
        and all_dead
        and nd <= trap_fraction * n_weights
    ):
        return RunClass(
            "trap",
            nd,
            int(n_weights),
            frac,
            f"zero gradient with N_Δ = {nd} ≤ {trap_fraction:g} N and dead layers on every "
            "unsatisfied point",
            status,
        )
    if status.plateau:
        return RunClass("jammed", nd, int(n_weights), frac, status.reason, status)
    return RunClass("undecided", nd, int(n_weights), frac, status.reason, status)
