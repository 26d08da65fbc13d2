"""Seeded case factories shared by the training tests."""

from __future__ import annotations

import torch

from weightscape.nets import Ensemble, MLPSpec


def binary_data(P: int, d: int, seed: int = 0, M: int | None = None):
    """Gaussian inputs ``[P, d]`` (or ``[M, P, d]``) and ±1 labels ``[P]``."""
    g = torch.Generator().manual_seed(seed)
    shape = (P, d) if M is None else (M, P, d)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (P,), generator=g).to(torch.float64) * 2 - 1
    return x, y


def class_data(P: int, d: int, k: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(P, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (P,), generator=g)
    return x, y


def mixed_ensemble(seeds=(3, 4, 5), init="geiger2019"):
    """Members of different input dimension, widths and seeds (depth 2, bias)."""
    specs = [
        MLPSpec(d_in=5, widths=(7, 4), init=init),
        MLPSpec(d_in=3, widths=(6, 8), init=init),
        MLPSpec(d_in=4, widths=(3, 5), init=init),
    ]
    return Ensemble.init(specs, list(seeds))
