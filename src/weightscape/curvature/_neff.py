"""N_eff: the effective number of parameters of a net on its data (jamming study).

.. math::

    N_\\mathrm{eff} = \\operatorname{rank}\\operatorname{span}\\{∂_θ f(x_μ)\\}_μ
        ∪ \\{∂_θ (u_μ · ∇_x f)(x_μ)\\}_{μ, \\text{rounds}}

Start from the per-sample output gradients; each round adds, for every sample, the gradient of a
random input-directional derivative ``u_μ · ∇_x f(x_μ)`` (``u_μ`` Gaussian, fresh each round), and
stops when a round does not raise the rank. For nets with the ReLU rescaling symmetry every
generator of the symmetry is orthogonal to all these rows, so ``N_eff ≤ n_params − n_hidden``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import jacrev, jvp, vmap

from ..errors import check_positive
from ._dense import _check_budget, _jacobian_rows, _structured_chunk
from ._problem import Problem, resolve_members

__all__ = ["NEffResult", "n_eff"]


@dataclass(frozen=True)
class NEffResult:
    """Output of :func:`n_eff`.

    Attributes:
        n_eff: the final rank.
        ranks: rank after each round (round 0: output gradients only).
        n_params: N (parameters, biases included).
        member: ensemble member index (None for a ``(params, spec)`` pair).
        rtol: relative singular-value threshold used.
    """

    n_eff: int
    ranks: tuple[int, ...]
    n_params: int
    member: int | None
    rtol: float


def _directional_rows(prob: Problem, u: torch.Tensor, chunk: int) -> torch.Tensor:
    """``∂_θ (u_μ · ∇_x f_k(x_μ))`` ``[P * out, N]`` with ``torch.func`` (jvp in x, jacrev in θ)."""
    theta = prob.theta

    def h(th, xm, um):
        return jvp(lambda xx: prob.forward(th, xx[None])[0], (xm,), (um,))[1]  # [out]

    parts = []
    for s0 in range(0, prob.P, chunk):
        J = vmap(jacrev(h), in_dims=(None, 0, 0))(
            theta, prob.x[s0 : s0 + chunk], u[s0 : s0 + chunk]
        )
        parts.append(J.reshape(-1, prob.n_params))
    return torch.cat(parts)


def _compress(rows: torch.Tensor, rtol: float):
    """Rank of ``rows`` and ``diag(s) Vᵀ`` on the kept singular values (same row space and Gram
    matrix up to the discarded ones)."""
    if rows.shape[0] == 0:
        return 0, rows
    _, s, Vh = torch.linalg.svd(rows, full_matrices=False)
    keep = s > rtol * s[0] if s[0] > 0 else torch.zeros_like(s, dtype=torch.bool)
    r = int(keep.sum())
    return r, s[:r, None] * Vh[:r]


def n_eff(
    model,
    x: torch.Tensor,
    *,
    members=None,
    rtol: float = 1e-12,
    max_rounds: int = 20,
    seed: int = 0,
    memory_budget: int | None = None,
):
    """N_eff as in the jamming spec (rank with a relative tolerance ``rtol`` on singular values).

    Args:
        model: an :class:`~weightscape.nets.Ensemble` or a ``(params, spec)`` pair.
        x: inputs ``[P, d]`` (or ``[M, P, d_max]``).
        members: ensemble members (default all).
        rtol: a singular value ``s`` counts when ``s > rtol · s_max`` (the spec's ~1e-12; float64
            SVD noise is ~1e-15 relative at these sizes).
        max_rounds: at most this many rounds of directional derivatives.
        seed: seed of the random directions.
        memory_budget: working memory in bytes (default 1 GiB).

    Returns:
        :class:`NEffResult` for a pair; a list of them for an ensemble.
    """
    check_positive("rtol", rtol)
    check_positive("max_rounds", max_rounds, allow_zero=True, integer=True)
    budget = _check_budget(memory_budget)
    probs, single = resolve_members(model, x, None, members)
    out = []
    for prob in probs:
        k = prob.spec.out_dim
        chunk = _structured_chunk(prob, budget, 4 * k)
        eye = torch.eye(k, dtype=prob.x.dtype, device=prob.x.device)
        rows = _jacobian_rows(prob, prob.x, eye.expand(prob.P, k, k), "structured", chunk)
        rank, basis = _compress(rows, rtol)
        ranks = [rank]
        gen = torch.Generator().manual_seed(int(seed) + 7919 * (prob.member or 0))
        for _ in range(max_rounds):
            if rank == prob.n_params:
                break
            u = torch.randn(prob.x.shape, generator=gen, dtype=torch.float64).to(prob.x)
            new = _directional_rows(prob, u, chunk)
            rank_new, basis = _compress(torch.cat([basis, new]), rtol)
            ranks.append(rank_new)
            if rank_new <= rank:
                break
            rank = rank_new
        out.append(NEffResult(rank, tuple(ranks), prob.n_params, prob.member, float(rtol)))
    return out[0] if single else out
