"""Precision and device: one owner.

weightscape computes in float64 by default (counts of unsatisfied gaps and Hessian spectra are wrong
in float32). Library code never sets torch's global default dtype or device: it takes both from its
inputs or from a :class:`Precision` carried by the config. This module is the only place that turns
user strings ("float64", "cuda") into torch objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import ConfigError

__all__ = ["DTYPES", "Precision", "resolve_device", "resolve_dtype", "resolve_precision"]

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_dtype(name: str | torch.dtype) -> torch.dtype:
    """Map ``"float64"``/``"float32"`` (or a torch dtype) to a torch dtype."""
    if isinstance(name, torch.dtype):
        if name not in DTYPES.values():
            raise ConfigError(f"dtype={name} is not supported; choose one of {list(DTYPES)}")
        return name
    if name not in DTYPES:
        raise ConfigError(f"dtype={name!r} is not supported; choose one of {list(DTYPES)}")
    return DTYPES[name]


def resolve_device(name: str | torch.device | None) -> torch.device:
    """Map ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (cuda if available) to a device."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"device={name!r} is not a device; use 'cpu', 'cuda', 'cuda:<k>' or 'auto'"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} requested but CUDA is not available; use 'cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device={name!r} is not supported; use 'cpu', 'cuda' or 'auto'")
    return dev


@dataclass(frozen=True)
class Precision:
    """The dtype and device of a computation (default float64 on the CPU)."""

    dtype: str = "float64"
    device: str = "cpu"

    def __post_init__(self):
        resolve_dtype(self.dtype)
        if self.device != "auto":
            resolve_device(self.device)

    @property
    def torch_dtype(self) -> torch.dtype:
        return resolve_dtype(self.dtype)

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def tensor(self, data) -> torch.Tensor:
        """``torch.as_tensor(data)`` in this precision."""
        return torch.as_tensor(data, dtype=self.torch_dtype, device=self.torch_device)


def resolve_precision(precision: Precision | None) -> Precision:
    """``precision`` checked; ``None`` is the default (float64 on the CPU)."""
    if precision is None:
        return Precision()
    if not isinstance(precision, Precision):
        raise ConfigError(f"precision={precision!r} must be a weightscape.Precision")
    return precision
