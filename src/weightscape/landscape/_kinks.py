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
least-squares residual in the normal space (:func:`scipy.optimize.lsq_linear`, ``bvls``).
Entries of one layer combine linearly, and so do entries of different training points (``F`` is a
sum over points), so the box is exact for one hidden layer. A training point pinned in *several
layers* ("coupled", counted) makes the backprop gradient multilinear in its entries' pieces: its
entries then contribute the convex hull of the exact gradient changes of all ``2^G - 1``
non-empty patterns (:func:`_coupled_groups`, up to ``G = 10`` entries per point; beyond that the
box is kept), and ``s`` is a small quadratic programme over a product of simplices, solved by
an active-set method with a certified duality gap (:func:`_min_norm_blocks`; scipy's SLSQP is
the fallback and the reference in the tests).

*Minimum on a kink.* ``s < grad_tol`` is first-order (Clarke) stationarity, necessary for a
minimum. With ``alpha_k in (0, 1)`` ``F`` grows linearly off the stratum in every normal direction
(a V-shaped, "sharp" valley); the second-order condition is then on ``T`` alone: the Hessian of
the Lagrangian ``F_- + sum_k lambda_k z_k`` (least-squares multipliers of
``grad F_- + sum_k lambda_k n_k = 0``) restricted to ``T`` must have no negative eigenvalue. Its
spectrum (``N - rank`` values) replaces the Hessian spectrum of a smooth minimum; the ``K`` sharp
directions have no finite curvature and no width at second order.

*Minimiser* (:func:`polish_on_kinks`), an active-set method: sequential quadratic programming on
the stratum (Newton on ``T`` with the Lagrangian Hessian plus a Gauss–Newton restoration
``-n^+ z`` of the pinned pre-activations; Levenberg–Marquardt damping where the reduced Hessian is
not positive definite, raised until ``F`` decreases); a line search along each step that stops at
the first local minimum of ``F`` over the kinks the step crosses, pinning that kink; and, once the
point is stationary on its stratum but ``s`` is not small, a release step along minus the
minimal-norm element of the subdifferential model (the nonsmooth steepest-descent direction),
which unpins the kinks that block descent (also taken when no damped step on the stratum
decreases ``F``). Whether the end point is stationary is decided by ``s`` alone. Cost: a step
cut at a kink keeps the previous Lagrangian Hessian (``hessian_reuse`` steps at most; full
steps get the exact one, so the end is Newton), and ``s`` (the coupled groups and the quadratic
programme) is evaluated only where it can change a decision, since
``|P_T grad F_-| <= s <= |grad F_-|``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import ConfigError, check_positive

__all__ = ["KinkPoint", "KinkPolish", "kink_point", "kink_stationarity", "polish_on_kinks"]

KINK_ACTIVATIONS = ("relu", "leaky_relu")


def _pieces(spec) -> tuple[float, float]:
    """Slopes ``(a_-, a_+)`` of the two linear pieces of the activation at its kink."""
    if spec.activation == "relu":
        return 0.0, 1.0
    if spec.activation == "leaky_relu":
        return float(spec.leaky_slope), 1.0
    raise ConfigError(f"activation {spec.activation!r} has no kink; allowed: {KINK_ACTIVATIONS}")


def _forward(theta, spec, x, masks=None, eps=None, upper=None):
    """Outputs ``[P, out]`` and hidden pre-activations (list of ``[P, n_l]``) of one net.

    ``masks[l]`` (bool ``[P, n_l]``) puts those entries on the lower linear piece ``a_- z`` of the
    activation; ``eps[l]`` is added to the activations of layer ``l`` (before the fan-in scale),
    so that ``dF/d eps = dF/d act``; ``upper[l]`` puts entries on the upper piece ``a_+ z``
    instead (taking precedence over ``masks``).
    """
    from ..curvature import unflatten_params
    from ..nets import activate
    from ..nets.functional import split_params

    lo, hi = _pieces(spec)
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
        if upper is not None:
            act = torch.where(upper[l], hi * z, act)
        if eps is not None:
            act = act + eps[l]
        if spec.fan_in_scale:
            act = act / math.sqrt(spec.sizes[l])
        a = act
    raise AssertionError("unreachable")


