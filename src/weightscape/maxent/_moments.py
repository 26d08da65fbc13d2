"""Moments of ±1 samples: magnetisations, pair moments, connected and third-order correlations.

Samples are ``[S, N]`` arrays of ±1 (``int8`` keeps 2·10^6 × 675 samples at 1.35 GB);
:func:`pack_spins` stores them as bits (8 spins per byte, 169 MB for the same set). All moment
functions stream over row chunks, accept either form, and accept optional per-sample weights
(e.g. the exact probabilities of all ``2^N`` states).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, DatasetError

__all__ = [
    "Moments",
    "PackedSpins",
    "pack_spins",
    "sample_moments",
    "third_order_connected",
    "unpack_spins",
]

# Rows per chunk when streaming samples: 2^15 rows × 675 spins × 8 bytes ≈ 180 MB of float64.
DEFAULT_CHUNK_ROWS = 1 << 15
# Rows per float32 block of the exact unweighted pair counts: sums of ±1 products over at most
# 2^24 rows are integers float32 holds exactly; 2^15 keeps partial sums far below that.
EXACT_FLOAT32_ROWS = 1 << 15
# Bytes of each of the two work arrays [triplets, rows] of a third-order block: small enough to
# stay in cache (8 triplets × 2^15 rows of float64 = 2 MiB).
THIRD_ORDER_BLOCK_BYTES = 1 << 21
# Upper bound on the triplets per block of a third-order sum (the default leaves the block to
# THIRD_ORDER_BLOCK_BYTES). Taking all triplets at once made the temporaries rows × T: 0.8 GB
# each for the maxent paper scale's 10^4 Metropolis samples × 10^4 triplets.
DEFAULT_CHUNK_TRIPLETS = 256
# The full [N, N, N] third-order tensor is only built up to this N (64³ float64 = 2 MB);
# above it pass explicit triplets.
MAX_FULL_THIRD_ORDER = 64


@dataclass(frozen=True, eq=False)
class PackedSpins:
    """±1 samples packed as bits: ``bits[s, b]`` holds spins ``8b … 8b+7`` of sample ``s``.

    Attributes:
        bits: ``[S, ceil(N/8)]`` uint8, big-endian bit order (``numpy.packbits``), bit 1 ↔ +1.
        n_spins: ``N``.
    """

    bits: np.ndarray
    n_spins: int

    def __post_init__(self):
        bits = np.asarray(self.bits)
        if bits.dtype != np.uint8 or bits.ndim != 2:
            raise DatasetError(f"bits must be a 2-D uint8 array, got {bits.dtype} {bits.shape}")
        if bits.shape[1] != (self.n_spins + 7) // 8:
            raise DatasetError(
                f"bits has {bits.shape[1]} bytes per row; N = {self.n_spins} needs "
                f"{(self.n_spins + 7) // 8}"
            )
        object.__setattr__(self, "bits", bits)

    def __len__(self) -> int:
        return self.bits.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.bits.shape[0], self.n_spins)

    def rows(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Unpack rows ``start:stop`` to ±1 ``int8`` ``[stop - start, N]``."""
        return unpack_spins(self, start, stop)


def pack_spins(samples) -> PackedSpins:
    """Pack ±1 samples ``[S, N]`` (any integer/float dtype) into bits with ``numpy.packbits``."""
    x = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
    if x.ndim != 2:
        raise DatasetError(f"samples have shape {x.shape}; expected [S, N]")
    _check_pm1(x)
    return PackedSpins(np.packbits(x > 0, axis=1), x.shape[1])


