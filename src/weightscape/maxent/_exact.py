"""Exact enumeration of all ``2^N`` states: log Z, probabilities and moments (N ≤ ~20).

States are indexed by integers ``s ∈ [0, 2^N)``; spin ``i`` of state ``s`` is ``+1`` when bit ``i``
of ``s`` is set and ``-1`` otherwise (bit 0 = spin 0). Work is streamed over chunks of states so
that memory stays ``O(chunk × N)``.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ._model import IsingModel
from ._moments import Moments, _parse_triplets

__all__ = [
    "MAX_EXACT_SPINS",
    "all_states",
    "exact_distribution",
    "exact_log_partition",
    "exact_moments",
]

# 2^24 states × 24 spins is the most we let a call enumerate (seconds, not minutes).
MAX_EXACT_SPINS = 24
# States per chunk (2^16 × N float64 ≤ 12 MB at N = 24).
STATE_CHUNK = 1 << 16


def _check_n(n: int) -> None:
    if n > MAX_EXACT_SPINS:
        raise ConfigError(
            f"exact enumeration needs N <= {MAX_EXACT_SPINS} spins (got N = {n}); "
            "use BP or Monte Carlo for larger models"
        )


def _states(start: int, stop: int, n: int, dtype, device) -> torch.Tensor:
    idx = torch.arange(start, stop, device=device, dtype=torch.int64)
    bits = (idx[:, None] >> torch.arange(n, device=device, dtype=torch.int64)) & 1
    return (2 * bits - 1).to(dtype)


def all_states(n_spins: int, *, dtype=torch.int8, device=None) -> torch.Tensor:
    """All ``2^N`` states ``[2^N, N]`` as ±1 (row ``s`` = state ``s``; bit ``i`` → spin ``i``)."""
    _check_n(n_spins)
    return _states(0, 1 << n_spins, n_spins, dtype, device)


def _chunks(model: IsingModel):
    n = model.n_spins
    _check_n(n)
    total = 1 << n
    for a in range(0, total, STATE_CHUNK):
        b = min(a + STATE_CHUNK, total)
        x = _states(a, b, n, model.dtype, model.device)
        yield x, -model.energy(x)


def exact_log_partition(model: IsingModel) -> torch.Tensor:
    """``log Z = log Σ_σ exp(-E(σ))`` (0-dim tensor), by streamed log-sum-exp."""
    parts = [torch.logsumexp(logw, 0) for _, logw in _chunks(model)]
    return torch.logsumexp(torch.stack(parts), 0)


def exact_distribution(model: IsingModel) -> torch.Tensor:
    """Probabilities of all ``2^N`` states ``[2^N]`` in the order of :func:`all_states`."""
    logw = torch.cat([lw for _, lw in _chunks(model)])
    return torch.exp(logw - torch.logsumexp(logw, 0))


def exact_moments(model: IsingModel, *, triplets=None) -> Moments:
    """Exact ``m`` ``[N]``, ``C = ⟨σσᵀ⟩`` ``[N, N]`` and optionally third-order connected moments.

    Args:
        model: the Ising model (N ≤ :data:`MAX_EXACT_SPINS`).
        triplets: as in :func:`~weightscape.maxent.sample_moments` (``None``, ``"all"`` or
            ``[T, 3]`` indices).

    Returns:
        :class:`Moments` (``n_samples=None``); use :func:`exact_log_partition` for ``log Z``.
    """
    log_z = exact_log_partition(model)
    n = model.n_spins
    m = torch.zeros(n, dtype=model.dtype, device=model.device)
    C = torch.zeros(n, n, dtype=model.dtype, device=model.device)
    for x, logw in _chunks(model):
        p = torch.exp(logw - log_z)
        m += p @ x
        C += (x * p[:, None]).T @ x
    C = 0.5 * (C + C.T)
    C.fill_diagonal_(1.0)
    third = trip = None
    if triplets is not None:
        trip = _parse_triplets(triplets, n, model.device)
        third = (
            torch.zeros(n, n, n, dtype=model.dtype, device=model.device)
            if trip is None
            else torch.zeros(trip.shape[0], dtype=model.dtype, device=model.device)
        )
        for x, logw in _chunks(model):
            p = torch.exp(logw - log_z)
            d = x - m
            if trip is None:
                third += torch.einsum("s,si,sj,sk->ijk", p, d, d, d)
            else:
                third += p @ (d[:, trip[:, 0]] * d[:, trip[:, 1]] * d[:, trip[:, 2]])
    return Moments(m, C, None, third, trip)