def _objective(theta, spec, x, y, l2, masks=None, eps=None, upper=None, loss=None):
    """``F = mean loss + l2/2 |theta|^2`` (``loss``: a :func:`weightscape.train.get_loss` loss,
    default MSE) and the pre-activations."""
    from ..train import get_loss

    f, zs = _forward(theta, spec, x, masks, eps, upper)
    loss = get_loss("mse") if loss is None else loss
    return loss.per_sample(f, y).mean() + 0.5 * l2 * (theta * theta).sum(), zs


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
        subgrad: ``[N]`` the element of the subdifferential model nearest to 0 (norm ``s``).
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
    subgrad: torch.Tensor
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


def _min_norm_blocks(b, A, block, w0, *, gap_rel: float = 1e-12, max_iter: int | None = None):
    """Nearest point to 0 of ``b + A w`` over ``w`` in a product of probability simplices.

    Args:
        b: ``[N]``.
        A: ``[N, n]`` vertex columns.
        block: ``[n]`` block id (``0..B-1``) of each column; the weights of a block are ``>= 0``
            and sum to 1 (a block ``{0, J_k}`` is the segment of one pinned entry, a block
            ``{0, vertices}`` the hull of a coupled group).
        w0: ``[n]`` feasible start.
        gap_rel: stop when the duality gap is below ``gap_rel |r|^2 + 1e-15 B a^2`` (``r = b + A
            w``, ``B`` blocks, ``a`` the largest norm of ``b`` and the columns; the second term
            is the round-off of the gap): then ``|r| - min |r| <= gap / |r|``.

    Returns:
        ``(w [n], iterations, converged)``.

    A primal active-set method (Lawson–Hanson's NNLS generalised to simplex blocks): minimise
    on the affine hull of the free vertices of each block (one least-squares solve), step back
    to the feasible set when a weight would turn negative (dropping that vertex), and when the
    point is optimal on its face add the vertex of largest first-order decrease. ``r = b + A w``
    and ``g = A^T r`` give the duality (Frank–Wolfe) gap ``sum_B (w . g - min g)``, an upper
    bound on ``|r| (|r| - |r*|)``; it certifies the end point (``converged``).
    """
    import scipy.linalg as sla

    n = A.shape[1]
    block = np.asarray(block)
    B = int(block.max()) + 1
    w = np.asarray(w0, dtype=np.float64).copy()
    free = w > 0
    max_iter = max_iter or 20 * n + 100
    it = 0
    a_max = max(float(np.sqrt((A * A).sum(0)).max()), float(np.linalg.norm(b)))
    while True:
        while it < max_iter:  # minimise on the face of the free vertices
            it += 1
            F = np.flatnonzero(free)
            order = F[np.argsort(w[F], kind="stable")]
            piv = np.full(B, -1)
            piv[block[order]] = order  # per block the free vertex of largest weight
            others = F[F != piv[block[F]]]
            c = b + A[:, piv].sum(1)
            if others.size:
                D = A[:, others] - A[:, piv[block[others]]]
                u = sla.lstsq(D, -c, lapack_driver="gelsy", check_finite=False)[0]
            else:
                u = np.zeros(0)
            wn = np.zeros(n)
            wn[others] = u
            np.add.at(wn, piv, 1.0)
            np.add.at(wn, piv[block[others]], -u)
            if np.all(wn[F] > 0):
                w = wn
                break
            neg = F[wn[F] <= 0]
            t = float(np.min(w[neg] / (w[neg] - wn[neg])))
            w = np.where(free, w + t * (wn - w), 0.0)
            out = neg[w[neg] <= 1e-15 * (1 + np.abs(wn[neg]))]
            if out.size == 0:
                out = neg[[int(np.argmin(w[neg]))]]
            w[out] = 0.0
            free[out] = False
            w = np.clip(w, 0.0, None)
            w /= np.bincount(block, weights=w, minlength=B)[block]
        r = b + A @ w
        g = A.T @ r
        low = np.full(B, np.inf)
        np.minimum.at(low, block, g)
        gap = np.bincount(block, weights=w * g, minlength=B) - low
        if float(gap.sum()) <= gap_rel * float(r @ r) + 1e-15 * B * a_max**2:
            return w, it, True
        if it >= max_iter:
            return w, it, False
        viol = (gap + low)[block] - g  # first-order decrease of moving weight onto a vertex
        viol[free] = -np.inf
        k = int(np.argmax(viol))
        if not viol[k] > 0:
            return w, it, False
        free[k] = True


