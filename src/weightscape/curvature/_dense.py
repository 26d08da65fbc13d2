"""Dense float64 Hessians of the loss of one or many nets, split into GGN and residual parts.

For a per-sample loss ``ℓ(f, y)`` and the mean ``L(θ) = (1/P) Σ_μ ℓ(f(x_μ; θ), y_μ)``,

.. math::

    H = ∇²L = \\underbrace{\\frac1P Σ_μ J_μ^T Λ_μ J_μ}_{H_0\\ (\\text{GGN})}
        + \\underbrace{\\frac1P Σ_μ Σ_k g_{μk} ∇²f_k(x_μ)}_{H_p\\ (\\text{residual})},

with ``J_μ = ∂f(x_μ)/∂θ`` ``[out, N]``, ``g_μ = ∂ℓ/∂f`` and ``Λ_μ = ∂²ℓ/∂f²``. For the quadratic
hinge ``ℓ = ½ relu(Δ)²`` with ``Δ = κ − y f`` this is the jamming papers' split:
``H0 = (1/P) Σ_{Δ>0} ∇Δ∇Δᵀ`` and ``Hp = (1/P) Σ_{Δ>0} Δ ∇²Δ`` (only unsatisfied points enter).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch.func import grad, jacrev, jvp, vmap

from ..errors import ConfigError, check_choice, check_positive
from ..train.losses import Loss, QuadraticHinge
from ._problem import (
    DEFAULT_MEMORY_BUDGET,
    Problem,
    output_derivatives,
    resolve_loss,
    resolve_members,
)
from ._spectrum import DEFAULT_RTOL, SpectrumCounts, spectrum_counts
from ._structured import per_sample_jacobian_rows, residual_hessian

__all__ = [
    "METHODS",
    "HessianSplit",
    "dense_hessian",
    "hessian_split",
    "hinge_hessian_split",
    "per_sample_jacobian",
]

#: ``structured``: layer-wise closed forms (few GEMMs); ``autodiff``: generic ``torch.func``
#: (vmapped Jacobians and forward-over-reverse HVPs); ``auto`` = ``structured``.
METHODS = ("auto", "structured", "autodiff")

_F64 = 8  # bytes per float64


@dataclass(frozen=True)
class HessianSplit:
    """Dense Hessian of one net's loss and its GGN/residual split, with spectra.

    Attributes:
        H0: GGN part ``(1/P) Σ J_μᵀ Λ_μ J_μ`` ``[N, N]`` (hinge: PSD, rank ≤ N_Δ).
        Hp: residual part ``(1/P) Σ g_μ · ∇²f_μ`` ``[N, N]``.
        H: ``H0 + Hp`` (plus ``l2 · I`` when ``l2 > 0``) ``[N, N]``.
        eigs_H0, eigs_Hp, eigs_H: eigenvalues, ascending ``[N]``.
        vecs_H0, vecs_Hp, vecs_H: orthonormal eigenvectors as columns ``[N, N]`` or None.
        n_unsat: samples that contribute (nonzero ``g`` or ``Λ``); for the hinge losses N_Δ.
        n_params: N (parameters, biases included).
        loss_value: the mean loss at the point.
        member: ensemble member index (None for a bare ``(params, spec)``).
        l2: the L2 coefficient added to ``H``.
        counts: :class:`SpectrumCounts` of ``"H0"``, ``"Hp"`` and ``"H"`` at ``rtol``.
        timings: wall-clock seconds of the parts: ``H0`` (Jacobian and GEMM), ``Hp``,
            ``eig_H0``, ``eig_Hp``, ``eig_H`` (CUDA synchronised).
    """

    H0: torch.Tensor
    Hp: torch.Tensor
    H: torch.Tensor
    eigs_H0: torch.Tensor
    eigs_Hp: torch.Tensor
    eigs_H: torch.Tensor
    n_unsat: int
    n_params: int
    loss_value: float
    member: int | None = None
    l2: float = 0.0
    counts: dict[str, SpectrumCounts] = field(default_factory=dict)
    vecs_H0: torch.Tensor | None = None
    vecs_Hp: torch.Tensor | None = None
    vecs_H: torch.Tensor | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-ready scalars: sizes, loss, counts and extreme eigenvalues."""
        out = {
            "member": self.member,
            "n_params": self.n_params,
            "n_unsat": self.n_unsat,
            "loss": self.loss_value,
            "l2": self.l2,
        }
        for name in ("H0", "Hp", "H"):
            e = getattr(self, f"eigs_{name}")
            out[name] = {
                "min": float(e[0]),
                "max": float(e[-1]),
                "trace": float(e.sum()),
                **self.counts[name].to_dict(),
            }
        return out


