"""Are jammed end points (near-)stationary on relu kinks? A first-order diagnostic.

The jamming objective of a relu net, ``L(theta) = (1/P) sum_mu 1/2 relu(Delta_mu)^2`` with the
gaps ``Delta_mu = kappa - y_mu f(x_mu)``, is C^1 in the gaps but only piecewise smooth in the
weights: it has a kink wherever a hidden pre-activation ``z_k = z_{mu i}(theta)`` (training point
``mu``, hidden unit ``i``) vanishes. At such a point ``|grad L|`` need not vanish at a minimum, so
a gradient norm that stays finite under every smooth optimizer does not by itself say that the
point is not a minimum. The measure that does is the distance ``s`` from 0 to the convex hull of
the gradients of the smooth pieces met near the point (Clarke's subdifferential for ``z_k = 0``,
Goldstein's ``delta``-subdifferential for ``0 < |z_k| < pin_tol``), as in study B:
:mod:`weightscape.landscape._kinks` (the objective there is MSE + L2, the construction is the
same; its forward pass with pinned entries, pinned set and the minimal-norm solver
:func:`~weightscape.landscape.kink_stationarity` are reused here).

With the ``K`` entries ``|z_k| < pin_tol`` pinned on their lower piece (``relu'(z_k) = 0``,
torch's convention at 0), ``grad L_-`` is the backprop gradient, ``c_k = dL/d act_k`` and
``J_k = c_k grad z_k`` the change of the gradient when entry ``k`` is put on its upper piece, and

.. math::
    s = \\min_{\\alpha \\in [0, 1]^K} \\Big| \\nabla L_- + \\sum_k \\alpha_k J_k \\Big|.

``s = |grad L|`` when nothing is pinned; ``|P_T grad L_-| <= s <= |grad L_-|`` with ``T`` the
tangent space of the stratum ``{z_k = 0}`` (the ``J_k`` are normal to it). The box over
``alpha`` is exact for one hidden layer (the loss is a sum over points and, at ``z_k = 0``, the
output of a point is linear in the pieces of its entries of one layer). A training point pinned in
two or more layers ("coupled", counted in :attr:`KinkReport.n_coupled`) makes the gradient
multilinear in its entries' pieces; here its entries are kept in the box (an approximation, not
a bound, stated in the report) -- study B's exact treatment of coupled points is tied to its
MSE objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, check_positive

__all__ = ["KinkReport", "kink_report"]

#: default thresholds on ``|z|`` for the counts of near-zero pre-activations
COUNT_TOLS = (1e-6, 1e-8, 1e-10)


@dataclass(frozen=True)
class KinkReport:
    """First-order state of one relu net under the quadratic hinge loss, kinks included.

    Attributes:
        loss: ``L`` (dimensionless, the mean of ``1/2 relu(Delta)^2``; the true value, every
            entry on its own piece).
        n_unsat: ``N_Delta = #{Delta > 0}``.
        n_entries: hidden pre-activations over (training point, hidden unit), ``P * sum(widths)``.
        count_tols: thresholds on ``|z|`` (units of ``z``).
        counts: ``#{|z| < tol}`` over all hidden layers, one per ``count_tols`` entry.
        pin_tol: entries with ``|z| < pin_tol`` are pinned (``K`` of them).
        n_pinned: ``K``.
        n_coupled: training points with pinned entries in two or more hidden layers (their
            entries are in the box: an approximation; 0 means ``s`` is exact).
        grad_norm: ``|grad L_-|``, the backprop gradient norm (pinned entries on the lower
            piece; with nothing pinned, ``|grad L|``).
        stationarity: ``s``, distance from 0 to ``{grad L_- + sum alpha_k J_k, alpha in [0,1]^K}``.
        tangent_grad: ``|P_T grad L_-|``, the part of the gradient along the smooth directions
            (``T``: orthogonal complement of the normals ``grad z_k``).
        max_pinned_z: largest ``|z|`` among the pinned entries (0 when none).
        alpha: ``[K]`` the minimising box weights.
        grad: ``[N]`` ``grad L_-`` (flat, ``[W0, b0, W1, b1, ...]`` order).
        jumps: ``[K, N]`` ``J_k`` (pinned entries layer-major, then point, then unit).
    """

    loss: float
    n_unsat: int
    n_entries: int
    count_tols: tuple[float, ...]
    counts: tuple[int, ...]
    pin_tol: float
    n_pinned: int
    n_coupled: int
    grad_norm: float
    stationarity: float
    tangent_grad: float
    max_pinned_z: float
    alpha: np.ndarray
    grad: np.ndarray
    jumps: np.ndarray

    @property
    def exact(self) -> bool:
        """True when ``s`` is exact (no coupled training points)."""
        return self.n_coupled == 0

    def as_dict(self) -> dict:
        """JSON-ready scalars (arrays summarised)."""
        out = {
            k: getattr(self, k)
            for k in (
                "loss",
                "n_unsat",
                "n_entries",
                "pin_tol",
                "n_pinned",
                "n_coupled",
                "grad_norm",
                "stationarity",
                "tangent_grad",
                "max_pinned_z",
            )
        }
        out.update({f"count_{t:g}": c for t, c in zip(self.count_tols, self.counts, strict=True)})
        out["exact"] = self.exact
        return out


def hinge_problem(params, spec, x, y, *, kappa: float, pin_tol: float):
    """Checked float64 inputs of the kink analyses of one relu net under the quadratic hinge.

    Returns ``(theta [N], x [P, d], y [P], loss)``: flat parameters (from ``[W0, b0, ...]`` or a
    flat tensor), inputs and labels on ``theta``'s device, and the hinge loss with margin
    ``kappa``. Raises :class:`ConfigError` unless ``spec`` is a relu net with a hidden layer and
    ``pin_tol > 0``, ``kappa >= 0``.
    """
    from ..curvature import flatten_params
    from ..train import get_loss

    if spec.activation != "relu":
        raise ConfigError(f"activation {spec.activation!r}; allowed: 'relu'")
    if spec.depth < 1:
        raise ConfigError(f"depth={spec.depth}: a net without hidden layer has no kinks")
    check_positive("pin_tol", pin_tol)
    check_positive("kappa", kappa, allow_zero=True)
    if isinstance(params, torch.Tensor):
        theta = params.detach().to(torch.float64).reshape(-1)
    else:
        theta = flatten_params([torch.as_tensor(p) for p in params]).detach().to(torch.float64)
    x = torch.as_tensor(x, dtype=torch.float64, device=theta.device)
    y = torch.as_tensor(y, dtype=torch.float64, device=theta.device).reshape(-1)
    return theta, x, y, get_loss("quadratic_hinge", kappa=kappa)


def kink_report(
    params,
    spec,
    x,
    y,
    *,
    kappa: float = 1.0,
    pin_tol: float = 1e-6,
    count_tols: Sequence[float] = COUNT_TOLS,
) -> KinkReport:
    """Near-zero pre-activations, ``|grad L|`` and the kink stationarity ``s`` of one relu net.

    Args:
        params: the net's parameters, ``[W0, b0, W1, b1, ...]`` (as
            :meth:`~weightscape.jamming.RunRecord.load_net` returns them) or flat ``[N]``.
        spec: its :class:`~weightscape.nets.MLPSpec` (``activation="relu"``, ``out_dim=1``,
            no fan-in scale needed but allowed).
        x: training inputs ``[P, d]``; y: labels ``[P]`` (``+-1``).
        kappa: margin ``kappa`` of the gaps ``Delta = kappa - y f``.
        pin_tol: pinning threshold on ``|z|`` (absolute, units of ``z``).
        count_tols: thresholds for :attr:`KinkReport.counts`.

    Returns:
        :class:`KinkReport`. Everything in float64 on the device of ``params``.
    """
    from ..landscape import kink_stationarity
    from ..landscape._kinks import _forward, kink_point

    for t in count_tols:
        check_positive("count_tols entry", t)
    theta, x, y, loss = hinge_problem(params, spec, x, y, kappa=kappa, pin_tol=pin_tol)

    with torch.no_grad():
        f, zs = _forward(theta, spec, x)
        delta = kappa - y * f.squeeze(-1)
        value = float(loss.per_sample(f, y).mean())
    zabs = torch.cat([z.abs().flatten() for z in zs])
    counts = tuple(int((zabs < t).sum()) for t in count_tols)
    # pinned set, lower-piece gradient, jumps and tangent space: study B's kink_point with the
    # hinge loss and no L2; s in the box model (coupled points are counted, not grouped)
    kp = kink_point(theta, spec, x, y, 0.0, pin_tol=pin_tol, stationarity=False, loss=loss)
    g = kp.grad
    s, alpha = kink_stationarity(g.cpu().numpy(), kp.jumps.cpu().numpy())
    return KinkReport(
        loss=value,
        n_unsat=int((delta > 0).sum()),
        n_entries=int(zabs.numel()),
        count_tols=tuple(float(v) for v in count_tols),
        counts=counts,
        pin_tol=float(pin_tol),
        n_pinned=kp.n_pinned,
        n_coupled=kp.n_coupled,
        grad_norm=float(g.norm()),
        stationarity=float(s),
        tangent_grad=kp.tangent_grad,
        max_pinned_z=float(kp.z.abs().max()) if kp.n_pinned else 0.0,
        alpha=np.asarray(alpha),
        grad=g.detach().cpu().numpy(),
        jumps=kp.jumps.detach().cpu().numpy(),
    )
