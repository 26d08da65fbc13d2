"""Symmetries of fully connected nets: canonical forms, random symmetric copies, orbit directions.

A net computes the same function after

* permuting the units of a hidden layer (rows of ``W_l, b_l`` and columns of ``W_{l+1}``), for
  every activation;
* rescaling a unit of a positively homogeneous activation (``relu``, ``leaky_relu``:
  ``act(c z) = c act(z)`` for ``c > 0``): incoming weights and bias times ``c``, outgoing weights
  over ``c``;
* flipping the sign of a unit of an odd activation (``tanh``): incoming weights, bias and outgoing
  weights times ``-1``.

:func:`canonicalize` maps every net of an orbit to one representative, layer by layer from the
input: rescale each unit's incoming weights + bias to unit norm (homogeneous activations; the
factor goes into the outgoing weights) or flip its sign so that its key is positive (odd
activations), then sort the units by a key (the projection of the normalised incoming row on a
fixed pseudo-random direction; ties broken by the outgoing column). The next layer's incoming rows
are then already in canonical order, so the procedure is well defined. Distances between canonical
forms are distances between minima "after removing permutation and rescaling symmetries".

Parameters are handled in the curvature module's flat order ``[W0, b0, W1, b1, ...]``
(:func:`weightscape.curvature.flatten_params`), batched over members: ``theta [M, N]``.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError, check_positive
from ..nets import MLPSpec

__all__ = [
    "SYMMETRIC_ACTIVATIONS",
    "canonicalize",
    "random_symmetry",
    "rescaling_directions",
    "symmetry_kind",
]

#: Activations with a discrete or rescaling symmetry handled here, and which one.
SYMMETRIC_ACTIVATIONS = {"relu": "rescale", "leaky_relu": "rescale", "tanh": "sign"}

# Seed of the fixed key directions. Any generic direction works; it only has to be the same for
# every net that is compared.
_KEY_SEED = 20200301


def symmetry_kind(spec: MLPSpec) -> str:
    """``"rescale"`` (relu, leaky_relu) or ``"sign"`` (tanh); a :class:`ConfigError` otherwise."""
    if not isinstance(spec, MLPSpec):
        raise ConfigError(f"spec must be an MLPSpec, got {type(spec).__name__}")
    kind = SYMMETRIC_ACTIVATIONS.get(spec.activation)
    if kind is None:
        raise ConfigError(
            f"activation={spec.activation!r} has no canonical form here (a linear net has a "
            f"continuous GL symmetry); use one of {sorted(SYMMETRIC_ACTIVATIONS)}"
        )
    return kind


def _as_batch(theta, spec: MLPSpec) -> tuple[torch.Tensor, bool]:
    t = torch.as_tensor(theta)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    single = t.ndim == 1
    if single:
        t = t[None]
    if t.ndim != 2 or t.shape[1] != spec.n_params:
        raise ConfigError(
            f"parameters must have shape [M, N={spec.n_params}] or [N], got {tuple(t.shape)}"
        )
    return t, single


def _layers(theta: torch.Tensor, spec: MLPSpec) -> list[list[torch.Tensor]]:
    """Per member-batched layer tensors ``[[W_l [M, out, in], b_l [M, out] | None], ...]``."""
    M = theta.shape[0]
    out, i = [], 0
    s = spec.sizes
    for l in range(spec.depth + 1):
        n_w = s[l + 1] * s[l]
        W = theta[:, i : i + n_w].reshape(M, s[l + 1], s[l]).clone()
        i += n_w
        b = None
        if spec.bias:
            b = theta[:, i : i + s[l + 1]].clone()
            i += s[l + 1]
        out.append([W, b])
    return out


def _flatten(layers: list[list[torch.Tensor]]) -> torch.Tensor:
    M = layers[0][0].shape[0]
    parts = []
    for W, b in layers:
        parts.append(W.reshape(M, -1))
        if b is not None:
            parts.append(b)
    return torch.cat(parts, 1)


def _key_vectors(n_in: int, n_out_next: int, bias: bool, dtype, device):
    g = torch.Generator().manual_seed(_KEY_SEED + 7919 * n_in + n_out_next)
    r_in = torch.randn(n_in + int(bias), generator=g, dtype=torch.float64).to(dtype).to(device)
    r_out = torch.randn(n_out_next, generator=g, dtype=torch.float64).to(dtype).to(device)
    return r_in, r_out


def canonicalize(theta, spec: MLPSpec) -> torch.Tensor:
    """Canonical representative of each net's symmetry orbit.

    Args:
        theta: flat parameters ``[M, N]`` (or ``[N]``), order ``[W0, b0, W1, b1, ...]``.
        spec: the architecture (relu, leaky_relu or tanh hidden units).

    Returns:
        Canonical parameters, same shape and dtype: the same function (to rounding) with, in each
        hidden layer, units sorted by key and, for relu-like units, unit-norm incoming
        weights + bias (units whose incoming row is exactly zero are left as they are); for tanh,
        positive keys.

    Two nets that differ by a permutation, rescaling (relu) or sign flips (tanh) of hidden units
    map to the same canonical parameters (bitwise when the rescaling factors are powers of two;
    to rounding otherwise). The sort is exact for generic nets; two units with keys equal to
    rounding (measure zero) may come out in either order.
    """
    kind = symmetry_kind(spec)
    t, single = _as_batch(theta, spec)
    layers = _layers(t, spec)
    for l in range(spec.depth):
        W, b = layers[l]
        W_next = layers[l + 1][0]
        rows = torch.cat([W, b[..., None]], -1) if b is not None else W  # [M, n, in(+1)]
        r_in, r_out = _key_vectors(W.shape[2], W_next.shape[1], b is not None, t.dtype, t.device)
        if kind == "rescale":
            norm = rows.norm(dim=-1)  # [M, n]
            scale = torch.where(norm > 0, norm, torch.ones_like(norm))
            rows = rows / scale[..., None]
            W_next = W_next * scale[:, None, :]
            key = rows @ r_in
        else:
            key = rows @ r_in
            sign = torch.where(key < 0, -torch.ones_like(key), torch.ones_like(key))
            rows = rows * sign[..., None]
            W_next = W_next * sign[:, None, :]
            key = key * sign
        # sort by key, ties by the outgoing column (stable two-pass sort = lexicographic)
        key2 = torch.einsum("mon,o->mn", W_next, r_out)
        order = torch.argsort(key2, dim=1, stable=True)
        order = order.gather(1, torch.argsort(key.gather(1, order), dim=1, stable=True))
        rows = rows.gather(1, order[..., None].expand_as(rows))
        W_next = W_next.gather(2, order[:, None, :].expand_as(W_next))
        if b is not None:
            layers[l] = [rows[..., :-1].contiguous(), rows[..., -1].contiguous()]
        else:
            layers[l] = [rows.contiguous(), None]
        layers[l + 1][0] = W_next
    out = _flatten(layers)
    return out[0] if single else out


def random_symmetry(
    theta,
    spec: MLPSpec,
    *,
    seed: int = 0,
    rescale: tuple[float, float] = (0.5, 2.0),
    powers_of_two: bool = False,
) -> torch.Tensor:
    """A randomly permuted (and rescaled or sign-flipped) copy of each net: the same function.

    Args:
        theta: ``[M, N]`` or ``[N]``.
        spec: the architecture.
        seed: seed of the permutations and factors.
        rescale: range of the log-uniform rescaling factors (relu-like units).
        powers_of_two: draw rescaling factors among powers of two inside ``rescale`` (then the
            rescaling is exact in floating point and :func:`canonicalize` is bitwise invariant).
    """
    kind = symmetry_kind(spec)
    lo, hi = rescale
    check_positive("rescale low", lo)
    if not hi >= lo:
        raise ConfigError(f"rescale={rescale} must be (low, high) with low <= high")
    t, single = _as_batch(theta, spec)
    layers = _layers(t, spec)
    M = t.shape[0]
    g = torch.Generator().manual_seed(int(seed))
    dt, dev = t.dtype, t.device
    for l in range(spec.depth):
        W, b = layers[l]
        W_next = layers[l + 1][0]
        n = W.shape[1]
        if kind == "rescale":
            u = torch.rand(M, n, generator=g, dtype=torch.float64)
            logc = torch.log(torch.tensor(lo)) + u * (torch.log(torch.tensor(hi / lo)))
            if powers_of_two:
                e_lo = int(torch.ceil(torch.log2(torch.tensor(lo))))
                e_hi = int(torch.floor(torch.log2(torch.tensor(hi))))
                if e_hi < e_lo:
                    raise ConfigError(f"rescale={rescale} contains no power of two")
                e = torch.randint(e_lo, e_hi + 1, (M, n), generator=g)
                c = torch.pow(2.0, e.to(torch.float64))
            else:
                c = torch.exp(logc)
        else:
            c = torch.where(torch.rand(M, n, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
        c = c.to(dt).to(dev)
        W = W * c[..., None]
        if b is not None:
            b = b * c
        W_next = W_next / c[:, None, :] if kind == "rescale" else W_next * c[:, None, :]
        perm = torch.stack([torch.randperm(n, generator=g) for _ in range(M)]).to(dev)
        W = W.gather(1, perm[..., None].expand_as(W))
        if b is not None:
            b = b.gather(1, perm)
        W_next = W_next.gather(2, perm[:, None, :].expand_as(W_next))
        layers[l] = [W, b]
        layers[l + 1][0] = W_next
    out = _flatten(layers)
    return out[0] if single else out


def rescaling_directions(theta, spec: MLPSpec) -> torch.Tensor:
    """Tangents of the rescaling orbits at ``theta``: one per hidden unit, ``[M, U, N]``.

    For unit ``i`` of hidden layer ``l`` (relu-like), the derivative at ``c = 1`` of
    ``(W_l[i], b_l[i], W_{l+1}[:, i]) -> (c W_l[i], c b_l[i], W_{l+1}[:, i] / c)``:
    ``v = (W_l[i], b_l[i], -W_{l+1}[:, i])`` in their slots, zero elsewhere. ``U`` = number of
    hidden units. The data loss ``L`` is constant along the orbit, so ``grad L . v = 0`` everywhere
    and, differentiating once more, ``Hess L v = -D v^T grad L``: at a stationary point of ``L``
    each ``v`` is a zero mode; at a stationary point of ``L + (lambda/2)|theta|^2`` it is an
    eigenvector of ``Hess L`` with eigenvalue ``lambda``, i.e. of the objective's Hessian with
    eigenvalue ``2 lambda``. For tanh there is no continuous symmetry: ``U = 0``.
    """
    kind = symmetry_kind(spec)
    t, single = _as_batch(theta, spec)
    M, N = t.shape
    if kind != "rescale":
        out = t.new_zeros(M, 0, N)
        return out[0] if single else out
    layers = _layers(t, spec)
    vecs = []
    for l in range(spec.depth):
        W, b = layers[l]
        W_next = layers[l + 1][0]
        for i in range(W.shape[1]):
            z = [
                [torch.zeros_like(Wk), None if bk is None else torch.zeros_like(bk)]
                for Wk, bk in layers
            ]
            z[l][0][:, i, :] = W[:, i, :]
            if b is not None:
                z[l][1][:, i] = b[:, i]
            z[l + 1][0][:, :, i] = -W_next[:, :, i]
            vecs.append(_flatten(z))
    out = torch.stack(vecs, 1)
    return out[0] if single else out
