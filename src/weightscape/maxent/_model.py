"""The pairwise Ising model object and its file formats.

Convention used throughout :mod:`weightscape.maxent`:

.. math::

    P(\\sigma) = \\frac{1}{Z}
    \\exp\\Big(\\sum_{i<j} J_{ij}\\sigma_i\\sigma_j + \\sum_i h_i\\sigma_i\\Big),
    \\qquad \\sigma \\in \\{-1, +1\\}^N,

and the energy is ``E(σ) = -(Σ_{i<j} J_ij σ_i σ_j + Σ_i h_i σ_i)``
(inverse temperature 1, dimensionless). ``J`` is stored as a symmetric ``[N, N]`` matrix with a zero
diagonal, so :math:`\\sum_{i<j} J_{ij}\\sigma_i\\sigma_j = \\tfrac12 \\sigma^\\top J \\sigma`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import NPZ_READ_ERRORS, ConfigError, DataNotFoundError, DatasetError
from ..store import write_npz

__all__ = ["IsingModel", "read_matrix"]

# Relative tolerance for accepting a coupling matrix as symmetric in the strict constructor:
# round-off from a symmetric computation stays far below it, a genuinely asymmetric J does not.
SYMMETRY_RTOL = 1e-10


def _as_float_tensor(x, name: str, dtype=None, device=None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if dtype is None:
            dtype = t.dtype if t.is_floating_point() else torch.float64
        return t.to(dtype=dtype, device=device if device is not None else t.device)
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise DatasetError(f"{name} has dtype {arr.dtype}; expected a real numeric array")
    return torch.as_tensor(arr, dtype=dtype or torch.float64, device=device)


@dataclass(frozen=True, eq=False)
class IsingModel:
    """A pairwise Ising model on ``N`` spins ``σ ∈ {±1}^N``.

    Args:
        J: couplings ``[N, N]``, symmetric with zero diagonal (checked; use
            :meth:`from_couplings` to symmetrise a raw matrix).
        h: fields ``[N]``; same dtype and device as ``J``.

    Numpy inputs are converted to float64 tensors; tensors keep their dtype and device.
    """

    J: torch.Tensor
    h: torch.Tensor

    def __post_init__(self):
        J = _as_float_tensor(self.J, "J")
        h = _as_float_tensor(self.h, "h", dtype=J.dtype, device=J.device)
        if J.ndim != 2 or J.shape[0] != J.shape[1]:
            raise DatasetError(f"J has shape {tuple(J.shape)}; expected a square [N, N] matrix")
        if J.shape[0] == 0:
            raise DatasetError("the model has no spins (J is 0 × 0); a model needs N >= 1")
        if h.shape != (J.shape[0],):
            raise DatasetError(
                f"h has shape {tuple(h.shape)}; expected [N] = [{J.shape[0]}] to match J"
            )
        if not (torch.isfinite(J).all() and torch.isfinite(h).all()):
            raise DatasetError("J or h contains NaN or infinite values; all must be finite")
        if torch.any(torch.diagonal(J) != 0):
            raise DatasetError(
                "J has a non-zero diagonal; use IsingModel.from_couplings to zero it"
            )
        scale = float(J.abs().max()) if J.numel() else 0.0
        if J.numel() and float((J - J.T).abs().max()) > SYMMETRY_RTOL * max(scale, 1.0):
            raise DatasetError("J is not symmetric; use IsingModel.from_couplings to symmetrise it")
        # row-major storage whatever the input's (torch.linalg.inv returns column-major, and an
        # .npz keeps Fortran order): the BP kernels flatten J with views
        object.__setattr__(self, "J", J.contiguous())
        object.__setattr__(self, "h", h.contiguous())

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_couplings(cls, J, h=None, *, dtype=torch.float64, device=None) -> IsingModel:
        """Build a model from a raw coupling matrix: symmetrise ``(J + Jᵀ)/2``, zero the diagonal.

        Args:
            J: ``[N, N]`` array or tensor.
            h: ``[N]`` fields, or ``None`` for zero fields.
            dtype, device: of the stored tensors (default float64, device of ``J``/CPU).
        """
        Jt = _as_float_tensor(J, "J", dtype=dtype, device=device)
        if Jt.ndim != 2 or Jt.shape[0] != Jt.shape[1]:
            raise DatasetError(f"J has shape {tuple(Jt.shape)}; expected a square [N, N] matrix")
        Jt = 0.5 * (Jt + Jt.T)
        Jt.fill_diagonal_(0.0)
        ht = (
            torch.zeros(Jt.shape[0], dtype=Jt.dtype, device=Jt.device)
            if h is None
            else _as_float_tensor(h, "h", dtype=Jt.dtype, device=Jt.device).reshape(-1)
        )
        return cls(Jt, ht)

    @classmethod
    def zeros(cls, n_spins: int, *, dtype=torch.float64, device=None) -> IsingModel:
        """The independent, unbiased model (``J = 0``, ``h = 0``) on ``n_spins`` spins."""
        if isinstance(n_spins, bool) or not isinstance(n_spins, int) or n_spins < 1:
            raise ConfigError(f"n_spins={n_spins!r} must be a positive integer")
        J = torch.zeros(n_spins, n_spins, dtype=dtype, device=device)
        return cls(J, torch.zeros(n_spins, dtype=dtype, device=device))

    @classmethod
    def random(
        cls,
        n_spins: int,
        *,
        coupling_std: float,
        field_std: float = 0.0,
        field_mean: float = 0.0,
        seed: int = 0,
        dtype=torch.float64,
        device=None,
    ) -> IsingModel:
        """Random model: ``J_ij ~ N(0, coupling_std²)`` (i<j), ``h_i ~ N(field_mean, field_std²)``.

        For a Sherrington–Kirkpatrick model at inverse temperature β pass
        ``coupling_std = β / sqrt(N)``.
        """
        if isinstance(n_spins, bool) or not isinstance(n_spins, int) or n_spins < 1:
            raise ConfigError(f"n_spins={n_spins!r} must be a positive integer")
        for name, v in (("coupling_std", coupling_std), ("field_std", field_std)):
            if not isinstance(v, int | float) or v < 0:
                raise ConfigError(f"{name}={v!r} must be a number >= 0")
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        A = torch.randn(n_spins, n_spins, generator=g, dtype=torch.float64) * coupling_std
        J = torch.triu(A, diagonal=1)
        J = J + J.T
        h = field_mean + field_std * torch.randn(n_spins, generator=g, dtype=torch.float64)
        return cls(J.to(dtype=dtype, device=device), h.to(dtype=dtype, device=device))

    # ------------------------------------------------------------------ basic properties
    @property
    def n_spins(self) -> int:
        return self.J.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.J.dtype

    @property
    def device(self) -> torch.device:
        return self.J.device

    def to(self, dtype=None, device=None) -> IsingModel:
        """A copy in another dtype and/or on another device."""
        return IsingModel(
            self.J.to(dtype=dtype, device=device), self.h.to(dtype=dtype, device=device)
        )

    def with_fields(self, h) -> IsingModel:
        """The same couplings with fields ``h`` ``[N]`` (shares ``J``; no copy)."""
        return IsingModel(self.J, _as_float_tensor(h, "h", dtype=self.dtype, device=self.device))

    def tilted(self, x: float, reference) -> IsingModel:
        """The model with fields ``h_i + x σ*_i`` (the tilt of the entropy landscape).

        Args:
            x: tilt strength (dimensionless, like ``h``).
            reference: ``σ*`` ``[N]``, ±1 entries.
        """
        ref = _as_float_tensor(reference, "reference", dtype=self.dtype, device=self.device)
        if ref.shape != (self.n_spins,):
            raise DatasetError(
                f"reference has shape {tuple(ref.shape)}; expected [N] = [{self.n_spins}]"
            )
        return self.with_fields(self.h + float(x) * ref)

    def couplings_upper(self) -> torch.Tensor:
        """The couplings ``J_ij`` for ``i < j`` in row-major order ``[N(N-1)/2]``.

        The order is that of ``torch.triu_indices(N, N, 1)`` and of ``scipy.spatial.distance
        .squareform`` (the order used by ConIII's multipliers).
        """
        iu = torch.triu_indices(self.n_spins, self.n_spins, 1, device=self.device)
        return self.J[iu[0], iu[1]]

    @classmethod
    def from_vector(cls, h, j_upper) -> IsingModel:
        """Inverse of ``(h, couplings_upper())``: ``h`` ``[N]``, ``j_upper`` ``[N(N-1)/2]``."""
        h = _as_float_tensor(h, "h").reshape(-1)
        ju = _as_float_tensor(j_upper, "j_upper", dtype=h.dtype, device=h.device).reshape(-1)
        n = h.shape[0]
        if ju.shape[0] != n * (n - 1) // 2:
            raise DatasetError(
                f"j_upper has {ju.shape[0]} entries; expected N(N-1)/2 = {n * (n - 1) // 2}"
            )
        J = torch.zeros(n, n, dtype=h.dtype, device=h.device)
        iu = torch.triu_indices(n, n, 1, device=h.device)
        J[iu[0], iu[1]] = ju
        return cls(J + J.T, h)

    # ------------------------------------------------------------------ physics
    def energy(self, sigma) -> torch.Tensor:
        """Energy ``E(σ) = -(½ σᵀJσ + hᵀσ)`` in the model's dtype.

        Args:
            sigma: ``[..., N]`` ±1 configurations (any integer or float dtype).

        Returns:
            ``[...]`` energies.
        """
        s = _as_float_tensor(sigma, "sigma", dtype=self.dtype, device=self.device)
        if s.shape[-1] != self.n_spins:
            raise DatasetError(
                f"sigma has {s.shape[-1]} spins in its last axis; the model has {self.n_spins}"
            )
        return -(0.5 * ((s @ self.J) * s).sum(-1) + s @ self.h)

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write ``J`` ``[N, N]`` and ``h`` ``[N]`` (float64) to a ``.npz``, atomically."""
        return write_npz(
            path,
            J=self.J.detach().cpu().to(torch.float64).numpy(),
            h=self.h.detach().cpu().to(torch.float64).numpy(),
        )

    @classmethod
    def load(cls, path: str | Path, *, dtype=torch.float64, device=None) -> IsingModel:
        """Read a model written by :meth:`save` (an ``.npz`` with arrays ``J`` and ``h``)."""
        path = Path(path)
        if not path.exists():
            raise DataNotFoundError(f"model file {str(path)!r} does not exist")
        try:
            with np.load(path, allow_pickle=False) as z:
                if "J" not in z or "h" not in z:
                    raise DatasetError(
                        f"{str(path)!r} holds arrays {sorted(z.files)}; expected 'J' and 'h'"
                    )
                J, h = z["J"], z["h"]
        except DatasetError:
            raise
        except NPZ_READ_ERRORS as err:
            raise DatasetError(f"cannot read {str(path)!r} as .npz: {err}") from None
        return cls(
            _as_float_tensor(J, "J", dtype=dtype, device=device),
            _as_float_tensor(h, "h", dtype=dtype, device=device),
        )

    @classmethod
    def from_files(
        cls, couplings: str | Path, fields: str | Path | None = None, *, dtype=torch.float64
    ) -> IsingModel:
        """Read a model made elsewhere.

        Args:
            couplings: an ``N × N`` matrix as whitespace/comma-separated text or ``.npy``; it is
                symmetrised and its diagonal zeroed. An ``.npz`` written by :meth:`save` is also
                accepted (then ``fields`` must be ``None``).
            fields: a length-``N`` vector (text or ``.npy``), or ``None`` for zero fields.
        """
        if Path(couplings).suffix == ".npz":
            if fields is not None:
                raise ConfigError("fields must be None when couplings is an .npz model file")
            return cls.load(couplings, dtype=dtype)
        J = read_matrix(couplings)
        if J.shape == (1,):  # a 1 × 1 text matrix (read_matrix flattens one row or column)
            J = J.reshape(1, 1)
        if J.ndim != 2 or J.shape[0] != J.shape[1]:
            raise DatasetError(f"{str(couplings)!r} holds shape {J.shape}; expected a square N × N")
        h = None
        if fields is not None:
            h = read_matrix(fields)
            if h.ndim > 2 or (h.ndim == 2 and 1 not in h.shape):
                raise DatasetError(
                    f"{str(fields)!r} holds shape {h.shape}; expected a vector of N = "
                    f"{J.shape[0]} fields (one row or one column)"
                )
            h = h.reshape(-1)
            if h.shape[0] != J.shape[0]:
                raise DatasetError(
                    f"{str(fields)!r} holds {h.shape[0]} fields; the couplings have "
                    f"N = {J.shape[0]}"
                )
        return cls.from_couplings(J, h, dtype=dtype)


def read_matrix(path: str | Path) -> np.ndarray:
    """Read a float64 array from ``.npy`` (real numbers, no pickles) or text (whitespace- or
    comma-separated; one row or one column is read as a vector)."""
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"file {str(path)!r} does not exist")
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
            if arr.dtype.kind not in "biuf":  # complex, text, dates: not silently cast
                raise ValueError(f"its dtype is {arr.dtype}, not a real number type")
        else:
            text = path.read_text().replace(",", " ")
            rows = [r.split() for r in text.splitlines() if r.strip() and not r.startswith("#")]
            arr = np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
            if arr.ndim == 2 and 1 in arr.shape:
                arr = arr.reshape(-1)
        arr = np.asarray(arr, dtype=np.float64)
    except NPZ_READ_ERRORS as err:
        raise DatasetError(f"cannot read a numeric matrix from {str(path)!r}: {err}") from None
    if not np.isfinite(arr).all():
        raise DatasetError(f"{str(path)!r} contains NaN or infinite values")
    return arr
