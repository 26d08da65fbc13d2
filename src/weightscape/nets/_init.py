"""Initialisation schemes. Each draws a member's parameters from that member's own generator.

A scheme is a function ``fn(spec, layer, generator, dtype) -> (W [n_out, n_in], b [n_out] | None)``
for layer ``layer`` (0 = first, ``spec.depth`` = read-out), on the CPU; the ensemble moves the
result to its device. Register more (e.g. binary / LR-net parameters) with :func:`register_init`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..errors import ConfigError

__all__ = ["available_inits", "block_orthogonal_rows", "register_init"]

InitFn = Callable[["object", int, torch.Generator, torch.dtype], tuple]
_INITS: dict[str, InitFn] = {}


def register_init(name: str, fn: InitFn, *, overwrite: bool = False) -> None:
    """Register an initialisation scheme under ``name`` (see the module docstring for ``fn``)."""
    if name in _INITS and not overwrite:
        raise ConfigError(f"init {name!r} is already registered")
    _INITS[name] = fn


def available_inits() -> list[str]:
    return sorted(_INITS)


def get_init(name: str) -> InitFn:
    if name not in _INITS:
        raise ConfigError(f"init={name!r} is not registered; choose one of {available_inits()}")
    return _INITS[name]


def _random_orthogonal(n: int, gen: torch.Generator, dtype) -> torch.Tensor:
    """Haar-random orthogonal n×n matrix (QR of a Gaussian matrix with the sign of diag R fixed)."""
    a = torch.randn(n, n, generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    return q.to(dtype)


def block_orthogonal_rows(n_out: int, n_in: int, gen: torch.Generator, dtype) -> torch.Tensor:
    """``[n_out, n_in]`` matrix whose rows have unit norm and are orthonormal within consecutive
    blocks of ``n_in`` rows (independent orthogonal blocks stacked when ``n_out > n_in``).

    This is the jamming authors' scheme. ``torch.nn.init.orthogonal_`` differs when
    ``n_out > n_in``: it makes the columns orthonormal, so rows have norm √(n_in/n_out).
    """
    rows = []
    for start in range(0, n_out, n_in):
        k = min(n_in, n_out - start)
        rows.append(_random_orthogonal(n_in, gen, dtype)[:k])
    return torch.cat(rows, 0)


def _geiger2019(spec, layer, gen, dtype):
    n_in, n_out = spec.sizes[layer], spec.sizes[layer + 1]
    w = block_orthogonal_rows(n_out, n_in, gen, dtype)
    if layer == spec.depth:
        w = w * spec.output_norm
    b = torch.zeros(n_out, dtype=dtype) if spec.bias else None
    return w, b


def _normal(spec, layer, gen, dtype):
    n_in, n_out = spec.sizes[layer], spec.sizes[layer + 1]
    w = torch.randn(n_out, n_in, generator=gen, dtype=torch.float64) * (
        spec.init_gain / math.sqrt(n_in)
    )
    b = torch.zeros(n_out, dtype=dtype) if spec.bias else None
    return w.to(dtype), b


def _torch_default(spec, layer, gen, dtype):
    """``torch.nn.Linear``'s default: W and b uniform in ±1/√fan-in."""
    n_in, n_out = spec.sizes[layer], spec.sizes[layer + 1]
    bound = 1.0 / math.sqrt(n_in)
    w = (torch.rand(n_out, n_in, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    b = None
    if spec.bias:
        b = ((torch.rand(n_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound).to(dtype)
    return w.to(dtype), b


register_init("geiger2019", _geiger2019)
register_init("normal", _normal)
register_init("torch", _torch_default)