# ----------------------------------------------------------------------------------------------
# memory budget -> chunk sizes
def _check_budget(memory_budget) -> int:
    if memory_budget is None:
        return DEFAULT_MEMORY_BUDGET
    check_positive("memory_budget", memory_budget, integer=True)
    return int(memory_budget)


def _structured_chunk(prob: Problem, budget: int, rows_per_sample: int) -> int:
    """Samples per chunk so that the layer Jacobians and GEMM operands fit ``budget``."""
    s, L = prob.spec.sizes, prob.spec.depth
    b = 1 if prob.spec.bias else 0
    per = 4 * sum(s[1:])  # activations, derivatives, adjoints
    per += sum(2 * s[m] * s[l + 1] for m in range(1, L + 1) for l in range(m))  # A, E
    per += max((s[m + 1] * (s[l] + b) for m in range(1, L + 1) for l in range(m)), default=0)
    if prob.spec.activation == "tanh":
        per += max(
            (2 * s[k + 1] * s[kp + 1] * (s[kp] + b) for k in range(L) for kp in range(k, L)),
            default=0,
        )
    per += 2 * rows_per_sample * prob.n_params  # Jacobian rows
    return max(1, budget // (per * _F64))


def _hvp_chunk(prob: Problem, budget: int) -> int:
    """Basis vectors per vmapped forward-over-reverse HVP batch."""
    per = 8 * prob.P * sum(prob.spec.sizes) + 6 * prob.n_params
    return max(1, budget // (per * _F64))


# ----------------------------------------------------------------------------------------------
# building blocks
def _hessian_of_scalar(fn, theta: torch.Tensor, chunk: int) -> torch.Tensor:
    """Dense ``∇²fn(θ)`` from vmapped forward-over-reverse HVPs against the basis, symmetrised."""
    N = theta.numel()
    gfn = grad(fn)

    def hvp(v):
        return jvp(gfn, (theta,), (v,))[1]

    eye = torch.eye(N, dtype=theta.dtype, device=theta.device)
    H = torch.cat([vmap(hvp)(eye[i : i + chunk]) for i in range(0, N, chunk)])
    return 0.5 * (H + H.T)


def _jacobian_rows(prob: Problem, x, cot, method: str, chunk: int) -> torch.Tensor:
    """Rows ``∂(cot_{μr} · f(x_μ))/∂θ`` ``[P * R, N]``, chunked over samples."""
    if x.shape[0] == 0:
        return torch.zeros(0, prob.n_params, dtype=x.dtype, device=x.device)
    parts = []
    theta = prob.theta
    for s0 in range(0, x.shape[0], chunk):
        xs, cs = x[s0 : s0 + chunk], cot[s0 : s0 + chunk]
        if method == "structured":
            parts.append(per_sample_jacobian_rows(prob.params, prob.spec, xs, cs))
        else:

            def f_one(th, xm):
                return prob.forward(th, xm[None])[0]

            J = vmap(jacrev(f_one), in_dims=(None, 0))(theta, xs)  # [Pc, out, N]
            parts.append(torch.einsum("pro,pon->prn", cs, J).reshape(-1, prob.n_params))
    return torch.cat(parts)


def per_sample_jacobian(
    model, x: torch.Tensor, *, members=None, method: str = "auto", memory_budget=None
):
    """Per-sample output Jacobians ``∂f_k(x_μ)/∂θ``.

    Args:
        model: an :class:`~weightscape.nets.Ensemble` or a ``(params, spec)`` pair.
        x: inputs ``[P, d]`` (or ``[M, P, d_max]`` per member).
        members: ensemble members (default all).
        method: one of :data:`METHODS`.
        memory_budget: working memory in bytes (default 1 GiB).

    Returns:
        ``[P, out, N]`` for a pair; a list of those for an ensemble.
    """
    check_choice("method", method, METHODS)
    method = "structured" if method == "auto" else method
    budget = _check_budget(memory_budget)
    probs, single = resolve_members(model, x, None, members)
    out = []
    for prob in probs:
        k = prob.spec.out_dim
        eye = torch.eye(k, dtype=prob.x.dtype, device=prob.x.device)
        cot = eye.expand(prob.P, k, k)
        chunk = _structured_chunk(prob, budget, k)
        out.append(_jacobian_rows(prob, prob.x, cot, method, chunk).reshape(prob.P, k, -1))
    return out[0] if single else out


def _ggn_factor(lam: torch.Tensor):
    """``Λ_μ = Σ_r sign_r c_r c_rᵀ``: cotangents ``[P, R, out]`` and signs ``[P, R]``."""
    if lam.shape[-1] == 1:
        ev = lam[:, 0, :]  # [P, 1]
        cot = ev.abs().sqrt()[:, :, None]
        return cot, torch.sign(ev)
    ev, V = torch.linalg.eigh(lam)  # [P, out], [P, out, out]
    cot = (V * ev.abs().sqrt()[:, None, :]).transpose(1, 2)
    return cot, torch.sign(ev)


def _clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _eig(A: torch.Tensor, vectors: bool):
    if vectors:
        e, V = torch.linalg.eigh(A)
        return e, V
    return torch.linalg.eigvalsh(A), None


def _split_one(prob: Problem, loss: Loss, *, method, budget, eigenvectors, l2, rtol):
    if prob.y is None:
        raise ConfigError("labels y are required for the loss Hessian")
    if loss.binary and prob.spec.out_dim != 1:
        raise ConfigError(f"loss {loss.name!r} needs out_dim = 1, the net has {prob.spec.out_dim}")
    P, N = prob.P, prob.n_params
    dt, dev = prob.x.dtype, prob.x.device
    with torch.no_grad():
        f = prob.forward()
        loss_value = float(loss.per_sample(f, prob.y).mean())
    g, lam = output_derivatives(loss, f, prob.y)
    cot, sign = _ggn_factor(lam)
    # GGN rows of the samples (and output directions) with nonzero loss curvature
    row_keep = sign != 0  # [P, R]
    ggn_samples = row_keep.any(1)
    res_samples = (g != 0).any(1)
    n_unsat = int((ggn_samples | res_samples).sum())
    t0 = _clock(dev)
    chunk = _structured_chunk(prob, budget, cot.shape[1])
    J = _jacobian_rows(prob, prob.x[ggn_samples], cot[ggn_samples], method, chunk)
    keep = row_keep[ggn_samples].reshape(-1)
    J, s = J[keep], sign[ggn_samples].reshape(-1)[keep]
    H0 = (J * s[:, None]).T @ J / P
    t1 = _clock(dev)
    # residual: Hessian of (1/P) Σ g_μ · f(x_μ) with g held fixed
    c = g[res_samples] / P
    xr = prob.x[res_samples]
    if method == "structured":
        Hp = residual_hessian(prob.params, prob.spec, xr, c, chunk=chunk)
    elif xr.shape[0] == 0:
        Hp = torch.zeros(N, N, dtype=dt, device=dev)
    else:

        def F(th):
            return (prob.forward(th, xr) * c).sum()

        Hp = _hessian_of_scalar(F, prob.theta, _hvp_chunk(prob, budget))
    H = H0 + Hp
    if l2:
        H = H + l2 * torch.eye(N, dtype=dt, device=dev)
    t2 = _clock(dev)
    # spectra; H0's nonzero spectrum from the smaller Gram matrix J Jᵀ/P when it is PSD
    R = J.shape[0]
    if not eigenvectors and bool((s > 0).all()) and R < N:
        gram = J @ J.T / P
        e0 = torch.cat([torch.zeros(N - R, dtype=dt, device=dev), torch.linalg.eigvalsh(gram)])
        e0, V0 = torch.sort(e0).values, None
    else:
        e0, V0 = _eig(H0, eigenvectors)
    t3 = _clock(dev)
    ep, Vp = _eig(Hp, eigenvectors)
    t4 = _clock(dev)
    eh, Vh = _eig(H, eigenvectors)
    t5 = _clock(dev)
    timings = {
        "H0": t1 - t0,
        "Hp": t2 - t1,
        "eig_H0": t3 - t2,
        "eig_Hp": t4 - t3,
        "eig_H": t5 - t4,
    }
    counts = {
        "H0": spectrum_counts(e0, rtol),
        "Hp": spectrum_counts(ep, rtol),
        "H": spectrum_counts(eh, rtol),
    }
    return HessianSplit(
        H0=H0,
        Hp=Hp,
        H=H,
        eigs_H0=e0,
        eigs_Hp=ep,
        eigs_H=eh,
        n_unsat=n_unsat,
        n_params=N,
        loss_value=loss_value,
        member=prob.member,
        l2=float(l2),
        counts=counts,
        vecs_H0=V0,
        vecs_Hp=Vp,
        vecs_H=Vh,
        timings=timings,
    )


def _check_common(method, l2, rtol):
    check_choice("method", method, METHODS)
    check_positive("l2", l2, allow_zero=True)
    check_positive("rtol", rtol, allow_zero=True)
    return "structured" if method == "auto" else method


# ----------------------------------------------------------------------------------------------
# public entry points
def hessian_split(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str | Loss = "quadratic_hinge",
    *,
    kappa: float | None = None,
    members=None,
    eigenvectors: bool = False,
    memory_budget: int | None = None,
    method: str = "auto",
    l2: float = 0.0,
    rtol: float = DEFAULT_RTOL,
):
    """Dense float64 Hessian of the mean loss, its GGN/residual split and their spectra.

    Args:
        model: an :class:`~weightscape.nets.Ensemble` or a ``(params, spec)`` pair (one net).
        x: inputs ``[P, d]`` (shared) or ``[M, P, d_max]`` (per member, zero-padded).
        y: labels ``[P]`` or ``[M, P]`` (targets ``[P, out]`` for MSE).
        loss: a loss name of :data:`weightscape.train.losses.LOSSES` or a ``Loss`` instance.
        kappa: margin of the hinge losses when ``loss`` is a name (default 1).
        members: ensemble members (default all).
        eigenvectors: also return eigenvectors (costs a dense eigendecomposition of H0).
        memory_budget: working memory in bytes for the chunked parts (default 1 GiB); the three
            returned ``[N, N]`` matrices come on top.
        method: one of :data:`METHODS`.
        l2: coefficient λ of an L2 term ``(λ/2)|θ|²`` of the objective, added to ``H`` only.
        rtol: zero tolerance of the counts (see :func:`spectrum_counts`).

    Returns:
        A :class:`HessianSplit` for a pair; a list of them (one per member) for an ensemble.
    """
    method = _check_common(method, l2, rtol)
    budget = _check_budget(memory_budget)
    lossobj = resolve_loss(loss, kappa)
    probs, single = resolve_members(model, x, y, members)
    out = [
        _split_one(
            p,
            lossobj,
            method=method,
            budget=budget,
            eigenvectors=eigenvectors,
            l2=l2,
            rtol=rtol,
        )
        for p in probs
    ]
    return out[0] if single else out


def hinge_hessian_split(
    model, x: torch.Tensor, y: torch.Tensor, kappa: float = 1.0, **options
) -> HessianSplit | list[HessianSplit]:
    """:func:`hessian_split` for the quadratic hinge ``ℓ = ½ relu(κ − y f)²`` (the jamming loss).

    ``H0 = (1/P) Σ_{Δ>0} ∇Δ ∇Δᵀ`` is built as ``JᵀJ/P`` from one batched Jacobian of the N_Δ
    unsatisfied points and its spectrum is read off the ``N_Δ × N_Δ`` Gram matrix;
    ``Hp = (1/P) Σ_{Δ>0} Δ ∇²Δ``. Options as in :func:`hessian_split`.
    """
    return hessian_split(model, x, y, QuadraticHinge(kappa=kappa), **options)


def dense_hessian(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str | Loss = "quadratic_hinge",
    *,
    kappa: float | None = None,
    members=None,
    memory_budget: int | None = None,
    l2: float = 0.0,
):
    """The full Hessian of the mean loss (plus ``l2 · I``) by generic ``torch.func`` autodiff.

    No split, no structure: vmapped forward-over-reverse HVPs against the basis vectors, chunked to
    ``memory_budget``. Works for any loss of :mod:`weightscape.train.losses` and any activation.

    Returns:
        ``[N, N]`` for a pair; a list of those for an ensemble.
    """
    check_positive("l2", l2, allow_zero=True)
    budget = _check_budget(memory_budget)
    lossobj = resolve_loss(loss, kappa)
    probs, single = resolve_members(model, x, y, members)
    out = []
    for prob in probs:
        if prob.y is None:
            raise ConfigError("labels y are required for the loss Hessian")

        def L(th, prob=prob):
            return lossobj.per_sample(prob.forward(th), prob.y).mean()

        H = _hessian_of_scalar(L, prob.theta, _hvp_chunk(prob, budget))
        if l2:
            H = H + l2 * torch.eye(prob.n_params, dtype=H.dtype, device=H.device)
        out.append(H)
    return out[0] if single else out
