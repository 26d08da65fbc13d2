"""Stationarity and minimisation of relu-net objectives on kinks (study B, real networks).

The objective of a relu net, ``F = MSE + l2/2 |theta|^2``, is piecewise smooth: it is smooth
except where a hidden pre-activation ``z_k = z_{mu i}(theta)`` (training point ``mu``, hidden unit
``i``) vanishes. Full-batch L-BFGS runs on digits end *on* such kinks: the objective stops
decreasing (relative change < 1e-9), tens of pre-activations sit at ``|z| ~ 1e-11`` and
``|grad F|`` stays at ~1e-3 (measured: docs/studies/landscape.md). There the gradient does not
vanish and the Hessian does not exist, so the spec's ``|grad F| < 1e-7`` can never be met although
the point is a local minimum. This module replaces the gradient test by the first-order condition
of nonsmooth analysis and provides a minimiser that reaches it.

*Pinned set and stratum.* Entries with ``|z_k| < pin_tol`` are *pinned*; ``K`` of them. Near the
point the objective is ``F(theta) = F_-(theta) + sum_k (a_+ - a_-) c_k relu(z_k) + ...``, where
``F_-`` is the smooth objective with every pinned activation replaced by its lower linear piece
``a_- z`` (``a_- = 0`` for relu, the leaky slope for leaky relu; ``a_+ = 1``) and
``c_k = dF/d act_k``. The *stratum* ``{z_k(theta) = 0 for all pinned k}`` is a smooth manifold
(where the normals ``n_k = grad z_k`` are independent) on which ``F = F_-`` is smooth; its tangent
space ``T = {d: n_k . d = 0}`` holds the *smooth directions*.

*Stationarity measure.* The gradients of the pieces met arbitrarily close to the point are
``grad F_- + sum_k alpha_k J_k`` with ``alpha_k in {0, 1}`` and ``J_k = (a_+ - a_-) c_k n_k``
(the backprop gradient with ``act'(z_k) = a_-`` or ``a_+``). The measure is

.. math::
    s(\\theta) = \\min_{\\alpha \\in [0, 1]^K} \\Big| \\nabla F_- + \\sum_k \\alpha_k J_k \\Big|,

the distance from 0 to the convex hull of those gradients: the Clarke subdifferential of ``F``
(Clarke 1983) when the pinned entries are exactly 0, and Goldstein's ``delta``-subdifferential
(Goldstein 1977; used for relu nets by Zhang et al., ICML 2020) for ``0 < |z_k| < pin_tol``.
``s = |grad F|`` when nothing is pinned, so ``s < grad_tol`` is the spec's criterion wherever
``F`` is smooth. Because the ``J_k`` are normal to ``T``, ``s`` splits exactly into the tangent
gradient ``|P_T grad F_-|`` (the gradient restricted to the smooth directions) and a bounded
least-squares residual in the normal space (:func:`scipy.optimize.lsq_linear`, ``bvls``). The
model is exact for one hidden layer; with pinned entries of *different layers on the same training
point* ("coupled", counted) the backprop gradient is multilinear in the ``alpha`` and the box is
the first-order part of it (stated, not corrected).

*Minimum on a kink.* ``s < grad_tol`` with ``alpha_k in (0, 1)`` means ``F`` grows linearly off the
stratum in every normal direction (a V-shaped, "sharp" valley); the second-order condition is then
on ``T`` alone: the Hessian of the Lagrangian ``F_- + sum_k lambda_k z_k`` (multipliers
``lambda = alpha * (a_+ - a_-) * c``) restricted to ``T`` must have no negative eigenvalue. Its
spectrum (``N - rank`` values) replaces the Hessian spectrum of a smooth minimum; the ``K`` sharp
directions have no finite curvature and no width at second order.

*Minimiser* (:func:`polish_on_kinks`): sequential quadratic programming on the stratum (Newton
on ``T`` with the Lagrangian Hessian plus a Gauss–Newton restoration ``-n^+ z`` of the pinned
pre-activations; Levenberg–Marquardt damping where the reduced Hessian is not positive definite,
raised until ``F`` decreases); an entry that comes within ``pin_tol`` of its kink joins the pinned
set. It converges quadratically onto a stratum minimum; whether that point is Clarke stationary is
decided afterwards by ``s`` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError

__all__ = ["KinkPoint", "kink_point", "kink_stationarity", "polish_on_kinks"]

KINK_ACTIVATIONS = ("relu", "leaky_relu")


def _pieces(spec) -> tuple[float, float]:
    """Slopes ``(a_-, a_+)`` of the two linear pieces of the activation at its kink."""
    if spec.activation == "relu":
        return 0.0, 1.0
    if spec.activation == "leaky_relu":
        return float(spec.leaky_slope), 1.0
    raise ConfigError(f"activation {spec.activation!r} has no kink; allowed: {KINK_ACTIVATIONS}")


def _forward(theta, spec, x, masks=None, eps=None):
    """Outputs ``[P, out]`` and hidden pre-activations (list of ``[P, n_l]``) of one net.

    ``masks[l]`` (bool ``[P, n_l]``) puts those entries on the lower linear piece ``a_- z`` of the
    activation; ``eps[l]`` is added to the activations of layer ``l`` (before the fan-in scale),
    so that ``dF/d eps = dF/d act``.
    """
    from ..curvature import unflatten_params
    from ..nets import activate
    from ..nets.functional import split_params

    lo, _ = _pieces(spec)
    layers = split_params(unflatten_params(theta, spec), spec)
    a, zs = x, []
    for l, (w, b) in enumerate(layers):
        z = a @ w.T
        if b is not None:
            z = z + b
        if l == spec.depth:
            return z, zs
        zs.append(z)
        act = activate(z, spec)
        if masks is not None:
            act = torch.where(masks[l], lo * z, act)
        if eps is not None:
            act = act + eps[l]
        if spec.fan_in_scale:
            act = act / math.sqrt(spec.sizes[l])
        a = act
    raise AssertionError("unreachable")


def _objective(theta, spec, x, y, l2, masks=None, eps=None):
    from ..train import get_loss

    f, zs = _forward(theta, spec, x, masks, eps)
    return get_loss("mse").per_sample(f, y).mean() + 0.5 * l2 * (theta * theta).sum(), zs


def _pinned_z(theta, spec, x, masks):
    _, zs = _forward(theta, spec, x, masks)
    return torch.cat([z[m] for z, m in zip(zs, masks, strict=True)])


@dataclass(frozen=True)
class KinkPoint:
    """First-order data of a relu-net objective at one point, with its pinned set.

    Attributes:
        objective: ``F`` (MSE + l2 term).
        grad: ``[N]`` gradient of ``F_-`` (pinned entries on their lower piece; for relu this is
            torch's convention ``relu'(0) = 0``).
        masks: per hidden layer, bool ``[P, n_l]`` of the pinned entries (``|z| < pin_tol``).
        z: ``[K]`` pinned pre-activations (layer-major, then sample, then unit).
        normals: ``[K, N]`` their gradients ``n_k``.
        jumps: ``[K, N]`` ``J_k = (a_+ - a_-) c_k n_k``.
        alpha: ``[K]`` the minimiser of :func:`kink_stationarity`.
        stationarity: ``s``, distance from 0 to ``{grad + alpha J, alpha in [0,1]^K}``.
        tangent_grad: ``|P_T grad|``, the part of ``s`` along the smooth directions.
        tangent: ``[N, N - r]`` orthonormal basis of ``T`` (``r`` = rank of the normals).
        n_coupled: training points with pinned entries in two or more layers.
    """

    objective: float
    grad: torch.Tensor
    masks: tuple[torch.Tensor, ...]
    z: torch.Tensor
    normals: torch.Tensor
    jumps: torch.Tensor
    alpha: np.ndarray
    stationarity: float
    tangent_grad: float
    tangent: torch.Tensor
    n_coupled: int

    @property
    def n_pinned(self) -> int:
        return int(self.z.numel())


def kink_stationarity(grad, jumps) -> tuple[float, np.ndarray]:
    """``min_{alpha in [0,1]^K} |grad + jumps^T alpha|`` and its minimiser.

    Args:
        grad: ``[N]``.
        jumps: ``[K, N]`` (``K = 0`` allowed: then the result is ``|grad|``).

    Returns:
        ``(distance, alpha [K])``.
    """
    from scipy.optimize import lsq_linear

    g = np.asarray(grad, dtype=np.float64)
    J = np.asarray(jumps, dtype=np.float64).reshape(-1, g.size)
    if J.shape[0] == 0:
        return float(np.linalg.norm(g)), np.zeros(0)
    res = lsq_linear(J.T, -g, bounds=(0.0, 1.0), method="bvls", tol=1e-14)
    alpha = np.clip(res.x, 0.0, 1.0)
    return float(np.linalg.norm(g + J.T @ alpha)), alpha


def _masks(theta, spec, x, pin_tol, old=None):
    with torch.no_grad():
        _, zs = _forward(theta, spec, x)
    new = [z.abs() < pin_tol for z in zs]
    if old is not None:
        new = [a | b for a, b in zip(new, old, strict=True)]
    return new


def kink_point(theta, spec, x, y, l2: float, *, pin_tol: float = 1e-6, masks=None) -> KinkPoint:
    """Pinned set, gradients and the stationarity measure ``s`` of one relu net.

    Args:
        theta: ``[N]`` flat parameters of one net (``[W0, b0, W1, b1, ...]``).
        spec: its :class:`~weightscape.nets.MLPSpec` (relu or leaky relu).
        x, y: training inputs ``[P, d]`` and targets (as for the MSE loss).
        l2: L2 coefficient of the objective.
        pin_tol: entries with ``|z| < pin_tol`` are pinned (absolute, units of ``z``).
        masks: a pinned set to use instead (as in :attr:`KinkPoint.masks`).
    """
    lo, hi = _pieces(spec)
    theta = theta.detach()
    if masks is None:
        masks = _masks(theta, spec, x, pin_tol)
    eps = [torch.zeros_like(m, dtype=theta.dtype) for m in masks]
    with torch.enable_grad():
        t = theta.clone().requires_grad_(True)
        e = [v.clone().requires_grad_(True) for v in eps]
        obj, _ = _objective(t, spec, x, y, l2, masks, e)
        grads = torch.autograd.grad(obj, [t, *e])
    g, dact = grads[0], grads[1:]
    c = torch.cat([d[m] for d, m in zip(dact, masks, strict=True)])
    K, N = int(c.numel()), theta.numel()
    if K:
        normals = torch.func.jacrev(lambda t: _pinned_z(t, spec, x, masks))(theta)
        z = _pinned_z(theta, spec, x, masks).detach()
    else:
        normals = theta.new_zeros((0, N))
        z = theta.new_zeros(0)
    jumps = (hi - lo) * c[:, None] * normals
    s, alpha = kink_stationarity(g.cpu().numpy(), jumps.cpu().numpy())
    if K:
        _, sv, vh = torch.linalg.svd(normals, full_matrices=True)
        r = int((sv > 1e-10 * sv[0]).sum()) if sv.numel() and sv[0] > 0 else 0
        tangent = vh[r:].T
    else:
        tangent = torch.eye(N, dtype=theta.dtype, device=theta.device)
    per_layer = torch.stack([m.any(1) for m in masks]).sum(0)
    return KinkPoint(
        objective=float(obj.detach()),
        grad=g,
        masks=tuple(masks),
        z=z,
        normals=normals,
        jumps=jumps,
        alpha=alpha,
        stationarity=s,
        tangent_grad=float((tangent.T @ g).norm()),
        tangent=tangent,
        n_coupled=int((per_layer >= 2).sum()),
    )


def stratum_multipliers(kp: KinkPoint) -> torch.Tensor:
    """``[K]`` least-squares multipliers ``lambda`` of ``grad F_- + normals^T lambda = 0``."""
    if not kp.n_pinned:
        return kp.grad.new_zeros(0)
    return -(torch.linalg.pinv(kp.normals.T, rtol=1e-10) @ kp.grad)


def lagrangian_hessian(theta, spec, x, y, l2: float, masks, mult) -> torch.Tensor:
    """``[N, N]`` Hessian of the Lagrangian ``F_- + sum_k mult_k z_k`` of the stratum ``masks``
    (``mult``: :func:`stratum_multipliers`)."""

    def lag(t):
        obj, zs = _objective(t, spec, x, y, l2, masks)
        if mult.numel():
            zk = torch.cat([z[m] for z, m in zip(zs, masks, strict=True)])
            obj = obj + (mult * zk).sum()
        return obj

    return torch.func.hessian(lag)(theta.detach())


def _kink_search(theta, step, spec, x, y, l2, masks, f0, max_breaks: int = 64):
    """Line search along ``step`` that knows the kinks: the first local minimum of ``F`` over the
    breakpoints in ``(0, 1)`` and ``1``.

    The breakpoints are the ``tau`` with ``z + tau dz = 0`` of unpinned entries (``dz`` = the
    directional derivative along ``step``, first order); ``F`` restricted to the ray is smooth
    between them. Candidates are visited in increasing ``tau`` (at most ``max_breaks``
    breakpoints, then ``1``) and the search stops before the first increase of ``F``.

    Returns ``(tau * step, hit, F)``: ``hit`` is ``(layer, sample, unit)`` of the breakpoint
    where it stopped (the ray has a V-shaped minimum there: pin it), None at ``tau = 1``.
    """
    z, dz = torch.func.jvp(lambda t: tuple(_forward(t, spec, x, masks)[1]), (theta,), (step,))
    taus, where = [], []
    for l, (zl, dl, m) in enumerate(zip(z, dz, masks, strict=True)):
        cross = (~m) & (zl * dl < 0)  # unpinned entries heading for their kink
        tau = torch.where(cross, -zl / torch.where(cross, dl, 1.0), math.inf).flatten()
        ok = torch.nonzero(tau < 1.0).flatten()
        taus.append(tau[ok])
        where += [(l, *divmod(int(k), zl.shape[1])) for k in ok]
    taus = torch.cat(taus)
    order = torch.argsort(taus)[:max_breaks].tolist()
    best = (step.new_zeros(()), None, f0)
    for j in [*order, None]:
        tau = 1.0 if j is None else float(taus[j])
        f = _true_objective(theta + tau * step, spec, x, y, l2)
        if f > best[2]:
            break
        best = (tau, None if j is None else where[j], f)
    tau, hit, f = best
    return tau * step, hit, f


def _release(theta, kp: KinkPoint, spec, x, y, l2, delta):
    """Leave the kink with the steepest one-sided descent (active-set release).

    With multipliers ``lambda`` (:func:`stratum_multipliers`) and jump coefficients
    ``c~_k = J_k . n_k / |n_k|^2``, moving only ``z_k`` (along the dual direction ``d_k``,
    ``n_j . d_k = delta_jk``) changes ``F`` at the rate ``lambda_k`` to the lower side and
    ``c~_k - lambda_k`` to the upper side. The most negative rate is taken with ``|dz_k| = delta``
    (halved until ``F`` decreases, down to ``delta / 8``, which stays above the pinning threshold).
    Returns ``(theta, masks without k)`` or None when no rate is negative or no step decreases
    ``F``.
    """
    lam = stratum_multipliers(kp)
    nn = (kp.normals * kp.normals).sum(1)
    ct = torch.where(nn > 0, (kp.jumps * kp.normals).sum(1) / torch.where(nn > 0, nn, 1.0), 0.0)
    rates = torch.stack([lam, ct - lam])  # [2, K]: lower side, upper side
    j = int(torch.argmin(rates))
    side, k = divmod(j, kp.n_pinned)
    if float(rates[side, k]) >= 0:
        return None
    d = torch.linalg.pinv(kp.normals, rtol=1e-10)[:, k] * (1.0 if side else -1.0)
    f0 = _true_objective(theta, spec, x, y, l2)
    for _ in range(4):
        new = theta + delta * d
        if _true_objective(new, spec, x, y, l2) < f0:
            break
        delta = 0.5 * delta
    else:
        return None
    masks = [m.clone() for m in kp.masks]
    flat = torch.cat([m.flatten() for m in masks]).nonzero().flatten()
    idx = int(flat[k])  # k-th pinned entry in layer-major, sample, unit order
    for m in masks:
        if idx < m.numel():
            m.view(-1)[idx] = False
            break
        idx -= m.numel()
    return new, masks


def _true_objective(theta, spec, x, y, l2) -> float:
    with torch.no_grad():
        return float(_objective(theta, spec, x, y, l2)[0])


@dataclass(frozen=True)
class KinkPolish:
    """Result of :func:`polish_on_kinks`: end point ``theta [N]``, its :class:`KinkPoint`, the
    Lagrangian Hessian there (``[N, N]``, None if not asked for) and the accepted SQP steps."""

    theta: torch.Tensor
    point: KinkPoint
    hessian: torch.Tensor | None
    steps: int


def polish_on_kinks(
    theta,
    spec,
    x,
    y,
    l2: float,
    *,
    grad_tol: float = 1e-7,
    pin_tol: float = 1e-6,
    max_steps: int = 30,
    hessian: bool = True,
    log: list | None = None,
) -> KinkPolish:
    """Newton (SQP) steps on the kink stratum until ``s < grad_tol`` (module docstring).

    Args:
        theta: ``[N]`` start (an L-BFGS end point).
        spec, x, y, l2: the net and objective (as for :func:`kink_point`).
        grad_tol: stop when the stationarity measure ``s`` is below this.
        pin_tol: pinning threshold on ``|z|``.
        max_steps: SQP steps at most.
        hessian: return the Lagrangian Hessian at the end point.
        log: if a list, one ``(event, n_pinned, s, tangent_grad, F)`` tuple per step is appended
            (event ``newton``, ``newton-cut`` when cut at a kink, ``release``) and a last
            ``(reason, ...)`` with reason ``converged``, ``max_steps``, ``no-release`` (no
            one-sided descent rate is negative) or ``no-decrease``.
    """

    def note(event):
        if log is not None:
            log.append((event, kp.n_pinned, kp.stationarity, kp.tangent_grad, kp.objective))

    theta = theta.detach().clone()
    kp = kink_point(theta, spec, x, y, l2, pin_tol=pin_tol)
    H = None
    steps = 0
    for it in range(max_steps + 1):
        if kp.stationarity < grad_tol or it == max_steps:
            note("converged" if kp.stationarity < grad_tol else "max_steps")
            break
        normal = math.sqrt(max(kp.stationarity**2 - kp.tangent_grad**2, 0.0))
        if kp.n_pinned and kp.tangent_grad < max(grad_tol, 0.1 * normal):
            # stationary on the stratum, but a multiplier is out of its bounds: leave that kink
            rel = _release(theta, kp, spec, x, y, l2, 20.0 * pin_tol)
            if rel is None:
                note("no-release")
                break
            theta, masks = rel
            steps += 1
            kp = kink_point(theta, spec, x, y, l2, masks=_masks(theta, spec, x, pin_tol, masks))
            H = None
            note("release")
            continue
        H = lagrangian_hessian(theta, spec, x, y, l2, kp.masks, stratum_multipliers(kp))
        Z = kp.tangent
        g = kp.grad
        if kp.n_pinned:
            s_n = -torch.linalg.pinv(kp.normals, rtol=1e-10) @ kp.z
        else:
            s_n = torch.zeros_like(theta)
        e, V = torch.linalg.eigh(Z.T @ H @ Z)
        rhs = V.T @ (Z.T @ (g + H @ s_n))
        mu = 0.0 if bool(e[0] > 0) else 2.0 * float(-e[0]) + 1e-12
        f0 = _true_objective(theta, spec, x, y, l2)
        for _ in range(20):
            step = s_n - Z @ (V @ (rhs / (e + mu)))
            step, hit, f1 = _kink_search(theta, step, spec, x, y, l2, kp.masks, f0)
            if f1 <= f0 + 1e-13 * abs(f0) and float(step.norm()) > 0:
                break
            mu = max(10.0 * mu, 1e-6 * float(e.abs().max()))
        else:
            note("no-decrease")
            break  # no damped step decreases F
        theta = theta + step
        steps += 1
        masks = _masks(theta, spec, x, pin_tol, old=kp.masks)
        if hit is not None:
            masks[hit[0]][hit[1], hit[2]] = True
        kp = kink_point(theta, spec, x, y, l2, masks=masks)
        H = None
        note("newton" if hit is None else "newton-cut")
    if hessian and H is None:
        H = lagrangian_hessian(theta, spec, x, y, l2, kp.masks, stratum_multipliers(kp))
    return KinkPolish(theta=theta, point=kp, hessian=H if hessian else None, steps=steps)