def kink_stationarity(grad, jumps, groups=(), *, vector: bool = False, method: str = "active-set"):
    """Distance from 0 to ``grad + box(jumps) + sum of hulls(groups)`` and the marginal ``alpha``.

    Args:
        grad: ``[N]``.
        jumps: ``[K, N]`` (``K = 0`` allowed: then, without groups, the result is ``|grad|``).
        groups: coupled groups ``(entries, patterns, vertices)``: ``entries`` the indices (into
            ``jumps``) of the pinned entries of one training point in several layers,
            ``patterns`` ``[V, G]`` 0/1 and ``vertices`` ``[V, N]`` the exact gradient changes
            when the entries marked 1 are put on their upper piece (all ``2^G - 1`` non-empty
            patterns). The group contributes the convex hull of ``{0} U vertices`` instead of the
            box of its entries' jumps.
        vector: also return the minimal-norm element ``v [N]`` of the set.
        method: with groups, the quadratic programme's solver: ``active-set``
            (:func:`_min_norm_blocks`, exact up to a certified duality gap; falls back to
            ``slsqp`` if it does not certify) or ``slsqp`` (scipy's SLSQP, the reference).

    Returns:
        ``(distance, alpha [K])`` (and ``v`` if asked); for grouped entries ``alpha_k`` is the
        weight of the patterns that switch entry k on.

    Without groups the problem is a bounded least-squares problem (``bvls``, exact). With groups
    it is a quadratic programme over a product of simplices (one segment ``{0, J_k}`` per
    ungrouped entry, one hull ``{0} U vertices`` per group), started from the ``bvls`` solution
    with the groups' entries treated as a box and solved on the problem scaled by ``|grad|``.
    """
    from scipy.optimize import lsq_linear

    if method not in ("active-set", "slsqp"):
        raise ConfigError(f"method={method!r}; allowed: 'active-set', 'slsqp'")
    g = np.asarray(grad, dtype=np.float64)
    J = np.asarray(jumps, dtype=np.float64).reshape(-1, g.size)
    K = J.shape[0]
    if K == 0:
        return (float(np.linalg.norm(g)), np.zeros(0)) + ((g.copy(),) if vector else ())
    res = lsq_linear(J.T, -g, bounds=(0.0, 1.0), method="bvls", tol=1e-14)
    alpha = np.clip(res.x, 0.0, 1.0)
    if not groups:
        v = g + J.T @ alpha
        return (float(np.linalg.norm(v)), alpha) + ((v,) if vector else ())
    grouped = np.zeros(K, dtype=bool)
    for entries, _, _ in groups:
        grouped[list(entries)] = True
    free = np.flatnonzero(~grouped)
    cols = [J[free].T] + [np.asarray(v, dtype=np.float64).T for _, _, v in groups]
    A = np.concatenate(cols, axis=1)  # [N, n_free + sum V]
    sizes = [len(v) for _, _, v in groups]
    scale = max(float(np.linalg.norm(g)), 1e-300)
    b = g / scale
    A = A / scale
    # start: the box solution, mapped onto the pattern weights of each group (product measure)
    x0 = [alpha[free]]
    for entries, pats, _ in groups:
        a = alpha[list(entries)]
        pats = np.asarray(pats, dtype=np.float64)
        x0.append(np.prod(np.where(pats > 0, a, 1 - a), axis=1))
    x0 = np.concatenate(x0)
    n_free = len(free)
    z = None
    if method == "active-set":
        # product of simplices: block k = {0, J_k} per free entry, then {0, vertices} per group
        # (the zero vertex of each block is an explicit zero column, its weight the slack)
        n_blocks = n_free + len(sizes)
        zero_col = np.zeros((g.size, n_blocks))
        AA = np.concatenate([zero_col, A], axis=1)
        blk = np.concatenate(
            [np.arange(n_blocks), np.arange(n_free), np.repeat(np.arange(n_free, n_blocks), sizes)]
        )
        w0 = np.concatenate([np.zeros(n_blocks), x0])
        sums = np.bincount(blk[n_blocks:], weights=x0, minlength=n_blocks)
        w0[:n_blocks] = np.clip(1.0 - sums, 0.0, None)
        w0[w0 < 1e-14] = 0.0
        w0 /= np.bincount(blk, weights=w0, minlength=n_blocks)[blk]
        w, _, ok = _min_norm_blocks(b, AA, blk, w0)
        if ok:
            z = w[n_blocks:]
    if z is None:
        z = _slsqp_blocks(b, A, x0, n_free, sizes)
    v = (b + A @ z) * scale
    dist = float(np.linalg.norm(v))
    alpha_out = alpha.copy()
    alpha_out[free] = z[:n_free]
    start = n_free
    for (entries, pats, _), n in zip(groups, sizes, strict=True):
        w = z[start : start + n]
        alpha_out[list(entries)] = np.asarray(pats, dtype=np.float64).T @ w
        start += n
    return (dist, alpha_out) + ((v,) if vector else ())


