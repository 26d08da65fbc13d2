"""Layer-structured per-sample Jacobians and residual Hessians of a fully connected net.

Why hand-written: the generic ``torch.func`` route to the residual Hessian (a vmapped
forward-over-reverse HVP over the N basis vectors) costs ~N backward passes and, on the CPU, lost
to a plain Python row loop of double-backward passes. The net's structure gives the residual
Hessian in a few GEMMs instead. Everything here is checked against ``torch.func`` and finite
differences in ``tests/curvature``.

Notation for one net (layers l = 0..L, L = depth): ``a_0 = x``, ``z_{l+1} = W_l a_l + b_l``,
``a_l = s_l σ(z_l)`` for l = 1..L (``s_l = 1/√n_{l-1}`` with the fan-in scale, else 1), output
``f = z_{L+1}``. ``ã_l = [a_l, 1]`` (the 1 only with biases) so that layer l's parameters form one
matrix ``Θ_l = [W_l | b_l]`` ``[n_{l+1}, n_l + 1]``. For a scalar ``F = Σ_μ c_μ · f(x_μ)`` the
second-order adjoint rule gives two kinds of terms,

.. math::

    ∇²F = Σ_μ Σ_{m≥1} \\bar g_{z_{m+1}} ⊗ ∂a_m/∂θ \\;(+\\,\\text{transpose})
        + Σ_μ Σ_{l=1}^{L} (∂z_l/∂θ)^T \\mathrm{diag}(\\bar g_{a_l} s_l σ''(z_l)) (∂z_l/∂θ),

the first from the bilinear products ``W_m a_m`` (it couples ``W_m`` only with earlier layers:
same-layer blocks and every bias row of it vanish), the second from the curvature of σ (absent for
relu, leaky relu and linear nets, where σ'' = 0 almost everywhere). With the per-sample layer
Jacobians ``A_{m,l} = ∂a_m/∂z_{l+1}`` ``[n_m, n_{l+1}]`` and ``E_{m,l} = ∂z_m/∂z_{l+1}``, each
block is one GEMM over samples.
"""

from __future__ import annotations

import math

import torch

from ..nets import MLPSpec
from ..nets.functional import activate, split_params

__all__ = ["aug_to_flat_index", "per_sample_jacobian_rows", "residual_hessian"]


def _act_derivs(z: torch.Tensor, spec: MLPSpec, scale: float):
    """``(s σ(z), s σ'(z), s σ''(z) or None)``; σ' follows autograd at kinks (relu'(0) = 0)."""
    a = activate(z, spec)
    if spec.activation == "relu":
        d1 = (z > 0).to(z.dtype)
        d2 = None
    elif spec.activation == "leaky_relu":
        # (torch.where on two Python scalars would round the slope to float32)
        d1 = torch.where(z > 0, torch.ones_like(z), torch.full_like(z, spec.leaky_slope))
        d2 = None
    elif spec.activation == "tanh":
        d1 = 1 - a * a
        d2 = -2 * a * d1
    else:
        d1 = torch.ones_like(z)
        d2 = None
    if scale != 1.0:
        a, d1 = a * scale, d1 * scale
        d2 = None if d2 is None else d2 * scale
    return a, d1, d2


def _forward(params, spec: MLPSpec, x: torch.Tensor):
    """Augmented activations ``ã_l`` ``[P, n_l(+1)]`` (l = 0..L), ``sσ'`` and ``sσ''`` of
    ``z_l`` (l = 1..L; index 0 unused) and the weights."""
    layers = split_params(params, spec)
    ones = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
    aug = (lambda a: torch.cat([a, ones], 1)) if spec.bias else (lambda a: a)
    a_aug, d1s, d2s = [aug(x)], [None], [None]
    a = x
    for l, (w, b) in enumerate(layers[:-1]):
        z = a @ w.T
        if b is not None:
            z = z + b
        scale = 1.0 / math.sqrt(spec.sizes[l]) if spec.fan_in_scale else 1.0
        a, d1, d2 = _act_derivs(z, spec, scale)
        a_aug.append(aug(a))
        d1s.append(d1)
        d2s.append(d2)
    return a_aug, d1s, d2s, [w for w, _ in layers]


def per_sample_jacobian_rows(params, spec: MLPSpec, x: torch.Tensor, cot: torch.Tensor):
    """Gradients of ``cot_{μr} · f(x_μ)`` with respect to θ, one row per (sample, cotangent).

    Args:
        params: ``[W0, b0, ...]``.
        x: inputs ``[P, d]``.
        cot: cotangents ``[P, R, out]`` (R per sample; ``[P, 1, 1]`` of ones gives ∇f).

    Returns:
        ``[P * R, N]`` in the flat θ order of :func:`~weightscape.curvature.flatten_params`.
    """
    a_aug, d1s, _, ws = _forward(params, spec, x)
    L = spec.depth
    P, R = cot.shape[0], cot.shape[1]
    delta = cot  # ∂/∂z_{l+1} of cot·f, [P, R, n_{l+1}]
    blocks = [None] * (L + 1)
    for l in range(L, -1, -1):
        a = a_aug[l]
        n_in = spec.sizes[l]
        wpart = (delta[:, :, :, None] * a[:, None, None, :n_in]).reshape(P, R, -1)
        blocks[l] = torch.cat([wpart, delta], 2) if spec.bias else wpart
        if l > 0:
            delta = (delta @ ws[l]) * d1s[l][:, None, :]
    return torch.cat(blocks, 2).reshape(P * R, -1)