def unpack_spins(packed: PackedSpins, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Unpack rows ``start:stop`` of :class:`PackedSpins` to ±1 ``int8`` ``[rows, N]``."""
    # reinterpret the fresh 0/1 bytes as int8 and map them in place: a copy by astype would
    # double the peak (2.7 GB instead of 1.35 GB for 2·10^6 × 675 samples)
    out = np.unpackbits(packed.bits[start:stop], axis=1, count=packed.n_spins).view(np.int8)
    out *= 2
    out -= 1
    return out


def _check_pm1(x) -> None:
    if isinstance(x, torch.Tensor):
        ok = bool(((x == 1) | (x == -1)).all())
    else:
        ok = bool(np.all((x == 1) | (x == -1)))
    if not ok:
        raise DatasetError("samples must contain only -1 and +1 entries")


# Round-off allowed on the range and symmetry of given moments (float32 sums of 10^6 samples
# stay far inside it).
MOMENT_TOL = 1e-6


def _exact_float32_sums() -> bool:
    """Whether float32 matrix products sum exactly (no TF32/bfloat16 shortcuts allowed by
    ``torch.set_float32_matmul_precision``)."""
    return torch.get_float32_matmul_precision() == "highest"


def _n_rows_cols(samples) -> tuple[int, int]:
    if isinstance(samples, PackedSpins):
        return samples.shape
    if not hasattr(samples, "shape"):
        raise DatasetError(
            f"samples are a {type(samples).__name__}; give an [S, N] array (NumPy or torch) or "
            "PackedSpins"
        )
    shape = tuple(samples.shape)
    if len(shape) != 2:
        raise DatasetError(f"samples have shape {shape}; expected [S, N]")
    return shape


def iter_chunks(
    samples, weights=None, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, dtype=torch.float64, device=None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, w)``: float ±1 rows ``[s, N]`` and normalised weights ``[s]`` (sum over all = 1).

    ``samples`` is ``[S, N]`` (numpy, torch or :class:`PackedSpins`); ``weights`` is ``[S]`` of
    non-negative numbers or ``None`` (uniform). Values are checked to be ±1.
    """
    S, _ = _n_rows_cols(samples)
    if S == 0:
        raise DatasetError("samples are empty; need at least one row")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ConfigError(f"chunk_rows={chunk_rows!r} must be a positive integer")
    if device is None:
        device = samples.device if isinstance(samples, torch.Tensor) else torch.device("cpu")
    if weights is None:
        w_all = None
    else:
        w_all = torch.as_tensor(
            weights.detach().cpu().numpy() if isinstance(weights, torch.Tensor) else weights,
            dtype=dtype,
        )
        if w_all.shape != (S,):
            raise DatasetError(
                f"weights have shape {tuple(w_all.shape)}; expected one per sample, [S] = [{S}]"
            )
        if not torch.isfinite(w_all).all() or (w_all < 0).any() or float(w_all.sum()) <= 0:
            raise DatasetError("weights must be finite, >= 0, and not all zero")
        w_all = (w_all / w_all.sum()).to(device)
    for a in range(0, S, chunk_rows):
        b = min(a + chunk_rows, S)
        if isinstance(samples, PackedSpins):
            x = torch.from_numpy(samples.rows(a, b))
        elif isinstance(samples, torch.Tensor):
            x = samples[a:b]
            _check_pm1(x)
        else:
            x = np.asarray(samples[a:b])
            _check_pm1(x)
            x = torch.from_numpy(np.ascontiguousarray(x))
        x = x.to(dtype=dtype, device=device)
        w = (
            torch.full((b - a,), 1.0 / S, dtype=dtype, device=device)
            if w_all is None
            else w_all[a:b]
        )
        yield x, w


@dataclass(frozen=True, eq=False)
class Moments:
    """First and second moments of a ±1 distribution (data or model).

    Attributes:
        m: magnetisations ``⟨σ_i⟩`` ``[N]``.
        C: pair moments ``⟨σ_i σ_j⟩`` ``[N, N]`` (diagonal 1).
        n_samples: number of samples behind the estimate (``None`` for exact/model moments).
        third: optional third-order connected correlations, ``[N, N, N]`` or ``[T]`` for
            ``triplets``.
        triplets: ``[T, 3]`` int64 indices of ``third``, or ``None`` (full tensor or absent).
    """

    m: torch.Tensor
    C: torch.Tensor
    n_samples: int | None = None
    third: torch.Tensor | None = None
    triplets: torch.Tensor | None = None

    def __post_init__(self):
        m = torch.as_tensor(self.m)
        if not m.is_floating_point():
            m = m.to(torch.float64)
        C = torch.as_tensor(self.C).to(dtype=m.dtype, device=m.device)
        if m.ndim != 1 or C.shape != (m.shape[0], m.shape[0]):
            raise DatasetError(
                f"moments have m {tuple(m.shape)} and C {tuple(C.shape)}; expected [N] and [N, N]"
            )
        # moments of ±1 spins: finite, |m_i| <= 1, |C_ij| <= 1, C symmetric (to round-off:
        # MOMENT_TOL). One host read for all three checks.
        bad = (
            torch.stack(
                [
                    (~torch.isfinite(m)).any() | (~torch.isfinite(C)).any(),
                    (m.abs() > 1 + MOMENT_TOL).any() | (C.abs() > 1 + MOMENT_TOL).any(),
                    ((C - C.T).abs() > MOMENT_TOL).any(),
                ]
            ).tolist()
            if m.numel()
            else [False] * 3
        )
        if any(bad):
            what = ("contain NaN or infinite values", "lie outside [-1, 1]", "C is not symmetric")
            msg = next(w for w, b in zip(what, bad, strict=True) if b)
            raise DatasetError(
                f"moments of ±1 spins {msg}" if bad[0] or bad[1] else f"moments: {msg}",
                hint="m = <σ_i>, C = <σ_i σ_j> of ±1 samples",
            )
        object.__setattr__(self, "m", m)
        object.__setattr__(self, "C", C)

    @property
    def n_spins(self) -> int:
        return self.m.shape[0]

    @property
    def connected(self) -> torch.Tensor:
        """Connected correlations ``C_ij - m_i m_j`` ``[N, N]`` (diagonal ``1 - m_i²``)."""
        return self.C - torch.outer(self.m, self.m)

    @property
    def raw_third(self) -> torch.Tensor | None:
        """Third-order moments ``⟨σ_i σ_j σ_k⟩`` (not connected), same shape as ``third``
        (``[N, N, N]`` or ``[T]`` for ``triplets``); ``None`` without ``third``.

        Exact identity, no new estimate: ``⟨σ_i σ_j σ_k⟩ = c_ijk + m_i C_jk + m_j C_ik + m_k C_ij
        − 2 m_i m_j m_k`` with ``c`` the connected correlations in ``third``. Unlike ``c``, these
        moments are dominated by ``m`` and ``C`` wherever the spins are magnetised."""
        if self.third is None:
            return None
        m, C = self.m, self.C
        if self.triplets is None:  # full [N, N, N] tensor
            return (
                self.third
                + m[:, None, None] * C[None, :, :]
                + m[None, :, None] * C[:, None, :]
                + m[None, None, :] * C[:, :, None]
                - 2 * m[:, None, None] * m[None, :, None] * m[None, None, :]
            )
        i, j, k = self.triplets.to(m.device).T
        return (
            self.third + m[i] * C[j, k] + m[j] * C[i, k] + m[k] * C[i, j] - 2 * m[i] * m[j] * m[k]
        )

    def slice(self, start: int, stop: int) -> Moments:
        """First and second moments of spins ``start … stop - 1`` (e.g. one layer of a net);
        copies, so the result does not alias this object. Third-order entries are dropped
        (their triplets index the full set of spins)."""
        return Moments(
            self.m[start:stop].clone(), self.C[start:stop, start:stop].clone(), self.n_samples
        )

    def to(self, dtype=None, device=None) -> Moments:
        def cv(t):
            return None if t is None else t.to(dtype=dtype, device=device)

        trip = None if self.triplets is None else self.triplets.to(device=device)
        return Moments(cv(self.m), cv(self.C), self.n_samples, cv(self.third), trip)


def _parse_triplets(triplets, n: int, device) -> torch.Tensor | None:
    """``None`` → full tensor; else an int64 ``[T, 3]`` tensor of distinct in-range indices."""
    if isinstance(triplets, str):
        if triplets != "all":
            raise ConfigError(f"triplets={triplets!r} is not allowed; use 'all' or a [T, 3] array")
        if n > MAX_FULL_THIRD_ORDER:
            raise ConfigError(
                f"triplets='all' needs N <= {MAX_FULL_THIRD_ORDER} (got N = {n}); "
                "pass explicit [T, 3] indices"
            )
        return None
    t = torch.as_tensor(
        triplets.detach().cpu().numpy() if isinstance(triplets, torch.Tensor) else triplets
    )
    if t.ndim != 2 or t.shape[1] != 3 or t.is_floating_point():
        raise ConfigError(f"triplets have shape {tuple(t.shape)}; expected an integer [T, 3] array")
    t = t.to(torch.int64)
    if t.numel() and (t.min() < 0 or t.max() >= n):
        raise ConfigError(f"triplet indices must lie in [0, {n - 1}]")
    return t.to(device)


def sample_moments(
    samples,
    weights=None,
    *,
    triplets=None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    chunk_triplets: int = DEFAULT_CHUNK_TRIPLETS,
    dtype=torch.float64,
    device=None,
) -> Moments:
    """Moments of ±1 samples.

    .. math::

        m_i = \\sum_s w_s \\sigma^s_i,\\quad C_{ij} = \\sum_s w_s \\sigma^s_i\\sigma^s_j,\\quad
        C^{(3)}_{ijk} = \\sum_s w_s\\, \\delta^s_i \\delta^s_j \\delta^s_k,\\quad
        \\delta^s = \\sigma^s - m,

    with ``w_s = 1/S`` unless ``weights`` are given (then normalised to sum 1).

    Args:
        samples: ``[S, N]`` ±1 array (numpy/torch, any integer or float dtype) or
            :class:`PackedSpins`.
        weights: optional ``[S]`` non-negative weights.
        triplets: ``None`` (no third order), ``"all"`` (full ``[N, N, N]`` tensor, N ≤ 64) or an
            integer ``[T, 3]`` array of index triplets.
        chunk_rows: rows converted to float at a time (bounds memory).
        chunk_triplets: at most this many triplets' products are formed at a time (blocks are
            also cut to :data:`THIRD_ORDER_BLOCK_BYTES`; the values depend on neither).
        dtype, device: of the results (default float64, the samples' device or CPU).

    Returns:
        :class:`Moments` with ``n_samples = S``.
    """
    S, n = _n_rows_cols(samples)
    m = None
    C = None
    if weights is None and _exact_float32_sums():
        # Unweighted: integer counts Σ_s σ_i σ_j in float32 GEMMs, exact (every partial sum is
        # an integer of size ≤ EXACT_FLOAT32_ROWS < 2^24), added up in float64 and divided by S
        # once. Half the time of float64 GEMMs with 1/S weights (the cost of 2·10^6 × 675
        # samples) and no rounding in the sums.
        rows = min(chunk_rows, EXACT_FLOAT32_ROWS)
        for x, _ in iter_chunks(samples, chunk_rows=rows, dtype=torch.float32, device=device):
            if m is None:
                m = torch.zeros(n, dtype=torch.float64, device=x.device)
                C = torch.zeros(n, n, dtype=torch.float64, device=x.device)
            m += x.sum(0, dtype=torch.float64)
            C += (x.T @ x).to(torch.float64)
        m = (m / S).to(dtype)
        C = (C / S).to(dtype)
    else:
        for x, w in iter_chunks(
            samples, weights, chunk_rows=chunk_rows, dtype=dtype, device=device
        ):
            if m is None:
                m = torch.zeros(n, dtype=dtype, device=x.device)
                C = torch.zeros(n, n, dtype=dtype, device=x.device)
            m += w @ x
            C += (x * w[:, None]).T @ x
    C = 0.5 * (C + C.T)
    C.fill_diagonal_(1.0)
    third = trip = None
    if triplets is not None:
        if (isinstance(chunk_triplets, bool) or not isinstance(chunk_triplets, int)
                or chunk_triplets < 1):  # fmt: skip
            raise ConfigError(f"chunk_triplets={chunk_triplets!r} must be a positive integer")
        trip = _parse_triplets(triplets, n, m.device)
        third = _third_order(samples, weights, m, trip, chunk_rows, chunk_triplets, dtype,
                             m.device)  # fmt: skip
    return Moments(m, C, S, third, trip)


def _third_order(
    samples, weights, m, trip, chunk_rows, chunk_triplets, dtype, device
) -> torch.Tensor:
    n = m.shape[0]
    out = (
        torch.zeros(n, n, n, dtype=dtype, device=device)
        if trip is None
        else torch.zeros(trip.shape[0], dtype=dtype, device=device)
    )
    for x, w in iter_chunks(samples, weights, chunk_rows=chunk_rows, dtype=dtype, device=device):
        d = x - m
        if trip is None:
            out += torch.einsum("s,si,sj,sk->ijk", w, d, d, d)
            continue
        # Spins as rows [N, rows]: a triplet's spins are then contiguous rows (gathering
        # columns of [rows, N] strode through memory). Triplets go in blocks whose two work
        # rows stay in cache (THIRD_ORDER_BLOCK_BYTES) and are reused, not re-allocated: for
        # 2·10^6 samples × 2000 triplets this took the sum from 270 s to 67 s (one thread).
        # Each entry is the sum of its own row of products (d_i d_j d_k) w, so neither the
        # block size nor chunk_triplets changes a number.
        dT = d.T.contiguous()
        rows = dT.shape[1]
        block = max(1, min(chunk_triplets, THIRD_ORDER_BLOCK_BYTES // (rows * dT.element_size())))
        P = torch.empty(block, rows, dtype=dT.dtype, device=dT.device)
        Q = torch.empty_like(P)
        for a in range(0, trip.shape[0], block):
            t = trip[a : a + block]
            p, q = P[: t.shape[0]], Q[: t.shape[0]]
            torch.index_select(dT, 0, t[:, 0], out=p)
            torch.index_select(dT, 0, t[:, 1], out=q)
            p.mul_(q)
            torch.index_select(dT, 0, t[:, 2], out=q)
            p.mul_(q).mul_(w)
            out[a : a + t.shape[0]] += p.sum(1)
    return out


def third_order_connected(
    samples,
    weights=None,
    *,
    triplets="all",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    chunk_triplets: int = DEFAULT_CHUNK_TRIPLETS,
) -> torch.Tensor:
    """Third-order connected correlations ``⟨(σ_i-m_i)(σ_j-m_j)(σ_k-m_k)⟩`` of samples.

    Args:
        samples, weights, chunk_rows, chunk_triplets: as in :func:`sample_moments`.
        triplets: ``"all"`` → ``[N, N, N]`` tensor; an integer ``[T, 3]`` array → ``[T]`` values.

    Returns:
        float64 tensor, ``[N, N, N]`` or ``[T]``.
    """
    return sample_moments(
        samples, weights, triplets=triplets, chunk_rows=chunk_rows, chunk_triplets=chunk_triplets
    ).third