def _slsqp_blocks(b, A, x0, n_free, sizes):
    """The same quadratic programme with scipy's SLSQP: ``min |b + A z|^2``, ``z`` in the box
    for the first ``n_free`` entries, each further block of ``sizes`` with ``z >= 0, sum <= 1``."""
    from scipy.optimize import minimize

    cons = []
    start = n_free
    for n in sizes:
        sl = slice(start, start + n)
        cons.append(
            {
                "type": "ineq",
                "fun": lambda z, sl=sl: 1.0 - z[sl].sum(),
                "jac": lambda z, sl=sl: -np.eye(len(z))[sl].sum(0),
            }
        )
        start += n
    bounds = [(0.0, 1.0)] * n_free + [(0.0, 1.0)] * sum(sizes)
    out = minimize(
        lambda z: 0.5 * float(np.sum((b + A @ z) ** 2)),
        x0,
        jac=lambda z: A.T @ (b + A @ z),
        bounds=bounds,
        constraints=cons,
        method="SLSQP",
        options={"ftol": 1e-30, "maxiter": 500},
    )
    z = np.clip(out.x, 0.0, 1.0)
    start = n_free
    for n in sizes:  # keep each group's weights on the simplex
        tot = z[start : start + n].sum()
        if tot > 1:
            z[start : start + n] /= tot
        start += n
    return z


def _masks(theta, spec, x, pin_tol, old=None):
    with torch.no_grad():
        _, zs = _forward(theta, spec, x)
    new = [z.abs() < pin_tol for z in zs]
    if old is not None:
        new = [a | b for a, b in zip(new, old, strict=True)]
    return new


