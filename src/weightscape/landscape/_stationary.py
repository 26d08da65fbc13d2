"""Exhaustive search for the stationary points of the spin glass on small instances.

Random-start Newton solves of the constrained stationarity equations
``grad L(w) = mu w``, ``|w|^2 = Lambda``, batched over starts and disorder samples, grouped into
classes ``{w, -w}``; each class carries its energy, index and Hessian spectrum, and the search
reports how complete it is (discovery curve, capture–recapture estimates).

A Newton step at ``w`` (on the sphere) solves the bordered system

.. math::
    \\begin{pmatrix} \\nabla^2 L - \\mu I & w \\\\ w^T & 0 \\end{pmatrix}
    \\begin{pmatrix} s \\\\ \\nu \\end{pmatrix} =
    \\begin{pmatrix} -\\operatorname{grad} L \\\\ 0 \\end{pmatrix},

i.e. the Riemannian Newton equation ``P (h - mu I) P s = -grad L`` with ``s`` tangent, then
retracts ``w <- sqrt(Lambda) (w + s)/|w + s|``. Undamped Newton converges to critical points of
every index, which is what an enumeration needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError, check_positive
from ._analysis import capture_recapture, distinct_points
from ._model import SpinGlassBase, _generator
from ._sphere import project_to_sphere, random_sphere_points, tangent_hessian

__all__ = [
    "EnumerationConfig",
    "StationaryClasses",
    "canonical_sign",
    "enumerate_stationary",
    "newton_solve",
    "newton_step",
]


def newton_step(
    model: SpinGlassBase, w: torch.Tensor, *, max_step: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Riemannian Newton step for ``grad L = 0`` at ``w [D, B, lam]`` (on the sphere).

    Args:
        model: the spin glass.
        w: points ``[D, B, lam]``.
        max_step: cap on the step length ``|s|`` (absolute units of w); ``None`` = no cap.

    Returns:
        ``(w_new [D, B, lam], grad_norm [D, B])`` with the Riemannian gradient norm *at w*.
        Points where the bordered system is singular are returned unchanged.
    """
    _, g, h = model.evaluate(w, 2)
    lam = w.shape[-1]
    mu = (w * g).sum(-1) / (w * w).sum(-1)
    gr = g - mu[..., None] * w
    k = torch.zeros(*w.shape[:-1], lam + 1, lam + 1, dtype=w.dtype, device=w.device)
    k[..., :lam, :lam] = h - mu[..., None, None] * torch.eye(lam, dtype=w.dtype, device=w.device)
    k[..., :lam, lam] = w
    k[..., lam, :lam] = w
    rhs = torch.cat([-gr, torch.zeros_like(gr[..., :1])], dim=-1)
    sol, info = torch.linalg.solve_ex(k, rhs[..., None])
    s = sol[..., :lam, 0]
    bad = (info != 0) | ~torch.isfinite(s).all(-1)
    s = torch.where(bad[..., None], torch.zeros_like(s), s)
    if max_step is not None:
        norm = s.norm(dim=-1, keepdim=True)
        s = s * torch.clamp(max_step / torch.clamp(norm, min=1e-300), max=1.0)
    return project_to_sphere(w + s), gr.norm(dim=-1)


