"""Matrix-free curvature operators (one class per matrix, one hook ``_matvec`` each).

Every operator is a symmetric linear map on θ-space ``R^N`` applied to a block of vectors
``[N, K]`` at once (``torch.func.vmap`` over the K columns, chunked to a memory budget). Use them
with :func:`~weightscape.curvature.lanczos`, :func:`~weightscape.curvature.slq_density` or
SciPy (:meth:`_LinearOperator.to_scipy`) when N is too large for a dense matrix.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import grad, jvp, vjp, vmap

from ..errors import ConfigError, check_positive
from ..nets import Ensemble
from ..train.losses import Loss
from ._problem import (
    DEFAULT_MEMORY_BUDGET,
    Problem,
    output_derivatives,
    resolve_loss,
    resolve_members,
)

__all__ = [
    "DenseOperator",
    "GGNOperator",
    "HessianOperator",
    "ResidualOperator",
]


class _LinearOperator:
    """A symmetric linear operator on ``R^N``; subclasses fill :meth:`_matvec`.

    Attributes:
        shape: ``(N, N)``.
        dtype, device: of the vectors it acts on.
    """

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device):
        self.shape = (int(n), int(n))
        self.dtype = dtype
        self.device = torch.device(device)

    def _matvec(self, V: torch.Tensor) -> torch.Tensor:
        """``A @ V`` for ``V`` ``[N, K]`` (torch, the operator's dtype and device)."""
        raise NotImplementedError

    def matvec(self, v):
        """``A @ v`` for ``v`` ``[N]`` or ``[N, K]``, torch or numpy (returned in the same kind)."""
        is_np = isinstance(v, np.ndarray)
        t = torch.as_tensor(v, dtype=self.dtype, device=self.device)
        if t.shape[0] != self.shape[0] or t.dim() not in (1, 2):
            raise ConfigError(f"vector of shape {tuple(t.shape)}; expected [{self.shape[0]}, K]")
        out = self._matvec(t[:, None] if t.dim() == 1 else t)
        out = out[:, 0] if t.dim() == 1 else out
        return out.detach().cpu().numpy() if is_np else out

    __matmul__ = matvec

    def to_dense(self, chunk: int = 256) -> torch.Tensor:
        """The matrix ``[N, N]``: the operator on the identity, ``chunk`` columns at once."""
        N = self.shape[0]
        eye = torch.eye(N, dtype=self.dtype, device=self.device)
        return torch.cat([self._matvec(eye[:, i : i + chunk]) for i in range(0, N, chunk)], 1)

    def to_scipy(self):
        """A ``scipy.sparse.linalg.LinearOperator`` (float64 numpy in and out)."""
        from scipy.sparse.linalg import LinearOperator

        return LinearOperator(
            self.shape,
            matvec=lambda v: self.matvec(np.asarray(v).reshape(-1)),
            matmat=lambda V: self.matvec(np.asarray(V)),
            dtype=np.float64,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(N={self.shape[0]}, dtype={self.dtype})"


class DenseOperator(_LinearOperator):
    """A dense symmetric matrix ``[N, N]`` as an operator (tests, small problems)."""

    def __init__(self, A: torch.Tensor):
        if A.dim() != 2 or A.shape[0] != A.shape[1]:
            raise ConfigError(f"matrix of shape {tuple(A.shape)} is not square")
        super().__init__(A.shape[0], A.dtype, A.device)
        self.A = A

    def _matvec(self, V):
        return self.A @ V


class _LossOperator(_LinearOperator):
    """Common set-up: one net (an ensemble member or a ``(params, spec)`` pair), data and loss."""

    def __init__(
        self,
        model,
        x: torch.Tensor,
        y: torch.Tensor,
        loss: str | Loss = "quadratic_hinge",
        *,
        kappa: float | None = None,
        member: int | None = None,
        memory_budget: int | None = None,
    ):
        if isinstance(model, Ensemble):
            if member is None and model.M > 1:
                raise ConfigError(f"the ensemble has {model.M} members; pass member=<index>")
            probs, _ = resolve_members(model, x, y, [member or 0])
        else:
            if member is not None:
                raise ConfigError("member= applies to an Ensemble, not to a (params, spec) pair")
            probs, _ = resolve_members(model, x, y)
        self.problem: Problem = probs[0]
        if self.problem.y is None:
            raise ConfigError("labels y are required for a loss curvature operator")
        budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
        check_positive("memory_budget", budget, integer=True)
        self.loss = resolve_loss(loss, kappa)
        self.theta = self.problem.theta
        super().__init__(self.problem.n_params, self.theta.dtype, self.theta.device)
        per_col = 8 * 8 * self.problem.P * sum(self.problem.spec.sizes) + 6 * self.shape[0]
        self.chunk = max(1, budget // per_col)
        with torch.no_grad():
            f = self.problem.forward()
        self.g, self.lam = output_derivatives(self.loss, f, self.problem.y)

    def _columns(self, fn, V):
        """Apply the single-vector map ``fn`` to the columns of ``V`` (vmapped, chunked)."""
        cols = V.T
        return torch.cat(
            [vmap(fn)(cols[i : i + self.chunk]) for i in range(0, cols.shape[0], self.chunk)]
        ).T


class HessianOperator(_LossOperator):
    """Hessian-vector products of the mean loss, ``v ↦ ∇²L(θ) v`` (plus ``l2 · v``).

    Forward-over-reverse autodiff (``torch.func.jvp`` of ``grad``), vmapped over columns.

    Args:
        model: an :class:`~weightscape.nets.Ensemble` (with ``member``) or ``(params, spec)``.
        x, y: inputs ``[P, d]`` (or ``[M, P, d_max]``) and labels.
        loss: a loss name or ``Loss`` instance; ``kappa`` for the hinge names.
        l2: coefficient of an L2 term ``(λ/2)|θ|²``.
        memory_budget: working memory in bytes (sets how many columns go through one vmap).
    """

    def __init__(self, model, x, y, loss="quadratic_hinge", *, l2: float = 0.0, **kw):
        super().__init__(model, x, y, loss, **kw)
        check_positive("l2", l2, allow_zero=True)
        prob, lossobj = self.problem, self.loss
        self.l2 = float(l2)

        def L(th):
            return lossobj.per_sample(prob.forward(th), prob.y).mean()

        self._grad = grad(L)

    def _matvec(self, V):
        theta, g = self.theta, self._grad
        out = self._columns(lambda v: jvp(g, (theta,), (v,))[1], V)
        return out + self.l2 * V if self.l2 else out


class GGNOperator(_LossOperator):
    """Generalized Gauss–Newton products ``v ↦ (1/P) Σ_μ J_μᵀ Λ_μ J_μ v`` (the hinge's H0).

    ``J_μ v`` by forward mode, ``Λ_μ = ∂²ℓ/∂f²`` per sample, then one reverse pass; only samples
    with ``Λ_μ ≠ 0`` (for the hinge: the unsatisfied ones) enter. Arguments as
    :class:`HessianOperator` (no ``l2``).
    """

    def __init__(self, model, x, y, loss="quadratic_hinge", **kw):
        super().__init__(model, x, y, loss, **kw)
        active = (self.lam != 0).flatten(1).any(1)
        prob = self.problem
        xa = prob.x[active]
        lam = self.lam[active] / prob.P

        def f(th):
            return prob.forward(th, xa)

        def mv(v):
            _, Jv = jvp(f, (self.theta,), (v,))
            _, pull = vjp(f, self.theta)
            return pull(torch.einsum("pij,pj->pi", lam, Jv))[0]

        self._mv = mv

    def _matvec(self, V):
        return self._columns(self._mv, V)


class ResidualOperator(_LossOperator):
    """Residual products ``v ↦ (1/P) Σ_μ (g_μ · ∇²f_μ) v`` with ``g_μ = ∂ℓ/∂f_μ`` fixed (the
    hinge's Hp); only samples with ``g_μ ≠ 0`` enter. Arguments as :class:`HessianOperator`."""

    def __init__(self, model, x, y, loss="quadratic_hinge", **kw):
        super().__init__(model, x, y, loss, **kw)
        active = (self.g != 0).any(1)
        prob = self.problem
        xa, c = prob.x[active], self.g[active] / prob.P

        def F(th):
            return (prob.forward(th, xa) * c).sum()

        self._grad = grad(F)

    def _matvec(self, V):
        theta, g = self.theta, self._grad
        return self._columns(lambda v: jvp(g, (theta,), (v,))[1], V)