def _coupled_groups(theta, spec, x, y, masks, max_group: int = 10, chunk: int = 128, loss=None):
    """Exact gradient changes of the training points pinned in two or more layers.

    For such a point ``mu`` with pinned entries ``G`` (``|G| <= max_group``; larger groups keep
    the box model), every non-empty pattern ``s`` of ``G`` gives the vertex
    ``grad l_mu(s on the upper piece) - grad l_mu(all on the lower piece)`` (``l_mu`` = the point's
    term of the loss, divided by P; ``loss`` default MSE). Returns :func:`kink_stationarity`'s
    ``groups``.
    """
    import itertools

    from ..train import get_loss

    loss = get_loss("mse") if loss is None else loss
    locs = [(l, int(i), int(u)) for l, m in enumerate(masks) for i, u in m.nonzero().tolist()]
    by_sample: dict[int, list[int]] = {}
    for k, (_, i, _) in enumerate(locs):
        by_sample.setdefault(i, []).append(k)
    P = x.shape[0]
    # one row per (point, pattern), the all-lower pattern first: the rows of one forward pass
    # are independent, so the Jacobian of the per-row losses holds every pattern's gradient
    rows, ups, todo = [], [[] for _ in masks], []
    for i, ks in sorted(by_sample.items()):
        if len({locs[k][0] for k in ks}) < 2 or len(ks) > max_group:
            continue
        pats = list(itertools.product((0, 1), repeat=len(ks)))  # (0, ..., 0) first
        todo.append((ks, len(rows), pats[1:]))
        for bits in pats:
            rows.append(i)
            for l, m in enumerate(masks):
                ups[l].append(torch.zeros(m.shape[1], dtype=torch.bool, device=m.device))
            for bit, k in zip(bits, ks, strict=True):
                if bit:
                    ups[locs[k][0]][-1][locs[k][2]] = True
    if not todo:
        return []
    idx = torch.as_tensor(rows, device=x.device)
    ub = [torch.stack(u) for u in ups]
    grads = np.empty((len(rows), theta.numel()))
    for c in range(0, len(rows), chunk):  # memory ~ chunk^2 x (widths): chunked
        sl = slice(c, c + chunk)
        xb, yb, mb = x[idx[sl]], y[idx[sl]], [m[idx[sl]] for m in masks]

        def losses(t, xb=xb, yb=yb, mb=mb, sl=sl):
            out, _ = _forward(t, spec, xb, mb, upper=[u[sl] for u in ub])
            return loss.per_sample(out, yb) / P

        grads[sl] = torch.func.jacrev(losses)(theta).cpu().numpy()  # [rows, N]
    groups = []
    for ks, r0, pats in todo:
        verts = grads[r0 + 1 : r0 + 1 + len(pats)] - grads[r0]
        groups.append((ks, np.array(pats), verts))
    return groups


def kink_point(
    theta,
    spec,
    x,
    y,
    l2: float,
    *,
    pin_tol: float = 1e-6,
    masks=None,
    stationarity: bool = True,
    loss=None,
) -> KinkPoint:
    """Pinned set, gradients and the stationarity measure ``s`` of one relu net.

    Args:
        theta: ``[N]`` flat parameters of one net (``[W0, b0, W1, b1, ...]``).
        spec: its :class:`~weightscape.nets.MLPSpec` (relu or leaky relu).
        x, y: training inputs ``[P, d]`` and targets (as for the MSE loss).
        l2: L2 coefficient of the objective.
        pin_tol: entries with ``|z| < pin_tol`` are pinned (absolute, units of ``z``).
        masks: a pinned set to use instead (as in :attr:`KinkPoint.masks`).
        stationarity: compute ``s`` (the coupled groups and the quadratic programme); if False,
            ``stationarity``, ``subgrad`` and ``alpha`` are NaN (:func:`_with_stationarity`
            fills them in later).
        loss: the data term's loss (:func:`weightscape.train.get_loss`; default MSE), e.g. the
            jamming study's quadratic hinge; the coupled groups use the same per-point loss.
    """
    lo, hi = _pieces(spec)
    theta = theta.detach()
    if masks is None:
        masks = _masks(theta, spec, x, pin_tol)
    eps = [torch.zeros_like(m, dtype=theta.dtype) for m in masks]
    with torch.enable_grad():
        t = theta.clone().requires_grad_(True)
        e = [v.clone().requires_grad_(True) for v in eps]
        obj, _ = _objective(t, spec, x, y, l2, masks, e, loss=loss)
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
    if K:
        _, sv, vh = torch.linalg.svd(normals, full_matrices=True)
        r = int((sv > 1e-10 * sv[0]).sum()) if sv.numel() and sv[0] > 0 else 0
        tangent = vh[r:].T
    else:
        tangent = torch.eye(N, dtype=theta.dtype, device=theta.device)
    per_layer = torch.stack([m.any(1) for m in masks]).sum(0)
    kp = KinkPoint(
        objective=float(obj.detach()),
        grad=g,
        subgrad=torch.full_like(g, math.nan),
        masks=tuple(masks),
        z=z,
        normals=normals,
        jumps=jumps,
        alpha=np.full(K, np.nan),
        stationarity=math.nan,
        tangent_grad=float((tangent.T @ g).norm()),
        tangent=tangent,
        n_coupled=int((per_layer >= 2).sum()),
    )
    return _with_stationarity(kp, theta, spec, x, y, loss) if stationarity else kp


