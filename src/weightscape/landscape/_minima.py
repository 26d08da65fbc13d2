"""Minima at larger Lambda: batched projected gradient descent with Newton polishing.

Many restarts per disorder sample descend together (one matrix product per step for the whole
batch); converged restarts leave the batch, so the tail of slow restarts costs only its own size.
Projected (Riemannian) gradient descent on the sphere ``|w|^2 = Lambda``:

.. math::
    w \\leftarrow \\sqrt{\\Lambda}\\, \\frac{w - \\eta\\,\\operatorname{grad} L(w)}
        {|w - \\eta\\,\\operatorname{grad} L(w)|},

until ``|grad L| < grad_tol``; then optional Riemannian Newton steps (accepted per point only if
they lower the gradient norm without raising the energy) and the tangent Hessian of every end point
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
from ._sphere import log_volume, project_to_sphere, tangent_hessian
from ._stationary import newton_step

__all__ = [
    "DescentConfig",
    "MinimaSet",
    "MinimaSummary",
    "default_step",
    "descend",
    "summarize_minima",
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
        max_steps: GD steps at most; restarts still above ``grad_tol`` are marked unconverged.
        polish_steps: Newton steps after GD (0 = none).
        hessian: compute tangent Hessians of the end points (index, spectrum, log-volume).
    """

    step: float | None = None
    grad_tol: float = 1e-8
    max_steps: int = 100_000
    polish_steps: int = 2
    hessian: bool = True

    def __post_init__(self):
        if self.step is not None:
            check_positive("step", self.step)
        check_positive("grad_tol", self.grad_tol)
        check_positive("max_steps", self.max_steps, integer=True)
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
        converged: ``[B]`` GD reached ``grad_tol``.
        hessian_eigs: ``[B, lam - 1]`` tangent Hessian eigenvalues (ascending) or ``None``.
    """

    lam: int
    H: int
    points: np.ndarray
    energy: np.ndarray
    grad_norm: np.ndarray
    steps: np.ndarray
    converged: np.ndarray
    hessian_eigs: np.ndarray | None = None

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
        """One row per restart: ``energy, grad_norm, steps, converged[, index, log_volume]``."""
        df = pd.DataFrame(
            {
                "energy": self.energy,
                "grad_norm": self.grad_norm,
                "steps": self.steps,
                "converged": self.converged,
            }
        )
        if self.hessian_eigs is not None:
            df["index"] = self.index
            df["log_volume"] = self.log_volume
        return df


class _ColumnGradient:
    """Euclidean gradient of one disorder sample of a :class:`SpinGlass` for points stored as
    *columns*, ``w^T [lam, B] -> grad^T [lam, B]``: the same flattening arithmetic as
    ``SpinGlass._euclidean`` (``phi_a^T M phi_b``), with every gather and scatter along the
    leading axis, where it moves contiguous rows of length B instead of single numbers (the
    monomials and the ``J^T y`` contraction cost ~3x less than in the row layout; the GEMM is
    unchanged)."""

    def __init__(self, model: SpinGlass):
        self.a, self.b, self.scale = model.a, model.b, model.scale
        self.Mt = model.flattening[0].T.contiguous()  # [P_b, P_a]
        self.M = model.flattening[0]  # [P_a, P_b]
        self.rows = {d: model._table("rows", d)["rows"] for d in {self.a, self.b} if d > 0}
        for d in {self.a - 1, self.b - 1}:
            if d > 0:
                self.rows[d] = model._table("rows", d)["rows"]
        self.d1 = {d: model._table("d1", d) for d in {self.a, self.b} if d > 0}
        self.coef = {d: t["coef"][:, None] for d, t in self.d1.items()}

    def _phi(self, wt: torch.Tensor, d: int) -> torch.Tensor:
        if d == 0:
            return torch.ones(1, wt.shape[1], dtype=wt.dtype, device=wt.device)
        r = self.rows[d]
        return torch.index_select(wt, 0, r.reshape(-1)).reshape(*r.shape, wt.shape[1]).prod(1)

    def _jt(self, yt: torch.Tensor, wt: torch.Tensor, d: int) -> torch.Tensor:
        out = torch.zeros_like(wt)
        if d == 0:
            return out
        t = self.d1[d]
        lower = self._phi(wt, d - 1)
        contrib = (
            torch.index_select(yt, 0, t["source"])
            * self.coef[d]
            * torch.index_select(lower, 0, t["target"])
        )
        return out.index_add_(0, t["var"], contrib)

    def __call__(self, wt: torch.Tensor) -> torch.Tensor:
        a, b = self.a, self.b
        pa = self._phi(wt, a)
        zt = self.Mt @ pa  # (phi_a^T M)^T, [P_b, B]
        if a == b:
            g = 2.0 * self._jt(zt, wt, a)
        else:
            yt = self.M @ self._phi(wt, b)  # M phi_b, [P_a, B]
            g = self._jt(yt, wt, a) + self._jt(zt, wt, b)
        return self.scale * g


def _gd_columns(model: SpinGlass, w: torch.Tensor, eta: float, tol: float, max_steps: int):
    """:func:`_gd_one` for a :class:`SpinGlass` with the points as columns (same iteration)."""
    grad = _ColumnGradient(model)
    B, lam = w.shape
    out = w.clone()
    steps = torch.full((B,), max_steps, dtype=torch.int64)
    done = torch.zeros(B, dtype=torch.bool)
    active = torch.arange(B, device=w.device)
    cur = w.T.contiguous()  # [lam, B]
    r = math.sqrt(lam)
    for it in range(max_steps + 1):
        g = grad(cur)
        mu = (cur * g).sum(0) / (cur * cur).sum(0)
        gr = g - mu * cur
        ok = gr.norm(dim=0) < tol
        if bool(ok.any()):
            idx = active[ok]
            out[idx] = cur[:, ok].T
            steps[idx.cpu()] = it
            done[idx.cpu()] = True
            keep = ~ok
            active, cur, gr = active[keep], cur[:, keep], gr[:, keep]
        if len(active) == 0 or it == max_steps:
            break
        nxt = cur - eta * gr
        cur = nxt * (r / nxt.norm(dim=0))
    if len(active):
        out[active] = cur.T
    return out, steps, done


def _gd_one(model: SpinGlassBase, w: torch.Tensor, eta: float, tol: float, max_steps: int):
    """GD for one disorder sample, ``w [B, lam]``; returns ``(w, steps, converged)``."""
    if isinstance(model, SpinGlass):
        return _gd_columns(model, w, eta, tol, max_steps)
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
    """Batched projected GD (+ Newton polish) from ``w0 [D, B, lam]``; one :class:`MinimaSet` per
    disorder sample."""
    cfg = config or DescentConfig()
    if not isinstance(cfg, DescentConfig):
        raise ConfigError(f"config must be a DescentConfig, got {type(cfg).__name__}")
    w0, _ = model._prepare(w0)
    w0 = project_to_sphere(w0)
    eta = cfg.step if cfg.step is not None else default_step(model.H)
    out = []
    for d in range(model.n_disorder):
        sub = model.select(d)
        w, steps, conv = _gd_one(sub, w0[d], eta, cfg.grad_tol, cfg.max_steps)
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


def summarize_minima(mset: MinimaSet, *, cluster_tol: float = 1e-5) -> MinimaSummary:
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
