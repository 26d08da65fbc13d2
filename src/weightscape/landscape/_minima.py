"""Minima at larger Lambda: batched projected gradient descent with Newton polishing.

Many restarts per disorder sample descend together (one matrix product per step for the whole
batch); converged restarts leave the batch, so the tail of slow restarts costs only its own size.
Projected (Riemannian) gradient descent on the sphere ``|w|^2 = Lambda``:

.. math::
    w \\leftarrow \\sqrt{\\Lambda}\\, \\frac{w - \\eta\\,\\operatorname{grad} L(w)}
        {|w - \\eta\\,\\operatorname{grad} L(w)|},

until ``|grad L| < grad_tol``. GD converges only linearly inside a basin (rate ``1 - eta
lambda_min``, thousands of steps near marginal minima), so by default a point whose gradient norm
is below ``newton_below`` and whose Riemannian Hessian is positive definite takes Riemannian
Newton steps instead (quadratic convergence), each checked at the next evaluation and undone, with
a GD step instead, if it raised the energy or did not shrink the gradient. With the symmetric
flattening (:func:`symmetric_flattening`) the one matrix product of a GD step also gives the
Euclidean Hessian (:class:`_ColumnModel`), so a Newton step costs about one GD step plus a batched
``lam x lam`` Cholesky solve. Then optional Newton polish steps (accepted per point only if they
lower the gradient norm without raising the energy) and the tangent Hessian of every end point
(index, spectrum, log-volume).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError, check_positive
from ._analysis import Clusters, LineFit, distinct_points, fit_line, pairwise_overlaps
from ._model import SpinGlass, SpinGlassBase
from ._monomials import multinomial_counts, multisets, product_ranks
from ._sphere import log_volume, project_to_sphere, tangent_hessian
from ._stationary import newton_step

__all__ = [
    "DescentConfig",
    "MinimaSet",
    "MinimaSummary",
    "default_step",
    "descend",
    "summarize_minima",
    "symmetric_flattening",
]


def default_step(H: int) -> float:
    """``1.5 / (2 sqrt(H(H-1)) + 2H)``: the largest Riemannian Hessian eigenvalue at a minimum is
    about ``R + H |u|`` with ``R = 2 sqrt(H(H-1))`` and ``|u| <= E_0 < 2``, so ``eta * lambda_max <
    1.5 < 2`` and GD is stable near every minimum while close to the fastest fixed step."""
    return 1.5 / (2.0 * math.sqrt(H * (H - 1)) + 2.0 * H)


@dataclass(frozen=True)
class DescentConfig:
    """Settings of :func:`descend`.

    Attributes:
        step: GD step size ``eta`` (``None``: :func:`default_step`).
        grad_tol: stop a restart when ``|grad L| < grad_tol`` (absolute).
        max_steps: iterations (GD + Newton steps) at most; restarts still above ``grad_tol``
            are marked unconverged.
        newton: Riemannian Newton steps inside the descent for points in a basin (gradient norm
            below ``newton_below`` and positive definite Riemannian Hessian), with a fallback
            to GD when a Newton step raises the energy or does not shrink the gradient
            (:class:`SpinGlass` only; the dense reference path always runs plain GD).
        newton_below: gradient-norm threshold under which Newton steps are tried (absolute).
            Measured (2026-12-03, 3 x 200 seeded restarts at each of (lam, H) = (9, 3), (8, 4),
            (7, 5), (12, 4), (6, 6), (15, 3)): with 0.3 or below every restart ended at its GD
            minimum; with 1 (or Newton wherever the Hessian is positive definite) 2-7 restarts
            per 600 ended at another minimum (a Newton step across a basin boundary inside a
            convex region). At lam = 60, H = 4 (``benchmarks/spin_restarts.py``, 1000 restarts)
            0.3 sent 1 restart to another minimum and 0.1 none; the default 0.1 cuts the
            evaluations there 4.1x (885 376 GD steps -> 210 851 GD + 4917 Newton steps).
        polish_steps: Newton steps after the descent (0 = none).
        hessian: compute tangent Hessians of the end points (index, spectrum, log-volume).
    """

    step: float | None = None
    grad_tol: float = 1e-8
    max_steps: int = 100_000
    newton: bool = True
    newton_below: float = 0.1
    polish_steps: int = 2
    hessian: bool = True

    def __post_init__(self):
        if self.step is not None:
            check_positive("step", self.step)
        check_positive("grad_tol", self.grad_tol)
        check_positive("max_steps", self.max_steps, integer=True)
        check_positive("newton_below", self.newton_below)
        if not isinstance(self.newton, bool):
            raise ConfigError(f"newton={self.newton!r} must be True or False")
        check_positive("polish_steps", self.polish_steps, integer=True, allow_zero=True)


@dataclass
class MinimaSet:
    """End points of the restarts of one disorder sample (B restarts).

    Attributes:
        lam, H: model size and degree.
        points: ``[B, lam]``.
        energy: ``[B]`` energy per weight u.
        grad_norm: ``[B]`` Riemannian gradient norm.
        steps: ``[B]`` GD steps taken.
        converged: ``[B]`` the descent reached ``grad_tol``.
        hessian_eigs: ``[B, lam - 1]`` tangent Hessian eigenvalues (ascending) or ``None``.
        newton_steps: ``[B]`` Newton steps taken inside the descent (rejected ones included;
            zeros without ``DescentConfig.newton``), or ``None``.
    """

    lam: int
    H: int
    points: np.ndarray
    energy: np.ndarray
    grad_norm: np.ndarray
    steps: np.ndarray
    converged: np.ndarray
    hessian_eigs: np.ndarray | None = None
    newton_steps: np.ndarray | None = None

    @property
    def index(self) -> np.ndarray:
        """Number of negative Hessian eigenvalues, ``[B]`` (needs ``hessian_eigs``)."""
        if self.hessian_eigs is None:
            raise ConfigError("index needs hessian_eigs; run descend with hessian=True")
        return (self.hessian_eigs < 0).sum(1)

    @property
    def log_volume(self) -> np.ndarray:
        """``-1/2 sum log lambda_i`` for minima (index 0), NaN elsewhere, ``[B]``."""
        lv = log_volume(torch.as_tensor(self.hessian_eigs)).numpy()
        return np.where(self.index == 0, lv, np.nan)

    @property
    def is_minimum(self) -> np.ndarray:
        """Converged with index 0, ``[B]``."""
        return self.converged & (self.index == 0)

    def to_frame(self) -> pd.DataFrame:
        """One row per restart: ``energy, grad_norm, steps, converged[, newton_steps][, index,
        log_volume]``."""
        df = pd.DataFrame(
            {
                "energy": self.energy,
                "grad_norm": self.grad_norm,
                "steps": self.steps,
                "converged": self.converged,
            }
        )
        if self.newton_steps is not None:
            df["newton_steps"] = self.newton_steps
        if self.hessian_eigs is not None:
            df["index"] = self.index
            df["log_volume"] = self.log_volume
        return df


def symmetric_flattening(model: SpinGlass) -> torch.Tensor:
    """The flattening of the *symmetric* tensor, ``M^s [D, P_a, P_b]``.

    ``M^s_{AB} = o(A) o(B) S_{A+B}`` with ``S_alpha = c_alpha / o(alpha)`` the entries of the
    symmetric tensor (``L = s sum_{i_1..i_H} S_{i_1..i_H} w_{i_1}..w_{i_H}``) and ``o(A) =
    |A|!/prod_k A_k!`` the number of ordered tuples of the multiset ``A``. It represents the same
    form as :attr:`SpinGlass.flattening` (``phi_a^T M^s phi_b = F``), but its rows are contractions
    of ``S``: ``(M^s phi_b(w))_A = o(A) T_A(w)`` with ``T(w) = S[., ..., ., w, ..., w]`` (``b``
    slots filled with ``w``, ``a`` free). Same dtype/device as the coefficients.
    """
    lam, a, b, c = model.lam, model.a, model.b, model.coefficients
    sym = c / torch.as_tensor(
        multinomial_counts(multisets(lam, model.H)), dtype=c.dtype, device=c.device
    )
    if b == 0:  # M^s_A = o(A) S_A = c_A
        return c[:, :, None]
    rows_a, rows_b = multisets(lam, a), multisets(lam, b)
    targets = product_ranks(lam, a, b)
    oa = torch.as_tensor(multinomial_counts(rows_a), dtype=c.dtype, device=c.device)
    ob = torch.as_tensor(multinomial_counts(rows_b), dtype=c.dtype, device=c.device)
    return sym[:, torch.as_tensor(targets, device=c.device)] * oa[:, None] * ob[None, :]


class _ColumnModel:
    r"""Energy, Euclidean gradient and Hessian of one disorder sample of a :class:`SpinGlass` for
    points stored as *columns*, ``w^T [lam, B]``, all from one matrix product.

    With the symmetric flattening ``M^s`` (:func:`symmetric_flattening`) and ``y = M^s phi_b(w)``
    (``[P_a, B]``, the only GEMM), ``y_A = o(A) T_A`` where ``T = S[., .., w, .., w]`` has ``a``
    free slots. Summing over ordered tuples instead of multisets,

    .. math::
        L = s\, y \cdot \phi_a, \qquad
        \nabla L = s \frac{H}{a} J_a^T y, \qquad
        \nabla^2 L = s \frac{H (H-1)}{a (a-1)} \sum_A y_A \nabla^2 \phi_A(w),

    because ``sum_A y_A phi_A = T[w, .., w] = S[w, .., w]``, ``sum_A y_A d phi_A/dw_i = a
    T[i, w, ..] = (a/H) dL/dw_i / s`` and ``sum_A y_A d^2 phi_A / dw_i dw_j = a (a-1) T[i, j, w,
    ..] = a (a-1) / (H (H-1)) d^2 L/dw_i dw_j / s`` (``S`` symmetric; for ``a = 1``, i.e. H = 2,
    the Hessian is the constant ``2 s M^s``). The gradient ``J_a^T y`` is a gather ``G[i, A'] =
    (A'_i + 1) y_{A' + i}`` and a reduction ``sum_A' G[i, A'] phi_A'(w)`` (``lam P_(a-1)``
    multiply-adds per point; faster than the scatter-add of :meth:`SpinGlass._jt`); the Hessian
    the sparse second-derivative table of the
    degree-``a`` monomials applied to the *same* ``y`` (``~ lam^2 (a-1)`` entries per point, e.g.
    3600 at lam = 60, H = 4, against ``P_a P_b = 1830^2`` multiply-adds of the GEMM). So an
    energy + gradient + Hessian evaluation costs one GD step plus ``O(lam^2)`` per point, and a
    Newton step adds a batched ``lam x lam`` Cholesky solve (``lam^3/3`` flops). For odd H the
    one GEMM replaces the two of ``phi_a^T M phi_b``'s gradient (``M phi_b`` and ``phi_a^T M``).
    Gathers and scatters run along the leading axis (contiguous rows of length B)."""

    def __init__(self, model: SpinGlass):
        self.a, self.b, self.H, self.lam = model.a, model.b, model.H, model.lam
        self.scale = model.scale
        self.M = symmetric_flattening(model)[0]  # [P_a, P_b]
        # y = M phi_b is formed as (phi_b^T M^T)^T: with the points as the short side of a
        # row-major GEMM, MKL runs 1.2-2x faster at B = 8-256 points (measured at lam = 60,
        # H = 4; equal at B = 1000), the batch sizes of the descent's tail. M^s is exactly
        # symmetric for a = b (products of the same multiplicities), so M^T = M needs no copy.
        sym = self.a == self.b and torch.equal(self.M, self.M.T)
        self.Mt = self.M if sym else self.M.T.contiguous()  # [P_b, P_a]
        self.rows = {
            d: model._table("rows", d)["rows"]
            for d in {self.a, self.b, self.a - 1, self.a - 2}
            if d > 0
        }
        # J_a^T y as a dense gather: G[i, A'] = (A'_i + 1) y_{A' + i}, grad_i ~ sum_A' G[i, A']
        # phi_A'(w). Each (variable i, degree a-1 monomial A') pair is one entry of the d1 table,
        # so the table fills the [lam, P_(a-1)] index map exactly once (no scatter-add).
        d1 = model._table("d1", self.a)
        p1 = len(multisets(self.lam, self.a - 1))
        pos = d1["var"] * p1 + d1["target"]
        self.g_index = torch.empty(self.lam * p1, dtype=torch.int64, device=model.device)
        self.g_index[pos] = d1["source"]
        self.g_coef = torch.empty(self.lam * p1, dtype=model.dtype, device=model.device)
        self.g_coef[pos] = d1["coef"]
        self.g_coef = self.g_coef[:, None]
        self.p1 = p1
        self._model = model
        self._d2 = None

    def _phi(self, wt: torch.Tensor, d: int) -> torch.Tensor:
        if d == 0:
            return torch.ones(1, wt.shape[1], dtype=wt.dtype, device=wt.device)
        r = self.rows[d]
        return torch.index_select(wt, 0, r.reshape(-1)).reshape(*r.shape, wt.shape[1]).prod(1)

    def __call__(self, wt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(y [P_a, B], L [B], grad [lam, B])`` at ``wt [lam, B]``."""
        a = self.a
        pb = self._phi(wt, self.b)
        y = (pb.T @ self.Mt).T.contiguous()  # = M pb, [P_a, B]
        pa = pb if a == self.b else self._phi(wt, a)
        energy = self.scale * (y * pa).sum(0)
        gmat = (torch.index_select(y, 0, self.g_index) * self.g_coef).view(self.lam, self.p1, -1)
        g = (gmat * self._phi(wt, a - 1)[None]).sum(1)
        return y, energy, (self.scale * self.H / a) * g

    def hessian(self, wt: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Euclidean Hessian ``[B, lam, lam]`` at ``wt [lam, B]`` from ``y`` of :meth:`__call__`."""
        lam, a, H, B = self.lam, self.a, self.H, wt.shape[1]
        if a == 1:
            return (2.0 * self.scale * self.M).expand(B, lam, lam)
        if self._d2 is None:
            t = self._model._table("d2", a)
            self._d2 = (t["source"], t["target"], t["coef"][:, None], t["flat"])
        src, tgt, coef, flat = self._d2
        contrib = (
            torch.index_select(y, 0, src) * coef * torch.index_select(self._phi(wt, a - 2), 0, tgt)
        )
        out = torch.zeros(lam * lam, B, dtype=wt.dtype, device=wt.device)
        out.index_add_(0, flat, contrib)
        fac = self.scale * H * (H - 1) / (a * (a - 1))
        return fac * out.T.reshape(B, lam, lam)


def _newton_directions(
    cm: _ColumnModel, wt: torch.Tensor, y: torch.Tensor, g: torch.Tensor, gr: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Riemannian Newton steps at ``wt [lam, n]`` (columns on the sphere).

    Solves ``K xi = -grad L`` with ``K = P (h - mu I) P + n n^T`` (``n = w/|w|``, ``P = I - n
    n^T``): ``K`` maps the tangent space to itself (there it is the Riemannian Hessian) and ``n``
    to ``n``, so it is positive definite iff the Riemannian Hessian is, and then ``xi`` is
    tangent. Returns ``(xi [lam, n], ok [n])`` with ``ok`` where the batched Cholesky succeeded
    (``xi`` is zero elsewhere)."""
    lam = wt.shape[0]
    h = cm.hessian(wt, y)  # [n, lam, lam]
    w = wt.T  # [n, lam]
    r2 = (w * w).sum(-1, keepdim=True)
    mu = (w * g.T).sum(-1, keepdim=True) / r2
    hw = (h @ w[..., None])[..., 0]  # h n |w|
    whw = (hw * w).sum(-1, keepdim=True) / r2
    eye = torch.eye(lam, dtype=w.dtype, device=w.device)
    # P h P = h - n (h n)^T - (h n) n^T + (n.h n) n n^T, then - mu P + n n^T
    nn = w[:, :, None] * w[:, None, :] / r2[..., None]
    k = (
        h
        - (w[:, :, None] * hw[:, None, :] + hw[:, :, None] * w[:, None, :]) / r2[..., None]
        + (whw[..., None] + mu[..., None] + 1.0) * nn
        - mu[..., None] * eye
    )
    k = 0.5 * (k + k.transpose(-1, -2))
    chol, info = torch.linalg.cholesky_ex(k)
    ok = info == 0
    xi = torch.zeros_like(w)
    if bool(ok.any()):
        sol = torch.cholesky_solve(-gr.T[ok][..., None], chol[ok])[..., 0]
        sol = sol - (sol * w[ok]).sum(-1, keepdim=True) / r2[ok] * w[ok]
        xi[ok] = sol
    return xi.T, ok


def _descend_columns(
    model: SpinGlass,
    w: torch.Tensor,
    eta: float,
    tol: float,
    max_steps: int,
    newton_below: float | None,
):
    """Batched projected GD for a :class:`SpinGlass`, points as columns, with damped Riemannian
    Newton steps for points in a basin (``newton_below``: ``None`` = plain GD).

    Each iteration evaluates every active point once (:class:`_ColumnModel`). A point takes a
    Newton step ``w <- R(w + t xi)`` (``R``: back to the sphere, ``xi`` from
    :func:`_newton_directions`, damping ``t`` per point, 1 at first) when ``|grad L| < gate``
    (``gate = newton_below`` at first) and its Riemannian Hessian is positive definite (batched
    Cholesky success); otherwise a GD step. The next evaluation checks every Newton step: it is
    accepted only if the energy did not rise (beyond ``1e-12 (1 + |L|)``) and the gradient norm
    shrank; then ``t <- min(1, 2 t)``. A rejected step is retried from the same point with ``t /
    2``; below ``t = 1/16`` the point gives up: it takes the GD step from where it was, its gate
    drops to half its gradient norm there and ``t`` returns to 1. Near a minimum ``t = 1`` is
    accepted and the convergence is quadratic. Returns ``(w [B, lam], gd_steps [B],
    newton_steps [B], converged [B], rejected [B])`` (``rejected``: Newton steps undone); the
    iterations of a point (GD + Newton, rejected ones included) are at most ``max_steps``.
    """
    cm = _ColumnModel(model)
    B, lam = w.shape
    out = w.clone()
    # step counters on the device, updated with index_add_ (no host read per step)
    gd_steps = torch.zeros(B, dtype=torch.int64, device=w.device)
    nt_steps = torch.zeros(B, dtype=torch.int64, device=w.device)
    rejected = torch.zeros(B, dtype=torch.int64, device=w.device)
    done = torch.zeros(B, dtype=torch.bool, device=w.device)
    active = torch.arange(B, device=w.device)
    cur = w.T.contiguous()  # [lam, B]
    r = math.sqrt(lam)
    use_newton = newton_below is not None
    opts = {"dtype": w.dtype, "device": w.device}
    # per active point: Newton gate, damping, whether the last step was Newton, its origin
    gate = torch.full((B,), newton_below if use_newton else 0.0, **opts)
    damp = torch.ones(B, **opts)
    was_newton = torch.zeros(B, dtype=torch.bool, device=w.device)
    prev_w, prev_xi, prev_gr = torch.zeros_like(cur), torch.zeros_like(cur), torch.zeros_like(cur)
    prev_e, prev_gn = torch.zeros(B, **opts), torch.zeros(B, **opts)
    for it in range(max_steps + 1):
        y, energy, g = cm(cur)
        mu = (cur * g).sum(0) / (cur * cur).sum(0)
        gr = g - mu * cur
        gn = gr.norm(dim=0)
        fresh = torch.ones_like(was_newton)  # y, g are those of cur
        retry = torch.zeros_like(was_newton)
        if use_newton and bool(was_newton.any()):
            bad = was_newton & ((energy > prev_e + 1e-12 * (1.0 + prev_e.abs())) | ~(gn < prev_gn))
            damp = torch.where(was_newton & ~bad, torch.clamp(2.0 * damp, max=1.0), damp)
            if bool(bad.any()):
                damp = torch.where(bad, 0.5 * damp, damp)
                retry = bad & (damp >= 1.0 / 16)
                rejected.index_add_(0, active, bad.to(torch.int64))
                give_up = bad & ~retry
                # the point is back where the rejected step started
                cur[:, bad] = prev_w[:, bad]
                gr[:, bad] = prev_gr[:, bad]
                gn = torch.where(bad, prev_gn, gn)
                energy = torch.where(bad, prev_e, energy)
                gate = torch.where(give_up, torch.minimum(gate, 0.5 * prev_gn), gate)
                damp = torch.where(give_up, torch.ones_like(damp), damp)
                fresh = ~bad
        ok = gn < tol
        if bool(ok.any()):
            idx = active[ok]
            out[idx] = cur[:, ok].T
            done[idx] = True
            keep = ~ok
            active, cur, gr, y, g = active[keep], cur[:, keep], gr[:, keep], y[:, keep], g[:, keep]
            prev_w, prev_xi, prev_gr = prev_w[:, keep], prev_xi[:, keep], prev_gr[:, keep]
            gn, energy, prev_e, prev_gn = gn[keep], energy[keep], prev_e[keep], prev_gn[keep]
            gate, damp, fresh, retry = gate[keep], damp[keep], fresh[keep], retry[keep]
        if len(active) == 0 or it == max_steps:
            break
        nxt = cur - eta * gr
        newton = retry.clone()
        if use_newton:
            if bool(retry.any()):
                nxt[:, retry] = prev_w[:, retry] + damp[retry] * prev_xi[:, retry]
            cand = fresh & (gn < gate)
            if bool(cand.any()):
                ci = torch.nonzero(cand)[:, 0]
                xi, pd = _newton_directions(cm, cur[:, ci], y[:, ci], g[:, ci], gr[:, ci])
                ci, xi = ci[pd], xi[:, pd]
                nxt[:, ci] = cur[:, ci] + damp[ci] * xi
                prev_w[:, ci], prev_xi[:, ci], prev_gr[:, ci] = cur[:, ci], xi, gr[:, ci]
                prev_e[ci], prev_gn[ci] = energy[ci], gn[ci]
                newton[ci] = True
        was_newton = newton
        nt_steps.index_add_(0, active, newton.to(torch.int64))
        gd_steps.index_add_(0, active, (~newton).to(torch.int64))
        cur = nxt * (r / nxt.norm(dim=0))
    if len(active):
        out[active] = cur.T
    return out, gd_steps.cpu(), nt_steps.cpu(), done.cpu(), rejected.cpu()


def _gd_rows(model: SpinGlassBase, w: torch.Tensor, eta: float, tol: float, max_steps: int):
    """Plain projected GD through ``model._euclidean`` (points as rows; the reference path)."""
    B = w.shape[0]
    w = w.clone()
    steps = torch.full((B,), max_steps, dtype=torch.int64)
    done = torch.zeros(B, dtype=torch.bool)
    active = torch.arange(B, device=w.device)
    cur = w
    for it in range(max_steps + 1):
        _, g, _ = model._euclidean(cur[None], 1)
        g = g[0]
        mu = (cur * g).sum(-1, keepdim=True) / (cur * cur).sum(-1, keepdim=True)
        gr = g - mu * cur
        ok = gr.norm(dim=-1) < tol
        if bool(ok.any()):
            idx = active[ok]
            w[idx] = cur[ok]
            steps[idx.cpu()] = it
            done[idx.cpu()] = True
            keep = ~ok
            active, cur, gr = active[keep], cur[keep], gr[keep]
        if len(active) == 0 or it == max_steps:
            break
        cur = project_to_sphere(cur - eta * gr)
    if len(active):
        w[active] = cur
    return w, steps, done


def descend(
    model: SpinGlassBase,
    w0: torch.Tensor,
    config: DescentConfig | None = None,
) -> list[MinimaSet]:
    """Batched projected GD (+ Newton steps in the basins, + Newton polish) from ``w0 [D, B,
    lam]``; one :class:`MinimaSet` per disorder sample (see :class:`DescentConfig`)."""
    cfg = config or DescentConfig()
    if not isinstance(cfg, DescentConfig):
        raise ConfigError(f"config must be a DescentConfig, got {type(cfg).__name__}")
    w0, _ = model._prepare(w0)
    w0 = project_to_sphere(w0)
    eta = cfg.step if cfg.step is not None else default_step(model.H)
    out = []
    for d in range(model.n_disorder):
        sub = model.select(d)
        if isinstance(sub, SpinGlass):
            below = cfg.newton_below if cfg.newton else None
            w, steps, nsteps, conv, _ = _descend_columns(
                sub, w0[d], eta, cfg.grad_tol, cfg.max_steps, below
            )
        else:
            w, steps, conv = _gd_rows(sub, w0[d], eta, cfg.grad_tol, cfg.max_steps)
            nsteps = torch.zeros_like(steps)
        w = w[None]
        energy = sub.energy(w)
        gnorm = sub.riemannian_gradient(w).norm(dim=-1)
        for _ in range(cfg.polish_steps):
            w_new, _ = newton_step(sub, w)
            e_new = sub.energy(w_new)
            g_new = sub.riemannian_gradient(w_new).norm(dim=-1)
            # Accept only steps that stay in the basin: lower gradient, energy not raised.
            accept = (g_new < gnorm) & (
                e_new <= energy + 1e-9 * abs(float(energy.abs().max())) + 1e-12
            )
            w = torch.where(accept[..., None], w_new, w)
            energy = torch.where(accept, e_new, energy)
            gnorm = torch.where(accept, g_new, gnorm)
        eigs = None
        if cfg.hessian:
            _, g, h = sub.evaluate(w, 2)
            eigs = torch.linalg.eigvalsh(tangent_hessian(w, g, h))[0].cpu().numpy()
        out.append(
            MinimaSet(
                lam=model.lam,
                H=model.H,
                points=w[0].cpu().numpy(),
                energy=(energy[0] / model.lam).cpu().numpy(),
                grad_norm=gnorm[0].cpu().numpy(),
                steps=steps.numpy(),
                converged=conv.numpy() | (gnorm[0] < cfg.grad_tol).cpu().numpy(),
                hessian_eigs=eigs,
                newton_steps=nsteps.numpy(),
            )
        )
    return out


@dataclass(frozen=True)
class MinimaSummary:
    """Distinct minima of one disorder sample and their geometry.

    Attributes:
        n_restarts, n_minima_found: restarts, and those ending at a minimum (converged, index 0).
        clusters: :class:`Clusters` over the minima found (``±w`` identified for even H).
        energy: ``[K]`` energy per weight of each distinct minimum.
        log_volume: ``[K]`` Hessian log-volume of each distinct minimum.
        overlaps: ``[K (K-1) / 2]`` overlaps ``q_ab = w_a.w_b / lam`` between distinct minima
            (absolute values for even H, where the sign of a class is arbitrary).
        slope: fit of ``log_volume / lam`` against energy over the distinct minima (None if < 3).
        best_fraction: fraction of minima restarts that reached the lowest distinct minimum.
    """

    n_restarts: int
    n_minima_found: int
    clusters: Clusters
    energy: np.ndarray
    log_volume: np.ndarray
    overlaps: np.ndarray
    slope: LineFit | None
    best_fraction: float

    @property
    def n_distinct(self) -> int:
        return self.clusters.n_clusters


#: Default clustering tolerance of :func:`summarize_minima` (relative to ``sqrt(lam)``): two
#: minima are one when closer than ``MINIMA_CLUSTER_TOL * sqrt(lam)``. GD end points stop
#: ~``grad_tol / lambda_min`` from the minimum, far inside this; distinct minima of the spherical
#: spin glass are O(sqrt(lam)) apart. Benchmarks and studies read it from here.
MINIMA_CLUSTER_TOL: float = 1e-5


def summarize_minima(mset: MinimaSet, *, cluster_tol: float = MINIMA_CLUSTER_TOL) -> MinimaSummary:
    """Distinct minima (clusters closer than ``cluster_tol * sqrt(lam)``), overlaps, log-volume
    slope. ``±w`` are identified for even H (both are minima with the same energy)."""
    check_positive("cluster_tol", cluster_tol)
    keep = mset.is_minimum
    pts = mset.points[keep]
    even = mset.H % 2 == 0
    if len(pts) == 0:
        empty = Clusters(
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
        )
        return MinimaSummary(
            len(mset.points), 0, empty, np.zeros(0), np.zeros(0), np.zeros(0), None, 0.0
        )
    cl = distinct_points(pts, cluster_tol * math.sqrt(mset.lam), sign_symmetric=even)
    reps = cl.representatives
    energy = mset.energy[keep][reps]
    logvol = mset.log_volume[keep][reps]
    overlaps = (
        pairwise_overlaps(pts[reps], mset.lam, absolute=even) if len(reps) > 1 else np.zeros(0)
    )
    slope = fit_line(energy, logvol / mset.lam) if len(reps) >= 3 else None
    best = int(np.argmin(energy))
    return MinimaSummary(
        n_restarts=len(mset.points),
        n_minima_found=int(keep.sum()),
        clusters=cl,
        energy=energy,
        log_volume=logvol,
        overlaps=overlaps,
        slope=slope,
        best_fraction=float(cl.counts[best] / keep.sum()),
    )