def aug_to_flat_index(spec: MLPSpec, device=None) -> torch.Tensor:
    """``perm`` with ``flat = aug[perm]``: the augmented position of every flat θ entry.

    Augmented order: layer by layer, ``Θ_l = [W_l | b_l]`` row-major.
    """
    idx, off = [], 0
    for l in range(spec.depth + 1):
        n_out, n_in = spec.sizes[l + 1], spec.sizes[l]
        cols = n_in + (1 if spec.bias else 0)
        grid = off + torch.arange(n_out * cols, device=device).reshape(n_out, cols)
        idx.append(grid[:, :n_in].reshape(-1))
        if spec.bias:
            idx.append(grid[:, n_in])
        off += n_out * cols
    return torch.cat(idx)


def _layer_offsets(spec: MLPSpec):
    offs, off = [], 0
    for l in range(spec.depth + 1):
        offs.append(off)
        off += spec.sizes[l + 1] * (spec.sizes[l] + (1 if spec.bias else 0))
    return offs, off


def residual_hessian(
    params, spec: MLPSpec, x: torch.Tensor, c: torch.Tensor, *, chunk: int | None = None
) -> torch.Tensor:
    """Hessian ``∇²_θ Σ_μ c_μ · f(x_μ)`` with ``c`` held fixed, in the flat θ order.

    Args:
        params: ``[W0, b0, ...]``.
        x: inputs ``[P, d]``.
        c: output coefficients ``[P, out]`` (e.g. ``∂ℓ_μ/∂f_μ / P``).
        chunk: samples per chunk (default all at once).

    Returns:
        Symmetric ``[N, N]`` (exactly symmetric: every block is added with its transpose).
    """
    L = spec.depth
    N = spec.n_params
    H = torch.zeros(N, N, dtype=x.dtype, device=x.device)
    if L == 0 or x.shape[0] == 0:
        return H  # a linear model: f is linear in θ
    offs, _ = _layer_offsets(spec)
    bcol = 1 if spec.bias else 0
    sizes = spec.sizes
    step = x.shape[0] if chunk is None else max(1, int(chunk))

    def block(r, cc):  # view of the augmented (Θ_r, Θ_cc) block as [n_{r+1}, cols_r, ...]
        nr, ncc = sizes[r + 1] * (sizes[r] + bcol), sizes[cc + 1] * (sizes[cc] + bcol)
        v = H[offs[r] : offs[r] + nr, offs[cc] : offs[cc] + ncc]
        return v.view(sizes[r + 1], sizes[r] + bcol, sizes[cc + 1], sizes[cc] + bcol)

    for s0 in range(0, x.shape[0], step):
        xs, cs = x[s0 : s0 + step], c[s0 : s0 + step]
        Pc = xs.shape[0]
        a_aug, d1s, d2s, ws = _forward(params, spec, xs)
        # adjoints: gz[l] = ∂F/∂z_l (l = 1..L+1), ga[l] = ∂F/∂a_l (l = 1..L)
        gz = [None] * (L + 2)
        ga = [None] * (L + 1)
        gz[L + 1] = cs
        for l in range(L, 0, -1):
            ga[l] = gz[l + 1] @ ws[l]
            gz[l] = ga[l] * d1s[l]
        # E[m][l] = ∂z_m/∂z_{l+1} [Pc, n_m, n_{l+1}] for 0 <= l < m <= L (E[l+1][l] = I, implicit)
        # A[m][l] = ∂a_m/∂z_{l+1} = diag(sσ'(z_m)) E[m][l]
        E = [[None] * (L + 1) for _ in range(L + 1)]
        A = [[None] * (L + 1) for _ in range(L + 1)]
        for l in range(L):
            A[l + 1][l] = torch.diag_embed(d1s[l + 1])
            for m in range(l + 2, L + 1):
                E[m][l] = torch.matmul(ws[m - 1], A[m - 1][l])
                A[m][l] = d1s[m][:, :, None] * E[m][l]
        # bilinear terms: block (W_m, Θ_l), l < m
        for m in range(1, L + 1):
            for l in range(m):
                X = (gz[m + 1][:, :, None] * a_aug[l][:, None, :]).reshape(Pc, -1)
                Y = A[m][l].reshape(Pc, -1)
                Rm = (X.T @ Y).view(sizes[m + 1], sizes[l] + bcol, sizes[m], sizes[l + 1])
                Rm = Rm.permute(0, 2, 3, 1)  # [i, j, p, q]
                block(m, l)[:, : sizes[m]] += Rm
                block(l, m)[:, :, :, : sizes[m]] += Rm.permute(2, 3, 0, 1)
        # curvature of σ: blocks (Θ_k, Θ_k'), k <= k' < L
        if d2s[1] is None:
            continue
        w2 = [None] + [ga[l] * d2s[l] for l in range(1, L + 1)]
        for k in range(L):
            for kp in range(k, L):
                K = None
                for l in range(kp + 1, L + 1):
                    Ek = E[l][k] if l > k + 1 else None
                    Ekp = E[l][kp] if l > kp + 1 else None
                    # diag(w_l) E[l][k'] (E[l][k'] = I when l = k' + 1)
                    left = torch.diag_embed(w2[l]) if Ekp is None else w2[l][:, :, None] * Ekp
                    term = left if Ek is None else Ek.transpose(1, 2) @ left
                    K = term if K is None else K + term
                X = a_aug[k]
                Y = (K[:, :, :, None] * a_aug[kp][:, None, None, :]).reshape(Pc, -1)
                Rk = (X.T @ Y).view(sizes[k] + bcol, sizes[k + 1], sizes[kp + 1], sizes[kp] + bcol)
                Rk = Rk.permute(1, 0, 2, 3)  # [p, q, p', q']
                block(k, kp).add_(Rk)
                if kp != k:
                    block(kp, k).add_(Rk.permute(2, 3, 0, 1))
    perm = aug_to_flat_index(spec, device=x.device)
    return H[perm][:, perm]