def _with_stationarity(kp: KinkPoint, theta, spec, x, y, loss=None) -> KinkPoint:
    """``kp`` (from ``kink_point(..., stationarity=False)``) with ``s``, ``subgrad`` and
    ``alpha`` computed (``loss``: as in :func:`kink_point`)."""
    if not math.isnan(kp.stationarity):
        return kp
    groups = _coupled_groups(theta, spec, x, y, list(kp.masks), loss=loss)
    s, alpha, v = kink_stationarity(
        kp.grad.cpu().numpy(), kp.jumps.cpu().numpy(), groups, vector=True
    )
    return replace(
        kp,
        stationarity=s,
        alpha=alpha,
        subgrad=torch.as_tensor(v, dtype=kp.grad.dtype, device=kp.grad.device),
    )


def stratum_multipliers(kp: KinkPoint) -> torch.Tensor:
    """``[K]`` least-squares multipliers ``lambda`` of ``grad F_- + normals^T lambda = 0``."""
    if not kp.n_pinned:
        return kp.grad.new_zeros(0)
    return -(torch.linalg.pinv(kp.normals.T, rtol=1e-10) @ kp.grad)


def lagrangian_hessian(theta, spec, x, y, l2: float, masks, mult, loss=None) -> torch.Tensor:
    """``[N, N]`` Hessian of the Lagrangian ``F_- + sum_k mult_k z_k`` of the stratum ``masks``
    (``mult``: :func:`stratum_multipliers`; ``loss``: as in :func:`kink_point`). For a loss that
    is only piecewise C^2 in the outputs (the quadratic hinge: C^1 at a zero gap) it is the
    Hessian of the piece autograd evaluates (``relu'(0) = 0``: a gap at exactly 0 is on the
    satisfied side)."""

    def lag(t):
        obj, zs = _objective(t, spec, x, y, l2, masks, loss=loss)
        if mult.numel():
            zk = torch.cat([z[m] for z, m in zip(zs, masks, strict=True)])
            obj = obj + (mult * zk).sum()
        return obj

    return torch.func.jacrev(torch.func.jacrev(lag))(theta.detach())


def _kink_search(theta, step, spec, x, y, l2, masks, f0, max_breaks: int = 64, loss=None):
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
        where += [(l, *divmod(k, zl.shape[1])) for k in ok.tolist()]  # one host read
    taus = torch.cat(taus)
    order = torch.argsort(taus)[:max_breaks].tolist()
    taus_host = taus.tolist()
    best = (step.new_zeros(()), None, f0)
    for j in [*order, None]:
        tau = 1.0 if j is None else taus_host[j]
        f = _true_objective(theta + tau * step, spec, x, y, l2, loss)
        if f > best[2]:
            break
        best = (tau, None if j is None else where[j], f)
    tau, hit, f = best
    return tau * step, hit, f


