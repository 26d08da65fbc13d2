"""Riemannian geometry of the sphere ``sum_i w_i^2 = lam`` (shared by the spin glass and its users).

For a function with Euclidean gradient ``g`` and Hessian ``h`` at ``w`` (``|w|^2 = lam``), with
tangent projector ``P = I - w w^T / |w|^2`` and Lagrange multiplier ``mu = w.g / |w|^2``:

.. math::
    \\operatorname{grad} L = P g, \\qquad
    \\operatorname{Hess} L = P\\,(h - \\mu I)\\,P .

At a critical point of a homogeneous degree-``H`` function, ``mu = H L / lam = H u``. Shapes:
any leading batch dims ``[...]``, points ``[..., lam]``, Hessians ``[..., lam, lam]``.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "log_volume",
    "project_to_sphere",
    "random_sphere_points",
    "riemannian_gradient",
    "riemannian_hessian",
    "tangent_basis",
    "tangent_hessian",
]


def project_to_sphere(w: torch.Tensor, radius2: float | None = None) -> torch.Tensor:
    """Rescale ``w [..., lam]`` onto ``|w|^2 = radius2`` (default ``lam``)."""
    lam = w.shape[-1]
    r2 = float(lam) if radius2 is None else radius2
    return w * (math.sqrt(r2) / w.norm(dim=-1, keepdim=True))


def random_sphere_points(
    shape: tuple[int, ...],
    lam: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Uniform points on the sphere ``|w|^2 = lam``, ``[*shape, lam]`` (normalised Gaussians)."""
    z = torch.randn(*shape, lam, generator=generator, dtype=dtype, device="cpu")
    return project_to_sphere(z).to(device)


def riemannian_gradient(w: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Tangent component ``P g`` of the Euclidean gradient ``grad [..., lam]`` at ``w``."""
    mu = (w * grad).sum(-1, keepdim=True) / (w * w).sum(-1, keepdim=True)
    return grad - mu * w


def riemannian_hessian(w: torch.Tensor, grad: torch.Tensor, hess: torch.Tensor) -> torch.Tensor:
    """``P (h - mu I) P`` as a ``[..., lam, lam]`` matrix (one zero mode along ``w``)."""
    lam = w.shape[-1]
    r2 = (w * w).sum(-1, keepdim=True)
    mu = (w * grad).sum(-1, keepdim=True) / r2
    eye = torch.eye(lam, dtype=w.dtype, device=w.device)
    proj = eye - w[..., :, None] * w[..., None, :] / r2[..., None]
    inner = hess - mu[..., None] * eye
    return proj @ inner @ proj


def tangent_basis(w: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis of the tangent space at ``w``, ``[..., lam, lam - 1]``.

    The columns 2..lam of the Householder reflection that maps ``w/|w|`` to ``-sign(w_0) e_0``
    (hand-written: a QR of ``w`` would also do it but with sign conventions per backend).
    """
    lam = w.shape[-1]
    x = w / w.norm(dim=-1, keepdim=True)
    sign = torch.where(x[..., :1] >= 0, 1.0, -1.0).to(w.dtype)
    v = x.clone()
    v[..., :1] = v[..., :1] + sign
    eye = torch.eye(lam, dtype=w.dtype, device=w.device)
    refl = eye - 2.0 * v[..., :, None] * v[..., None, :] / (v * v).sum(-1)[..., None, None]
    return refl[..., :, 1:]


def tangent_hessian(w: torch.Tensor, grad: torch.Tensor, hess: torch.Tensor) -> torch.Tensor:
    """Riemannian Hessian in the basis :func:`tangent_basis`, ``[..., lam - 1, lam - 1]``."""
    q = tangent_basis(w)
    mu = (w * grad).sum(-1) / (w * w).sum(-1)
    out = q.transpose(-1, -2) @ hess @ q
    eye = torch.eye(w.shape[-1] - 1, dtype=w.dtype, device=w.device)
    out = out - mu[..., None, None] * eye
    return 0.5 * (out + out.transpose(-1, -2))


def log_volume(eigenvalues: torch.Tensor, cutoff: float = 0.0) -> torch.Tensor:
    """Hessian log-volume ``-1/2 sum_{lambda_i > cutoff} log lambda_i`` over the last axis.

    For a minimum (all eigenvalues positive, cutoff 0) this is the log of the volume of the
    quadratic basin ``{x : x^T Hess x <= 1}`` up to a constant; eigenvalues ``<= cutoff`` (zero
    modes of a symmetry, or negative ones at saddles) are dropped.
    """
    keep = eigenvalues > cutoff
    logs = torch.where(keep, torch.log(torch.where(keep, eigenvalues, 1.0)), 0.0)
    return -0.5 * logs.sum(-1)
