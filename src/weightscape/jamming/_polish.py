"""Polish a jammed relu net to a (Clarke-) stationary point of the quadratic hinge loss.

The jamming objective ``L(theta) = (1/P) sum_mu 1/2 relu(Delta_mu)^2`` with the gaps
``Delta_mu = kappa - y_mu f(x_mu)`` is C^1 in the gaps and piecewise smooth in the weights: it has
kinks where a hidden pre-activation ``z_k`` vanishes (:mod:`weightscape.jamming._kinks`). Smooth
optimizers (Adam, L-BFGS) stall there with a finite ``|grad L|``. :func:`polish_jammed` runs study
B's kink-aware minimiser (:func:`weightscape.landscape.polish_on_kinks`: Newton/SQP steps on the
stratum of pinned kinks, a line search that stops on the first kink where ``L`` has a V-shaped
minimum along the step, release steps along the minimal-norm subgradient) with the hinge loss
and no L2 term. On a fixed set of unsatisfied points the loss is ``(1/2P) sum_{Delta > 0}
Delta^2``; across ``Delta = 0`` it is C^1 with a jump of the second derivative, so the Newton
model uses the Hessian of the current piece (a gap at exactly 0 counts as satisfied) and every
accepted step decreases the true ``L`` (Levenberg--Marquardt damping raised until it does).

Stationarity is judged by ``s``, the distance from 0 to the (Clarke / Goldstein) subdifferential
model, from :func:`~weightscape.jamming.kink_report` at the end point (the box model; exact for
one hidden layer) and, from the minimiser, with the exact treatment of training points pinned in
several layers (``stationarity_exact``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import check_positive

__all__ = ["JammedPolish", "polish_jammed"]


@dataclass(frozen=True)
class JammedPolish:
    """Result of :func:`polish_jammed`.

    Attributes:
        theta: ``[N]`` flat parameters at the end (``[W0, b0, W1, b1, ...]``, float64).
        loss_start, loss: ``L`` at the start and at the end (dimensionless; the true loss).
        n_unsat_start, n_unsat: ``N_Delta = #{Delta > 0}`` at the start and at the end.
        grad_norm: ``|grad L_-|`` at the end (backprop gradient, pinned entries on their lower
            piece; ``|grad L|`` where nothing is pinned).
        stationarity: ``s`` at the end from :func:`~weightscape.jamming.kink_report`
            (``pin_tol`` as given; box model, exact when ``n_coupled == 0``).
        stationarity_exact: ``s`` from the minimiser, with the exact hull of every point pinned
            in several layers (equal to ``stationarity`` when ``n_coupled == 0``).
        n_pinned: pinned entries (``|z| < pin_tol``) at the end.
        n_coupled: training points pinned in two or more hidden layers at the end.
        steps: accepted steps (Newton on the stratum and release steps).
        reason: why it stopped: ``converged`` (``s < grad_tol``), ``max_steps``,
            ``no-decrease`` (no damped step decreases ``L`` and ``s`` is small or nothing is
            pinned) or ``no-release`` (no release step decreases ``L``).
        gaps: ``[P]`` the gaps ``Delta`` at the end.
        grad_tol, pin_tol: the settings used.
    """

    theta: torch.Tensor
    loss_start: float
    loss: float
    n_unsat_start: int
    n_unsat: int
    grad_norm: float
    stationarity: float
    stationarity_exact: float
    n_pinned: int
    n_coupled: int
    steps: int
    reason: str
    gaps: np.ndarray
    grad_tol: float
    pin_tol: float

    @property
    def converged(self) -> bool:
        """True when both stationarity measures are below ``grad_tol``."""
        return bool(max(self.stationarity, self.stationarity_exact) < self.grad_tol)

    def as_dict(self) -> dict:
        """JSON-ready scalars."""
        out = {
            k: getattr(self, k)
            for k in (
                "loss_start",
                "loss",
                "n_unsat_start",
                "n_unsat",
                "grad_norm",
                "stationarity",
                "stationarity_exact",
                "n_pinned",
                "n_coupled",
                "steps",
                "reason",
                "grad_tol",
                "pin_tol",
            )
        }
        out["converged"] = self.converged
        return out


def polish_jammed(
    params,
    spec,
    x,
    y,
    *,
    kappa: float = 1.0,
    grad_tol: float = 1e-9,
    pin_tol: float = 1e-6,
    max_steps: int = 1000,
) -> JammedPolish:
    """Minimise the quadratic hinge loss of one relu net to a kink-aware stationary point.

    Args:
        params: the net's parameters, ``[W0, b0, W1, b1, ...]`` (as
            :meth:`~weightscape.jamming.RunRecord.load_net` returns them) or flat ``[N]``.
        spec: its :class:`~weightscape.nets.MLPSpec` (``activation="relu"``, depth >= 1,
            ``out_dim=1``).
        x: training inputs ``[P, d]``; y: labels ``[P]`` (``+-1``).
        kappa: margin of the gaps ``Delta = kappa - y f``.
        grad_tol: stop when ``s < grad_tol`` (units of ``L`` per unit of ``theta``).
        pin_tol: pinning threshold on ``|z|`` (units of ``z``).
        max_steps: accepted steps at most.

    Returns:
        :class:`JammedPolish`; ``loss <= loss_start`` (every accepted step decreases ``L``).
    """
    from ..landscape import polish_on_kinks
    from ..landscape._kinks import _forward
    from ._kinks import hinge_problem, kink_report

    check_positive("grad_tol", grad_tol)
    check_positive("max_steps", max_steps, integer=True)
    theta, x, y, loss = hinge_problem(params, spec, x, y, kappa=kappa, pin_tol=pin_tol)

    def gaps_of(t):
        with torch.no_grad():
            f, _ = _forward(t, spec, x)
        return kappa - y * f.squeeze(-1)

    with torch.no_grad():
        d0 = gaps_of(theta)
        loss_start = float((0.5 * torch.relu(d0) ** 2).mean())
    log: list = []
    res = polish_on_kinks(
        theta,
        spec,
        x,
        y,
        0.0,
        grad_tol=grad_tol,
        pin_tol=pin_tol,
        max_steps=max_steps,
        hessian=False,
        log=log,
        loss=loss,
    )
    end = res.theta.detach()
    rep = kink_report(end, spec, x, y, kappa=kappa, pin_tol=pin_tol)
    if rep.loss > loss_start:  # cannot happen (every step is a decrease); kept as a guard
        raise AssertionError(f"polish increased the loss: {loss_start} -> {rep.loss}")
    d = gaps_of(end)
    s_exact = float(res.point.stationarity)
    return JammedPolish(
        theta=end,
        loss_start=loss_start,
        loss=rep.loss,
        n_unsat_start=int((d0 > 0).sum()),
        n_unsat=int((d > 0).sum()),
        grad_norm=rep.grad_norm,
        stationarity=rep.stationarity,
        stationarity_exact=s_exact if math.isfinite(s_exact) else math.nan,
        n_pinned=rep.n_pinned,
        n_coupled=rep.n_coupled,
        steps=int(res.steps),
        reason=str(log[-1][0]) if log else "converged",
        gaps=d.cpu().numpy(),
        grad_tol=float(grad_tol),
        pin_tol=float(pin_tol),
    )