def _release(theta, kp: KinkPoint, spec, x, y, l2, delta, loss=None):
    """Leave the kinks that block descent: a step along minus the minimal-norm subgradient.

    ``v`` (:attr:`KinkPoint.subgrad`, from :func:`kink_stationarity`) is the element of the
    subdifferential model nearest to 0, and ``d = -v`` the nonsmooth steepest-descent
    direction: its one-sided rate is ``-|v|^2`` for every piece. Optimality of ``alpha`` gives
    ``J_k . v = 0`` for ``0 < alpha_k < 1`` (those kinks stay pinned to first order), while the
    kinks at a bound are left towards the side that decreases ``F``. The step length makes the
    largest ``|dz_k|`` equal ``delta`` and is then multiplied by 4 while ``F`` keeps decreasing
    (halved down to ``delta / 8`` if ``F`` does not decrease at first).

    Returns ``(theta, masks)`` with the kinks now farther than ``delta / 16`` from 0 unpinned, or
    None when no step decreases ``F``.
    """
    d = -kp.subgrad
    rate = float((kp.normals @ d).abs().max()) if kp.n_pinned else 0.0
    if rate <= 0 or float(d.norm()) == 0:
        return None
    t = delta / rate
    f0 = _true_objective(theta, spec, x, y, l2, loss)
    best = None
    for h in (t, t / 2, t / 4, t / 8):
        f = _true_objective(theta + h * d, spec, x, y, l2, loss)
        if f < f0:
            best = (h, f)
            break
    if best is None:
        return None
    for _ in range(20):
        h = 4.0 * best[0]
        f = _true_objective(theta + h * d, spec, x, y, l2, loss)
        if f >= best[1]:
            break
        best = (h, f)
    new = theta + best[0] * d
    with torch.no_grad():
        _, zs = _forward(new, spec, x, kp.masks)
    masks = [m & (z.abs() < delta / 16) for m, z in zip(kp.masks, zs, strict=True)]
    return new, masks