def newton_solve(
    model: SpinGlassBase,
    w0: torch.Tensor,
    *,
    n_iter: int = 50,
    max_step: float | None = None,
    tol: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``n_iter`` Newton steps from ``w0 [D, B, lam]``; returns ``(w, grad_norm at w)``.

    With ``tol``, stops early once the number of points with ``|grad| < tol`` has not changed over
    the last 5 steps, after at least 20 (Newton converges quadratically: a start that has not
    converged by then is wandering and is discarded by the caller).
    """
    w = project_to_sphere(torch.as_tensor(w0, dtype=model.dtype, device=model.device))
    history: list[int] = []
    for _ in range(n_iter):
        w, gnorm = newton_step(model, w, max_step=max_step)
        if tol is not None:
            history.append(int((gnorm < tol * 1e-2).sum()))
            if len(history) >= 20 and history[-1] == history[-6]:
                break
    gr = model.riemannian_gradient(w)
    return w, gr.norm(dim=-1)


def canonical_sign(model: SpinGlassBase, w: torch.Tensor) -> torch.Tensor:
    """Choose the representative of each class ``{w, -w}``, ``w [D, B, lam]``.

    Odd H: the member with ``L <= 0`` (``L(-w) = -L(w)``). Even H (``L(-w) = L(w)``): the member
    whose largest-magnitude coordinate is positive.
    """
    if model.H % 2 == 1:
        sign = torch.where(model.energy(w) > 0, -1.0, 1.0).to(w.dtype)
    else:
        big = w.gather(-1, w.abs().argmax(-1, keepdim=True))[..., 0]
        sign = torch.where(big < 0, -1.0, 1.0).to(w.dtype)
    return w * sign[..., None]


@dataclass(frozen=True)
class EnumerationConfig:
    """Settings of :func:`enumerate_stationary`.

    Attributes:
        n_starts: random starts per round and disorder sample.
        max_rounds: rounds at most.
        patience: stop after this many consecutive rounds with no new class in any sample.
        newton_iters: Newton steps per start.
        grad_tol: a start has converged when ``|grad L| < grad_tol`` (absolute; the gradient at a
            random point is ~ sqrt(H Lambda)).
        cluster_tol: two converged points are one class when closer than
            ``cluster_tol * sqrt(Lambda)`` (up to sign).
        max_step: Newton step cap in units of ``sqrt(Lambda)`` (``None`` = undamped).
        seed: seed of the random starts.
    """

    n_starts: int = 500
    max_rounds: int = 20
    patience: int = 2
    newton_iters: int = 40
    grad_tol: float = 1e-9
    cluster_tol: float = 1e-6
    max_step: float | None = 1.0
    seed: int = 0

    def __post_init__(self):
        for name in ("n_starts", "max_rounds", "patience", "newton_iters"):
            check_positive(name, getattr(self, name), integer=True)
        check_positive("grad_tol", self.grad_tol)
        check_positive("cluster_tol", self.cluster_tol)
        if self.max_step is not None:
            check_positive("max_step", self.max_step)


@dataclass
class StationaryClasses:
    """Stationary classes ``{w, -w}`` of one disorder sample.

    Attributes (K classes):
        lam, H: model size and degree.
        points: ``[K, lam]`` representatives (:func:`canonical_sign`).
        energy: ``[K]`` energy per weight u of the representative.
        index: ``[K]`` number of negative Riemannian Hessian eigenvalues at the representative.
        hessian_eigs: ``[K, lam - 1]`` tangent Hessian eigenvalues (ascending).
        grad_norm: ``[K]`` Riemannian gradient norm at the representative.
        hits: ``[K]`` converged starts that landed in the class.
        discovery: ``[R]`` classes known after each round.
        n_starts: starts used; n_converged: starts that converged.
        estimates: ``capture_recapture`` output (observed, chapman, chao1).
    """

    lam: int
    H: int
    points: np.ndarray
    energy: np.ndarray
    index: np.ndarray
    hessian_eigs: np.ndarray
    grad_norm: np.ndarray
    hits: np.ndarray
    discovery: np.ndarray
    n_starts: int
    n_converged: int
    estimates: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.energy)

    def point_energies(self) -> np.ndarray:
        """Energies of all 2K points ``±w``, ``[2K]`` (odd H: ``-w`` has ``-u``)."""
        other = -self.energy if self.H % 2 else self.energy
        return np.concatenate([self.energy, other])

    def point_indices(self) -> np.ndarray:
        """Indices of all 2K points (odd H: ``-w`` has index ``lam - 1 - k``)."""
        other = self.lam - 1 - self.index if self.H % 2 else self.index
        return np.concatenate([self.index, other])

    def to_frame(self) -> pd.DataFrame:
        """One row per class: ``energy, index, hits, grad_norm, min_eig, log_volume``."""
        eigs = self.hessian_eigs
        with np.errstate(invalid="ignore", divide="ignore"):
            logvol = np.where(self.index == 0, -0.5 * np.log(np.abs(eigs)).sum(1), np.nan)
        return pd.DataFrame(
            {
                "energy": self.energy,
                "index": self.index,
                "hits": self.hits,
                "grad_norm": self.grad_norm,
                "min_eig": eigs[:, 0] if eigs.shape[1] else np.nan,
                "log_volume": logvol,
            }
        )


def enumerate_stationary(
    model: SpinGlassBase, config: EnumerationConfig | None = None
) -> list[StationaryClasses]:
    """Find the stationary classes of every disorder sample by batched random-start Newton.

    Args:
        model: spin glass with D disorder samples (small ``lam``: the Hessian of every start is
            formed; memory ~ ``D * n_starts * lam^2``).
        config: :class:`EnumerationConfig`.

    Returns:
        One :class:`StationaryClasses` per disorder sample.
    """
    cfg = config or EnumerationConfig()
    if not isinstance(cfg, EnumerationConfig):
        raise ConfigError(f"config must be an EnumerationConfig, got {type(cfg).__name__}")
    D, lam = model.n_disorder, model.lam
    gen = _generator(cfg.seed)
    tol = cfg.cluster_tol * math.sqrt(lam)
    max_step = None if cfg.max_step is None else cfg.max_step * math.sqrt(lam)
    reps = [torch.zeros(0, lam, dtype=model.dtype, device=model.device) for _ in range(D)]
    hits = [np.zeros((0, 2), dtype=np.int64) for _ in range(D)]  # by start parity
    discovery = [[] for _ in range(D)]
    n_conv = np.zeros(D, dtype=np.int64)
    quiet = 0
    for _ in range(cfg.max_rounds):
        w0 = random_sphere_points(
            (D, cfg.n_starts), lam, generator=gen, dtype=model.dtype, device=model.device
        )
        w, gnorm = newton_solve(
            model, w0, n_iter=cfg.newton_iters, max_step=max_step, tol=cfg.grad_tol
        )
        w = canonical_sign(model, w)
        ok = gnorm < cfg.grad_tol
        new_any = False
        parity = torch.arange(cfg.n_starts) % 2
        for d in range(D):
            sel = ok[d].cpu()
            pts = w[d][sel.to(w.device)]
            n_conv[d] += int(sel.sum())
            k_old = len(reps[d])
            cl = distinct_points(torch.cat([reps[d], pts]), tol, sign_symmetric=True)
            lab = cl.labels[k_old:]
            k_new = cl.n_clusters
            if k_new > k_old:
                new_any = True
                reps[d] = torch.cat([reps[d], pts[cl.representatives[k_old:] - k_old]])
                hits[d] = np.concatenate([hits[d], np.zeros((k_new - k_old, 2), np.int64)])
            par = parity[sel].numpy()
            for p in (0, 1):
                hits[d][:, p] += np.bincount(lab[par == p], minlength=k_new)
            discovery[d].append(k_new)
        quiet = 0 if new_any else quiet + 1
        if quiet >= cfg.patience:
            break
    out = []
    for d in range(D):
        sub = model.select(d)
        pts = reps[d][None]
        if pts.shape[1] == 0:
            eigs = np.zeros((0, lam - 1))
            energy = gn = np.zeros(0)
        else:
            L, g, h = sub.evaluate(pts, 2)
            eigs = torch.linalg.eigvalsh(tangent_hessian(pts, g, h))[0].cpu().numpy()
            energy = (L[0] / lam).cpu().numpy()
            gn = sub.riemannian_gradient(pts)[0].norm(dim=-1).cpu().numpy()
        h2 = hits[d]
        out.append(
            StationaryClasses(
                lam=lam,
                H=model.H,
                points=reps[d].cpu().numpy(),
                energy=energy,
                index=(eigs < 0).sum(1),
                hessian_eigs=eigs,
                grad_norm=gn,
                hits=h2.sum(1),
                discovery=np.asarray(discovery[d]),
                n_starts=cfg.n_starts * len(discovery[d]),
                n_converged=int(n_conv[d]),
                estimates=capture_recapture(h2[:, 0], h2[:, 1], h2.sum(1)),
            )
        )
    return out
