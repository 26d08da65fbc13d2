"""Losses of batched nets, with hand-derived output gradients for the training hot loop.

Every loss has two faces:

* ``per_sample(f, y)``: differentiable torch expression of the per-sample loss ``[..., P]``
  (the reference semantics; ``torch.func`` and autograd use it);
* ``value_and_dout(f, y, weights)``: the (weighted) mean loss per member ``[M]`` and its gradient
  with respect to the outputs ``[M, P, out]``, in closed form (no autograd), used every step.

Conventions: outputs ``f`` are ``[M, P, out]``; binary labels ``y`` are ±1 floats ``[P]`` or
``[M, P]`` with ``out = 1``; class labels are int64 ``[P]`` or ``[M, P]``; regression targets are
floats ``[P]``/``[P, out]`` (or with a leading M). ``weights`` ``[M, P]`` (0/1 sample masks for
per-member training subsets, or any non-negative weights) define the mean:
``Σ_μ w_μ ℓ_μ / Σ_μ w_μ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError, check_positive

__all__ = [
    "LOSSES",
    "CrossEntropy",
    "LinearHinge",
    "Loss",
    "MeanSquaredError",
    "QuadraticHinge",
    "gaps",
    "get_loss",
]


def gaps(f: torch.Tensor, y: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """Gaps Δ_μ = κ − y_μ f(x_μ) of a scalar-output net: ``f`` ``[..., P, 1]`` -> ``[..., P]``."""
    return kappa - y * f.squeeze(-1)


def _weighted_mean(per_sample: torch.Tensor, weights: torch.Tensor | None):
    """Mean over the last axis, weighted; returns (mean [...], normaliser [..., 1] or P)."""
    if weights is None:
        P = per_sample.shape[-1]
        return per_sample.mean(-1), P
    norm = weights.sum(-1, keepdim=True).clamp_min(1e-300)
    return (per_sample * weights).sum(-1) / norm.squeeze(-1), norm


@dataclass(frozen=True)
class Loss:
    """Base class: subclasses fill ``per_sample`` and ``_dper_sample`` (∂ℓ_μ/∂f_μ)."""

    name = "loss"
    binary = False

    def per_sample(self, f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _dper_sample(self, f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, f, y, weights=None) -> torch.Tensor:
        """Mean loss per member ``[M]`` (differentiable)."""
        return _weighted_mean(self.per_sample(f, y), weights)[0]

    def value_and_dout(self, f, y, weights=None):
        """``(loss [M], dloss/df [M, P, out])`` in closed form."""
        ell = self.per_sample(f, y)
        value, norm = _weighted_mean(ell, weights)
        d = self._dper_sample(f, y)  # [M, P, out]
        if weights is None:
            d = d / norm
        else:
            d = d * (weights / norm)[..., None]
        return value, d


@dataclass(frozen=True)
class QuadraticHinge(Loss):
    """ℓ = ½ relu(κ − y f)², the jamming papers' loss (``out = 1``, y = ±1)."""

    kappa: float = 1.0
    name = "quadratic_hinge"
    binary = True

    def __post_init__(self):
        check_positive("kappa", self.kappa, allow_zero=True)

    def per_sample(self, f, y):
        return 0.5 * torch.relu(gaps(f, y, self.kappa)) ** 2

    def _dper_sample(self, f, y):
        return (-y * torch.relu(gaps(f, y, self.kappa)))[..., None]


@dataclass(frozen=True)
class LinearHinge(Loss):
    """ℓ = relu(κ − y f) (``out = 1``, y = ±1); subgradient 0 at the kink."""

    kappa: float = 1.0
    name = "linear_hinge"
    binary = True

    def __post_init__(self):
        check_positive("kappa", self.kappa, allow_zero=True)

    def per_sample(self, f, y):
        return torch.relu(gaps(f, y, self.kappa))

    def _dper_sample(self, f, y):
        return (-y * (gaps(f, y, self.kappa) > 0).to(f.dtype))[..., None]


@dataclass(frozen=True)
class MeanSquaredError(Loss):
    """ℓ = ½ Σ_k (f_k − t_k)²; integer class targets are one-hot encoded."""

    name = "mse"

    def _target(self, f, y):
        if y.dtype in (torch.int64, torch.int32):
            return torch.nn.functional.one_hot(y, f.shape[-1]).to(f.dtype)
        # float targets are [.., P] for out = 1, else [.., P, out]
        if f.shape[-1] == 1 and y.shape[-1] == f.shape[-2]:
            return y[..., None]
        return y

    def per_sample(self, f, y):
        return 0.5 * ((f - self._target(f, y)) ** 2).sum(-1)

    def _dper_sample(self, f, y):
        return f - self._target(f, y)


@dataclass(frozen=True)
class CrossEntropy(Loss):
    """Softmax cross-entropy with int64 class labels."""

    name = "cross_entropy"

    def per_sample(self, f, y):
        logp = torch.log_softmax(f, -1)
        y = y.expand(f.shape[:-1])
        return -torch.gather(logp, -1, y[..., None]).squeeze(-1)

    def _dper_sample(self, f, y):
        p = torch.softmax(f, -1)
        y = y.expand(f.shape[:-1])
        return p - torch.nn.functional.one_hot(y, f.shape[-1]).to(f.dtype)


LOSSES = {
    "quadratic_hinge": QuadraticHinge,
    "linear_hinge": LinearHinge,
    "mse": MeanSquaredError,
    "cross_entropy": CrossEntropy,
}


def get_loss(name: str, **options) -> Loss:
    """A loss by name: ``quadratic_hinge``/``linear_hinge`` (option ``kappa``), ``mse``,
    ``cross_entropy``."""
    if name not in LOSSES:
        raise ConfigError(f"loss={name!r} is not known; choose one of {sorted(LOSSES)}")
    try:
        return LOSSES[name](**options)
    except TypeError:
        raise ConfigError(f"loss {name!r} does not take options {sorted(options)}") from None