def _true_objective(theta, spec, x, y, l2, loss=None) -> float:
    with torch.no_grad():
        return float(_objective(theta, spec, x, y, l2, loss=loss)[0])


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
    hessian_reuse: int = 3,
    log: list | None = None,
    loss=None,
) -> KinkPolish:
    """Newton (SQP) steps on the kink stratum until ``s < grad_tol`` (module docstring).

    Args:
        theta: ``[N]`` start (an L-BFGS end point).
        spec, x, y, l2: the net and objective (as for :func:`kink_point`).
        grad_tol: stop when the stationarity measure ``s`` is below this.
        pin_tol: pinning threshold on ``|z|``.
        max_steps: SQP steps at most.
        hessian: return the (exact) Lagrangian Hessian at the end point.
        hessian_reuse: a Lagrangian Hessian serves at most this many consecutive steps that end
            cut at a kink (1 = the exact Hessian at every step); a full step, a release, or a
            step that finds no decrease with an inherited Hessian gets the exact one.
        log: if a list, one ``(event, n_pinned, s, tangent_grad, F)`` tuple per step is appended
            (event ``newton``, ``newton-cut`` when cut at a kink, ``release``) and a last
            ``(reason, ...)`` with reason ``converged``, ``max_steps``, ``no-release`` (no
            one-sided descent rate is negative) or ``no-decrease``. ``s`` is NaN at steps where
            it cannot change a decision and was not computed (always there at the last entry).
        loss: the data term's loss (:func:`weightscape.train.get_loss`; default MSE). The
            quadratic hinge (study A) is C^1 in the outputs, so ``F`` stays C^1 across a gap
            ``Delta = 0`` and only the kinks of the activations are pinned; the Newton model
            uses the Hessian of the current piece (:func:`lagrangian_hessian`) and the line
            search keeps every step a decrease of the true ``F``.
    """
    check_positive("hessian_reuse", hessian_reuse, integer=True)

    def note(event):
        if log is not None:
            log.append((event, kp.n_pinned, kp.stationarity, kp.tangent_grad, kp.objective))

    def release(stop: str, allowed: bool = True) -> bool:
        """Take a release step (:func:`_release`) from the current point; False (logged as
        ``stop``) when it is not ``allowed`` or no step decreases F."""
        nonlocal theta, kp, steps, H
        rel = _release(theta, kp, spec, x, y, l2, 20.0 * pin_tol, loss) if allowed else None
        if rel is None:
            note(stop)
            return False
        theta, masks = rel
        masks = _masks(theta, spec, x, pin_tol, masks)
        kp = kink_point(theta, spec, x, y, l2, masks=masks, stationarity=False, loss=loss)
        steps += 1
        H = None
        note("release")
        return True

    theta = theta.detach().clone()
    kp = kink_point(theta, spec, x, y, l2, pin_tol=pin_tol, stationarity=False, loss=loss)
    H = None
    age = 0
    steps = 0
    restored = False
    for it in range(max_steps + 1):
        # s is needed only where it can change a decision: s >= |P_T grad| (the jumps are
        # normal to T) and s <= |grad| (alpha = 0), so with |P_T grad| >= 2 grad_tol and
        # |P_T grad| >= 0.01 |P_N grad| the point is neither converged nor due for a release
        t_grad = kp.tangent_grad
        n_grad = math.sqrt(max(float(kp.grad @ kp.grad) - t_grad**2, 0.0))
        if it == max_steps or t_grad < max(2.0 * grad_tol, 0.01 * n_grad):
            kp = _with_stationarity(kp, theta, spec, x, y, loss)
        on_kinks = not kp.n_pinned or float(kp.z.abs().max()) < 1e-12
        if (kp.stationarity < grad_tol and (on_kinks or restored)) or it == max_steps:
            # converged; at most one more step puts the pinned entries back on their kinks to
            # round-off (the restoration is quadratic), so that s is the Clarke measure
            note("converged" if kp.stationarity < grad_tol else "max_steps")
            break
        restored = kp.stationarity < grad_tol
        normal = math.sqrt(max(kp.stationarity**2 - t_grad**2, 0.0))
        if not restored and kp.n_pinned and t_grad < max(grad_tol, 0.01 * normal):
            # stationary on the stratum, but kinks block descent: leave them
            if not release("no-release"):
                break
            continue
        if H is None or age >= hessian_reuse:
            H = lagrangian_hessian(theta, spec, x, y, l2, kp.masks, stratum_multipliers(kp), loss)
            age = 0
        Z = kp.tangent
        g = kp.grad
        if kp.n_pinned:
            s_n = -torch.linalg.pinv(kp.normals, rtol=1e-10) @ kp.z
        else:
            s_n = torch.zeros_like(theta)
        f0 = _true_objective(theta, spec, x, y, l2, loss)
        while True:
            e, V = torch.linalg.eigh(Z.T @ H @ Z)
            rhs = V.T @ (Z.T @ (g + H @ s_n))
            mu = 0.0 if bool(e[0] > 0) else 2.0 * float(-e[0]) + 1e-12
            for _ in range(20):
                step = s_n - Z @ (V @ (rhs / (e + mu)))
                step, hit, f1 = _kink_search(theta, step, spec, x, y, l2, kp.masks, f0, loss=loss)
                if f1 <= f0 + 1e-13 * abs(f0) and float(step.norm()) > 0:
                    break
                mu = max(10.0 * mu, 1e-6 * float(e.abs().max()))
            else:
                if age > 0:  # an inherited Hessian: retry with the exact one
                    H = lagrangian_hessian(
                        theta, spec, x, y, l2, kp.masks, stratum_multipliers(kp), loss
                    )
                    age = 0
                    continue
                hit = "none"
            break
        if hit == "none":
            # no damped step on the stratum decreases F: leave it along the nonsmooth steepest
            # descent direction instead (when s is not small), else stop
            kp = _with_stationarity(kp, theta, spec, x, y, loss)
            if not release("no-decrease", bool(kp.n_pinned and kp.stationarity >= grad_tol)):
                break
            continue
        theta = theta + step
        steps += 1
        masks = _masks(theta, spec, x, pin_tol, old=kp.masks)
        if hit is not None:
            masks[hit[0]][hit[1], hit[2]] = True
        kp = kink_point(theta, spec, x, y, l2, masks=masks, stationarity=False, loss=loss)
        # a step cut at a kink keeps its Hessian (up to max_age steps): the stratum gained an
        # entry and theta moved little; a full step gets the exact one (quadratic convergence)
        age += 1
        if hit is None:
            H = None
        note("newton" if hit is None else "newton-cut")
    kp = _with_stationarity(kp, theta, spec, x, y, loss)
    if hessian and (H is None or age > 0):
        H = lagrangian_hessian(theta, spec, x, y, l2, kp.masks, stratum_multipliers(kp), loss)
    return KinkPolish(theta=theta, point=kp, hessian=H if hessian else None, steps=steps)
