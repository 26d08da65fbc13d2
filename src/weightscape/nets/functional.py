"""Single-net functional forward (unbatched, unpadded), for ``torch.func`` transforms.

``mlp_forward(params, x, spec)`` is the reference semantics of one member of an
:class:`~weightscape.nets.Ensemble`: the curvature module differentiates it with ``torch.func``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._spec import MLPSpec

__all__ = ["activate", "activation_derivative", "mlp_forward", "split_params"]


def activate(z: torch.Tensor, spec: MLPSpec) -> torch.Tensor:
    """The hidden activation of ``spec`` (without the fan-in scale)."""
    if spec.activation == "relu":
        return torch.relu(z)
    if spec.activation == "tanh":
        return torch.tanh(z)
    if spec.activation == "leaky_relu":
        return torch.nn.functional.leaky_relu(z, spec.leaky_slope)
    return z


def activation_derivative(a: torch.Tensor, spec: MLPSpec, scale=None) -> torch.Tensor:
    """act'(z) expressed through the (scaled) output ``a = scale * act(z)``.

    Conventions match torch autograd: relu'(0) = 0 and leaky_relu'(0) = slope.
    """
    if spec.activation == "relu":
        return (a > 0).to(a.dtype)
    if spec.activation == "leaky_relu":
        # scalars in torch.where would be materialised in the default dtype (float32): avoid
        return torch.where(a > 0, torch.ones_like(a), torch.full_like(a, spec.leaky_slope))
    if spec.activation == "tanh":
        t = a if scale is None else a / scale
        return 1 - t * t
    return torch.ones_like(a)


def split_params(params: Sequence[torch.Tensor], spec: MLPSpec):
    """Pair a flat parameter list ``[W0, (b0,) W1, (b1,) ...]`` into ``[(W, b or None), ...]``."""
    step = 2 if spec.bias else 1
    return [(params[i], params[i + 1] if spec.bias else None) for i in range(0, len(params), step)]


def mlp_forward(params: Sequence[torch.Tensor], x: torch.Tensor, spec: MLPSpec) -> torch.Tensor:
    """Forward pass of one net.

    Args:
        params: ``[W0, b0, W1, b1, ..., WL, bL]`` (biases only when ``spec.bias``), with
            ``W_l`` of shape ``[n_{l+1}, n_l]``.
        x: inputs ``[P, d_in]`` (or ``[d_in]``).
        spec: the architecture.

    Returns:
        Outputs ``[P, out_dim]`` (or ``[out_dim]``).
    """
    layers = split_params(params, spec)
    a = x
    for l, (w, b) in enumerate(layers):
        z = a @ w.T
        if b is not None:
            z = z + b
        if l < spec.depth:
            a = activate(z, spec)
            if spec.fan_in_scale:
                a = a / math.sqrt(spec.sizes[l])
        else:
            a = z
    return a
